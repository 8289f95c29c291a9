"""Small helpers over onnx protos shared by the passes (no I/O)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper



def copy_model(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def iter_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """The graph and every subgraph inside it (If/Loop/Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for sub in subgraphs(node):
            yield from iter_graphs(sub)


def model_graphs(model: onnx.ModelProto) -> Iterator[onnx.GraphProto]:
    yield from iter_graphs(model.graph)
    for info in model.training_info:
        yield from iter_graphs(info.initialization)
        yield from iter_graphs(info.algorithm)


def rename_in_graph(graph: onnx.GraphProto, m: Mapping[str, str], recurse: bool = True) -> None:
    """Rename tensors inside one graph (and, with recurse, its subgraphs): node inputs/outputs, graph
    inputs/outputs/value_info, initializers, sparse initializers, quantization annotations."""
    def sub(x: str) -> str:
        return m.get(x, x)

    for g in (iter_graphs(graph) if recurse else [graph]):
        for node in g.node:
            if any(x in m for x in node.input):
                node.input[:] = [sub(x) for x in node.input]
            if any(x in m for x in node.output):
                node.output[:] = [sub(x) for x in node.output]
        for v in itertools.chain(g.input, g.output, g.value_info, g.initializer):
            if v.name in m:
                v.name = m[v.name]
        for sp in g.sparse_initializer:
            sp.values.name = sub(sp.values.name)
            sp.indices.name = sub(sp.indices.name)
        for ann in g.quantization_annotation:
            ann.tensor_name = sub(ann.tensor_name)
            for e in ann.quant_parameter_tensor_names:
                e.value = sub(e.value)


def initializer_names(graph: onnx.GraphProto) -> set[str]:
    return {t.name for t in graph.initializer} | {t.values.name for t in graph.sparse_initializer}


def data_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are fed at run time (not initializers listed as inputs)."""
    inits = initializer_names(graph)
    return [i for i in graph.input if i.name not in inits]


def producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in graph.node for o in n.output if o}


def consumers(graph: onnx.GraphProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    out: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for n in graph.node:
        for k, name in enumerate(n.input):
            if name:
                out.setdefault(name, []).append((n, k))
        for sub in subgraphs(n):  # names captured from the outer scope
            for name in outer_references(sub):
                out.setdefault(name, []).append((n, -1))
    return out


def outer_references(graph: onnx.GraphProto) -> set[str]:
    """Names a subgraph reads from enclosing scopes."""
    defined = {i.name for i in graph.input} | initializer_names(graph)
    used: set[str] = set()
    for n in graph.node:
        used.update(x for x in n.input if x)
        for sub in subgraphs(n):
            used |= outer_references(sub)
        defined.update(n.output)
    return used - defined


def all_names(model: onnx.ModelProto) -> set[str]:
    names: set[str] = set()
    for g in model_graphs(model):
        names.update(v.name for v in itertools.chain(g.input, g.output, g.value_info))
        names.update(initializer_names(g))
        for n in g.node:
            names.update(n.input)
            names.update(n.output)
    names.discard("")
    return names


class NameGen:
    """Fresh tensor/node names that collide with nothing in the model."""

    def __init__(self, model: onnx.ModelProto):
        self.taken = all_names(model) | {n.name for g in model_graphs(model) for n in g.node}

    def __call__(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


def node_label(node: onnx.NodeProto) -> str:
    """How errors refer to a node: its name, or its op and first output when unnamed."""
    if node.name:
        return f"'{node.name}' ({node.op_type})"
    return f"the {node.op_type} node that produces '{node.output[0]}'" if node.output and node.output[0] else \
        f"an unnamed {node.op_type} node"


def constant_value(name: str, graph: onnx.GraphProto,
                   producer: dict[str, onnx.NodeProto] | None = None) -> np.ndarray | None:
    """The value of a tensor that is an initializer or a Constant node's output, else None."""
    for t in graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    producer = producer if producer is not None else producers(graph)
    node = producer.get(name)
    if node is not None and node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
        for a in node.attribute:
            if a.name == "value":
                return numpy_helper.to_array(a.t)
            if a.name == "value_ints":
                return np.array(list(a.ints), dtype=np.int64)
            if a.name == "value_int":
                return np.array(a.i, dtype=np.int64)
            if a.name == "value_floats":
                return np.array(list(a.floats), dtype=np.float32)
            if a.name == "value_float":
                return np.array(a.f, dtype=np.float32)
    return None


def dims_of(vi: onnx.ValueInfoProto) -> list[int | str | None] | None:
    """Shape of a tensor value info: ints for static dims, names for symbolic, None for unknown."""
    t = vi.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    out: list[int | str | None] = []
    for d in t.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:  # some exporters write -1 for "dynamic"
            out.append(d.dim_value)
        elif d.HasField("dim_param") and d.dim_param:
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def elem_type(vi: onnx.ValueInfoProto) -> int:
    t = vi.type
    return t.tensor_type.elem_type if t.HasField("tensor_type") else 0


def dtype_name(elem: int) -> str:
    return onnx.TensorProto.DataType.Name(elem).lower() if elem else "?"


def format_dims(dims: list[int | str | None] | None) -> str:
    if dims is None:
        return "?"
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def fold_constant(model: onnx.ModelProto, name: str):
    """Evaluate a data-independent tensor with onnx's reference evaluator (small subgraphs only)."""
    g = model.graph
    prod = producers(g)
    inits = {t.name for t in g.initializer}
    needed, stack, nodes = set(), [name], []
    while stack:
        t = stack.pop()
        if t in needed or t in inits or not t:
            continue
        needed.add(t)
        n = prod.get(t)
        if n is None or n.domain not in ("", "ai.onnx") or len(needed) > 200:
            return None
        if n not in nodes:
            nodes.append(n)
        stack.extend(n.input)
    order = [n for n in g.node if n in nodes]
    used = {x for n in order for x in n.input}
    sub = helper.make_graph(order, "fold", [], [helper.make_tensor_value_info(name, 0, None)],
                            initializer=[t for t in g.initializer if t.name in used])
    sub_model = helper.make_model(sub, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    try:
        from onnx.reference import ReferenceEvaluator

        return ReferenceEvaluator(sub_model).run(None, {})[0]
    except Exception:  # noqa: BLE001 - unfoldable: treat as unknown
        return None


def prune(g: onnx.GraphProto) -> None:
    """Drop nodes, initializers and inputs that no graph output needs (in place)."""
    needed = {o.name for o in g.output}
    keep = []
    for node in reversed(list(g.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(x for x in node.input if x)
            for sub in subgraphs(node):
                needed |= outer_references(sub)
    keep.reverse()
    g.ClearField("node")
    g.node.extend(keep)
    inits = [t for t in g.initializer if t.name in needed]
    g.ClearField("initializer")
    g.initializer.extend(inits)
    kept = [i for i in g.input if i.name in needed]
    if len(kept) != len(g.input):
        g.ClearField("input")
        g.input.extend(kept)
