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
from ._rewrite import CannotRewrite, Rewriter, _factorize  # noqa: F401 (_factorize: tested directly)

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


# recurrent ops (layout 0) take X [seq, batch, in] and initial states [num_directions, batch, hidden]: the batch is axis 1
_RNN_STATES = {"LSTM": {0, 5, 6}, "GRU": {0, 5}, "RNN": {0, 5}}


def batch_axis_guess(model: onnx.ModelProto, name: str) -> int:
    """Axis 0, except for an input read by an LSTM/GRU/RNN (layout 0) as X or initial state: axis 1."""
    for n in model.graph.node:
        layout = next((a.i for a in n.attribute if a.name == "layout"), 0)
        if layout == 0 and any(x == name and k in _RNN_STATES.get(n.op_type, ()) for k, x in enumerate(n.input)):
            return 1
    return 0


def default_dims(model: onnx.ModelProto, symbol: str = "batch") -> dict[str, dict[int, str]]:
    """The batch axis of every data input (axis 0, or axis 1 of a recurrent op's X or initial state) whose
    size is the first one's. When some input's batch axis is dynamic already, inputs with a static one
    are not taken to be batched (an LSTM state [2, batch, 128] beside an input [batch, n])."""
    spec: dict[str, dict[int, str]] = {}
    candidates = []
    for vi in data_inputs(model.graph):
        dims = dims_of(vi)
        if not dims or is_shape_input(model, vi.name):
            continue
        axis = batch_axis_guess(model, vi.name)
        if axis < len(dims):
            candidates.append((vi.name, axis, dims[axis]))
    dynamic_batch = any(not isinstance(d, int) for _, _, d in candidates)
    first = None
    for name, axis, d in candidates:
        if isinstance(d, str):
            spec[name] = {axis: d}
        elif not isinstance(d, int):
            continue
        elif dynamic_batch:
            log.info("input '%s': axis %d is static (%d) while the batch is dynamic elsewhere; left static", name, axis, d)
        elif first is None or d == first:
            first = d
            spec[name] = {axis: symbol}
        else:
            log.info("input '%s': axis %d is %d, not the batch size %d; left static", name, axis, d, first)
    return spec


def explain_default(model: onnx.ModelProto, default: dict[str, dict[int, str]], error: str) -> str | None:
    """When the default batch axes were used and the rewrite or the check failed: the error with what
    looks wrong, or None when no input does (the error is then the model's, to stand as it is). Looks
    wrong: an input the default left static whose axis > 0 has the batch size (silero-vad's state
    [2, 1, 128]), with the --dims naming it too; else an input taken as batched that the failing node
    reads (a Gather of sample 0), with a hint to name its axis."""
    import re

    sizes = {dims_of(vi)[a] for vi in data_inputs(model.graph) if vi.name in default
             for a in default[vi.name] if isinstance((dims_of(vi) or [None] * (a + 1))[a], int)}
    extra = {}
    for vi in data_inputs(model.graph):
        dims = dims_of(vi) or []
        if vi.name in default or is_shape_input(model, vi.name):
            continue
        axes = [a for a, d in enumerate(dims) if a > 0 and isinstance(d, int) and d in sizes]
        if axes:
            extra[vi.name] = (axes[0], dims[axes[0]])
    if extra:
        chosen = ", ".join(f"'{n}' axis {a}" for n, axes in default.items() for a in axes)
        parts = [f"the default batch axes do not fit this model: {chosen} was taken as the batch"]
        parts += [f"'{n}' was left static, but its axis {a} has the batch size {d}" for n, (a, d) in extra.items()]
        spec = {n: dict(a) for n, a in default.items()}
        for n, (a, _) in extra.items():
            spec[n] = {a: "batch"}
        example = ",".join(f"{n}:{a}={s}" for n, axes in spec.items() for a, s in axes.items())
        return "; ".join(parts) + f"; name the axes, e.g. --dims {example} (what failed: {error})"
    failing = set(re.findall(r"node '([^']+)'", error))
    hints = [f"'{x}' (taken as batched on axis {next(iter(default[x]))}) is read by the failing node '{n.name}' "
             f"({n.op_type}): if its batch is on another axis, or it has none, name the axes with --dims "
             "NAME:AXIS=SYMBOL" for n in model.graph.node if n.name in failing for x in dict.fromkeys(n.input)
             if x in default]
    return f"{error}; {'; '.join(hints)}" if hints else None


