"""float32 -> float16 for strongly typed TensorRT (where FP16 comes from the model's own types).

Weights and activations become float16; chosen graph inputs/outputs stay float32 with a Cast at the
boundary (the caller keeps feeding/reading float32). Precision-sensitive ops (reductions that
accumulate, NMS, TopK, ...), nodes asked for by name, and plugin (non-ONNX-domain) nodes stay in
float32: their float inputs are cast back, so a plugin sees exactly the types it was exported with.
Which operands follow the data type comes from each op's ONNX schema (a Resize ``scales`` stays
float32, a Cast keeps its ``to``), so the result type-checks.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import defs, helper, numpy_helper

from .._graph import NameGen, constant_value, copy_model, model_graphs, node_label, subgraphs
from .._shapes import propagate
from ..errors import TrtDeployError

KEEP_FP32_OPS = {
    "NonMaxSuppression", "TopK", "RoiAlign", "Range", "CumSum", "ReduceSum", "ReduceMean", "ReduceL2",
    "ReduceLogSumExp", "ReduceSumSquare", "LayerNormalization", "GroupNormalization", "InstanceNormalization",
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Einsum", "STFT", "DFT",
}
_F16_MAX = 65504.0
_F16_TINY = 2.0**-25  # below half the smallest float16 subnormal: rounds to 0


def _schema(node: onnx.NodeProto, opsets: dict[str, int]):
    try:
        return defs.get_schema(node.op_type, opsets.get(node.domain or "", 1), node.domain or "")
    except Exception:  # noqa: BLE001 - unknown op
        return None


def _follow_data(schema, k: int, is_input: bool) -> bool:
    """Whether input/output k of an op takes the op's float data type (a type parameter shared by a
    data input and an output, allowing float16), rather than a fixed type."""
    params = schema.inputs if is_input else schema.outputs
    if not params:
        return False
    p = params[min(k, len(params) - 1)]  # variadic: the last formal parameter repeats
    constraint = next((c for c in schema.type_constraints if c.type_param_str == p.type_str), None)
    if constraint is None or "tensor(float16)" not in constraint.allowed_type_strs:
        return False
    others = schema.outputs if is_input else schema.inputs
    return any(o.type_str == p.type_str for o in others)


def _unrepresentable(arr: np.ndarray) -> str | None:
    """Why float16 cannot hold these float32 values (overflow to inf, or a constant such as an epsilon
    whose every nonzero value underflows to 0), or None."""
    if arr.dtype != np.float32 or not arr.size:
        return None
    finite = np.abs(arr[np.isfinite(arr)])
    top = float(finite.max(initial=0.0))
    if top > _F16_MAX:
        return f"values up to {top:.3g}, over float16's {_F16_MAX:g}"
    nonzero = finite[finite > 0]
    if nonzero.size and float(nonzero.max()) < _F16_TINY:
        return f"values of {float(nonzero.max()):.3g} at most, which float16 rounds to 0"
    return None


def check_keep_ops(model: onnx.ModelProto, ops) -> list[str]:
    """--keep-op names: an op that is neither an ONNX op nor in the model is an error (a typo);
    an ONNX op the model does not use gives a note."""
    import difflib

    used = {n.op_type for g in model_graphs(model) for n in g.node}
    known = {s.name for s in defs.get_all_schemas()} | used
    notes = []
    for op in ops:
        if op not in known:
            close = difflib.get_close_matches(op, sorted(known), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise TrtDeployError(f"--keep-op {op}: not an ONNX op, and no node of the model has that op type{hint}")
        if op not in used:
            notes.append(f"--keep-op {op}: the model has no {op} node")
    return notes


def to_fp16(model: onnx.ModelProto, keep_io_fp32: bool = True, keep_ops: set[str] | None = None,
            keep_nodes: set[str] | None = None, kept: list[str] | None = None) -> onnx.ModelProto:
    """The model with float32 weights and activations in float16 (see the module doc). A node reading a
    constant that float16 cannot hold stays float32 with that constant; ``kept`` (a list) receives
    one line per such node, saying why."""
    m = copy_model(model)
    g = m.graph
    opsets = {(o.domain or ""): o.version for o in m.opset_import}
    keep_ops = KEEP_FP32_OPS if keep_ops is None else set(keep_ops)
    keep_nodes = set(keep_nodes or ())
    types = {k: v[0] for k, v in propagate(m).items()}
    unknown_nodes = sorted(keep_nodes - {n.name for n in g.node})
    if unknown_nodes:
        raise TrtDeployError(f"--keep-node: no node named {', '.join(repr(n) for n in unknown_nodes)}")
    fresh = NameGen(m)
    inits = {t.name: t for t in g.initializer}
    const_nodes = {n.output[0]: n for n in g.node if n.op_type == "Constant" and n.domain in ("", "ai.onnx")}
    # constants float16 cannot hold: they stay float32, and so does every node that reads them
    out_of_range = {}
    for name, t in inits.items():
        if t.data_type == TP.FLOAT and (why := _unrepresentable(numpy_helper.to_array(t))):
            out_of_range[name] = why
    for name, n in const_nodes.items():
        arr = constant_value(name, onnx.GraphProto(), {name: n}) if name not in inits else None
        if arr is not None and (why := _unrepresentable(np.asarray(arr))):
            out_of_range[name] = why
    for n in g.node:
        bad = [x for x in n.input if x in out_of_range]
        if bad and kept is not None:
            kept.append(f"{node_label(n)}: its constant '{bad[0]}' has {out_of_range[bad[0]]}")

    untyped = [n for n in g.node if any(x and not types.get(x) for x in n.input)]
    if untyped and kept is not None:
        kept.append(f"{len(untyped)} node(s) reading tensors of unknown type (outputs of ops shape inference does "
                    f"not know, e.g. {node_label(untyped[0])}); they stay as they are")
    untyped_keys = {tuple(n.output) for n in untyped}  # outputs name a node (ids of proto wrappers do not)

    def fp32_node(n: onnx.NodeProto) -> bool:
        return (n.domain not in ("", "ai.onnx") or n.op_type in keep_ops or n.name in keep_nodes
                or any(True for _ in subgraphs(n)) or any(x in out_of_range for x in n.input)
                or tuple(n.output) in untyped_keys)

    # 1. what each node wants on each float32 input, and what type its outputs get
    want: dict[tuple[int, int], int] = {}
    produced: dict[str, int] = {}
    for i, n in enumerate(g.node):
        if n.op_type == "Constant" and n.output[0] in const_nodes:
            continue
        schema = None if fp32_node(n) else _schema(n, opsets)
        for k, x in enumerate(n.input):
            if x and types.get(x) == TP.FLOAT:
                want[(i, k)] = TP.FLOAT16 if schema is not None and _follow_data(schema, k, True) else TP.FLOAT
        for k, o in enumerate(n.output):
            if o and types.get(o) == TP.FLOAT:
                follows = schema is not None and _follow_data(schema, k, False) and any(
                    want.get((i, j)) == TP.FLOAT16 for j in range(len(n.input)))
                if n.op_type == "Cast" and schema is not None:
                    follows = False  # a Cast's output type is its `to`
                produced[o] = TP.FLOAT16 if follows else TP.FLOAT
    # 2. constants (initializers, Constant nodes) take the type their readers want, if all agree
    readers: dict[str, set[int]] = {}
    for (i, k), t in want.items():
        readers.setdefault(g.node[i].input[k], set()).add(t)
    # an initializer that is also a graph input (IR < 4 exports list every weight there) is an input whose
    # default is the initializer: a feed may replace it, so it stays float32 like the other inputs and its
    # readers get a Cast (TensorRT and onnxruntime fold the Cast of a constant)
    overridable = {vi.name for vi in g.input} & set(inits)
    for name, ts in readers.items():
        if ts == {TP.FLOAT16} and (name in inits or name in const_nodes) and name not in out_of_range \
                and name not in overridable:
            tensor = inits[name] if name in inits else next(
                (a.t for a in const_nodes[name].attribute if a.name == "value"), None)
            if tensor is None:  # value_float(s): left float32, the edge gets a Cast
                continue
            arr = numpy_helper.to_array(tensor)
            if arr.dtype == np.float32:
                tensor.CopyFrom(numpy_helper.from_array(arr.astype(np.float16), tensor.name))
                produced[name] = TP.FLOAT16
    for name in inits:
        produced.setdefault(name, types.get(name, 0))
    for name in const_nodes:
        produced.setdefault(name, types.get(name, 0))
    for vi in g.input:
        produced.setdefault(vi.name, vi.type.tensor_type.elem_type)
    # 3. Casts where a reader wants another type than the tensor has
    casts: dict[tuple[str, int], str] = {}
    new_nodes = []
    for i, n in enumerate(g.node):
        for k, x in enumerate(n.input):
            need = want.get((i, k))
            have = produced.get(x)
            if need is None or have is None or need == have:
                continue
            key = (x, need)
            if key not in casts:
                casts[key] = fresh(f"{x}_{'fp16' if need == TP.FLOAT16 else 'fp32'}")
                new_nodes.append((i, helper.make_node("Cast", [x], [casts[key]], name=fresh(f"{x}_Cast"), to=need)))
            n.input[k] = casts[key]
    for i, node in sorted(new_nodes, key=lambda p: -p[0]):  # insert right before the first reader
        g.node.insert(i, node)
    # 4. graph outputs: float32 outputs produced in float16 get a Cast (the output keeps its name)
    for out in g.output:
        if out.type.tensor_type.elem_type != TP.FLOAT or produced.get(out.name) != TP.FLOAT16:
            continue
        if keep_io_fp32:
            inner = fresh(f"{out.name}_fp16")
            for n in g.node:
                n.output[:] = [inner if o == out.name else o for o in n.output]
                n.input[:] = [inner if x == out.name else x for x in n.input]
            g.node.append(helper.make_node("Cast", [inner], [out.name], name=fresh(f"{out.name}_Cast"), to=TP.FLOAT))
        else:
            out.type.tensor_type.elem_type = TP.FLOAT16
    g.ClearField("value_info")
    try:
        onnx.shape_inference.infer_shapes(m, strict_mode=True, check_type=True)
    except onnx.shape_inference.InferenceError as exc:
        raise TrtDeployError(f"the float16 model does not type-check: {_named_types(str(exc).splitlines()[0])}") \
            from None
    except Exception:  # noqa: BLE001 - plugin ops: inference cannot judge
        pass
    return m


def _named_types(text: str) -> str:
    """onnx's inference messages write element types as numbers ("(10) vs (1)"): their names instead."""
    import re

    def name(k: str) -> str:
        return TP.DataType.Name(int(k)) if int(k) in TP.DataType.values() else k

    return re.sub(r"\((\d+)\) vs \((\d+)\)", lambda mt: f"({name(mt.group(1))}) vs ({name(mt.group(2))})", text)
