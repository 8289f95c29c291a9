"""The one check every model-writing command runs on what it wrote, before the atomic rename.

1. ``checker``: onnx.checker on the written file (the full check, with strict shape inference, when
   every op is an ONNX op). The very failure the input model has too (same error, same first line) is
   reported, not held against the output; any other is an error.
2. A promise, compared in onnxruntime on the same inputs (``Probe``: --inputs values, --shapes, else
   sizes guessed for dynamic dims and named in the report). Each command says what it keeps; the
   comparing is done here, once:
   - ``same_outputs``: every output of the original, same shape and values (after a declared cast),
     at the original sizes and, for dynamic dims, at two other sizes (remove-node, insert-cast,
     simplify, expose);
   - ``fp16_outputs``: within what rounding to float16 explains: the float32 model run with its
     weights, inputs and activations rounded to float16 where the float16 model holds them in float16
     is the yardstick (fp16);
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

from ..errors import TrtDeployError

if TYPE_CHECKING:
    import numpy as np
    import onnx

log = logging.getLogger("trtdeploy.verify")

# onnx, numpy and onnxruntime are imported by the checks that use them: the rename fast path's
# structural check (same_names) stays as light as the rename itself.
Check = Callable[["onnx.ModelProto", "onnx.ModelProto", "Probe"], dict]

_ONNX_DOMAINS = {"", "ai.onnx", "ai.onnx.ml"}


class CannotRun(TrtDeployError):
    """onnxruntime cannot load the input model (custom/plugin ops), or its Python API cannot feed or return
    an input/output of either model (bfloat16): there is nothing to compare. write_checked reports that
    only onnx.checker ran."""


def _sessions(original, new, probe: Probe | None = None):
    """onnxruntime sessions of both models; CannotRun when there is nothing to compare: the input model
    does not load, or either model has an input/output the Python API cannot exchange (bfloat16). The new
    model is opened from its written file when the probe has it (``probe.written``): what runs is what
    will be committed, external data included."""
    from ..ort import exchange_problem, session

    for model, which in ((original, "input"), (new, "new")):
        problem = exchange_problem(model)
        if problem:
            raise CannotRun(f"the {which} model's {problem}: nothing to compare")
    try:
        sess_o = session(original)
    except TrtDeployError as exc:
        raise CannotRun(f"onnxruntime cannot run the input model either ({exc})") from None
    written = getattr(probe, "written", None)
    return sess_o, session(written[1] if written is not None and written[0] is new else new)


# ---- 1. onnx.checker ----------------------------------------------------------------------------------

def full_check_allowed(model: onnx.ModelProto) -> bool:
    """Strict shape inference can judge the model: every node is an ONNX op (no plugin domains)."""
    from .._graph import model_graphs

    return all(n.domain in _ONNX_DOMAINS for g in model_graphs(model) for n in g.node) and not model.functions


def _checker_error(path, full: bool) -> tuple[str, str] | None:
    """(error class, first line of the message) of onnx.checker on the file, or None when it passes."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=full)
    except Exception as exc:  # ValidationError, InferenceError, ...
        text = str(exc).strip().splitlines()
        return type(exc).__name__, text[0] if text else type(exc).__name__
    return None


def checker(path, model: onnx.ModelProto, original_path=None) -> str:
    """onnx.checker on the file at ``path`` (``model`` is its content, to choose the full check).
    Raises TrtDeployError when it fails, unless the input (``original_path``) fails with the very same
    error (class and first line, names included): only that failure is the input's, and the plain
    check (without shape inference) must then still pass on the output wherever it passes on the input.
    Returns a note."""
    full = full_check_allowed(model)
    err = _checker_error(path, full)
    what = "onnx.checker (full)" if full else "onnx.checker (plugin ops: without shape inference)"
    if err is None:
        return f"{what}: ok"
    before = _checker_error(original_path, full) if original_path is not None else None
    if before != err:
        raise TrtDeployError(f"the written model fails {what}: {err[1]}")
    if full:
        plain = _checker_error(path, False)
        if plain is not None and plain != _checker_error(original_path, False):
            raise TrtDeployError(f"the written model fails onnx.checker (without shape inference): {plain[1]}")
    return f"{what}: the input model fails it already, with the same error ({err[1]}); not held against the output"


