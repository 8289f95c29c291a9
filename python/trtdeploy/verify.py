"""The one check every model-writing command runs on what it wrote, before the atomic rename.

1. ``checker``: onnx.checker on the written file (the full check, with strict shape inference, when
   every op is an ONNX op). A failure the input model has too is reported, not held against the output.
2. A promise, compared in onnxruntime on the same inputs (``Probe``: --inputs values, --shapes, else
   sizes guessed for dynamic dims and named in the report). Each command says what it keeps; the
   comparing is done here, once:
   - ``same_outputs``: every output of the original, same shape and values (after a declared cast),
     at the original sizes and, for dynamic dims, at two other sizes (remove-node, insert-cast,
     simplify, expose);
   - ``fp16_outputs``: within what rounding to float16 explains: the float32 model run with its
     weights, inputs and every activation rounded to float16 is the yardstick (fp16);
   - ``dynamic_outputs``: at several batch sizes, each sample against the original run on it alone;
     other new dynamic dims only run (dynamic, verify);
   - ``same_names``: a rename, structurally, from the names the wire reader lists (rename).
A check is a function (original, new, probe) -> report dict that raises TrtDeployError naming the
first output that differs and by how much; cli/_common.write_checked runs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import TrtDeployError

if TYPE_CHECKING:
    import numpy as np
    import onnx

log = logging.getLogger("trtdeploy.verify")

# onnx, numpy and onnxruntime are imported by the checks that use them: the rename fast path's
# structural check (same_names) stays as light as the rename itself.
Check = Callable[["onnx.ModelProto", "onnx.ModelProto", "Probe"], dict]

_ONNX_DOMAINS = {"", "ai.onnx", "ai.onnx.ml"}


class CannotRun(TrtDeployError):
    """onnxruntime cannot load the input model (custom/plugin ops): there is nothing to compare with.
    write_checked reports that only onnx.checker ran."""


def _sessions(original, new):
    from .runtime import session

    try:
        sess_o = session(original)
    except TrtDeployError as exc:
        raise CannotRun(f"onnxruntime cannot run the input model either ({exc})") from None
    return sess_o, session(new)


# ---- 1. onnx.checker ----------------------------------------------------------------------------------

def full_check_allowed(model: onnx.ModelProto) -> bool:
    """Strict shape inference can judge the model: every node is an ONNX op (no plugin domains)."""
    from ._graph import model_graphs

    return all(n.domain in _ONNX_DOMAINS for g in model_graphs(model) for n in g.node) and not model.functions


def _checker_error(path, full: bool) -> str | None:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=full)
    except Exception as exc:  # ValidationError, InferenceError, ...
        text = str(exc).strip().splitlines()
        return text[0] if text else type(exc).__name__
    return None


def checker(path, model: onnx.ModelProto, original_path=None) -> str:
    """onnx.checker on the file at ``path`` (``model`` is its content, to choose the full check).
    Raises TrtDeployError when it fails and the input (``original_path``) does not; returns a note."""
    full = full_check_allowed(model)
    err = _checker_error(path, full)
    what = "onnx.checker (full)" if full else "onnx.checker (plugin ops: without shape inference)"
    if err is None:
        return f"{what}: ok"
    before = _checker_error(original_path, full) if original_path is not None else None
    if original_path is not None and before is not None:
        return f"{what}: the input model fails it already ({before}); not held against the output"
    raise TrtDeployError(f"the written model fails {what}: {err}")


# ---- 2. what the check runs on ------------------------------------------------------------------------

class Probe:
    """The inputs of the check: user values (--inputs), shapes (--shapes), else the model's static dims,
    with each dynamic dim left over guessed (1 on axis 0, runtime.GUESSED_SIZE elsewhere) and named
    in ``guesses``. ``feeds(k)``: k=0 the base inputs; k=1, 2 random inputs with every dynamic dim at
    another size (v + k * the largest power of two dividing v: strides still divide it); the given
    values of inputs without dynamic dims (a sample rate) are kept at every size."""

    def __init__(self, model: onnx.ModelProto, shapes: dict[str, list[int]] | None = None,
                 values: dict[str, np.ndarray] | None = None, seed: int = 0):
        from ._graph import data_inputs, dims_of
        from .runtime import input_shapes

        self.model, self.values, self.seed = model, dict(values or {}), seed
        given = {k: list(v.shape) for k, v in self.values.items()}
        for name, dims in (shapes or {}).items():
            if name in given and given[name] != list(dims):
                raise TrtDeployError(f"--shapes {name}:{'x'.join(map(str, dims))} contradicts --inputs, where "
                                     f"'{name}' is {'x'.join(map(str, given[name]))}")
            given[name] = list(dims)
        self.guesses: list[str] = []
        self.shapes = input_shapes(model, given, guesses=self.guesses)
        self.dynamic: dict[tuple[str, int], str] = {}  # (input, axis) -> symbol (or a unique key)
        for vi in data_inputs(model.graph):
            for axis, d in enumerate(dims_of(vi) or []):
                if not isinstance(d, int):
                    self.dynamic[(vi.name, axis)] = d if isinstance(d, str) and d else f"{vi.name}[{axis}]"

    def shapes_at(self, k: int = 0) -> dict[str, list[int]]:
        out = {n: list(d) for n, d in self.shapes.items()}
        if k:
            for (name, axis) in self.dynamic:
                v = self.shapes[name][axis]
                out[name][axis] = v + k * (v & -v) if v > 0 else k
        return out

    def feeds(self, k: int = 0) -> dict[str, np.ndarray]:
        from .runtime import random_inputs

        feeds = random_inputs(self.model, self.shapes_at(k), seed=self.seed + k)
        fixed = {name for name in self.values if k and any(n == name for n, _ in self.dynamic)}
        feeds.update({name: v for name, v in self.values.items() if name not in fixed})  # a sample rate stays
        return feeds

    def where(self, k: int = 0) -> str:
        text = ", ".join(f"{n}:{'x'.join(map(str, d))}" if d else f"{n}:scalar" for n, d in self.shapes_at(k).items())
        return f"at {text}" + (" (random)" if not self.values else " (random where resized)" if k else "")

    def note(self) -> str | None:
        if not self.guesses:
            return None
        return (f"sizes guessed for dynamic dims (give --shapes or --inputs for others): {', '.join(self.guesses)}")


def _cast_feeds(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Feeds for a model whose inputs may have another dtype (a declared cast of a graph input)."""
    import numpy as np

    from ._graph import data_inputs
    from .runtime import _NP

    out = dict(feeds)
    for vi in data_inputs(model.graph):
        dt = _NP.get(vi.type.tensor_type.elem_type)
        if vi.name in out and dt is not None and out[vi.name].dtype != np.dtype(dt):
            out[vi.name] = out[vi.name].astype(dt)
    return out


