"""dynamic_outputs: a made-dynamic model against the original, sample by sample."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import TrtDeployError
from . import Probe, _compare, _declared_shape, _report, _sessions

if TYPE_CHECKING:
    import numpy as np  # noqa: F401
    import onnx  # noqa: F401
log = logging.getLogger("trtdeploy.verify")


def _symbols(original: onnx.ModelProto, dynamic: onnx.ModelProto) -> dict[str, tuple[str, int, int]]:
    """symbol -> (input, axis, original size) for dims static in the original, symbolic now."""
    from .._graph import data_inputs, dims_of

    orig = {vi.name: dims_of(vi) for vi in data_inputs(original.graph)}
    out = {}
    for vi in data_inputs(dynamic.graph):
        for axis, (d, o) in enumerate(zip(dims_of(vi) or [], orig.get(vi.name) or [])):
            if isinstance(d, str) and isinstance(o, int):
                out.setdefault(d, (vi.name, axis, o))
    return out


def verify_dynamic(original: onnx.ModelProto, dynamic: onnx.ModelProto, batch_sizes: list[int] | None = None,
                   atol: float | None = None, rtol: float | None = None, seed: int = 0, shapes: dict | None = None,
                   feeds: dict | None = None) -> dict:
    """dynamic_outputs on two models (see there). shapes/feeds: sizes or values for dims the original
    already has dynamic. atol (a fraction of each output's range)/rtol: instead of verify's float32
    tolerance."""
    from . import _TOL

    default_rtol, default_atol = _TOL["float32"]
    tolerance = (default_rtol if rtol is None else rtol, default_atol if atol is None else atol)
    shapes, sizes = new_dim_sizes(original, dynamic, shapes)
    return dynamic_outputs(original, dynamic, Probe(original, shapes, feeds, seed), batch_sizes, tolerance, sizes)


def new_dim_sizes(original: onnx.ModelProto, dynamic: onnx.ModelProto, shapes: dict | None):
    """Split --shapes: (the shapes that fit the original, {symbol: size} for dims static in the
    original and dynamic in the new model where the given size differs from the original's)."""
    if not shapes:
        return shapes, {}
    fit, sizes = {}, {}
    syms = _symbols(original, dynamic)
    where = {(i, a): s for s, (i, a, _) in syms.items()}
    for name, dims in shapes.items():
        for (i, a), sym in where.items():
            if i == name and a < len(dims) and dims[a] != syms[sym][2]:
                sizes[sym] = int(dims[a])
        if not any(i == name and a < len(dims) and dims[a] != syms[s][2] for (i, a), s in where.items()):
            fit[name] = dims
        else:
            fit[name] = [syms[where[(name, a)]][2] if (name, a) in where else d for a, d in enumerate(dims)]
    return fit, sizes


def _run_original_at(sess, feeds, probe):
    from ..ort import run

    try:
        return run(sess, feeds)
    except TrtDeployError as exc:
        raise TrtDeployError(f"cannot check: the original model does not run {probe.where(0)} ({exc}); give "
                             "--shapes or --inputs, or --no-verify") from None


def dynamic_outputs(original: onnx.ModelProto, dynamic: onnx.ModelProto, probe: Probe,
                    batch_sizes: list[int] | None = None, tolerance: str | tuple = "float32",
                    sizes: dict[str, int] | None = None) -> dict:
    """Run both models in onnxruntime. The batch symbol ('batch', else the one on an axis 0) is checked
    at several sizes: each sample of the dynamic run must match the original model run on it alone
    (verify._compare; an output that does not follow the batch matches as a whole). Other new symbols
    (height/width, sequence) have no original to compare with at another size: there the check shows
    only that the model runs and that a batched run equals runs of one sample each, and the report says
    exactly that. --inputs values are the first samples at a larger batch and are not used where they do
    not fit (another height), which the report says. Raises TrtDeployError on the first mismatch."""
    import numpy as np

    from ..ort import run

    from .._graph import data_inputs

    syms = _symbols(original, dynamic)
    ours, theirs = ([vi.name for vi in data_inputs(m.graph)] for m in (original, dynamic))
    if not set(ours) & set(theirs):
        raise TrtDeployError(f"nothing to check: the two models share no input names (the first has "
                             f"{', '.join(ours) or 'none'}, the second {', '.join(theirs) or 'none'})")
    if not syms:
        raise TrtDeployError("nothing to check: no input dim of the second model is dynamic where the "
                             "first model's is static")
    # the batch: the symbol named so (make_dynamic's default), else the one on an axis 0
    batch = "batch" if "batch" in syms else next((s for s, (_, axis, _) in syms.items() if axis == 0), None)
    sess_o, sess_d = _sessions(original, dynamic, probe)
    at = Probe(dynamic, probe.shapes, probe.values, probe.seed)  # the dynamic model's dims, at the probe's sizes
    at.batch = {batch} if batch else set()  # given values are the first samples along it, and along nothing else
    batch_axis = {name: axis for (name, axis), s in at.dynamic.items() if s == batch}
    checks: list[dict] = []
    notes: list[str] = []

    def run_dynamic(feeds, label):
        try:
            return run(sess_d, feeds)
        except TrtDeployError as exc:
            raise TrtDeployError(f"the dynamic model does not run at {label} ({exc})") from None

    def take(feeds, start, stop):
        return {name: arr if name not in batch_axis else np.take(arr, range(start, stop), axis=batch_axis[name])
                for name, arr in feeds.items()}

    layouts: dict[str, str] = {}  # output -> where the batch sits in its folded axis, decided once, then held

    def compare(label, got: dict, want: dict, chunk: int, chunks: int, n: int) -> float:
        """Sample block ``chunk`` of ``chunks`` (``n`` samples each) in the batched outputs against ``want``."""
        worst = 0.0
        where = f"at {label}: the dynamic model is wrong"
        for name, ref in want.items():
            out = got[name]
            if out.shape == ref.shape:  # an output that does not follow the batch (or the batch is the original's)
                worst = max(worst, _compare(name, out, ref, where, tolerance))
                continue
            axis = _batch_axis(out.shape, ref.shape) if batch else None
            if axis is None or out.shape[axis] != chunks * ref.shape[axis]:
                raise TrtDeployError(f"{label}: output '{name}' has shape {list(out.shape)}, which does not "
                                     f"split into per-sample results of shape {list(ref.shape)}")
            size = ref.shape[axis]  # the batch may be folded into another axis: a block is `size` long there
            tried = [layouts[name]] if name in layouts else [lay for lay in _LAYOUTS if lay == "outer" or size % n == 0]
            first = None
            for layout in tried:
                piece = np.take(out, _fold_rows(layout, size, n, chunk, chunks), axis=axis)
                try:
                    worst = max(worst, _compare(name, piece, ref, where, tolerance))
                except TrtDeployError as exc:
                    first = first or exc
                    continue
                layouts[name] = layout
                break
            else:
                if len(tried) > 1:
                    raise TrtDeployError(f"{first}; the batch was taken both as the outer and as the inner index "
                                         f"of axis {axis} (the difference shown is the outer one's)") from None
                raise first
        return worst

    if batch:
        n = syms[batch][2]
        for b in batch_sizes or [n, 2 * n, 3 * n]:
            if b < 1:
                raise TrtDeployError(f"batch size {b}: give sizes of 1 or more")
            asked, asked_b = at.feeds({batch: b}), b
            padded = -(-b // n) * n  # not a multiple of the original's static batch: copies of the last sample
            feeds = asked if padded == b else {name: arr if name not in batch_axis else np.concatenate(
                [arr, np.repeat(np.take(arr, [b - 1], axis=batch_axis[name]), padded - b, batch_axis[name])],
                batch_axis[name]) for name, arr in asked.items()}
            log.debug("verify: %s=%d against the original, %d sample(s) at a time", batch, b, n)
            got = run_dynamic(feeds, f"{batch}={padded}")
            worst = 0.0
            if padded != b:  # the model at b, sample by sample, against itself at the padded batch
                got_b = run_dynamic(asked, f"{batch}={b}")
                for i in range(b):
                    alone = run(sess_d, take(asked, i, i + 1))
                    worst = max(worst, compare(f"{batch}={b}, sample {i}", got_b, alone, i, b, 1),
                                compare(f"{batch}={padded}, sample {i}", got, alone, i, padded, 1))
            b = padded
            for i in range(0, b, n):
                try:
                    want = run(sess_o, take(feeds, i, i + n))
                except TrtDeployError as exc:
                    hint = f"; {probe.note()}" if probe.guesses else ""
                    raise TrtDeployError(f"cannot check: the original model does not run on the check inputs "
                                         f"({exc}){hint}; give --shapes or --inputs, or --no-verify") from None
                worst = max(worst, compare(f"{batch}={b}, samples {i}..{i + n - 1}", got, want, i // n, b // n, n))
                if i == 0:  # the declared output dims against the run (an If output kept at [1, 4])
                    notes += [note for name in want if (note := _declared_shape(name, dynamic, got[name], original,
                                                                                want[name], f"at {batch}={b}"))]
            label = f"{batch}={b} vs original" if b == int(asked_b) else (
                f"{batch}={asked_b} vs original (the original run on it padded to {b}, copies of the last sample; "
                f"the model at {asked_b} against itself at {b}, sample by sample)")
            checks.append({"check": label, "max_abs_diff": worst, "compared": True})
    if not batch:  # only dims other than the batch became dynamic: the new model at the original's own sizes
        feeds = probe.feeds(0)
        want = _run_original_at(sess_o, feeds, probe)
        got = run_dynamic(feeds, probe.where(0))
        where = f"{probe.where(0)}: the dynamic model is wrong"
        worst = max((_compare(name, got[name], ref, where, tolerance) for name, ref in want.items()), default=0.0)
        checks.append({"check": f"the original's sizes ({probe.where(0)}) vs original", "max_abs_diff": worst,
                       "compared": True})
    others = dict(at.sizes(1, set(syms) - {batch}))
    others.update({s: v for s, v in (sizes or {}).items() if s in others})  # --shapes for the new dims
    if others:
        b = 2
        sizes = dict(others)
        if batch:
            sizes[batch] = b
        label = ", ".join(f"{s}={v}" for s, v in sizes.items())
        feeds = at.feeds(sizes)
        got = run_dynamic(feeds, label)
        worst = 0.0
        if batch:
            for i in range(b):
                want = run(sess_d, take(feeds, i, i + 1))
                worst = max(worst, compare(f"{label}, sample {i}", got, want, i, b, 1))
            what = "runs, and the batched run equals one sample at a time"
        else:
            what = "runs"
        checks.append({"check": f"{label}: {what} (no original at that size to compare with)",
                       "max_abs_diff": worst if batch else None, "compared": False})
    notes += [f"output '{name}': the batch is the inner index of the axis it is folded into (the samples' rows "
              f"interleaved, as a Transpose before a Reshape lays them out)"
              + (" -- the batch-1 original cannot tell this from the outer layout; checked as the dynamic model has it"
                 if batch and syms[batch][2] == 1 else "")
              for name, layout in layouts.items() if layout == "inner"]
    report = _report(checks, list(dict.fromkeys(notes)) + [n for n in [at.unfit_note()] if n], probe)
    report["symbols"] = {s: {"input": i, "axis": a, "original": v} for s, (i, a, v) in syms.items()}
    return report


_LAYOUTS = ("outer", "inner")


def _fold_rows(layout: str, size: int, n: int, chunk: int, chunks: int) -> list[int]:
    """The indices of sample block ``chunk`` of ``chunks`` (``n`` samples each, ``size`` long in the original)
    along an axis of length chunks * size into which the batch is folded. outer: the batch is the outer
    index ([B*S, D], blocks one after the other), rows [chunk*size, (chunk+1)*size); inner: the batch is the
    inner index ([S*B, D], samples interleaved), rows j*(n*chunks) + chunk*n + t for j < size // n, t < n."""
    if layout == "outer":
        return list(range(chunk * size, (chunk + 1) * size))
    return [j * n * chunks + chunk * n + t for j in range(size // n) for t in range(n)]


def _batch_axis(got_shape, ref_shape) -> int | None:
    """The axis along which a batched output stacks its samples' outputs (None: not one axis)."""
    if len(got_shape) != len(ref_shape):
        return None
    diff = [a for a, (g, r) in enumerate(zip(got_shape, ref_shape)) if g != r]
    return diff[0] if len(diff) == 1 else None