# ---- 2. what the check runs on ------------------------------------------------------------------------

class Probe:
    """The inputs of the check: user values (--inputs), shapes (--shapes), else the model's static dims,
    with each dynamic dim left over guessed (1 on axis 0, ort.GUESSED_SIZE elsewhere) and named
    in ``guesses``.

    A size point ``at`` is k (k=0: the base sizes; k=1, 2: every dynamic dim at another size, v + k * the
    largest power of two dividing v, so that strides still divide it) or {symbol: size} (those dims at
    those sizes, the others at their base; ``sizes(k, symbols)`` makes one). ``batch``: the symbols of the
    batch (a dim named 'batch', or a dynamic axis 0). ``feeds(at)``: random inputs of those shapes with the
    given values wherever they fit: as they are where the shape is theirs, as the first samples where only
    the batch is larger; where they do not fit (a height the check changes) the values are random and
    ``unfit_note()`` says so."""

    def __init__(self, model: onnx.ModelProto, shapes: dict[str, list[int]] | None = None,
                 values: dict[str, np.ndarray] | None = None, seed: int = 0):
        from .._graph import data_inputs, dims_of
        from ..ort import input_shapes

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
        self.batch = {s for (_, axis), s in self.dynamic.items() if axis == 0 or s == "batch"}
        self.unfit: dict[str, list[str]] = {}  # input -> the shapes its given values did not fit
        self.written: tuple | None = None  # (the new model, its staged file): write_checked sets it

    def sizes(self, k: int = 1, symbols=None) -> dict[str, int]:
        """{symbol: its k-th other size} for every dynamic dim, or for those of ``symbols``."""
        out: dict[str, int] = {}
        for (name, axis), sym in self.dynamic.items():
            if symbols is None or sym in symbols:
                v = self.shapes[name][axis]
                out.setdefault(sym, v + k * (v & -v) if v > 0 else k)
        return out

    def shapes_at(self, at: int | dict[str, int] = 0) -> dict[str, list[int]]:
        sizes = at if isinstance(at, dict) else self.sizes(at) if at else {}
        out = {n: list(d) for n, d in self.shapes.items()}
        for (name, axis), sym in self.dynamic.items():
            if sym in sizes:
                out[name][axis] = sizes[sym]
        return out

    def feeds(self, at: int | dict[str, int] = 0) -> dict[str, np.ndarray]:
        from ..ort import random_inputs

        shapes = self.shapes_at(at)
        feeds = random_inputs(self.model, shapes, seed=self.seed + (at if isinstance(at, int) else 1 + sum(at.values())))
        for name, value in self.values.items():
            want = shapes[name]
            if list(value.shape) == want:
                feeds[name] = value
                continue
            grown = [a for a, (v, w) in enumerate(zip(value.shape, want)) if v != w]
            if len(want) == value.ndim and all(self.dynamic.get((name, a)) in self.batch and w > v
                                               for a, (v, w) in enumerate(zip(value.shape, want)) if a in grown):
                feeds[name][tuple(slice(0, v) for v in value.shape)] = value  # the given samples first
            elif "x".join(map(str, want)) not in self.unfit.setdefault(name, []):
                self.unfit[name].append("x".join(map(str, want)))
        return feeds

    def where(self, at: int | dict[str, int] = 0) -> str:
        text = ", ".join(f"{n}:{'x'.join(map(str, d))}" if d else f"{n}:scalar" for n, d in self.shapes_at(at).items())
        return f"at {text}" + (" (random)" if not self.values else " (random where resized)" if at else "")

    def note(self) -> str | None:
        if not self.guesses:
            return None
        return (f"sizes guessed for dynamic dims (give --shapes or --inputs for others): {', '.join(self.guesses)}")

    def unfit_note(self) -> str | None:
        if not self.unfit:
            return None
        what = "; ".join(f"'{n}' at {', '.join(shapes)}" for n, shapes in self.unfit.items())
        return f"the --inputs values do not fit the other sizes checked, where the inputs are random: {what}"