def parse_dims(text: str) -> dict[str, dict[int, str]]:
    """``images:0=batch,2=height,3=width,mask:0=batch``: AXIS=SYMBOL items for the last NAME: given
    (``;`` between inputs works too, and so do several --dims flags)."""
    spec: dict[str, dict[int, str]] = {}
    example = "e.g. images:0=batch,2=height,3=width,mask:0=batch"
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name = None
        for item in part.split(","):
            item = item.strip()
            head, sep, rest = item.rpartition(":")
            if sep:
                if not head:
                    raise TrtDeployError(f"--dims '{item}': no input name before ':'; {example}")
                name, item = head, rest
            elif name is None:
                raise TrtDeployError(f"--dims '{part}': expected NAME:AXIS=SYMBOL[,AXIS=SYMBOL...]; {example}")
            axis, eq, sym = item.partition("=")
            try:
                ax = int(axis)
            except ValueError:
                ax = None
            if not eq or ax is None or not sym.strip():
                raise TrtDeployError(f"--dims '{part}': '{item}' should be AXIS=SYMBOL, e.g. 0=batch; {example}")
            spec.setdefault(name, {})[ax] = sym.strip()
    return spec


def make_dynamic(model: onnx.ModelProto, dims: DimSpec | None = None, *, symbol: str = "batch",
                 keep_fixed: set[str] | None = None, guesses: list[str] | None = None) -> onnx.ModelProto:
    """Return a copy of ``model`` whose chosen input axes are symbolic and that runs at other sizes.

    dims: {input name: {axis: symbol}}; default: the batch axis of the data inputs (axis 0; axis 1 of
    a recurrent op's initial state), named ``symbol``. keep_fixed: names of nodes (Resize, Slice) whose
    fixed size is meant and must stay. guesses (a list): receives one line per node rewritten on a
    guess a static export cannot settle (a Resize to a size that equals the input's, a crop to the full
    length), naming the flag that keeps it. Raises TrtDeployError naming the input/node when it
    cannot be done soundly (CannotRewrite: a node of the graph, rather than the arguments).
    """
    m = copy_model(model)
    _clear_body_sizes(m)  # before the rewrite: an If's output dims are inferred from its bodies' outputs
    spec = {k: dict(v) for k, v in (dims or default_dims(m, symbol)).items()}
    _refuse_already_dynamic(m, spec)
    for name in sorted(keep_fixed or ()):
        node = next((n for n in m.graph.node if n.name == name or (n.output and n.output[0] == name)), None)
        if node is None:
            raise TrtDeployError(f"--keep-fixed: no node named '{name}'")
        if node.op_type not in ("Resize", "Slice"):
            raise TrtDeployError(f"--keep-fixed {name}: it is a {node.op_type}; only a Resize or a Slice can keep "
                                 "a fixed size (other shape operands must follow the input)")
    orig, probe, final = _plan(m, spec)
    _refuse_batch_wide_decisions(m, [n for n, axes in spec.items()
                                     if symbol in axes.values() or (0 in axes and symbol not in _symbols(spec))])
    rewriter = Rewriter(m, orig, probe, keep_fixed=set(keep_fixed or ()))
    rewriter.run()
    if guesses is not None:
        guesses.extend(rewriter.guesses)
    for vi in m.graph.input:
        if vi.name in final:
            set_dims(vi, final[vi.name])
    _update_outputs(m, orig, probe, rewriter.PO.shapes(), rewriter.PP.shapes())
    m.graph.ClearField("value_info")  # stale: re-infer with onnx.shape_inference if needed
    return m