def _run_original(sess, feeds, probe: Probe, k: int):
    """The original's outputs, or None at another size it does not support; at the base inputs its
    failure means the inputs are wrong, which is the user's to fix."""
    from .runtime import run

    try:
        return run(sess, feeds)
    except TrtDeployError as exc:
        if k:
            return None
        hint = f"; {probe.note()}" if probe.guesses else ""
        raise TrtDeployError(f"cannot check: the original model does not run {probe.where(0)} ({exc}){hint}; give "
                             "--shapes NAME:DIMS or --inputs FILE.npz, or skip the check with --no-verify") from None


# ---- 3. comparing ---------------------------------------------------------------------------------------

_TOL = {"float32": (1e-3, 1e-4), "float16": (1e-2, 1e-3)}  # (rtol, atol as a fraction of the output's range)


def _compare(name: str, got: np.ndarray, ref: np.ndarray, where: str, tolerance: str = "float32") -> float:
    """got against ref (cast to got's dtype when the command declared a cast). Returns the max abs diff."""
    import numpy as np

    if got.shape != ref.shape:
        raise TrtDeployError(f"output '{name}' has shape {list(got.shape)}, the original's is {list(ref.shape)} "
                             f"({where})")
    if got.dtype != ref.dtype:
        ref = ref.astype(got.dtype)  # the declared cast
    if not ref.size:
        return 0.0
    if got.dtype.kind not in "fc":
        bad = int((got != ref).sum())
        if bad:
            raise TrtDeployError(f"output '{name}' differs from the original's in {bad} of {ref.size} elements ({where})")
        return 0.0
    r64, g64 = ref.astype(np.float64), got.astype(np.float64)
    finite = np.isfinite(r64)
    if (np.isnan(r64) != np.isnan(g64)).any() or (~finite & (r64 != g64) & ~np.isnan(r64)).any():
        raise TrtDeployError(f"output '{name}' has NaN/inf where the original's has other values ({where})")
    diff = np.where(finite, np.abs(g64 - r64), 0.0)
    scale = float(np.abs(r64[finite]).max(initial=0.0))
    rtol, atol = _TOL[tolerance]
    over = diff - (atol * scale + rtol * np.abs(np.where(finite, r64, 0.0)) + 1e-12)
    worst = float(diff.max())
    if (over > 0).any():
        raise TrtDeployError(f"output '{name}' differs from the original's: max abs diff {worst:.3g} (range "
                             f"{scale:.3g}; tolerance {rtol:g} relative + {atol:g} of the range) {where}")
    return worst


