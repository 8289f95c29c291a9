"""Find a YOLOv5-style Detect head in an exported model and read its parameters from the graph.

The detection convs are the last convs before the output: Conv nodes among the output's ancestors
with no other Conv downstream of them. Their channel count gives na * (nc + 5); the output's last
dim gives nc + 5. Anchors (pixels) are the constants in each level's decode that hold one (w, h)
pair per anchor, the same over the grid (YOLOv5's ``anchor_grid``); strides follow from the input
size and the grid sizes. Works on TorchScript and dynamo exports, P5 and P6, static or dynamic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from .._graph import constant_value, data_inputs, dims_of, fold_constant, producers
from .._shapes import propagate
from ..errors import TrtDeployError


class NotDetection(TrtDeployError):
    """A YOLOv5 head that is not a detection head (segmentation): refused as it is, never retried as another family."""


@dataclass
class YoloHead:
    output: str                  # the original decoded output [B, N, nc + 5]
    convs: list[str]             # detection conv outputs, finest level first: [B, na*(nc+5), H, W]
    conv_nodes: list[str]        # their node names
    num_classes: int
    num_anchors: int
    anchors: list[list[float]]   # per level: na (w, h) pairs flattened, pixels
    strides: list[int]
    input_name: str
    input_shape: list = field(default_factory=list)

    @property
    def max_stride(self) -> int:
        return max(self.strides)

    @property
    def flat_anchors(self) -> list[float]:
        return [float(v) for level in self.anchors for v in level]


def _ancestors(graph: onnx.GraphProto, tensor: str) -> list[onnx.NodeProto]:
    """Nodes the tensor depends on, in graph order."""
    prod = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
    seen, stack = set(), [tensor]
    while stack:
        i = prod.get(stack.pop())
        if i is None or i in seen:
            continue
        seen.add(i)
        stack.extend(x for x in graph.node[i].input if x)
    return [graph.node[i] for i in sorted(seen)]


def _descendants(nodes: list[onnx.NodeProto], tensor: str) -> list[onnx.NodeProto]:
    live, out = {tensor}, []
    for n in nodes:  # nodes in graph order
        if any(x in live for x in n.input):
            out.append(n)
            live.update(n.output)
    return out


def find_head(model: onnx.ModelProto, output: str | None = None, anchors: list[float] | None = None,
              num_classes: int | None = None, probe_size: int = 640) -> YoloHead:
    """Locate the Detect head; flags (output, anchors, num_classes) override what the graph says."""
    g = model.graph
    inputs = data_inputs(g)
    if len(inputs) != 1:
        raise TrtDeployError(f"expected one image input, found {len(inputs)} ({', '.join(i.name for i in inputs)})")
    image = inputs[0]
    in_dims = dims_of(image) or []
    if len(in_dims) != 4:
        raise TrtDeployError(f"input '{image.name}' is not [B, 3, H, W]")
    probe = [d if isinstance(d, int) else (1 if a == 0 else probe_size) for a, d in enumerate(in_dims)]
    shapes = propagate(model, {image.name: probe})
    outs = [o.name for o in g.output]
    if output is None:
        cands = [o for o in outs if (shapes.get(o, (0, None))[1] or [None]) and len(shapes[o][1]) == 3
                 and isinstance(shapes[o][1][-1], int) and shapes[o][1][-1] > 5]
        if not cands:
            raise TrtDeployError("no output of shape [B, N, nc+5] (the decoded detections); name it with --output")
        output = cands[0]
    elif output not in outs:
        raise TrtDeployError(f"'{output}' is not a graph output (outputs: {', '.join(outs)})")
    out_dims = shapes.get(output, (0, None))[1]
    no = out_dims[-1] if out_dims and isinstance(out_dims[-1], int) else None
    if num_classes is not None:
        no = num_classes + 5
    if not no or no <= 5:
        raise TrtDeployError(f"cannot tell the class count from output '{output}'; pass --num-classes")
    anc = _ancestors(g, output)
    convs = [n for n in anc if n.op_type == "Conv"]
    leaf = [c for c in convs if not any(d.op_type == "Conv" for d in _descendants(anc, c.output[0])[1:])]
    if not leaf:
        raise TrtDeployError(f"no Conv feeds output '{output}'; is this a YOLOv5 Detect head?")
    chans = {}
    for c in leaf:
        d = shapes.get(c.output[0], (0, None))[1]
        if not d or len(d) != 4 or not all(isinstance(x, int) for x in d[1:]):
            raise TrtDeployError(f"cannot size the output of conv '{c.name}'")
        chans[c.output[0]] = d
    bad = [f"'{c.name}' ({chans[c.output[0]][1]} channels)" for c in leaf if chans[c.output[0]][1] % no]
    if bad:
        raise TrtDeployError(f"detection convs must have na*(nc+5) = na*{no} channels: {', '.join(bad)}")
    na_set = {chans[c.output[0]][1] // no for c in leaf}
    if len(na_set) != 1:
        raise TrtDeployError(f"levels have different anchor counts {sorted(na_set)}")
    na = na_set.pop()
    raw = _without_sigmoid(g, output, {c.output[0]: c for c in leaf})
    if raw is not None:
        extra = [f"output '{o.name}' {dims_of(o)}" for o in g.output if o.name != output and len(dims_of(o) or []) == 4]
        raise NotDetection(f"a YOLOv5 segmentation head: part of conv '{raw.name}''s {no} values per anchor reach "
                           f"output '{output}' without a Sigmoid (mask coefficients, so not {no - 5} classes)"
                           + (f"; {extra[0]} holds the mask prototypes" if extra else "")
                           + "; only detection heads are supported")
    leaf.sort(key=lambda c: -chans[c.output[0]][2] * chans[c.output[0]][3])  # finest grid first
    in_h = probe[2]
    strides = []
    for c in leaf:
        h = chans[c.output[0]][2]
        if in_h % h:
            raise TrtDeployError(f"conv '{c.name}' grid {h} does not divide the input height {in_h}")
        strides.append(in_h // h)
    if anchors is not None:
        flat = [float(a) for a in anchors]
        if len(flat) != 2 * na * len(leaf):
            raise TrtDeployError(f"--anchors needs {2 * na * len(leaf)} values (na={na}, {len(leaf)} levels), got {len(flat)}")
        per_level = [flat[i * 2 * na:(i + 1) * 2 * na] for i in range(len(leaf))]
    else:
        per_level = [_level_anchors(model, anc, c, na) for c in leaf]
    return YoloHead(output=output, convs=[c.output[0] for c in leaf], conv_nodes=[c.name for c in leaf],
                    num_classes=no - 5, num_anchors=na, anchors=per_level, strides=strides,
                    input_name=image.name, input_shape=in_dims)


def _without_sigmoid(g: onnx.GraphProto, output: str, convs: dict) -> onnx.NodeProto | None:
    """A detection conv whose values reach ``output`` on some path without a Sigmoid (data paths only:
    Shape ends a path), or None. YOLOv5's Detect applies the Sigmoid to every value of the conv; its
    Segment splits off the mask coefficients first and passes them on raw."""
    prod = producers(g)
    seen, stack = set(), [output]
    while stack:
        name = stack.pop()
        if name in convs:
            return convs[name]
        node = prod.get(name)
        if node is None or id(node) in seen or node.op_type in ("Sigmoid", "Shape", "Size"):
            continue
        seen.add(id(node))
        stack.extend(x for x in node.input if x)
    return None


def _level_anchors(model, anc, conv, na) -> list[float]:
    """The anchor_grid constant of one level: shape [..., na, ..., 2], equal over the grid cells."""
    g = model.graph
    prod = producers(g)
    found = []
    for n in _descendants(anc, conv.output[0]):
        if n.op_type != "Mul":
            continue
        for x in n.input:
            v = constant_value(x, g, prod)
            if v is None and x in prod and prod[x].op_type in ("Expand", "Reshape", "Unsqueeze", "Tile", "Identity"):
                v = fold_constant(model, x)
            while v is None and x in prod and prod[x].op_type in ("Expand", "Tile", "Identity", "Cast"):
                x = prod[x].input[0]  # a grid-sized copy of per-anchor values (dynamic exports)
                v = constant_value(x, g, prod)
            if v is None:
                continue
            v = np.asarray(v, np.float64)
            if v.ndim < 2 or v.shape[-1] != 2 or v.size % (2 * na):
                continue
            axes = [a for a, s in enumerate(v.shape[:-1]) if s == na]
            if not axes:
                continue
            per = np.moveaxis(v, axes[0], 0).reshape(na, -1, 2)
            if np.allclose(per, per[:, :1, :]) and (per > 0).all() and not np.allclose(per, per.flat[0]):
                found.append(per[:, 0, :].reshape(-1))
    if not found:
        raise TrtDeployError(f"no anchor constant found after conv '{conv.name}' (YOLOv5 anchor_grid); "
                             "pass them with --anchors w,h,w,h,... (pixels, level by level)")
    return [float(a) for a in found[0]]
