"""onnxruntime at the edge: quiet sessions (also for models over 2 GB), input shapes and values."""

from __future__ import annotations

import os
import re
import tempfile

import numpy as np
import onnx

from ._graph import data_inputs, dims_of
from .errors import TrtDeployError, require

# size taken for a dynamic dim that neither --shapes nor --inputs gives: 1 for a leading (batch) axis,
# this for the others (H/W, sequence); the check reports every such guess
GUESSED_SIZE = 64


def available() -> bool:
    """Whether onnxruntime (or onnxruntime-gpu) can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _ort():
    ort = require("onnxruntime", "ort")
    ort.set_default_logger_severity(4)  # fatal only: its colored log lines must not reach the user
    return ort


def session(model: onnx.ModelProto | str | os.PathLike, basic: bool = False):
    """A CPU onnxruntime session. Works with onnxruntime or onnxruntime-gpu installed. ``basic``: only
    onnxruntime's basic graph optimizations (the extended ones choose kernels and layouts per graph,
    so two models sharing a subgraph may compute it differently in the last bits)."""
    from .io import fits_in_protobuf

    ort = _ort()
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    if basic:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    providers = ["CPUExecutionProvider"]
    try:
        if isinstance(model, onnx.ModelProto):
            if fits_in_protobuf(model):
                return ort.InferenceSession(model.SerializeToString(), opts, providers=providers)
            from .io import write_model

            with tempfile.TemporaryDirectory() as d:  # too big for one protobuf message
                path = os.path.join(d, "model.onnx")
                write_model(model, path, external_data=True)  # writes a copy: the caller's model is untouched
                return ort.InferenceSession(path, opts, providers=providers)
        return ort.InferenceSession(str(model), opts, providers=providers)
    except Exception as exc:  # ort raises its own Fail/InvalidGraph types
        if type(exc).__module__.startswith("onnxruntime"):
            raise TrtDeployError(f"onnxruntime cannot load the model: {_first_line(exc)}") from None
        raise


def _first_line(exc: BaseException, limit: int = 500) -> str:
    """onnxruntime's message, in a line: "node 'NAME' (OP): what", the innermost node of nested ones."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    nested = re.findall(r"Non-zero status code returned while running (\w+) node\. Name:'([^']*)' Status Message: ", text)
    if nested:
        op, name = nested[-1]
        text = f"node '{name}' ({op}): " + text.rsplit("Status Message: ", 1)[-1]
    return text[:limit]


def run(sess, feeds: dict[str, np.ndarray], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
    try:
        names = outputs or [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, feeds)))
    except Exception as exc:
        if type(exc).__module__.startswith("onnxruntime") or "No corresponding Numpy type" in str(exc):
            raise TrtDeployError(f"onnxruntime failed: {_first_line(exc)}") from None
        raise


def exchange_problem(model: onnx.ModelProto) -> str | None:
    """The first graph input/output of a type that onnxruntime's Python API cannot feed or return as a
    NumPy array (bfloat16, the float8 and 4-bit types), said in words; None when there is none."""
    for kind, values in (("input", data_inputs(model.graph)), ("output", model.graph.output)):
        for vi in values:
            elem = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else 0
            if elem and elem not in _NP and elem != onnx.TensorProto.STRING:
                return (f"{kind} '{vi.name}' is {onnx.TensorProto.DataType.Name(elem).lower()}, which onnxruntime's "
                        f"Python API cannot {'feed' if kind == 'input' else 'return'}")
    return None


def parse_shapes(text: str | None, flag: str = "--shapes") -> dict[str, list[int]]:
    """trtexec style: ``images:1x3x640x640,mask:1x1`` (several inputs comma-separated). A name may
    itself contain ':' (``input:0:1x3``): the dims are after the last one."""
    out: dict[str, list[int]] = {}
    if not text:
        return out
    parts = [p.strip() for p in text.split(",")]
    example = "e.g. images:1x3x640x640"
    for i, part in enumerate(parts):
        if not part:
            raise TrtDeployError(f"{flag} '{text}': empty entry; {example} (',' separates inputs)")
        name, sep, dims = part.rpartition(":")
        if not sep:
            if re.fullmatch(r"\d+", part) and i > 0:
                prev = parts[i - 1]
                joined = prev + "x" + "x".join(p for p in parts[i:] if re.fullmatch(r"\d+", p))
                raise TrtDeployError(f"{flag} '{text}': dims are separated by 'x' ({joined}); ',' separates inputs")
            name_eq, eq, rest = part.partition("=")
            if eq and name_eq:
                raise TrtDeployError(f"{flag} '{part}': put ':' between the name and the dims ({name_eq}:{rest})")
            raise TrtDeployError(f"{flag} '{part}': expected NAME:DIMS, {example}")
        if not name:
            raise TrtDeployError(f"{flag} '{part}': no input name before ':'; {example}")
        if not dims:
            raise TrtDeployError(f"{flag} '{part}': no dims after '{name}:'; {example} (scalar inputs need none)")
        items = dims.split("x")
        if any(not d for d in items):
            raise TrtDeployError(f"{flag} '{part}': empty dim in '{dims}' (a leading, trailing or doubled 'x')")
        values = []
        for d in items:
            if re.fullmatch(r"-\d+", d.strip()):
                raise TrtDeployError(f"{flag} '{part}': dim {d.strip()} is negative; give the actual size")
            if not re.fullmatch(r"\d+", d.strip()):
                raise TrtDeployError(f"{flag} '{part}': dim '{d}' is not a number; {example}")
            if int(d) == 0:
                raise TrtDeployError(f"{flag} '{part}': a dim of 0 makes an empty tensor; dims start at 1")
            values.append(int(d))
        if name in out:
            raise TrtDeployError(f"{flag} '{text}': input '{name}' is given twice")
        out[name] = values
    return out


def input_shapes(model: onnx.ModelProto, shapes: dict[str, list[int]] | None = None,
                 symbols: dict[str, int] | None = None, guesses: list[str] | None = None) -> dict[str, list[int]]:
    """Concrete shapes for every data input: given shapes, else static dims, with symbolic dims
    from ``symbols`` (a dim named e.g. 'batch' -> 1). Without ``guesses`` a dynamic dim left over is
    an error naming it; with a list, it is sized (1 on axis 0, GUESSED_SIZE elsewhere; one size per
    symbol across inputs) and ``input[axis]=size`` is appended to ``guesses``."""
    shapes = dict(shapes or {})
    symbols = dict(symbols or {})
    inputs = data_inputs(model.graph)
    names = {vi.name for vi in inputs}
    unknown = set(shapes) - names
    if unknown:
        raise TrtDeployError(f"no input named {', '.join(sorted(unknown))} (inputs: {', '.join(sorted(names))})")
    for vi in inputs:  # symbols sized by the given shapes apply to the other inputs
        for d, v in zip(dims_of(vi) or [], shapes.get(vi.name, [])):
            if isinstance(d, str):
                symbols.setdefault(d, v)
    for vi in inputs:
        dims = dims_of(vi)
        if vi.name in shapes:
            got = shapes[vi.name]
            if dims is not None and (len(got) != len(dims) or any(isinstance(d, int) and d != g
                                                                  for d, g in zip(dims, got))):
                raise TrtDeployError(f"input '{vi.name}' is {_fmt(dims)} in the model; the given shape "
                                     f"{'x'.join(map(str, got))} does not fit it")
            continue
        if dims is None:
            raise TrtDeployError(f"input '{vi.name}' has no shape in the model; give it, e.g. --shapes {vi.name}:1x3x224x224")
        out = []
        for axis, d in enumerate(dims):
            if isinstance(d, int):
                out.append(d)
            elif isinstance(d, str) and d in symbols:
                out.append(symbols[d])
            elif guesses is not None:
                size = 1 if axis == 0 else GUESSED_SIZE
                if isinstance(d, str):
                    symbols[d] = size
                guesses.append(f"{vi.name}[{axis}]={size}")
                out.append(size)
            elif axis == 0:
                out.append(1)
            else:
                raise TrtDeployError(f"input '{vi.name}' axis {axis} is dynamic ({d or '?'}); give its size, "
                                     f"e.g. --shapes {vi.name}:" + "x".join(str(x) if isinstance(x, int) else "N" for x in dims))
        shapes[vi.name] = out
    return shapes


def _fmt(dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


_NP = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.FLOAT16: np.float16,
       onnx.TensorProto.DOUBLE: np.float64, onnx.TensorProto.INT64: np.int64,
       onnx.TensorProto.INT32: np.int32, onnx.TensorProto.INT8: np.int8, onnx.TensorProto.UINT8: np.uint8,
       onnx.TensorProto.BOOL: np.bool_, onnx.TensorProto.INT16: np.int16, onnx.TensorProto.UINT16: np.uint16,
       onnx.TensorProto.UINT32: np.uint32, onnx.TensorProto.UINT64: np.uint64}


def random_inputs(model: onnx.ModelProto, shapes: dict[str, list[int]], seed: int = 0) -> dict[str, np.ndarray]:
    """Random data of the right shape and dtype: floats in [0, 1), ints in [0, 4), bools."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in data_inputs(model.graph):
        elem = vi.type.tensor_type.elem_type
        if elem not in _NP:
            raise TrtDeployError(exchange_problem(model) if elem != onnx.TensorProto.STRING else
                                 f"input '{vi.name}' has type STRING; give values with --inputs FILE.npz")
        dt = _NP[elem]
        shape = shapes[vi.name]
        if np.issubdtype(dt, np.floating):
            feeds[vi.name] = rng.random(shape, dtype=np.float32).astype(dt)
        elif dt is np.bool_:
            feeds[vi.name] = rng.random(shape) < 0.5
        else:
            feeds[vi.name] = rng.integers(0, 4, size=shape).astype(dt)
    return feeds


def load_inputs(path: str | os.PathLike, model: onnx.ModelProto, any_batch: bool = False) -> dict[str, np.ndarray]:
    """Input values from an .npz (one array per input name), checked against the model's inputs
    (``any_batch``: but for the size of axis 0, which the command makes dynamic)."""
    import zipfile

    try:
        if not os.path.isfile(path):
            raise TrtDeployError(f"--inputs {path}: no such file")
        if not zipfile.is_zipfile(path):
            raise TrtDeployError(f"--inputs {path}: not an .npz file (np.savez writes one: a zip of arrays named "
                                 "after the inputs)")
        with np.load(path) as data:
            feeds = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise TrtDeployError(f"--inputs {path}: not a readable .npz file ({exc})") from None
    inputs = {vi.name: vi for vi in data_inputs(model.graph)}
    extra = sorted(set(feeds) - set(inputs))
    if extra:
        raise TrtDeployError(f"--inputs {path}: {', '.join(repr(e) for e in extra)} is not an input of the model "
                             f"(inputs: {', '.join(inputs)})")
    for name, arr in feeds.items():
        want = _NP.get(inputs[name].type.tensor_type.elem_type)
        if want is not None and arr.dtype != np.dtype(want):
            raise TrtDeployError(f"--inputs {path}: '{name}' is {arr.dtype}, the model takes {np.dtype(want)}")
        dims = dims_of(inputs[name])
        if dims is not None and (len(dims) != arr.ndim or any(isinstance(d, int) and d != s and (i or not any_batch)
                                                               for i, (d, s) in enumerate(zip(dims, arr.shape)))):
            raise TrtDeployError(f"--inputs {path}: '{name}' has shape {list(arr.shape)}, the model takes "
                                 f"{_fmt(dims)}")
    return feeds
