"""Simplify with onnxslim (or onnxsim when only it is installed), keeping dynamic dims dynamic."""

from __future__ import annotations

import logging

import onnx

from .._graph import data_inputs, dims_of
from ..errors import MissingDependencyError, TrtDeployError, require

log = logging.getLogger("trtdeploy.simplify")


def simplify(model: onnx.ModelProto, input_shapes: dict[str, list[int]] | None = None) -> onnx.ModelProto:
    """Constant-fold and clean the graph. Symbolic input dims stay symbolic (input_shapes only
    guide shape inference during folding); unknown-domain ops (plugins) are kept as they are."""
    before = {vi.name: dims_of(vi) for vi in data_inputs(model.graph)}
    try:
        slim = require("onnxslim", "sim")
        out = _with_onnxslim(slim, model, input_shapes)
    except MissingDependencyError:
        try:
            sim = require("onnxsim", "sim")
        except MissingDependencyError:
            raise MissingDependencyError("simplify needs onnxslim (`pip install onnxslim` or "
                                         "`pip install trtdeploy[sim]`) or onnxsim") from None
        out = _with_onnxsim(sim, model, input_shapes)
    after = {vi.name: dims_of(vi) for vi in data_inputs(out.graph)}
    for name, dims in before.items():
        new = after.get(name)
        if dims is None or new is None:
            continue
        for axis, (a, b) in enumerate(zip(dims, new)):
            if not isinstance(a, int) and isinstance(b, int):
                raise TrtDeployError(f"the simplifier made input '{name}' axis {axis} static ({b}); "
                                     "refusing to lose a dynamic dim")
    return out


def _with_onnxslim(slim, model, input_shapes):
    if input_shapes:  # onnxslim would make the inputs static with them: not what simplify promises
        log.info("onnxslim folds without sample shapes; --input-shapes is only used by onnxsim")
    try:
        return slim.slim(model)
    except Exception as exc:  # noqa: BLE001
        raise TrtDeployError(f"onnxslim failed: {exc}") from None


def _with_onnxsim(sim, model, input_shapes):
    try:
        out, ok = sim.simplify(model, test_input_shapes=input_shapes or None, skip_shape_inference=False)
    except Exception as exc:  # noqa: BLE001
        raise TrtDeployError(f"onnxsim failed: {exc}") from None
    if not ok:
        raise TrtDeployError("onnxsim could not validate the simplified model; left unchanged")
    return out
