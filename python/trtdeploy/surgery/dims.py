"""Make static input dims dynamic, so that the model really runs at other sizes.

Changing an input's dim_param is the easy part; exporters also bake the static sizes into the
graph (Reshape targets like ``x.view(1, -1)``, Expand shapes, Resize sizes, constants concatenated
with data, Slice ends). The pass finds those by inferring shapes twice: at the original sizes (O)
and at a probe size (P: the batch axis doubled, other dynamic axes tripled). An axis whose size differs between O and P
depends on a dynamic input dim. Walking the nodes in order, a node whose constant shape operand
contradicts a dynamic axis is rewritten into a shape-derived value (``Shape(x)[axis]``, or 0 in a
Reshape target) that equals the constant at the original sizes, so results at the original shape
never change. A node that cannot be rewritten soundly is refused with a reason naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import onnx

from .._graph import copy_model, data_inputs, dims_of
from .._shapes import set_dims
from ..errors import TrtDeployError
from ._rewrite import Rewriter, _factorize  # noqa: F401 (_factorize: tested directly)

log = logging.getLogger("trtdeploy.dynamic")

DimSpec = Mapping[str, Mapping[int, str]]

# inputs at these positions are shapes/sizes/indices, not data
_SHAPE_OPERANDS = {
    "Reshape": {1}, "Expand": {1}, "Tile": {1}, "ConstantOfShape": {0}, "Resize": {1, 2, 3},
    "Upsample": {1}, "Slice": {1, 2, 3, 4}, "Pad": {1, 2, 3}, "TopK": {1}, "Range": {0, 1, 2},
    "Squeeze": {1}, "Unsqueeze": {1}, "Split": {1}, "OneHot": {1}, "ReduceSum": {1},
    "ReduceMean": {1}, "ReduceMax": {1}, "ReduceMin": {1}, "ReduceProd": {1}, "CenterCropPad": {1},
    "NonMaxSuppression": {2, 3, 4}, "RoiAlign": {2}, "Trilu": {1}, "CumSum": {1},
}


def is_shape_input(model: onnx.ModelProto, name: str) -> bool:
    """An int 0-D/1-D input consumed only as a shape/size/index operand (e.g. Resize ``sizes``)."""
    vi = next((i for i in model.graph.input if i.name == name), None)
    if vi is None:
        return False
    t = vi.type.tensor_type
    dims = dims_of(vi)
    if t.elem_type not in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) or dims is None or len(dims) > 1:
        return False
    uses = [(n.op_type, k) for n in model.graph.node for k, x in enumerate(n.input) if x == name]
    return bool(uses) and all(k in _SHAPE_OPERANDS.get(op, ()) for op, k in uses)


def default_dims(model: onnx.ModelProto, symbol: str = "batch") -> dict[str, dict[int, str]]:
    """Axis 0 of every data input whose axis 0 has the same size as the first one's."""
    spec: dict[str, dict[int, str]] = {}
    first = None
    for vi in data_inputs(model.graph):
        dims = dims_of(vi)
        if not dims or is_shape_input(model, vi.name):
            continue
        d0 = dims[0]
        if isinstance(d0, str):
            spec[vi.name] = {0: d0}
            continue
        if not isinstance(d0, int):
            continue
        if first is None:
            first = d0
        if d0 == first:
            spec[vi.name] = {0: symbol}
        else:
            log.info("input '%s': axis 0 is %d, not the batch size %d; left static", vi.name, d0, first)
    return spec


