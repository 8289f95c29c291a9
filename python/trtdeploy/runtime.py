"""onnxruntime at the edge: sessions (also for models over 2 GB) and input generation."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import onnx

from ._graph import data_inputs, dims_of
from .errors import TrtDeployError, require


def session(model: onnx.ModelProto | str | os.PathLike):
    """A CPU onnxruntime session. Works with onnxruntime or onnxruntime-gpu installed."""
    ort = require("onnxruntime", "ort")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    try:
        if isinstance(model, onnx.ModelProto):
            if model.ByteSize() < 2**31 - (64 << 20):
                return ort.InferenceSession(model.SerializeToString(), opts, providers=providers)
            from .io import save

            with tempfile.TemporaryDirectory() as d:  # too big for one protobuf message
                path = os.path.join(d, "model.onnx")
                save(model, path, external_data=True)  # saves a copy: the caller's model is untouched
                return ort.InferenceSession(path, opts, providers=providers)
        return ort.InferenceSession(str(model), opts, providers=providers)
    except Exception as exc:  # ort raises its own Fail/InvalidGraph types
        if type(exc).__module__.startswith("onnxruntime"):
            raise TrtDeployError(f"onnxruntime cannot load the model: {str(exc).splitlines()[0]}") from None
        raise


def run(sess, feeds: dict[str, np.ndarray], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
    try:
        names = outputs or [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, feeds)))
    except Exception as exc:
        if type(exc).__module__.startswith("onnxruntime"):
            raise TrtDeployError(f"onnxruntime failed: {str(exc).splitlines()[0][:500]}") from None
        raise


def parse_shapes(text: str | None) -> dict[str, list[int]]:
    """trtexec style: ``images:1x3x640x640,mask:1x1`` (several inputs comma-separated)."""
    out: dict[str, list[int]] = {}
    if not text:
        return out
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, dims = part.rpartition(":")
        if not sep or not name:
            raise TrtDeployError(f"shape '{part}': expected NAME:DxDxD, e.g. images:1x3x640x640")
        try:
            out[name] = [int(d) for d in dims.split("x")] if dims else []
        except ValueError:
            raise TrtDeployError(f"shape '{part}': dims must be integers separated by 'x'") from None
    return out


def input_shapes(model: onnx.ModelProto, shapes: dict[str, list[int]] | None = None,
                 symbols: dict[str, int] | None = None) -> dict[str, list[int]]:
    """Concrete shapes for every data input: given shapes, else static dims, with symbolic dims
    from ``symbols`` (a dim named e.g. 'batch' -> 1) or 1 for the leading axis."""
    shapes = dict(shapes or {})
    symbols = symbols or {}
    names = {vi.name for vi in data_inputs(model.graph)}
    unknown = set(shapes) - names
    if unknown:
        raise TrtDeployError(f"no input named {', '.join(sorted(unknown))} (inputs: {', '.join(sorted(names))})")
    for vi in data_inputs(model.graph):
        if vi.name in shapes:
            continue
        dims = dims_of(vi)
        if dims is None:
            raise TrtDeployError(f"input '{vi.name}' has no shape in the model; give it, e.g. --shapes {vi.name}:1x3x224x224")
        out = []
        for axis, d in enumerate(dims):
            if isinstance(d, int):
                out.append(d)
            elif isinstance(d, str) and d in symbols:
                out.append(symbols[d])
            elif axis == 0:
                out.append(1)
            else:
                raise TrtDeployError(f"input '{vi.name}' axis {axis} is dynamic ({d or '?'}); give its size, "
                                     f"e.g. --shapes {vi.name}:" + "x".join(str(x) if isinstance(x, int) else "N" for x in dims))
        shapes[vi.name] = out
    return shapes


_NP = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.FLOAT16: np.float16,
       onnx.TensorProto.DOUBLE: np.float64, onnx.TensorProto.INT64: np.int64,
       onnx.TensorProto.INT32: np.int32, onnx.TensorProto.INT8: np.int8, onnx.TensorProto.UINT8: np.uint8,
       onnx.TensorProto.BOOL: np.bool_, onnx.TensorProto.INT16: np.int16}


def random_inputs(model: onnx.ModelProto, shapes: dict[str, list[int]], seed: int = 0) -> dict[str, np.ndarray]:
    """Random data of the right shape and dtype: floats in [0, 1), ints in [0, 4), bools."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in data_inputs(model.graph):
        elem = vi.type.tensor_type.elem_type
        if elem not in _NP:
            raise TrtDeployError(f"input '{vi.name}' has type {onnx.TensorProto.DataType.Name(elem)}; "
                                 "give values with --inputs FILE.npz")
        dt = _NP[elem]
        shape = shapes[vi.name]
        if np.issubdtype(dt, np.floating):
            feeds[vi.name] = rng.random(shape, dtype=np.float32).astype(dt)
        elif dt is np.bool_:
            feeds[vi.name] = rng.random(shape) < 0.5
        else:
            feeds[vi.name] = rng.integers(0, 4, size=shape).astype(dt)
    return feeds