def _cast_feeds(model: onnx.ModelProto, feeds: dict[str, np.ndarray], casts=None) -> dict[str, np.ndarray]:
    """Feeds for ``model``, whose inputs named in ``casts`` (a declared cast of a graph input: None
    for all of them) take another dtype; another input whose dtype changed is an error."""
    import numpy as np

    from .._graph import data_inputs, dtype_name
    from ..ort import _NP

    out = dict(feeds)
    for vi in data_inputs(model.graph):
        dt = _NP.get(vi.type.tensor_type.elem_type)
        if vi.name in out and dt is not None and out[vi.name].dtype != np.dtype(dt):
            if casts is not None and vi.name not in casts:
                raise TrtDeployError(f"input '{vi.name}' is {dtype_name(vi.type.tensor_type.elem_type)} in the new "
                                     f"model, {out[vi.name].dtype} in the original, and the command changes no dtype")
            out[vi.name] = out[vi.name].astype(dt)
    return out


def _run_original(sess, feeds, probe: Probe, k: int):
    """The original's outputs, or None at another size it does not support; at the base inputs its
    failure means the inputs are wrong, which is the user's to fix."""
    from ..ort import run

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


def _eps_floor(dtype, scale: float) -> float:
    """The absolute floor of a comparison: a few units of the dtype's rounding at the output's scale,
    and at 1 for outputs near 0 (the range-relative tolerance alone failed every near-zero output: PP-OCRv4
    det's sigmoid on noise gives 1.8e-7 where a reordered sum gives 0, 1.5 units of float32 rounding)."""
    import numpy as np

    return 4 * float(np.finfo(dtype).eps) * max(1.0, scale)


def _compare(name: str, got: np.ndarray, ref: np.ndarray, where: str, tolerance: str | tuple = "float32",
             cast: bool = False) -> float:
    """got against ref, of the same dtype unless the command declared a cast of this output (``cast``:
    ref is cast to got's dtype), within ``tolerance``: a name in _TOL or (rtol, atol as a fraction of the
    output's range), plus _eps_floor. Returns the max abs diff."""
    import numpy as np

    if got.shape != ref.shape:
        raise TrtDeployError(f"output '{name}' has shape {list(got.shape)}, the original's is {list(ref.shape)} "
                             f"({where})")
    if got.dtype != ref.dtype:
        if not cast:
            raise TrtDeployError(f"output '{name}' is {got.dtype}, the original's is {ref.dtype}, and the command "
                                 f"changes no dtype ({where})")
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
    rtol, atol = _TOL[tolerance] if isinstance(tolerance, str) else tolerance
    floor = _eps_floor(got.dtype, scale)
    over = diff - (atol * scale + rtol * np.abs(np.where(finite, r64, 0.0)) + floor)
    worst = float(diff.max())
    if (over > 0).any():
        raise TrtDeployError(f"output '{name}' differs from the original's: max abs diff {worst:.3g} (range "
                             f"{scale:.3g}; tolerance {rtol:g} relative + {atol:g} of the range + {floor:.3g}) {where}")
    return worst


