"""What a model is: I/O, opsets, op histogram, weights, dynamic dims, nodes with shapes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx

from ._graph import data_inputs, dims_of, dtype_name, elem_type, format_dims
from ._shapes import all_types


def _io(vi: onnx.ValueInfoProto) -> dict:
    return {"name": vi.name, "dtype": dtype_name(elem_type(vi)), "shape": dims_of(vi)}


def summary(model: onnx.ModelProto, nodes: bool = False) -> dict:
    g = model.graph
    init_bytes = 0
    for t in g.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            length = next((int(e.value) for e in t.external_data if e.key == "length"), None)
            if length is None:
                n = int(np.prod(t.dims)) if t.dims else 1
                length = n * np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
            init_bytes += length
        else:
            init_bytes += t.ByteSize()
    inputs = [_io(vi) for vi in data_inputs(g)]
    outputs = [_io(vi) for vi in g.output]
    dynamic = [{"tensor": io["name"], "axis": a, "dim": d}
               for io in inputs + outputs for a, d in enumerate(io["shape"] or []) if not isinstance(d, int)]
    info = {
        "ir_version": model.ir_version,
        "opsets": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "graph": g.name,
        "inputs": inputs,
        "outputs": outputs,
        "dynamic_dims": dynamic,
        "node_count": len(g.node),
        "body_node_count": sum(1 for _, where in _walk(g) if where),
        "op_types": dict(Counter(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"
                                 for n in g.node).most_common()),
        "initializers": len(g.initializer),
        "initializer_bytes": init_bytes,
    }
    from .yolo.families import describe

    info["detector"] = describe(model)  # the YOLO/RT-DETR head `yolo patch` would work on, or None
    if nodes:
        types = all_types(model)

        def shape(t):
            e, d = types.get(t, (0, None))
            return {"name": t, "dtype": dtype_name(e), "shape": d}

        info["nodes"] = [{"name": n.name, "op_type": n.op_type, "domain": n.domain, "graph": where,
                          "inputs": [shape(x) for x in n.input],
                          "outputs": [shape(x) for x in n.output]} for n, where in _walk(g)]
    return info


def _walk(g: onnx.GraphProto, where: str = ""):
    """(node, the body it is in: '' for the main graph, else 'node/attribute', nested with ' > ')."""
    for n in g.node:
        yield n, where
        for a in n.attribute:
            bodies = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
            for body in bodies:
                inner = f"{n.name or n.op_type}/{a.name}"
                yield from _walk(body, f"{where} > {inner}" if where else inner)


def format_summary(info: dict) -> str:
    lines = [f"ir {info['ir_version']}, opsets {', '.join(f'{k} {v}' for k, v in info['opsets'].items())}, "
             f"producer {info['producer'] or '?'}"]
    for kind in ("inputs", "outputs"):
        lines.append(f"{kind}:")
        for io in info[kind]:
            lines.append(f"  {io['name']}: {io['dtype']} {format_dims(io['shape'])}")
    dyn = info["dynamic_dims"]
    lines.append("dynamic dims: " + (", ".join(f"{d['tensor']}[{d['axis']}]={d['dim'] or '?'}" for d in dyn)
                                     if dyn else "none (static model)"))
    bodies = f" (+{info['body_node_count']} in If/Loop/Scan bodies)" if info.get("body_node_count") else ""
    lines.append(f"nodes: {info['node_count']}{bodies}  " +
                 ", ".join(f"{op} {n}" for op, n in info["op_types"].items()))
    lines.append(f"initializers: {info['initializers']} ({_human(info['initializer_bytes'])})")
    if info.get("detector"):
        d = info["detector"]
        lines.append(f"detector: {d['family']}" + (f" ({d['classes'] or '?'} classes) on '{d['output']}' "
                                                    f"{format_dims(d['shape'])}, boxes {d['boxes']}"
                                                    if "output" in d else " (yolo patch output)"))
    body = None
    for n in info.get("nodes", []):
        if n.get("graph") and n["graph"] != body:
            lines.append(f"  in {n['graph']}:")
        body = n.get("graph")
        ins = ", ".join(f"{x['name']} {format_dims(x['shape'])}" for x in n["inputs"] if x["name"])
        outs = ", ".join(f"{x['name']} {x['dtype']} {format_dims(x['shape'])}" for x in n["outputs"])
        indent = "  " * (1 + (body.count(" > ") + 1 if body else 0))
        lines.append(f"{indent}{n['name'] or '(unnamed)'} [{n['op_type']}] {ins} -> {outs}")
    return "\n".join(lines)


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
