"""Shape inference, node by node, with the values of small tensors (shape vectors) tracked."""

from __future__ import annotations

import onnx
from onnx import helper


def set_dims(vi: onnx.ValueInfoProto, dims: list) -> None:
    shape = vi.type.tensor_type.shape
    shape.ClearField("dim")
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        elif d is not None:
            dim.dim_value = int(d)


# ---- node-by-node propagation with values of small integer tensors ------------------------------
# onnx's whole-graph inference gives up on Reshape/Expand/Resize whose shape operand is computed
# (Shape -> Gather -> Concat), which is how exporters write dynamic code. Walking the nodes in order,
# tracking the values of small tensors and asking onnx to infer one node at a time with those values
# (infer_node_outputs' input_data) sizes those too.

_VALUE_LIMIT = 4096  # elements: shape vectors, scalars, small constants


def _np_eval(node: onnx.NodeProto, ins: list, opset: int):
    """Numpy versions of the usual shape-computation ops; None when not handled here."""
    import numpy as np

    op = node.op_type
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if op == "Identity":
        return ins[0]
    if op == "Cast":
        return ins[0].astype(onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))
    if op in ("Add", "Sub", "Mul"):
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](ins[0], ins[1])
    if op == "Div" and ins[0].dtype.kind in "iu":
        return (np.trunc(ins[0] / ins[1])).astype(ins[0].dtype)
    if op == "Concat":
        return np.concatenate(ins, axis=attrs.get("axis", 0))
    if op == "Gather":
        return np.take(ins[0], ins[1], axis=attrs.get("axis", 0))
    if op == "Unsqueeze":
        axes = attrs.get("axes") if opset < 13 else (ins[1].tolist() if len(ins) > 1 else None)
        out = ins[0]
        rank = out.ndim + len(axes)
        for a in sorted(a + rank if a < 0 else a for a in axes):
            out = np.expand_dims(out, a)
        return out
    if op == "Squeeze":
        axes = attrs.get("axes") if opset < 13 else (ins[1].tolist() if len(ins) > 1 else None)
        return np.squeeze(ins[0], axis=None if axes is None else tuple(axes))
    if op == "Slice" and opset >= 10:
        data, starts, ends = ins[0], ins[1], ins[2]
        axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
        steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
        sl = [slice(None)] * data.ndim
        for s, e, a, st in zip(starts, ends, axes, steps):
            sl[int(a)] = slice(int(s), int(e), int(st))
        return data[tuple(sl)]
    return None


