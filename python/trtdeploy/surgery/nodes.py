"""Delete a node and reconnect the graph; insert a Cast."""

from __future__ import annotations

import onnx
from onnx import helper

from .._graph import (NameGen, consumers, copy_model, dtype_name, format_dims, initializer_names, node_label,
                      producers, rename_in_graph, subgraphs)
from .._shapes import propagate
from ..errors import TrtDeployError

_DTYPES = {
    "float": onnx.TensorProto.FLOAT, "float32": onnx.TensorProto.FLOAT, "fp32": onnx.TensorProto.FLOAT,
    "float16": onnx.TensorProto.FLOAT16, "half": onnx.TensorProto.FLOAT16, "fp16": onnx.TensorProto.FLOAT16,
    "bfloat16": onnx.TensorProto.BFLOAT16, "bf16": onnx.TensorProto.BFLOAT16,
    "double": onnx.TensorProto.DOUBLE, "float64": onnx.TensorProto.DOUBLE,
    "int8": onnx.TensorProto.INT8, "uint8": onnx.TensorProto.UINT8, "int16": onnx.TensorProto.INT16,
    "uint16": onnx.TensorProto.UINT16, "int32": onnx.TensorProto.INT32, "uint32": onnx.TensorProto.UINT32,
    "int64": onnx.TensorProto.INT64, "uint64": onnx.TensorProto.UINT64, "bool": onnx.TensorProto.BOOL,
}


def parse_dtype(name: str | int) -> int:
    if isinstance(name, int):
        return name
    key = name.strip().lower()
    if key not in _DTYPES:
        raise TrtDeployError(f"unknown dtype '{name}'; use one of {', '.join(sorted(_DTYPES))}")
    return _DTYPES[key]


