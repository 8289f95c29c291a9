"""Simplify with onnxslim (or onnxsim when only it is installed), keeping dynamic dims dynamic.

Simplifiers trust the shapes a model declares (graph outputs, value_info) when they fold: a wrong
declaration (ddddocr's output declared [1, seqlen] while the graph computes [T, 1, C]) gets folded into
a wrong Reshape. So declared shapes are dropped before simplifying, and the outputs' declared dims put
back afterwards where they agree with what the simplified graph computes; the others are said.
"""

from __future__ import annotations

import logging

import onnx

from .._graph import copy_model, data_inputs, dims_of, format_dims
from .._shapes import set_dims
from ..errors import MissingDependencyError, TrtDeployError, require

log = logging.getLogger("trtdeploy.simplify")


def simplify(model: onnx.ModelProto, input_shapes: dict[str, list[int]] | None = None,
             notes: list[str] | None = None) -> onnx.ModelProto:
    """Constant-fold and clean the graph. Symbolic input dims stay symbolic (input_shapes only
    guide shape inference during folding); unknown-domain ops (plugins) are kept as they are.
    Declared shapes are not trusted (see the module doc); ``notes`` (a list) receives one line per
    declared output shape that the graph contradicts (dropped)."""
    before = {vi.name: dims_of(vi) for vi in data_inputs(model.graph)}
    declared = {o.name: dims_of(o) for o in model.graph.output}
    bare = _without_declared_shapes(model)
    try:
        slim = require("onnxslim", "sim")
        out = _with_onnxslim(slim, bare, input_shapes)
    except MissingDependencyError:
        try:
            sim = require("onnxsim", "sim")
        except MissingDependencyError:
            raise MissingDependencyError("simplify needs onnxslim (`pip install onnxslim` or "
                                         "`pip install trtdeploy[sim]`) or onnxsim") from None
        out = _with_onnxsim(sim, bare, input_shapes)
    _restore_output_dims(out, declared, notes if notes is not None else [])
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


def _without_declared_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy without value_info and with the graph outputs' dims cleared (their dtypes stay)."""
    m = copy_model(model)
    m.graph.ClearField("value_info")
    for o in m.graph.output:
        if o.type.HasField("tensor_type"):
            o.type.tensor_type.ClearField("shape")
    return m


def _agree(declared: list, computed: list | None) -> bool:
    if computed is None:
        return True  # nothing computed to contradict it
    return len(declared) == len(computed) and all(
        not (isinstance(a, int) and isinstance(b, int)) or a == b for a, b in zip(declared, computed))


def _restore_output_dims(out: onnx.ModelProto, declared: dict, notes: list[str]) -> None:
    for o in out.graph.output:
        want = declared.get(o.name)
        if want is None:
            continue
        have = dims_of(o)
        if _agree(want, have):
            set_dims(o, want)
        else:
            notes.append(f"output '{o.name}': the model declared {format_dims(want)}, but the graph computes "
                         f"{format_dims(have)}; simplify dropped the declared shape instead of folding from it")


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