def same_outputs(original: onnx.ModelProto, new: onnx.ModelProto, probe: Probe, tolerance: str = "float32",
                 casts: dict[str, int] | None = None) -> dict:
    """Every output of the original, with the same shape, dtype and values in the new model (extra outputs
    of the new model are not compared), at the probe's base inputs and, when the model has dynamic dims,
    at other sizes (size_points: the batch alone first, then the other dims; a size the original itself
    does not run at is skipped and said so). ``casts``:
    the graph inputs/outputs whose dtype the command declares changed ({name: new elem type}, as
    insert-cast reports them); any other dtype change is an error."""
    from ..ort import run

    sess_o, sess_n = _sessions(original, new, probe)
    names = [o.name for o in original.graph.output]
    missing = [n for n in names if n not in {o.name for o in new.graph.output}]
    if missing:
        raise TrtDeployError(f"the new model has no output {', '.join(repr(m) for m in missing)}")
    checks, notes, declared_noted = [], [], set()
    for k in size_points(probe):
        feeds = probe.feeds(k)
        want = _run_original(sess_o, feeds, probe, k)
        if want is None:
            notes.append(f"not compared {probe.where(k)}: the original model does not run there")
            continue
        got = run(sess_n, _cast_feeds(new, feeds, casts or {}), names)
        worst = max((_compare(n, got[n], want[n], probe.where(k), tolerance, cast=n in (casts or {}))
                     for n in names), default=0.0)
        checks.append({"check": f"same outputs {probe.where(k)}", "max_abs_diff": worst})
        if k == 0 and _constant_outputs(want):
            notes.append(_constant_outputs(want))
        for n in names:
            note = _declared_shape(n, new, got[n], original, want[n], probe.where(k))
            if note and n not in declared_noted:
                declared_noted.add(n)
                notes.append(note)
    return _report(checks, notes, probe)


def size_points(probe: Probe) -> list:
    """Where same_outputs compares: the base sizes; then, when the model has a batch and other dynamic
    dims, the batch alone at another size, the other dims alone, and everything at a third size (a model
    whose height cannot change, PP-OCRv4 rec, is still compared at another batch); else every dynamic
    dim at two other sizes."""
    if not probe.dynamic:
        return [0]
    batch = probe.batch
    others = set(probe.dynamic.values()) - batch
    if batch and others:
        return [0, probe.sizes(1, batch), probe.sizes(1, others), 2]
    return [0, 1, 2]


def _declared_shape(name, new, got, original, want, where) -> str | None:
    """A graph output's declared dims against the shape it has when run: a contradiction the input
    model has too is a note; one the command introduced is an error."""
    from .._graph import dims_of

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
    """Float outputs that are one value everywhere on the check inputs, or nearly (their spread within
    4 times the comparison's floor: PP-OCRv4 det's text map on random noise is 0 to 6e-8), as a
    detector seeing no object in noise gives: comparing them says little; real inputs would."""
    import numpy as np

    found = []
    for n, v in outputs.items():
        if v.dtype.kind != "f" or v.size < 2:
            continue
        f = v[np.isfinite(v)].astype(np.float64)
        spread = float(f.max() - f.min()) if f.size else 0.0
        if spread == 0:
            found.append(f"output '{n}' is constant")
        elif spread <= 4 * _eps_floor(v.dtype, float(np.abs(f).max())):
            found.append(f"output '{n}' is constant up to float rounding (spread {spread:.3g})")
    if not found:
        return None
    return f"{', '.join(found)} on the check inputs, so comparing it says little; pass real inputs with --inputs FILE.npz"


def _report(checks: list[dict], notes: list[str], probe: Probe | None) -> dict:
    if probe is not None:
        notes = [n for n in [probe.note()] if n] + notes + [n for n in [probe.unfit_note()] if n]
    return {"ok": True, "checks": checks, "notes": notes}


# the promises, one module each (imported here: `from trtdeploy.verify import fp16_outputs` and friends)
from .dynamic import dynamic_outputs, verify_dynamic  # noqa: E402,F401
from .fp16 import fp16_outputs, round_to_fp16, verify_fp16  # noqa: E402,F401
from .names import same_names  # noqa: E402,F401