def parse_dims(text: str) -> dict[str, dict[int, str]]:
    """``images:0=batch,2=height,3=width;mask:0=batch`` (also several --dims flags)."""
    spec: dict[str, dict[int, str]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, axes = part.rpartition(":")
        if not sep or not name:
            raise TrtDeployError(f"--dims '{part}': expected NAME:AXIS=SYMBOL[,AXIS=SYMBOL...]")
        for item in axes.split(","):
            axis, eq, sym = item.partition("=")
            try:
                ax = int(axis)
            except ValueError:
                ax = None
            if not eq or ax is None or not sym.strip():
                raise TrtDeployError(f"--dims '{part}': '{item}' should be AXIS=SYMBOL, e.g. 0=batch")
            spec.setdefault(name, {})[ax] = sym.strip()
    return spec


def make_dynamic(model: onnx.ModelProto, dims: DimSpec | None = None, *,
                 symbol: str = "batch") -> onnx.ModelProto:
    """Return a copy of ``model`` whose chosen input axes are symbolic and that runs at other sizes.

    dims: {input name: {axis: symbol}}; default: axis 0 of the data inputs, named ``symbol``.
    Raises TrtDeployError naming the input/node when it cannot be done soundly.
    """
    m = copy_model(model)
    spec = {k: dict(v) for k, v in (dims or default_dims(m, symbol)).items()}
    if not spec:
        raise TrtDeployError("the model has no data input with a static axis 0 to make dynamic; "
                             "name the axes with --dims NAME:AXIS=SYMBOL")
    orig, probe, final = _plan(m, spec)
    rewriter = Rewriter(m, orig, probe)
    rewriter.run()
    for vi in m.graph.input:
        if vi.name in final:
            set_dims(vi, final[vi.name])
    _update_outputs(m, orig, probe, rewriter.PO.shapes(), rewriter.PP.shapes())
    m.graph.ClearField("value_info")  # stale: re-infer with onnx.shape_inference if needed
    return m


def _plan(m: onnx.ModelProto, spec: dict[str, dict[int, str]]):
    """Original and probe sizes of every input, and the final dims with symbols."""
    inputs = {vi.name: vi for vi in data_inputs(m.graph)}
    sizes: dict[str, int] = {}
    orig, probe, final = {}, {}, {}
    for name, axes in spec.items():
        if name not in inputs:
            listed = ", ".join(f"'{n}'" for n in inputs) or "none"
            raise TrtDeployError(f"no graph input named '{name}' (data inputs: {listed})")
        dims = dims_of(inputs[name])
        if dims is None:
            raise TrtDeployError(f"input '{name}' has no shape in the model; cannot choose its axes")
        o, p, f = list(dims), list(dims), list(dims)
        for axis, sym in axes.items():
            ax = axis + len(dims) if axis < 0 else axis
            if not 0 <= ax < len(dims):
                raise TrtDeployError(f"input '{name}' has rank {len(dims)}; axis {axis} does not exist")
            d = dims[ax]
            f[ax] = sym
            if isinstance(d, int):
                if d <= 0:
                    raise TrtDeployError(f"input '{name}' axis {ax} has size {d}; cannot make it dynamic")
                if sizes.setdefault(sym, d) != d:
                    raise TrtDeployError(f"symbol '{sym}' is {sizes[sym]} on one input but {d} on input "
                                         f"'{name}' axis {ax}; use different symbols")
                p[ax] = (2 if ax == 0 else 3) * d  # batch x2, other axes x3: tells them apart
        orig[name], probe[name], final[name] = o, p, f
    for name, vi in inputs.items():  # symbols already in the model stay as they are
        if name not in orig and dims_of(vi) is not None:
            orig[name] = probe[name] = dims_of(vi)
    return orig, probe, final


def _update_outputs(m: onnx.ModelProto, orig: dict, probe: dict, o_shapes: dict, p_shapes: dict) -> None:
    """Output dims from the rewritten graph's shapes at both sizes: dims that follow an input dim
    become symbolic."""
    syms = {}  # (orig size, probe size) -> symbol, from the inputs
    for vi in m.graph.input:
        for o, p, d in zip(orig.get(vi.name, []), probe.get(vi.name, []), dims_of(vi) or []):
            if isinstance(d, str) and isinstance(o, int) and o != p:
                syms.setdefault((o, p), d)
    for out in m.graph.output:
        od = o_shapes.get(out.name, (0, None))[1]
        pd = p_shapes.get(out.name, (0, None))[1]
        if od is None or pd is None or len(od) != len(pd):
            declared = dims_of(out)
            if declared is not None:  # unknown after the change: keep the rank, drop stale sizes
                set_dims(out, [d if isinstance(d, str) else None for d in declared])
            continue
        new = []
        for o, p in zip(od, pd):
            if isinstance(o, int) and isinstance(p, int):
                new.append(o if o == p else syms.get((o, p)))
            else:
                new.append(o if isinstance(o, str) and o == p else None)
        set_dims(out, new)
