"""TensorRT at the edge: engine build and runtime. The only package that imports tensorrt, lazily.

Written against the TensorRT 10 Python API (and 11, which is always strongly typed). TensorRT
cannot be installed on trtdeploy's CI machines, so this code is kept thin; everything it relies on
(plans, shapes, the fp16 pass, sidecars, statistics) lives outside and is tested there.
"""

from __future__ import annotations

from ..errors import MissingDependencyError


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise MissingDependencyError(
            "TensorRT is not installed: `pip install tensorrt` (or `pip install trtdeploy[trt]`) on a machine "
            "with an NVIDIA GPU; `trtdeploy build --dry-run` shows the plan without it") from None
    return trt


def major_version(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


def register_plugins(extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Load trtdeploy's plugin library (YoloLayer_TRT) and any extra ones into TensorRT's global
    plugin registry, so that the ONNX parser and engine deserialization find them. Returns the
    libraries loaded."""
    from pathlib import Path

    from .._info import plugin_library
    from ..errors import TrtDeployError

    trt = import_tensorrt()
    registry = trt.get_plugin_registry()
    libs = [lib for lib in [plugin_library(), *extra] if lib]
    for lib in libs:
        if not Path(lib).is_file():
            raise TrtDeployError(f"plugin library {lib} does not exist")
        registry.load_library(str(lib))
    return libs