class Propagator:
    """Node-by-node shape (and small-value) propagation over one graph, one step() per node in
    order; graph edits ahead of the current node just need step() on the new/changed nodes."""

    def __init__(self, model: onnx.ModelProto, input_dims: dict[str, list] | None = None):
        import numpy as np
        from onnx import numpy_helper

        self.model = model
        self.opsets = {(o.domain or ""): o.version for o in model.opset_import}
        self.types: dict[str, onnx.TypeProto] = {}
        self.values: dict = {}
        self._cache: dict[str, tuple] = {}
        g = model.graph
        for vi in g.input:
            if not vi.type.HasField("tensor_type"):
                continue
            if input_dims and vi.name in input_dims:
                self._set(vi.name, vi.type.tensor_type.elem_type, input_dims[vi.name])
            else:
                self.types[vi.name] = vi.type
        for t in g.initializer:
            self.add_initializer(t)
        self._np, self._nh = np, numpy_helper

    def add_initializer(self, t: onnx.TensorProto) -> None:
        import numpy as np
        from onnx import numpy_helper

        self._set(t.name, t.data_type, list(t.dims))
        n = int(np.prod(t.dims)) if t.dims else 1
        if n <= _VALUE_LIMIT and t.data_location != onnx.TensorProto.EXTERNAL:
            self.values[t.name] = numpy_helper.to_array(t)

    def _set(self, name, elem, dims):
        self.types[name] = helper.make_tensor_type_proto(elem, dims)
        self._cache.pop(name, None)

    def get(self, name: str, default=(0, None)):
        """(elem_type, dims) like the dict propagate() returns."""
        if name in self._cache:
            return self._cache[name]
        tp = self.types.get(name)
        if tp is None or not tp.HasField("tensor_type"):
            return default
        out = (tp.tensor_type.elem_type, _tp_dims(tp))
        self._cache[name] = out
        return out

    def step(self, node: onnx.NodeProto) -> None:
        np, numpy_helper = self._np, self._nh
        from onnx import defs, shape_inference

        types, values = self.types, self.values
        domain = node.domain or ""
        if domain == "ai.onnx":
            domain = ""
        opset = self.opsets.get(domain, 1)
        for o in node.output:
            self._cache.pop(o, None)
            values.pop(o, None)
        if node.op_type == "Constant" and domain == "":
            from ._graph import constant_value

            sub = onnx.GraphProto()
            sub.node.append(node)
            v = constant_value(node.output[0], sub, {node.output[0]: node})
            if v is not None:
                v = np.asarray(v)
                self._set(node.output[0], helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
                if v.size <= _VALUE_LIMIT:
                    values[node.output[0]] = v
            return
        out_types = {}
        try:
            schema = defs.get_schema(node.op_type, opset, domain)
        except Exception:  # noqa: BLE001 - custom/plugin ops: outputs unknown
            schema = None
        if schema is not None:
            in_types = {x: types[x] for x in node.input if x in types}
            in_data = {x: numpy_helper.from_array(np.asarray(values[x]), x) for x in node.input if x in values}
            try:
                out_types = shape_inference.infer_node_outputs(
                    schema, node, in_types, in_data, opset_imports=list(self.model.opset_import),
                    ir_version=self.model.ir_version)
            except Exception:  # noqa: BLE001 - inconsistent shapes: outputs unknown
                out_types = {}
        for o in node.output:
            if o in out_types:
                types[o] = out_types[o]
            else:
                types.pop(o, None)
        if domain != "":
            return
        if node.op_type in ("Shape", "Size") and node.input[0] in types:
            d = _tp_dims(types[node.input[0]])
            if d is not None and all(isinstance(x, int) for x in d):
                if node.op_type == "Size":
                    values[node.output[0]] = np.array(int(np.prod(d)), np.int64)
                else:
                    attrs = {a.name: a.i for a in node.attribute}
                    start, end = attrs.get("start", 0), attrs.get("end", len(d))
                    values[node.output[0]] = np.array(d[start:end] if "end" in attrs else d[start:], np.int64)
            return
        ins = [values.get(x) if x else None for x in node.input]
        if not node.input or any(v is None for x, v in zip(node.input, ins) if x):
            return
        try:
            v = _np_eval(node, ins, opset)
            if v is None and len(node.output) == 1 and not any(True for _ in _subgraph_attrs(node)):
                v = _ref_eval(self.model, node, ins)
        except Exception:  # noqa: BLE001 - leave unknown
            v = None
        if v is not None and np.size(v) <= _VALUE_LIMIT:
            values[node.output[0]] = np.asarray(v)

    def shapes(self) -> dict[str, tuple[int, list | None]]:
        return {name: self.get(name) for name, tp in self.types.items() if tp.HasField("tensor_type")}


def propagate(model: onnx.ModelProto, input_dims: dict[str, list] | None = None) -> dict[str, tuple[int, list | None]]:
    """name -> (elem_type, dims) for the main graph, node by node (see the comment above)."""
    p = Propagator(model, input_dims)
    for node in model.graph.node:
        p.step(node)
    return p.shapes()


def all_types(model: onnx.ModelProto) -> dict[str, tuple[int, list | None]]:
    """propagate() for the main graph, and for tensors of If/Loop/Scan bodies what onnx's shape
    inference puts in their value_info (names are unique across scopes)."""
    types = propagate(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - custom ops, models over 2 GB: main-graph types only
        return types
    from ._graph import dims_of, iter_graphs

    for k, g in enumerate(iter_graphs(inferred.graph)):
        if k == 0:  # the main graph: propagate() knows it better
            continue
        for vi in list(g.value_info) + list(g.output) + list(g.input):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
                types.setdefault(vi.name, (vi.type.tensor_type.elem_type, dims_of(vi)))
    return types


def _subgraph_attrs(node):
    return (a for a in node.attribute if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS))


def _ref_eval(model, node, ins):
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    names = [x for x in node.input if x]
    g = helper.make_graph([node], "v", [helper.make_tensor_value_info(x, 0, None) for x in names],
                          [helper.make_tensor_value_info(node.output[0], 0, None)])
    m = helper.make_model(g, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    feeds = {x: np.asarray(v) for x, v in zip(node.input, ins) if x}
    return ReferenceEvaluator(m).run(None, feeds)[0]


def _tp_dims(tp: onnx.TypeProto):
    if not tp.HasField("tensor_type") or not tp.tensor_type.HasField("shape"):
        return None
    out = []
    for d in tp.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:  # some exporters write -1 for "dynamic"
            out.append(d.dim_value)
        elif d.dim_param:
            out.append(d.dim_param)
        else:
            out.append(None)
    return out