def same_outputs(original: onnx.ModelProto, new: onnx.ModelProto, probe: Probe, tolerance: str = "float32") -> dict:
    """Every output of the original, with the same shape and values in the new model (extra outputs of
    the new model are not compared), at the probe's base inputs and, when the model has dynamic dims,
    at two other sizes (a size the original itself does not run at is skipped and said so)."""
    from .runtime import run

    sess_o, sess_n = _sessions(original, new)
    names = [o.name for o in original.graph.output]
    missing = [n for n in names if n not in {o.name for o in new.graph.output}]
    if missing:
        raise TrtDeployError(f"the new model has no output {', '.join(repr(m) for m in missing)}")
    checks, notes, declared_noted = [], [], set()
    for k in ([0, 1, 2] if probe.dynamic else [0]):
        feeds = probe.feeds(k)
        want = _run_original(sess_o, feeds, probe, k)
        if want is None:
            notes.append(f"not compared {probe.where(k)}: the original model does not run there")
            continue
        got = run(sess_n, _cast_feeds(new, feeds), names)
        worst = max((_compare(n, got[n], want[n], probe.where(k), tolerance) for n in names), default=0.0)
        checks.append({"check": f"same outputs {probe.where(k)}", "max_abs_diff": worst})
        if k == 0 and _constant_outputs(want):
            notes.append(_constant_outputs(want))
        for n in names:
            note = _declared_shape(n, new, got[n], original, want[n], probe.where(k))
            if note and n not in declared_noted:
                declared_noted.add(n)
                notes.append(note)
    return _report(checks, notes, probe)


def _declared_shape(name, new, got, original, want, where) -> str | None:
    """A graph output's declared dims against the shape it has when run: a contradiction the input
    model has too is a note; one the command introduced is an error."""
    from ._graph import dims_of

    def contradicts(model, arr):
        vi = next((o for o in model.graph.output if o.name == name), None)
        dims = dims_of(vi) if vi is not None else None
        if dims is None:
            return None
        if len(dims) != arr.ndim or any(isinstance(d, int) and d != s for d, s in zip(dims, arr.shape)):
            return dims
        return None

    bad = contradicts(new, got)
    if bad is None:
        return None
    shown = "[" + ", ".join("?" if d is None else str(d) for d in bad) + "]"
    if contradicts(original, want) is not None:
        return f"output '{name}' is declared {shown} but has shape {list(got.shape)} {where}, as in the input model"
    raise TrtDeployError(f"output '{name}' is declared {shown} but has shape {list(got.shape)} {where}")


def _constant_outputs(outputs: dict) -> str | None:
    """Float outputs that are one value everywhere on the check inputs (a detector seeing no object
    in random noise): comparing them says little; real inputs would."""
    same = [n for n, v in outputs.items() if v.dtype.kind == "f" and v.size > 1 and (v == v.flat[0]).all()]
    if not same:
        return None
    return (f"output {', '.join(repr(n) for n in same)} is constant on the check inputs, so comparing it says "
            "little; pass real inputs with --inputs FILE.npz")


def _report(checks: list[dict], notes: list[str], probe: Probe | None) -> dict:
    if probe is not None and probe.note():
        notes = [probe.note()] + notes
    return {"ok": True, "checks": checks, "notes": notes}


# ---- fp16 -------------------------------------------------------------------------------------------

FP16_SPREAD_FACTOR = 5.0    # measured: the float16 model's error is 0.1-2.4x the yardstick's (see fp16_outputs)
FP16_FLOOR = 1e-4           # of the output's range: errors below it per element pass