def find_node(graph: onnx.GraphProto, name: str) -> onnx.NodeProto:
    for n in graph.node:
        if n.name == name:
            return n
    # also accept an output tensor name, for unnamed nodes
    for n in graph.node:
        if name in n.output:
            return n
    import difflib

    close = difflib.get_close_matches(name, [n.name for n in graph.node if n.name], n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else \
        "; `trtdeploy inspect --nodes MODEL` lists the nodes"
    raise TrtDeployError(f"no node named '{name}' in the main graph{hint}")


def remove_nodes(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """Delete nodes; each one's single data input takes the place of its single used output.
    Initializers and constant nodes that only fed a removed node are dropped too."""
    m = copy_model(model)
    for name in names:
        before = _inference_error(m)
        node = find_node(m.graph, name)
        label, src, out = node_label(node), next((x for x in node.input if x), "?"), next((o for o in node.output if o), "?")
        _remove_one(m, name)
        if before is None and (after := _inference_error(m)) is not None:
            # dims _same_type could not compare (a symbol against a number, unknown dims): what read the
            # output does not fit the input that now takes its place
            raise TrtDeployError(f"cannot remove node {label}: its input '{src}' does not fit what reads its "
                                 f"output '{out}' (onnx shape inference of the result: {after})")
    return m


def _inference_error(m: onnx.ModelProto) -> str | None:
    """The first line of onnx's strict type and shape inference error on ``m``, or None."""
    try:
        onnx.shape_inference.infer_shapes(m, strict_mode=True, check_type=True)
    except onnx.shape_inference.InferenceError as exc:
        return str(exc).splitlines()[0]
    except Exception:  # noqa: BLE001 - what inference cannot judge (a model over 2 GB, ...)
        return None
    return None


def _remove_one(m: onnx.ModelProto, name: str) -> None:
    g = m.graph
    node = find_node(g, name)
    prod = producers(g)
    cons = consumers(g)
    inits = initializer_names(g)
    graph_outputs = {o.name for o in g.output}
    graph_inputs = {i.name for i in g.input}

    def is_const(t: str) -> bool:
        p = prod.get(t)
        return t in inits or (p is not None and p.op_type == "Constant")

    data_in = [x for x in node.input if x and not is_const(x)]
    used_out = [o for o in node.output if o and (o in cons or o in graph_outputs)]
    label = node_label(node)
    if len(used_out) > 1:
        raise TrtDeployError(f"cannot remove node {label}: {len(used_out)} of its outputs are used "
                             f"({', '.join(used_out)}); reconnecting is ambiguous")
    if used_out and len(data_in) != 1:
        what = "no data input" if not data_in else f"{len(data_in)} data inputs ({', '.join(data_in)})"
        raise TrtDeployError(f"cannot remove node {label}: it has {what}, so it is ambiguous which "
                             f"tensor should replace its output '{used_out[0]}'")
    if used_out:
        _same_type(m, node, data_in[0], used_out[0])
    idx = list(g.node).index(node)
    del g.node[idx]
    if used_out:
        src, out = data_in[0], used_out[0]
        if out in graph_outputs:
            # keep the output name: the producer of src now writes `out` directly
            if src in graph_inputs or src in graph_outputs or src in inits:
                raise TrtDeployError(f"cannot remove node {label}: its input '{src}' is a graph "
                                     f"input/output/initializer and its output '{out}' is a graph "
                                     "output; the two names cannot become one tensor")
            from .names import _apply

            _apply(m, {src: out})
            ov = next(o for o in g.output if o.name == out)
            declared = onnx.TypeProto()
            declared.CopyFrom(ov.type)
            ov.type.Clear()
            types = propagate(m)
            elem, dims = types.get(out, (0, None))
            if elem and dims is not None:
                ov.CopyFrom(helper.make_tensor_value_info(out, elem, dims))
            else:  # inference cannot size it: the declaration stays (same tensor, same type)
                ov.type.CopyFrom(declared)
        else:
            for n in g.node:
                for k, x in enumerate(n.input):
                    if x == out:
                        n.input[k] = src
                for sub in subgraphs(n):
                    rename_in_graph(sub, {out: src})
        _drop_value_info(g, {out})
    _drop_dangling(g, [x for x in node.input if x])


def _same_type(m: onnx.ModelProto, node: onnx.NodeProto, src: str, out: str) -> None:
    """Bypassing a node hands its input to its output's readers: the dtype and the (known) dims must
    be the same, or the readers get what they were not built for."""
    types = propagate(m)
    (e_in, d_in), (e_out, d_out) = types.get(src, (0, None)), types.get(out, (0, None))
    differ = bool(e_in and e_out and e_in != e_out)
    if d_in is not None and d_out is not None:
        differ = differ or len(d_in) != len(d_out) or any(
            a != b for a, b in zip(d_in, d_out) if a is not None and b is not None and type(a) is type(b))
    if differ:
        raise TrtDeployError(f"cannot remove node {node_label(node)}: its input '{src}' is {dtype_name(e_in)} "
                             f"{format_dims(d_in)} but its output '{out}' is {dtype_name(e_out)} "
                             f"{format_dims(d_out)}; what reads '{out}' would get another "
                             f"{'type' if e_in != e_out else 'shape'}")


def _drop_value_info(g: onnx.GraphProto, names: set[str]) -> None:
    keep = [v for v in g.value_info if v.name not in names]
    if len(keep) != len(g.value_info):
        g.ClearField("value_info")
        g.value_info.extend(keep)


def _drop_dangling(g: onnx.GraphProto, candidates: list[str]) -> None:
    """Remove producers/initializers of candidates that nothing uses any more (recursively)."""
    graph_outputs = {o.name for o in g.output}
    stack = list(candidates)
    while stack:
        t = stack.pop()
        if t in graph_outputs or t in consumers(g):
            continue
        p = producers(g).get(t)
        if p is not None:
            if any(o in graph_outputs or o in consumers(g) for o in p.output if o):
                continue
            g.node.remove(p)
            stack.extend(x for x in p.input if x)
            continue
        inits = [i for i in g.initializer if i.name == t]
        for i in inits:
            g.initializer.remove(i)
        inputs = [i for i in g.input if i.name == t and inits]
        for i in inputs:  # an initializer listed as input too (IR < 4 style)
            g.input.remove(i)


def insert_cast(model: onnx.ModelProto, tensor: str, to: str | int,
                casts: dict[str, int] | None = None) -> onnx.ModelProto:
    """Cast ``tensor`` to ``to`` for everything that reads it. On a graph output the output keeps
    its name and gets the new dtype. On a graph input the input itself takes the new dtype (the caller
    feeds e.g. int32 instead of int64) and a Cast back to its old dtype follows it, so the graph
    computes as before. Downstream ops that cannot take the new type are an error. ``casts`` (a dict)
    receives {graph input/output: its new elem type} for each one whose dtype changed."""
    casts = casts if casts is not None else {}
    m = copy_model(model)
    g = m.graph
    to = parse_dtype(to)
    fresh = NameGen(m)
    prod = producers(g)
    inits = initializer_names(g)
    is_input = any(i.name == tensor for i in g.input) and tensor not in inits
    if tensor not in prod and not is_input and tensor not in inits:
        raise TrtDeployError(f"no tensor named '{tensor}' in the main graph; "
                             "`trtdeploy inspect --nodes MODEL` lists the names")
    dtype_name = onnx.TensorProto.DataType.Name(to).lower()
    out_names = [o.name for o in g.output]
    if is_input and tensor not in out_names:
        vi = next(i for i in g.input if i.name == tensor)
        old = vi.type.tensor_type.elem_type
        if old == to:
            raise TrtDeployError(f"input '{tensor}' is {dtype_name} already")
        inner = fresh(f"{tensor}_{onnx.TensorProto.DataType.Name(old).lower()}")
        for n in g.node:
            if tensor in n.input:
                n.input[:] = [inner if x == tensor else x for x in n.input]
            for sub in subgraphs(n):
                rename_in_graph(sub, {tensor: inner})
        g.node.insert(0, helper.make_node("Cast", [tensor], [inner], name=fresh(f"{tensor}_Cast"), to=old))
        vi.type.tensor_type.elem_type = to
        casts[tensor] = to
        _check_types(m, tensor)
        return m
    if tensor in out_names:
        if is_input:
            raise TrtDeployError(f"'{tensor}' is both a graph input and output; cannot cast it in place")
        # the producer writes a new name; the Cast writes the output's name
        pre = fresh(f"{tensor}_precast")
        from .names import _apply

        _apply(m, {tensor: pre})
        for o in g.output:  # _apply renamed the graph output too: restore it
            if o.name == pre:
                o.name = tensor
        cast = helper.make_node("Cast", [pre], [tensor], name=fresh(f"{tensor}_Cast"), to=to)
        idx = max((i for i, n in enumerate(g.node) if pre in n.output), default=-1) + 1
        g.node.insert(idx, cast)
        changed = {tensor}
        for o in g.output:
            if o.name == tensor:
                o.type.tensor_type.elem_type = to
                casts[o.name] = to
    else:
        new = fresh(f"{tensor}_{dtype_name}")
        cast = helper.make_node("Cast", [tensor], [new], name=fresh(f"{tensor}_Cast"), to=to)
        from .._graph import outer_references

        users = [n for n in g.node if tensor in n.input or any(tensor in outer_references(b) for b in subgraphs(n))]
        retyped = False
        for n in users:
            n.input[:] = [new if x == tensor else x for x in n.input]
            for body in subgraphs(n):  # an If/Loop/Scan body reading it from the main graph
                if tensor in outer_references(body):
                    rename_in_graph(body, {tensor: new})
                    body_down = _downstream(body, {new})
                    body.ClearField("value_info")
                    for o in body.output:  # retyped below, as onnx infers them now
                        if o.name in body_down:
                            o.type.CopyFrom(helper.make_tensor_value_info(o.name, 0, None).type)
                            retyped = True
        idx = max((i for i, n in enumerate(g.node) if tensor in n.output), default=-1) + 1
        g.node.insert(idx, cast)
        changed = {n_out for n in users for n_out in n.output}
        if retyped:
            _infer_body_outputs(m)
    down = _downstream(g, changed)
    _drop_value_info(g, down)
    types = propagate(m)
    for o in g.output:  # graph outputs downstream of the cast take their new dtype
        if o.name in down and o.name in types and types[o.name][0]:
            if o.type.tensor_type.elem_type != types[o.name][0]:
                casts[o.name] = types[o.name][0]
            o.type.tensor_type.elem_type = types[o.name][0]
    _check_types(m, tensor)
    return m


def _infer_body_outputs(m: onnx.ModelProto) -> None:
    """Body outputs left without a type get the one onnx's shape inference gives them (when it can;
    _check_types reports what it cannot)."""
    from .._graph import iter_graphs

    try:
        inferred = onnx.shape_inference.infer_shapes(m)
    except Exception:  # noqa: BLE001 - _check_types says why
        return
    for g, gi in zip(iter_graphs(m.graph), iter_graphs(inferred.graph)):
        for o, oi in zip(g.output, gi.output):
            if not o.type.tensor_type.elem_type and oi.type.tensor_type.elem_type:
                o.type.CopyFrom(oi.type)


def _downstream(g: onnx.GraphProto, names: set[str]) -> set[str]:
    out = set(names)
    for n in g.node:
        if any(x in out for x in n.input):
            out.update(n.output)
    return out


def _check_types(m: onnx.ModelProto, tensor: str) -> None:
    try:
        onnx.shape_inference.infer_shapes(m, strict_mode=True, check_type=True)
    except onnx.shape_inference.InferenceError as exc:
        msg = str(exc).splitlines()[0]
        raise TrtDeployError(f"after casting '{tensor}' a downstream op rejects the new type: {msg}") from None
    except Exception:  # noqa: BLE001 - custom ops etc: inference cannot judge
        pass
