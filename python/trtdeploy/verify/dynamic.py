"""dynamic_outputs: a made-dynamic model against the original, sample by sample."""

from __future__ import annotations

from typing import TYPE_CHECKING

import logging

from ..errors import TrtDeployError
from . import Probe, _sessions, _report

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

    from .._graph import data_inputs, dims_of
    from ..ort import random_inputs, run

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
            if b < 1:
                raise TrtDeployError(f"batch size {b}: give sizes of 1 or more")
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


