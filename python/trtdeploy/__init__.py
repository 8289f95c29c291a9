"""trtdeploy: the PyTorch -> ONNX -> TensorRT deployment path.

The API is flat and imported lazily (so `trtdeploy --help` and the rename fast path start fast):

    import trtdeploy
    model = trtdeploy.load("model.onnx")
    model = trtdeploy.make_dynamic(model)                 # batch axis -> "batch"
    model = trtdeploy.rename(model, {"batchnorm_274": "fc1"})
    trtdeploy.save(model, "model.dynamic.onnx")
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "load": "io", "save": "io",
    "make_dynamic": "surgery.dims", "parse_dims": "surgery.dims",
    "rename": "surgery.names", "rename_file": "_rename_file",
    "expose": "surgery.expose",
    "remove_nodes": "surgery.nodes", "insert_cast": "surgery.nodes",
    "simplify": "surgery.simplify",
    "verify_dynamic": "verify",
    "summary": "inspection",
    "TrtDeployError": "errors",
    "build_info": "_info",
}
__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'trtdeploy' has no attribute '{name}'")


def __dir__():
    return __all__