def round_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """The float32 model computing as float16 would store: every float32 initializer that float16 can
    hold rounded to float16 (values it cannot hold stay, as the fp16 pass keeps them float32), and every
    float32 tensor a node writes rounded to float16 and back (a Cast pair). The float16 model's error
    against the float32 model is measured against this one's."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    from ._graph import NameGen, copy_model
    from ._shapes import propagate
    from .surgery.fp16 import _unrepresentable

    m = copy_model(model)
    g = m.graph
    for t in g.initializer:
        if t.data_type != onnx.TensorProto.FLOAT or t.data_location == onnx.TensorProto.EXTERNAL:
            continue
        arr = numpy_helper.to_array(t)
        if not _unrepresentable(arr):
            t.CopyFrom(numpy_helper.from_array(arr.astype(np.float16).astype(np.float32), t.name))
    types = propagate(m)
    fresh = NameGen(m)
    nodes = []
    for n in g.node:
        nodes.append(n)
        if n.op_type == "Constant" and any(_unrepresentable(numpy_helper.to_array(a.t)) for a in n.attribute
                                            if a.HasField("t")):
            continue
        for k, o in enumerate(n.output):
            if not o or types.get(o, (0, None))[0] != onnx.TensorProto.FLOAT:
                continue
            raw, half = fresh(f"{o}_f32"), fresh(f"{o}_f16")
            n.output[k] = raw
            nodes.append(helper.make_node("Cast", [raw], [half], name=fresh(f"{o}_round"), to=onnx.TensorProto.FLOAT16))
            nodes.append(helper.make_node("Cast", [half], [o], name=fresh(f"{o}_back"), to=onnx.TensorProto.FLOAT))
    g.ClearField("node")
    g.node.extend(nodes)
    g.ClearField("value_info")
    return m


def fp16_outputs(original: onnx.ModelProto, new: onnx.ModelProto, probe: Probe) -> dict:
    """The float16 model against the float32 one, with what float16 itself explains as the yardstick:
    the float32 model run with its weights, inputs and every activation rounded to float16
    (round_to_fp16), on the same inputs. For each float output, the mean abs error of the float16
    model may be at most FP16_SPREAD_FACTOR times the yardstick's, over the whole tensor and over every
    slice along every axis (a dead channel or class shows in its own slice, even when box coordinates
    in pixels dominate the tensor), with a floor of FP16_FLOOR of the output's range per element.
    Non-float outputs (argmax, indices) may have as many mismatches as the yardstick's, times the same
    factor, or 1%. Measured: on PP-OCRv4 det (a text image)/rec/cls, ddddocr and the test fixtures the
    ratio is 0.1-2.4; a collapsed output (PP-OCRv4 det all zeros, a BatchNorm overflowing) is 100-600."""
    import numpy as np

    from .runtime import run, session

    feeds = probe.feeds(0)
    rounded = {k: v.astype(np.float16).astype(v.dtype) if v.dtype == np.float32 else v for k, v in feeds.items()}
    sess_o, sess_n = _sessions(original, new)
    want = _run_original(sess_o, feeds, probe, 0)
    got = run(sess_n, _cast_feeds(new, feeds), list(want))
    spread = run(session(round_to_fp16(original)), rounded)
    checks, notes = [], [n for n in [_constant_outputs(want)] if n]
    for name, ref in want.items():
        out, yard = got[name], spread[name]
        where = probe.where(0)
        if out.shape != ref.shape:
            raise TrtDeployError(f"float16 output '{name}' has shape {list(out.shape)}, the float32 model's is "
                                 f"{list(ref.shape)} ({where})")
        if ref.dtype.kind not in "fc":
            bad, base = int((out != ref).sum()), int((yard != ref).sum())
            allowed = max(FP16_SPREAD_FACTOR * base, 0.01 * ref.size)
            if bad > allowed:
                raise TrtDeployError(f"float16 output '{name}' differs from the float32 model in {bad} of {ref.size} "
                                     f"elements (rounding weights and activations to float16 changes {base}) {where}")
            checks.append({"check": f"float16 '{name}': {bad} of {ref.size} differ (rounding alone: {base})",
                           "max_abs_diff": float(bad)})
            continue
        r64 = ref.astype(np.float64)
        finite = np.isfinite(r64)
        o64 = out.astype(np.float64)
        if (~np.isfinite(o64) & finite).any():
            raise TrtDeployError(f"float16 output '{name}' has inf/NaN where the float32 model has finite values "
                                 f"(an overflow: keep that part in float32 with --keep-node/--keep-op) {where}")
        ratio, err, yard_err, slice_ = _error_ratio(o64, yard.astype(np.float64), r64)
        scale = float(np.abs(r64[finite]).max(initial=0.0)) or 1.0
        if yard_err > 0.1 * float(np.abs(r64[finite]).mean()) and yard_err > FP16_FLOOR * scale:
            notes.append(f"on the check inputs, float16 rounding alone moves output '{name}' by {yard_err:.3g} on "
                         "average, over a tenth of its mean magnitude: the check can tell little there; pass real "
                         "inputs with --inputs FILE.npz")
        if not ratio <= FP16_SPREAD_FACTOR:
            raise TrtDeployError(f"float16 output '{name}' is off by {ratio:.3g}x what rounding weights and activations "
                                 f"to float16 explains (mean abs error {err:.3g} vs {yard_err:.3g}{slice_}; allowed "
                                 f"{FP16_SPREAD_FACTOR:g}x); keep the sensitive nodes in float32 with "
                                 f"--keep-node/--keep-op {where}")
        range_err = float(np.abs(o64 - r64)[finite].max(initial=0.0)) / scale
        checks.append({"check": f"float16 '{name}': {ratio:.2f}x the error of float16 rounding alone (allowed "
                                f"{FP16_SPREAD_FACTOR:g}x; max abs error {range_err:.3g} of the range)",
                       "max_abs_diff": ratio, "output": name, "range_error": range_err})
    return _report(checks, notes, probe)


def _error_ratio(got, yard, ref) -> tuple[float, float, float, str]:
    """max over the whole tensor and over each slice (one index along one axis, of 16+ elements) of
    mean|got - ref| / (mean|yard - ref| + FP16_FLOOR * max|ref|), over ref's finite elements; with the
    two means and where ('' or ' in axis A index I') of the worst."""
    import numpy as np

    finite = np.isfinite(ref)
    d = np.where(finite, np.abs(got - ref), 0.0)
    y = np.where(finite, np.abs(yard - ref), 0.0)
    floor = FP16_FLOOR * float(np.abs(np.where(finite, ref, 0.0)).max(initial=0.0)) + 1e-30
    worst = (d.mean() / (y.mean() + floor), float(d.mean()), float(y.mean()), "")
    for axis in range(d.ndim):
        if d.size // max(d.shape[axis], 1) < 16 or d.shape[axis] < 2:
            continue
        rest = tuple(a for a in range(d.ndim) if a != axis)
        dm, ym = d.mean(rest), y.mean(rest)
        k = int(np.argmax(dm / (ym + floor)))
        if dm[k] / (ym[k] + floor) > worst[0]:
            worst = (dm[k] / (ym[k] + floor), float(dm[k]), float(ym[k]), f" in axis {axis} index {k}")
    return float(worst[0]), worst[1], worst[2], worst[3]


def verify_fp16(fp32: onnx.ModelProto, fp16: onnx.ModelProto, shapes=None, seed: int = 0, feeds=None) -> dict:
    """fp16_outputs on two models (raises when it fails); returns {output: max abs error / the output's
    range} for float outputs."""
    report = fp16_outputs(fp32, fp16, Probe(fp32, shapes, feeds, seed))
    return {c["output"]: c["range_error"] for c in report["checks"] if "output" in c}


# ---- dynamic ----------------------------------------------------------------------------------------

def _symbols(original: onnx.ModelProto, dynamic: onnx.ModelProto) -> dict[str, tuple[str, int, int]]:
    """symbol -> (input, axis, original size) for dims static in the original, symbolic now."""
    from ._graph import data_inputs, dims_of

    orig = {vi.name: dims_of(vi) for vi in data_inputs(original.graph)}
    out = {}
    for vi in data_inputs(dynamic.graph):
        for axis, (d, o) in enumerate(zip(dims_of(vi) or [], orig.get(vi.name) or [])):
            if isinstance(d, str) and isinstance(o, int):
                out.setdefault(d, (vi.name, axis, o))
    return out


def verify_dynamic(original: onnx.ModelProto, dynamic: onnx.ModelProto, batch_sizes: list[int] | None = None,
                   atol: float = 1e-4, rtol: float = 1e-3, seed: int = 0, shapes: dict | None = None,
                   feeds: dict | None = None) -> dict:
    """dynamic_outputs on two models (see there). shapes/feeds: sizes or values for dims the original
    already has dynamic."""
    return dynamic_outputs(original, dynamic, Probe(original, shapes, feeds, seed), batch_sizes, atol, rtol)


def dynamic_outputs(original: onnx.ModelProto, dynamic: onnx.ModelProto, probe: Probe,
                    batch_sizes: list[int] | None = None, atol: float = 1e-4, rtol: float = 1e-3) -> dict:
    """Run both models in onnxruntime. The batch symbol ('batch', else the one on an axis 0) is checked
    at several sizes: each sample of the dynamic run must match the original model run on it alone. Other new
    symbols (height/width, sequence) have no original to compare with at another size: there the check
    shows only that the model runs and that a batched run equals runs of one sample each, and the
    report says exactly that. Raises TrtDeployError on the first mismatch."""
    import numpy as np

    from ._graph import data_inputs, dims_of
    from .runtime import random_inputs, run

    syms = _symbols(original, dynamic)
    if not syms:
        raise TrtDeployError("nothing to check: no input dim of the second model is dynamic where the "
                             "first model's is static")
    # the batch: the symbol named so (make_dynamic's default), else the one on an axis 0
    batch = "batch" if "batch" in syms else next((s for s, (_, axis, _) in syms.items() if axis == 0), None)
    sess_o, sess_d = _sessions(original, dynamic)
    base = probe.shapes
    sym_axes: dict[str, dict[int, str]] = {}  # input -> {axis: symbol}
    for vi in data_inputs(dynamic.graph):
        for axis, d in enumerate(dims_of(vi) or []):
            if isinstance(d, str) and d in syms:
                sym_axes.setdefault(vi.name, {})[axis] = d
    checks: list[dict] = []

    def shapes_at(sizes: dict[str, int]) -> dict[str, list[int]]:
        out = {}
        for name, dims in base.items():
            dims = list(dims)
            for axis, s in sym_axes.get(name, {}).items():
                if s in sizes:
                    dims[axis] = sizes[s]
            out[name] = dims
        return out

    def batch_axis(name):
        return next((a for a, s in sym_axes.get(name, {}).items() if s == batch), None)

    def take(feeds, start, stop):
        return {name: arr if batch_axis(name) is None else np.take(arr, range(start, stop), axis=batch_axis(name))
                for name, arr in feeds.items()}

    def feeds_at(sizes, seed):
        feeds = random_inputs(dynamic, shapes_at(sizes), seed=seed)
        for name, arr in probe.values.items():  # the user's values are the first samples
            axis = batch_axis(name)
            if axis is None:
                feeds[name] = arr
            else:
                idx = [slice(None)] * arr.ndim
                idx[axis] = slice(0, arr.shape[axis])
                feeds[name][tuple(idx)] = arr
        return feeds

    def compare(label, got: dict, want: dict, b0: int):
        worst = 0.0
        for name, ref in want.items():
            out = got[name]
            axis = _batch_axis(out.shape, ref.shape) if batch else None
            piece = out if axis is None else np.take(out, range(b0, b0 + ref.shape[axis]), axis=axis)
            if piece.shape != ref.shape:
                raise TrtDeployError(f"{label}: output '{name}' has shape {list(out.shape)}, which does not "
                                     f"split into per-sample results of shape {list(ref.shape)}")
            if ref.size:
                diff = np.abs(piece.astype(np.float64) - ref.astype(np.float64))
                worst = max(worst, float(np.nanmax(diff)))
                if not np.allclose(piece, ref, atol=atol, rtol=rtol, equal_nan=True):
                    raise TrtDeployError(f"{label}: output '{name}' differs from the original "
                                         f"(max abs diff {float(np.nanmax(diff)):.3g}); the dynamic model is wrong")
        return worst

    if batch:
        n = syms[batch][2]
        sizes = batch_sizes or [n, 2 * n, 3 * n]
        for b in sizes:
            if b % n:
                raise TrtDeployError(f"batch size {b} is not a multiple of the original batch {n}")
            feeds = feeds_at({batch: b}, probe.seed + b)
            log.debug("verify: %s=%d against the original, %d sample(s) at a time", batch, b, n)
            got = run(sess_d, feeds)
            worst = 0.0
            for i in range(0, b, n):
                try:
                    want = run(sess_o, take(feeds, i, i + n))
                except TrtDeployError as exc:
                    hint = f"; {probe.note()}" if probe.guesses else ""
                    raise TrtDeployError(f"cannot check: the original model does not run on the check inputs "
                                         f"({exc}){hint}; give --shapes or --inputs, or --no-verify") from None
                worst = max(worst, compare(f"{batch}={b}, samples {i}..{i + n - 1}", got, want, i))
            checks.append({"check": f"{batch}={b} vs original", "max_abs_diff": worst, "compared": True})
    others = {s: v + (v & -v) for s, (_, _, v) in syms.items() if s != batch}
    if others:
        b = 2
        sizes = dict(others)
        if batch:
            sizes[batch] = b
        label = ", ".join(f"{s}={v}" for s, v in sizes.items())
        feeds = feeds_at(sizes, probe.seed)
        got = run(sess_d, feeds)
        worst = 0.0
        if batch:
            for i in range(b):
                want = run(sess_d, take(feeds, i, i + 1))
                worst = max(worst, compare(f"{label}, sample {i}", got, want, i))
            what = "runs, and the batched run equals one sample at a time"
        else:
            what = "runs"
        checks.append({"check": f"{label}: {what} (no original at that size to compare with)",
                       "max_abs_diff": worst if batch else None, "compared": False})
    report = _report(checks, [], probe)
    report["symbols"] = {s: {"input": i, "axis": a, "original": v} for s, (i, a, v) in syms.items()}
    return report


def _batch_axis(got_shape, ref_shape) -> int | None:
    """The axis along which a batched output stacks its samples' outputs."""
    if len(got_shape) != len(ref_shape):
        return None
    diff = [a for a, (g, r) in enumerate(zip(got_shape, ref_shape)) if g != r]
    if len(diff) == 1:
        return diff[0]
    if not diff:
        return 0 if got_shape else None
    return None


