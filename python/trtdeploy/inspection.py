"""What a model is: I/O, opsets, op histogram, weights, dynamic dims, nodes with shapes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx

from ._graph import data_inputs, dims_of, dtype_name, elem_type, format_dims
from ._shapes import all_types


def _io(vi: onnx.ValueInfoProto) -> dict:
    return {"name": vi.name, "dtype": dtype_name(elem_type(vi)), "shape": dims_of(vi)}


def _tensor_bytes(t: onnx.TensorProto) -> int:
    """The bytes of a tensor's data, stored inline or externally (an inline tensor's ByteSize counts the
    protobuf framing and name too)."""
    if t.data_location == onnx.TensorProto.EXTERNAL:
        length = next((int(e.value) for e in t.external_data if e.key == "length"), None)
        if length is not None:
            return length
    elif t.HasField("raw_data"):
        return len(t.raw_data)
    if t.data_type == onnx.TensorProto.STRING:
        return sum(len(x) for x in t.string_data)
    n = int(np.prod(t.dims)) if t.dims else 1
    try:
        return n * np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    except (KeyError, TypeError, ValueError):  # a type numpy has no dtype for
        return t.ByteSize()


_SMALL = 4096  # elements: the shape vectors and scalars the detector's shape inference needs


def _for_detector(model: onnx.ModelProto, base_dir) -> onnx.ModelProto | None:
    """A copy for the detector's recognition, without reading weights: the small external initializers
    (shape vectors, anchors, scalars: up to _SMALL elements) read from their files, the larger ones left
    without data (their dims and types stay; reading one is a ValueError, wherever the command runs).
    None when nothing is external. OSError/ValidationError when a small one cannot be read."""
    from onnx.external_data_helper import load_external_data_for_tensor

    external = [k for k, t in enumerate(model.graph.initializer) if t.data_location == onnx.TensorProto.EXTERNAL]
    if not external:
        return None
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for k in external:
        t = m.graph.initializer[k]
        if (int(np.prod(t.dims)) if t.dims else 1) <= _SMALL:
            if base_dir is None:
                raise OSError("the model's folder is not known")
            load_external_data_for_tensor(t, str(base_dir))
        t.data_location = onnx.TensorProto.DEFAULT
        del t.external_data[:]
    return m


def summary(model: onnx.ModelProto, nodes: bool = False, path=None) -> dict:
    """``path``: the model's file, for the small external tensors the detector needs (weights aside)."""
    from pathlib import Path

    g = model.graph
    init_bytes = sum(_tensor_bytes(t) for t in g.initializer)
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

    # the YOLO/RT-DETR head `yolo patch` would work on, or None; its shape constants may be external data
    info["detector"] = None
    unreadable = (OSError, ValueError, onnx.checker.ValidationError)  # a missing file: onnx's ValidationError
    try:
        loaded = _for_detector(model, Path(path).parent if path is not None else None)
    except unreadable as exc:
        info["detector_note"] = f"not checked: the external data could not be read ({str(exc).splitlines()[0]})"
    else:
        try:
            info["detector"] = describe(loaded if loaded is not None else model)
        except unreadable:  # recognizing this head reads weights (a DFL's), which inspect leaves unread
            info["detector_note"] = ("not checked: recognizing the head reads weights, which are in external data "
                                     "that inspect does not read (`yolo patch` reads them)")
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
    if info.get("detector_note"):
        lines.append(f"detector: {info['detector_note']}")
    if info.get("detector"):
        d = info["detector"]
        lines.append(f"detector: {d['family']}" + (f" ({d['classes'] or '?'} classes) on '{d['output']}' "
                                                    f"{format_dims(d['shape'])}{d.get('assumed', '')}, boxes {d['boxes']}"
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
