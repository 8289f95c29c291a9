"""onnxruntime equivalence: a made-dynamic model against the original, sample by sample."""

from __future__ import annotations

import logging

import numpy as np
import onnx

from ._graph import data_inputs, dims_of
from .errors import TrtDeployError
from .runtime import input_shapes, random_inputs, run, session

log = logging.getLogger("trtdeploy.verify")


def _new_size(v: int) -> int:
    """A different size that keeps the divisibility of v (strides): v + its largest power-of-2 factor."""
    return v + (v & -v)


def _symbols(original: onnx.ModelProto, dynamic: onnx.ModelProto) -> dict[str, tuple[str, int, int]]:
    """symbol -> (input, axis, original size) for dims static in the original, symbolic now."""
    orig = {vi.name: dims_of(vi) for vi in data_inputs(original.graph)}
    out = {}
    for vi in data_inputs(dynamic.graph):
        for axis, (d, o) in enumerate(zip(dims_of(vi) or [], orig.get(vi.name) or [])):
            if isinstance(d, str) and isinstance(o, int):
                out.setdefault(d, (vi.name, axis, o))
    return out


def verify_dynamic(original: onnx.ModelProto, dynamic: onnx.ModelProto, batch_sizes: list[int] | None = None,
                   atol: float = 1e-4, rtol: float = 1e-3, seed: int = 0) -> dict:
    """Run both models in onnxruntime. The batch symbol (on axis 0) is checked at several sizes:
    each sample of the dynamic run must match the original model run on that sample alone.
    Other symbols (height/width) are checked at a new size: a batched run must match runs of
    one sample each. Returns a report; raises TrtDeployError on the first mismatch."""
    syms = _symbols(original, dynamic)
    if not syms:
        raise TrtDeployError("the second model has no dim that is static in the first; nothing to verify")
    batch = next((s for s, (_, axis, _) in syms.items() if axis == 0), None)
    sess_o, sess_d = session(original), session(dynamic)
    base = input_shapes(original)
    sym_axes = {}  # input -> {axis: symbol}
    for vi in data_inputs(dynamic.graph):
        for axis, d in enumerate(dims_of(vi) or []):
            if isinstance(d, str) and d in syms:
                sym_axes.setdefault(vi.name, {})[axis] = d
    checks = []

    def shapes_at(sizes: dict[str, int]) -> dict[str, list[int]]:
        out = {}
        for name, dims in base.items():
            dims = list(dims)
            for axis, s in sym_axes.get(name, {}).items():
                if s in sizes:
                    dims[axis] = sizes[s]
            out[name] = dims
        return out

    def take(feeds, start, stop):
        out = {}
        for name, arr in feeds.items():
            axis = next((a for a, s in sym_axes.get(name, {}).items() if s == batch), None)
            out[name] = arr if axis is None else np.take(arr, range(start, stop), axis=axis)
        return out

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
            feeds = random_inputs(dynamic, shapes_at({batch: b}), seed=seed + b)
            log.info("verify: %s=%d against the original, %d sample(s) at a time", batch, b, n)
            got = run(sess_d, feeds)
            worst = 0.0
            for i in range(0, b, n):
                want = run(sess_o, take(feeds, i, i + n))
                worst = max(worst, compare(f"{batch}={b}, samples {i}..{i + n - 1}", got, want, i))
            checks.append({"check": f"{batch}={b} vs original", "max_abs_diff": worst, "ok": True})
    others = {s: _new_size(v) for s, (_, _, v) in syms.items() if s != batch}
    if others:
        b = 2
        sizes = dict(others)
        if batch:
            sizes[batch] = b
        label = ", ".join(f"{s}={v}" for s, v in sizes.items())
        log.info("verify: %s, batched run against one sample at a time", label)
        feeds = random_inputs(dynamic, shapes_at(sizes), seed=seed)
        got = run(sess_d, feeds)
        worst = 0.0
        if batch:
            for i in range(b):
                want = run(sess_d, take(feeds, i, i + 1))
                worst = max(worst, compare(f"{label}, sample {i}", got, want, i))
        checks.append({"check": f"{label}: runs, batched = per sample", "max_abs_diff": worst, "ok": True})
    return {"symbols": {s: {"input": i, "axis": a, "original": v} for s, (i, a, v) in syms.items()},
            "checks": checks, "ok": True}


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