# ---- rename -----------------------------------------------------------------------------------------

def same_names(before: dict, after: dict, mapping: dict[str, str], locations: dict[str, str] | None = None) -> dict:
    """A rename, checked structurally from what the wire reader (or tensor_names) lists of the input
    and the written file: the names, in first-seen order, are the input's with the mapping applied
    (so every renamed name is gone everywhere and nothing else was renamed), the graph inputs/outputs
    likewise, the external data files are the ones meant; and, given ``output_size``, the file has the
    size the rename computed (nothing else changed length)."""
    def mapped(names):
        return list(dict.fromkeys(mapping.get(n, n) for n in names))

    for key, what in (("names", "tensor names"), ("graph_inputs", "graph inputs"), ("graph_outputs", "graph outputs")):
        if key not in before or key not in after:
            continue
        want, got = mapped(before[key]), list(dict.fromkeys(after[key]))
        if got != want:
            i = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
            g = repr(got[i]) if i < len(got) else "nothing"
            w = repr(want[i]) if i < len(want) else "nothing"
            raise TrtDeployError(f"the renamed model is wrong: its {what} differ from the input's renamed, first at "
                                 f"#{i}: {g} where {w} was expected")
    if "external_locations" in before and "external_locations" in after:
        want_locs = sorted({(locations or {}).get(x, x) for x in before["external_locations"]})
        if sorted(after["external_locations"]) != want_locs:
            raise TrtDeployError(f"the renamed model refers to data files {sorted(after['external_locations'])}, "
                                 f"expected {want_locs}")
    if "output_size" in before and "file_size" in after and before["output_size"] != after["file_size"]:
        raise TrtDeployError(f"the renamed model has {after['file_size']} bytes, the rename computed "
                             f"{before['output_size']}")
    renamed = sum(1 for n in before.get("names", []) if mapping.get(n, n) != n)
    return {"ok": True, "checks": [{"check": f"structure: {renamed} name(s) renamed everywhere, "
                                             f"{len(before.get('names', [])) - renamed} unchanged"}],
            "notes": []}