def _symbols(spec) -> set[str]:
    return {sym for axes in spec.values() for sym in axes.values()}


_RAGGED = {"NonZero", "NonMaxSuppression", "Unique", "Compress"}  # output sizes follow the input's values


def _refuse_batch_wide_decisions(m: onnx.ModelProto, batched: list[str]) -> None:
    """An If condition, or a Loop's trip count or condition, computed from the values of a batched input
    is one decision for the whole batch: with several samples, each would follow the branch another
    sample chose (no check on random inputs shows it). Refuse naming the node. Shapes do not carry
    values (Shape/Size of an input are the same for every sample), except the shapes of outputs that
    NonZero/NonMaxSuppression/Unique/Compress size from values."""
    from .._graph import node_label, outer_references, subgraphs

    values, ragged = set(batched), set()
    for node in m.graph.node:
        reads = list(node.input) + [r for g in subgraphs(node) for r in outer_references(g)]
        if node.op_type in ("Shape", "Size"):
            dep = bool(node.input) and node.input[0] in ragged and node.input[0] in values
        else:
            dep = any(r in values for r in reads if r)
        decides = {"If": node.input[:1], "Loop": node.input[:2]}.get(node.op_type, [])
        bad = [d for d in decides if d and d in values]
        if bad:
            raise TrtDeployError(f"cannot make {', '.join(repr(b) for b in batched)} batch-dynamic: "
                                 f"{node_label(node)} decides from '{bad[0]}', which is computed from the "
                                 "input's values, so a batch of several samples would take one decision for all "
                                 "of them; run the model one sample at a time")
        if dep:
            values.update(o for o in node.output if o)
        if node.op_type in _RAGGED or any(r in ragged for r in reads if r):
            ragged.update(o for o in node.output if o)


def _clear_body_sizes(m: onnx.ModelProto) -> None:
    """If/Loop/Scan bodies declare their inputs' and outputs' shapes (and value_info) at the old sizes,
    which onnxruntime enforces (an If body output [1, 4] refused at batch 2): value_info goes, as in the
    main graph, and their static sizes become unknown (ranks and symbolic dims stay)."""
    from .._graph import iter_graphs

    for k, g in enumerate(iter_graphs(m.graph)):
        if k == 0:
            continue
        g.ClearField("value_info")
        for vi in list(g.input) + list(g.output):
            dims = dims_of(vi)
            if dims is not None and any(isinstance(d, int) for d in dims):
                set_dims(vi, [d if isinstance(d, str) else None for d in dims])


def _refuse_already_dynamic(m: onnx.ModelProto, spec: dict[str, dict[int, str]]) -> None:
    """Nothing to do when every axis asked for is dynamic already, under that name: say so."""
    inputs = {vi.name: dims_of(vi) or [] for vi in data_inputs(m.graph)}
    todo = [(n, a) for n, axes in spec.items() for a, sym in axes.items()
            if n not in inputs or not -len(inputs[n]) <= a < len(inputs[n]) or inputs[n][a] != sym]
    if todo:
        return
    have = ", ".join(f"{n}[{a}]={d or '?'}" for n, dims in inputs.items() for a, d in enumerate(dims) if not isinstance(d, int))
    if not have:
        raise TrtDeployError("the model has no data input with a static batch axis to make dynamic; "
                             "name the axes with --dims NAME:AXIS=SYMBOL")
    hint = "; to make other axes dynamic, name them: --dims NAME:AXIS=SYMBOL,..."
    asked = ", ".join(f"'{n}' axis {a}" for n, axes in spec.items() for a in axes) or "the batch axis"
    raise TrtDeployError(f"nothing to do: {asked} {'is' if len(asked.split(',')) == 1 else 'are'} dynamic "
                         f"already (the model's dynamic dims: {have}){hint}")


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
