"""Expose intermediate tensors as graph outputs (to dump them with onnxruntime).

A tensor of the main graph becomes a graph output under its own name. A tensor inside an If/Loop/Scan
body is carried out level by level: it becomes an output of its body (of an If, the other branch
outputs an empty tensor of the same type, [0] on every axis, as a branch that did not run: a scalar is
carried as a [1] tensor so that its value cannot be taken for that; of a Loop/Scan, a scan output: one
slice per iteration), then of the node, under the name ``tensor@node`` (a subgraph name cannot be reused
outside it).
"""

from __future__ import annotations

import difflib

import onnx
from onnx import helper

from .._graph import NameGen, copy_model, data_inputs, initializer_names, node_label, subgraphs
from .._shapes import all_types
from ..errors import TrtDeployError
from .nodes import find_node


def expose(model: onnx.ModelProto, tensors: list[str] | None = None, nodes: list[str] | None = None,
           all_tensors: bool = False, include_constants: bool = False,
           notes: list[str] | None = None, branches: set[str] | None = None) -> tuple[onnx.ModelProto, list[str]]:
    """Add tensors (by name, by producing node, or every node output: with ``all_tensors``, those of
    If/Loop/Scan bodies too, and without the ones that depend on no input unless ``include_constants``)
    as graph outputs. Returns the new model and the exposed output names, in graph order. ``notes``
    (a list) receives what was skipped and why; ``branches`` (a set) the exposed names carried out of an If
    branch, which are empty on every axis where that branch did not run."""
    m = copy_model(model)
    g = m.graph
    notes = notes if notes is not None else []
    where = _locate(g)  # tensor -> chain of (node, body) from the main graph down, [] for the main graph
    wanted: list[str] = []
    if all_tensors:
        const = set() if include_constants else _constant_tensors(m)
        skipped = [t for t in where if t in const]
        wanted = [t for t in where if t not in const]
        if skipped:
            notes.append(f"{len(skipped)} tensor(s) that depend on no input (constants, shape arithmetic on "
                         "them) not exposed; --include-constants exposes them")
    for name in nodes or []:
        wanted.extend(o for o in _find_node_anywhere(g, name).output if o)
    known = set(where) | {i.name for i in g.input} | initializer_names(g)
    for t in tensors or []:
        if t not in known:
            close = difflib.get_close_matches(t, sorted(known), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise TrtDeployError(f"no tensor named '{t}' in the model{hint}")
        wanted.append(t)
    if not wanted:
        raise TrtDeployError("nothing to expose: give --tensors, --nodes or --all")
    explicit = set(tensors or []) | {o for n in nodes or [] for o in _find_node_anywhere(g, n).output}
    existing = {o.name for o in g.output}
    inferred = all_types(m)
    fresh = NameGen(m)
    order = {name: i for i, name in enumerate(where)}
    exposed, untyped = [], []
    for t in sorted(dict.fromkeys(wanted), key=lambda x: order.get(x, -1)):
        if t in existing:
            exposed.append(t)
            continue
        elem = inferred.get(t, (0, None))[0]
        if not elem:
            if t in explicit:
                raise TrtDeployError(f"the type of '{t}' cannot be inferred (custom op?); cannot expose it")
            untyped.append(t)
            continue
        chain = where.get(t, [])
        name, dims = t, inferred.get(t, (0, None))[1]
        for node, attr in reversed(chain):  # innermost body first
            name, dims = _lift(node, attr, name, elem, dims, fresh)
        if branches is not None and any(node.op_type == "If" for node, _ in chain):
            branches.add(name)
        g.output.append(helper.make_tensor_value_info(name, elem, dims))
        exposed.append(name)
    if untyped:
        notes.append(f"{len(untyped)} tensor(s) of unknown type (custom op outputs?) not exposed: "
                     + ", ".join(untyped[:5]) + (" ..." if len(untyped) > 5 else ""))
    if not exposed:
        raise TrtDeployError("nothing to expose: " + "; ".join(notes))
    return m, exposed


def _locate(g: onnx.GraphProto, chain: tuple = ()) -> dict[str, list]:
    """Every tensor a node writes, in graph order, with the chain of (node, body attribute name) that
    holds it ([] in the main graph)."""
    out: dict[str, list] = {}
    for n in g.node:
        for o in n.output:
            if o:
                out.setdefault(o, list(chain))
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                for t, c in _locate(a.g, chain + ((n, a.name),)).items():
                    out.setdefault(t, c)
    return out


def _find_node_anywhere(g: onnx.GraphProto, name: str) -> onnx.NodeProto:
    try:
        return find_node(g, name)
    except TrtDeployError:
        for n in g.node:
            for body in subgraphs(n):
                try:
                    return _find_node_anywhere(body, name)
                except TrtDeployError:
                    pass
        raise


def _constant_tensors(m: onnx.ModelProto) -> set[str]:
    """Tensors computed from constants only (Constant nodes, shape arithmetic on them), in the main
    graph and in bodies (where the body's own inputs and the outer tensors that vary count as live)."""
    const: set[str] = set()

    def walk(g: onnx.GraphProto, live: set[str]) -> None:
        for n in g.node:
            bodies = list(subgraphs(n))
            if any(x in live for x in n.input) or bodies or n.domain not in ("", "ai.onnx"):
                live.update(o for o in n.output if o)
            else:
                const.update(o for o in n.output if o)
            for body in bodies:
                walk(body, live | {i.name for i in body.input})

    walk(m.graph, {i.name for i in data_inputs(m.graph)})
    return const


def _lift(node: onnx.NodeProto, attr: str, name: str, elem: int, dims, fresh: NameGen) -> tuple[str, list | None]:
    """Make ``name`` (a tensor of ``node``'s body ``attr``, with ``dims`` there) an output of ``node``
    through an Identity to a fresh name (the tensor may be a body output already: a second output of the
    same name made onnxruntime return zeros for the If's own output). Returns the new outer name and its
    dims: the body tensor's rank (one more for a Loop/Scan scan output; a scalar of an If branch is
    carried as [1], against the other branch's empty [0]) with unknown sizes, or None when the rank is not
    known."""
    outer = fresh(f"{name.split('@')[0]}@{node.name or node.output[0]}")
    body = next(a.g for a in node.attribute if a.name == attr)
    inner = fresh(f"{name}_exposed")
    rank = None if dims is None else len(dims)
    if node.op_type == "If" and rank == 0:  # a [1] against the empty [0]: a 0 would pass for a value
        shape = fresh(f"{inner}_shape")
        body.node.append(helper.make_node("Constant", [], [shape], name=fresh(f"{shape}_Constant"),
                                          value=helper.make_tensor(shape, onnx.TensorProto.INT64, [1], [1])))
        body.node.append(helper.make_node("Reshape", [name, shape], [inner], name=fresh(f"{inner}_Reshape")))
        rank = 1
    else:
        body.node.append(helper.make_node("Identity", [name], [inner], name=fresh(f"{inner}_Identity")))
    inner_dims = None if rank is None else [None] * rank
    if node.op_type == "If":
        for a in node.attribute:
            if a.type != onnx.AttributeProto.GRAPH:
                continue
            branch = a.g
            if a.name == attr:
                branch.output.append(helper.make_tensor_value_info(inner, elem, inner_dims))
            else:  # the branch not holding it: an empty tensor of the same type and rank
                empty = fresh(f"{name}_empty")
                shape = [0] * (rank if rank is not None else 1)
                value = helper.make_tensor(empty, elem, shape, [])
                branch.node.append(helper.make_node("Constant", [], [empty], name=fresh(f"{empty}_Constant"), value=value))
                branch.output.append(helper.make_tensor_value_info(empty, elem, shape))
        out_dims = inner_dims
    elif node.op_type in ("Loop", "Scan"):
        body.output.append(helper.make_tensor_value_info(inner, elem, inner_dims))
        if node.op_type == "Scan":
            for a in node.attribute:
                if a.name in ("scan_output_axes", "scan_output_directions"):
                    a.ints.append(0)
        out_dims = None if rank is None else [None] * (rank + 1)  # one slice per iteration
    else:
        raise TrtDeployError(f"cannot expose '{name}': it is inside {node_label(node)}, which is not If/Loop/Scan")
    node.output.append(outer)
    return outer, out_dims
