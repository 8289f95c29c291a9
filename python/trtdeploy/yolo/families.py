"""Which detector head an exported model ends in, read from its graph (never from its file name).

| family | output | what the rows hold |
|---|---|---|
| ``yolov5`` | ``[B, N, 5+nc]`` | YOLOv5 Detect: anchor-grid decode (see head.py); replaced by YoloLayer_TRT |
| ``yolov8`` | ``[B, 4+nc, N]`` | ultralytics anchor-free raw head (YOLOv8, YOLO11, and YOLO26/YOLOv10 exported with a raw head): cx, cy, w, h in input pixels, then nc class probabilities; needs NMS |
| ``yolo-end2end`` | ``[B, K, 6]`` | ultralytics NMS-free head (YOLO26/YOLOv10, ``nms=False``): x1, y1, x2, y2 in input pixels, score, class |
| ``rtdetr`` | ``[B, K, 6]`` | ultralytics RT-DETR: cx, cy, w, h normalized to [0, 1], score, class |
| ``rtdetr`` (``rtdetr-legacy``) | ``[B, K, 4+nc]`` | ultralytics <= 8.3 RT-DETR: cx, cy, w, h normalized, then nc class probabilities (score = the best, class = its first argmax) |

How each is recognized: from the structure of the node behind the output (looking through Identity
and Cast to float), never from the order of its dims; widths from node-by-node shape inference at
the model's size (640 for a dynamic H/W). ``--family`` does not replace that evidence: the layout
must be found whatever it says; it only picks the box format of a ``[B, K, 6]`` head and the output
when there are several.

* raw head ``[B, 4+nc, N]``: a Concat along the channel axis (1) of exactly two tensors, 4 box rows
  and nc rows that come from a Sigmoid (the class probabilities). A third part (mask coefficients,
  keypoints, angles) is a segmentation/pose/OBB head and is refused, and so is a raw head
  transposed to ``[B, N, 4+nc]``. ``DFL`` (a Conv whose fixed weight is 0, 1, ..., reg_max-1) tells
  YOLOv8/YOLO11/YOLOv10 from YOLO26 (no DFL) in the label.
* end-to-end head ``[B, K, 6]``: a Concat along the last axis of parts of widths 4, 1, 1 (boxes,
  score, class); more parts after them are a segmentation/pose/OBB head (refused). The two kinds
  differ in box format, which is read from what produces the 4 box columns: if every value provably
  comes from a Sigmoid through data movement only (gather, slice, reshape, transpose, concat), the
  boxes lie in [0, 1], so they are normalized: RT-DETR (its decoder's sigmoid box head, cx, cy, w, h).
  Otherwise (a multiplication by the stride tensor, as ultralytics' Detect does) they are pixels:
  YOLO26/YOLOv10 x1, y1, x2, y2. This is the one heuristic here; it is logged, ``--family``
  overrides it, and the check refuses a head whose values do not fit the assumed format.
* RT-DETR of ultralytics <= 8.3 ``[B, K, 4+nc]``: a Concat along the last axis of 4 box columns that
  provably lie in [0, 1] and nc Sigmoid class columns (with nc = 2 it is ``[B, K, 6]`` too; the
  widths tell it from an end-to-end head). With boxes not in [0, 1] it would be a channel-last raw
  head (refused).
* An export with ``NonMaxSuppression`` inside (ultralytics ``nms=True``, batch loop unrolled at
  export) is refused.
* YOLOv5: the existing matcher (anchor constants read from the graph).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from .._graph import constant_value, data_inputs, dims_of, format_dims, node_label, producers
from .._shapes import propagate
from ..errors import TrtDeployError

FAMILIES = ("yolov5", "yolov8", "yolo-end2end", "rtdetr")
DETECTION_OUTPUTS = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
METADATA_KEY = "trtdeploy.yolo"
SUPPORTED = ("supported: yolov5 (anchor head [B, N, 5+nc]), yolov8 (ultralytics raw head [B, 4+nc, N]: "
             "YOLOv8, YOLO11, YOLO26/YOLOv10 raw), yolo-end2end ([B, K, 6] x1y1x2y2: YOLO26/YOLOv10 nms=False), "
             "rtdetr ([B, K, 6] normalized cxcywh; ultralytics <= 8.3: [B, K, 4+nc])")
_MOVE = {"Gather", "GatherElements", "GatherND", "Slice", "Split", "Reshape", "Transpose", "Squeeze",
         "Unsqueeze", "Flatten", "Expand", "Identity", "Concat", "Tile", "Where"}


@dataclass
class Head:
    family: str                  # one of FAMILIES
    label: str                   # what inspect shows, e.g. "yolo26-end2end"
    output: str                  # the output the post-processing reads
    input_name: str
    input_shape: list            # the image input's dims (ints, or names for dynamic dims)
    output_shape: list           # the output's dims at the model's size (640 for a dynamic H/W)
    num_classes: int | None
    boxes: str                   # "cxcywh", "xyxy" (input pixels) or "cxcywh-normalized"
    layout: str = "channels"     # "channels" [B, 4+nc, N]; "score-class" [B, K, 6]; "class-probs" [B, K, 4+nc]
    rows: int | None = None      # K of a [B, K, ...] end-to-end head when it is known whatever the input size
    evidence: list[str] = field(default_factory=list)
    yolov5: object = None        # head.YoloHead for the yolov5 family

    def describe(self) -> str:
        nc = f", {self.num_classes} classes" if self.num_classes else ""
        return (f"{self.label}: output '{self.output}' {format_dims(self.output_shape)}{assumed_size(self.input_shape)}"
                f"{nc}, boxes {self.boxes}")


def _image_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    inputs = data_inputs(model.graph)
    if len(inputs) != 1:
        raise TrtDeployError(f"expected one image input, found {len(inputs)} ({', '.join(i.name for i in inputs)})")
    dims = dims_of(inputs[0]) or []
    if len(dims) != 4:
        raise TrtDeployError(f"input '{inputs[0].name}' is {format_dims(dims or None)}, not an image [B, 3, H, W]")
    return inputs[0]


def already_patched(model: onnx.ModelProto) -> str | None:
    names = [o.name for o in model.graph.output]
    found = [n for n in names if n in DETECTION_OUTPUTS]
    if found or any(p.key == METADATA_KEY for p in model.metadata_props):
        return (f"the model is already patched (outputs {', '.join(found or names)}); "
                "run `trtdeploy yolo patch` on the original export")
    return None


def detect(model: onnx.ModelProto, family: str | None = None, output: str | None = None) -> Head:
    """The detection head of ``model``; ``family``/``output`` override what the graph says.
    Raises TrtDeployError naming every output it could not match when there is none."""
    if family is not None and family not in FAMILIES:
        raise TrtDeployError(f"unknown family '{family}' ({', '.join(FAMILIES)})")
    reason = already_patched(model)
    if reason:
        raise TrtDeployError(reason)
    image = _image_input(model)
    in_dims = dims_of(image)
    probe = [d if isinstance(d, int) else (1 if a == 0 else 640) for a, d in enumerate(in_dims)]
    outs = [o.name for o in model.graph.output]
    if output is not None and output not in outs:
        raise TrtDeployError(f"'{output}' is not a graph output (outputs: {', '.join(outs)})")
    shapes = {k: v[1] for k, v in propagate(model, {image.name: probe}).items()}
    g = model.graph
    prod = producers(g)
    reasons: dict[str, list[str]] = {}  # why -> the outputs it holds for (one sentence, said once)
    for name in [output] if output else outs:
        dims = shapes.get(name) or dims_of(next(o for o in g.output if o.name == name))
        try:
            head = _match(model, prod, shapes, name, dims, family, image.name, in_dims)
        except TrtDeployError as exc:
            if output or family:
                raise
            why = str(exc).replace(f"output '{name}'", "the output")  # the same sentence for each output
            reasons.setdefault(why, []).append(f"'{name}' {format_dims(dims)}")
            continue
        if head is not None:
            return head
        reasons.setdefault("not a detection output", []).append(f"'{name}' {format_dims(dims)}")
    said = [f"output{'s' if len(outs) > 1 else ''} {', '.join(outs)}: {why}" for why, outs in reasons.items()]
    raise TrtDeployError("no detection head recognized (" + "; ".join(said) + "); " + SUPPORTED)


LAYOUTS = {  # what --family needs to find (the structure is required whatever --family says)
    "yolov8": "a raw head [B, 4+nc, N]: a Concat along the channels of 4 box rows and Sigmoid class rows",
    "yolo-end2end": ("an end-to-end head [B, K, 6]: a Concat along the last axis of widths [4, 1, 1] (boxes, score, "
                     "class)"),
    "rtdetr": ("an end-to-end head [B, K, 6] (a Concat along the last axis of widths [4, 1, 1]: boxes, score, class) "
               "or an ultralytics <= 8.3 RT-DETR head [B, K, 4+nc] (normalized boxes, then Sigmoid class columns)"),
}


def _match(model, prod, shapes, name, dims, family, image, in_dims) -> Head | None:
    if _inside_nms(prod, name):
        raise TrtDeployError("comes from an export with NonMaxSuppression inside (ultralytics nms=True, batch "
                             "fixed at export); export without nms (raw head) or with nms=False (YOLO26/YOLOv10)")
    if dims is None or len(dims) != 3:
        if family:
            raise TrtDeployError(f"output '{name}' is {format_dims(dims)}, not rank 3")
        return None
    if family == "yolov5":
        return _yolov5(model, name, dims, in_dims)
    g = model.graph
    node = _through(prod, name)
    axis = _concat_axis(node, 3)
    parts = list(node.input) if axis is not None else []
    widths = [(shapes.get(p) or [None] * 3)[axis] for p in parts]
    base = dict(output=name, input_name=image, input_shape=in_dims, output_shape=dims)
    declared = dims_of(next(o for o in g.output if o.name == name)) or [None] * 3
    static_hw = all(isinstance(d, int) for d in in_dims[2:])
    rows = declared[1] if isinstance(declared[1], int) else dims[1] if static_hw and isinstance(dims[1], int) else None
    boxes_then_classes = len(parts) >= 2 and widths[0] == 4 and _from_sigmoid(prod, parts[1])
    if axis == 1 and boxes_then_classes:  # [B, 4+nc, N]
        if len(parts) > 2:
            raise TrtDeployError(f"concatenates {len(parts)} parts {widths} along the channels: boxes, class "
                                 "scores and more (a segmentation/pose/OBB head); only detection heads are supported")
        _forced(family, "yolov8", name, "a raw head [B, 4+nc, N]")
        nc = widths[1]
        label = "yolov8" if _has_dfl(g, prod, name) else "yolo26"
        return Head(family="yolov8", label=label, num_classes=nc, boxes="cxcywh", layout="channels",
                    evidence=[f"raw anchor-free head [B, 4+nc, N] (Concat of 4 box rows and {nc} Sigmoid class "
                              f"rows), N = {dims[2]}{_grids(dims[2], in_dims)}{assumed_size(in_dims)}"], **base)
    if axis == 2 and widths[:3] == [4, 1, 1]:  # [B, K, 6]: boxes, score, class
        if len(parts) > 3:
            raise TrtDeployError(f"an end-to-end head with {sum(w or 0 for w in widths[3:])} more columns after x1, "
                                 "y1, x2, y2, score, class (segmentation/pose/OBB); only detection heads are supported")
        _forced(family, ("yolo-end2end", "rtdetr"), name, "an end-to-end head [B, K, 6]")
        normalized = _in_unit_interval(g, prod, parts[0], {})
        if family is None:
            family = "rtdetr" if normalized else "yolo-end2end"
            why = ("its boxes come from a Sigmoid (values in [0, 1]): normalized cx, cy, w, h (RT-DETR)" if normalized
                   else "its boxes are scaled (not all produced by a Sigmoid): x1, y1, x2, y2 in input pixels")
        else:
            why = f"--family {family}"
        label = "rtdetr" if family == "rtdetr" else ("yolov10-end2end" if _has_dfl(g, prod, name) else "yolo26-end2end")
        return Head(family=family, label=label, num_classes=_end2end_classes(g, prod, shapes, parts[2]),
                    boxes="cxcywh-normalized" if family == "rtdetr" else "xyxy", layout="score-class", rows=rows,
                    evidence=[f"end-to-end head [B, K, 6] (Concat of box, score and class columns); {why}"], **base)
    if axis == 2 and boxes_then_classes and len(parts) == 2:  # [B, K, 4+nc]: boxes, class probabilities
        normalized = _in_unit_interval(g, prod, parts[0], {})
        if not normalized and family != "rtdetr":
            raise TrtDeployError(f"[B, N, 4+nc] rows of scaled boxes and {widths[1]} Sigmoid class columns (a "
                                 "channel-last raw head that needs NMS?); only ultralytics' [B, 4+nc, N] raw head is "
                                 "supported (export without transposing it)")
        _forced(family, "rtdetr", name, f"an ultralytics <= 8.3 RT-DETR head [B, K, 4+nc] ({widths[1]} classes)")
        why = "--family rtdetr" if not normalized else "its boxes come from a Sigmoid: normalized cx, cy, w, h"
        return Head(family="rtdetr", label="rtdetr-legacy", num_classes=widths[1], boxes="cxcywh-normalized",
                    layout="class-probs", rows=rows,
                    evidence=[f"RT-DETR head of ultralytics <= 8.3 [B, K, 4+nc] (Concat of 4 box columns and "
                              f"{widths[1]} Sigmoid class columns; score = best class, class = its first argmax); "
                              f"{why}"], **base)
    found = _found(prod, node, axis, widths, shapes)
    if family:
        raise TrtDeployError(f"--family {family} needs {LAYOUTS[family]}; output '{name}' is {found}")
    if found.startswith("a raw head"):
        raise TrtDeployError(f"{found}; only ultralytics' own [B, 4+nc, N] layout is supported (export without "
                             "the Transpose)")
    if isinstance(dims[2], int) and dims[2] > 5:
        return _yolov5(model, name, dims, in_dims)
    return None


def _forced(family, allowed, name, what) -> None:
    allowed = (allowed,) if isinstance(allowed, str) else allowed
    if family is not None and family not in allowed:
        raise TrtDeployError(f"--family {family} needs {LAYOUTS[family]}; output '{name}' is {what}")


def _through(prod, name: str):
    """The node behind ``name``, looking through Identity and Cast to float."""
    node = prod.get(name)
    while node is not None and (node.op_type == "Identity" or (node.op_type == "Cast" and any(
            a.name == "to" and a.i == onnx.TensorProto.FLOAT for a in node.attribute))):
        node = prod.get(node.input[0])
    return node


def _found(prod, node, axis, widths, shapes) -> str:
    """What produces an output, for refusals."""
    if node is None:
        return "not produced by a node"
    if node.op_type == "Transpose":
        inner = _through(prod, node.input[0])
        a = _concat_axis(inner, 3)
        parts = list(inner.input) if a is not None else []
        if a == 1 and len(parts) == 2 and (shapes.get(parts[0]) or [None, None])[1] == 4 \
                and _from_sigmoid(prod, parts[1]):
            return f"a raw head [B, 4+nc, N] transposed to [B, N, 4+nc] (by {node_label(node)})"
    if axis is not None:
        return f"a Concat along axis {axis} of widths {widths} ({node_label(node)})"
    return f"produced by {node_label(node)}"


def _yolov5(model, name, dims, in_dims) -> Head:
    from .head import NotDetection, find_head

    try:
        h = find_head(model, output=name)
    except NotDetection:
        raise
    except TrtDeployError as exc:
        raise TrtDeployError(f"[B, N, 5+nc] rows but not a YOLOv5 Detect head ({exc}); YOLOX and other "
                             "decoded [B, N, 5+nc] heads without anchor constants are not supported") from None
    return Head(family="yolov5", label="yolov5", output=name, input_name=h.input_name, input_shape=in_dims,
                output_shape=dims, num_classes=h.num_classes, boxes="cxcywh", layout="yolov5",
                evidence=[f"YOLOv5 Detect: {len(h.convs)} levels, strides {h.strides}, {h.num_anchors} anchors"],
                yolov5=h)


def _concat_axis(node, rank: int) -> int | None:
    if node is None or node.op_type != "Concat":
        return None
    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
    return axis + rank if axis < 0 else axis


def _from_sigmoid(prod, name: str, depth: int = 8) -> bool:
    node = prod.get(name)
    while node is not None and depth:
        if node.op_type == "Sigmoid":
            return True
        if node.op_type not in ("Reshape", "Transpose", "Identity", "Cast", "Flatten"):
            return False
        node, depth = prod.get(node.input[0]), depth - 1
    return False


def _in_unit_interval(g, prod, name: str, memo: dict, depth: int = 64) -> bool:
    """True only if every value of ``name`` provably lies in [0, 1]: Sigmoid outputs moved around
    by gather/slice/reshape/transpose/concat, or constants in [0, 1]."""
    if name in memo:
        return memo[name]
    memo[name] = False  # cycles and depth: unproven
    node = prod.get(name)
    if node is None:
        v = constant_value(name, g, prod)
        ok = v is not None and v.size > 0 and np.issubdtype(v.dtype, np.floating) and 0 <= v.min() and v.max() <= 1
    elif node.op_type == "Sigmoid":
        ok = True
    elif node.op_type == "Constant":
        v = constant_value(name, g, prod)
        ok = v is not None and np.issubdtype(v.dtype, np.floating) and v.size > 0 and 0 <= v.min() and v.max() <= 1
    elif node.op_type in _MOVE and depth:
        data = {"Concat": list(node.input), "Where": list(node.input[1:])}.get(node.op_type, [node.input[0]])
        ok = all(_in_unit_interval(g, prod, x, memo, depth - 1) for x in data if x)
    else:
        ok = False
    memo[name] = ok
    return ok


def _ancestors(prod, name: str, limit: int = 200000):
    seen, stack = set(), [name]
    while stack and len(seen) < limit:
        node = prod.get(stack.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        stack.extend(x for x in node.input if x)


def _nearest_ancestors(prod, name: str, limit: int):
    """Up to ``limit`` nodes ``name`` depends on, nearest first (breadth first)."""
    seen, queue, out = set(), [name], []
    while queue and len(out) < limit:
        node = prod.get(queue.pop(0))
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        out.append(node)
        queue.extend(x for x in node.input if x)
    return out


def _end2end_classes(g, prod, shapes, column: str) -> int | None:
    """nc of an end-to-end head from its class column's ancestors: the integer constant it is taken
    modulo (index % nc of a TopK over the flattened anchors x classes) or divided by (RT-DETR's
    index - index // nc * nc), or the width of the class scores an ArgMax reads (agnostic exports)."""
    for n in _nearest_ancestors(prod, column, 64):
        if n.op_type in ("Mod", "Div") and len(n.input) == 2:
            v = constant_value(n.input[1], g, prod)
            if v is not None and v.size == 1 and np.issubdtype(v.dtype, np.integer) and int(v) > 0:
                return int(v)
        if n.op_type == "ArgMax":
            d = shapes.get(n.input[0])
            axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
            if d and isinstance(d[axis], int):
                return d[axis]
    return None


def _inside_nms(prod, name: str) -> bool:
    return any(n.op_type == "NonMaxSuppression" for n in _ancestors(prod, name))


def _has_dfl(g, prod, name: str) -> bool:
    """A DFL: a Conv whose constant weight [1, R, 1, 1] is 0, 1, ..., R-1 (the expectation over R bins)."""
    dims = {t.name: list(t.dims) for t in g.initializer}
    for n in _ancestors(prod, name):
        if n.op_type == "Conv" and len(n.input) > 1:
            d = dims.get(n.input[1])
            if d is not None and not (len(d) == 4 and d[0] == 1 and d[2:] == [1, 1]):
                continue  # read no other weight (inspect leaves external weights unread)
            w = constant_value(n.input[1], g, prod)
            if w is not None and w.ndim == 4 and w.shape[0] == 1 and w.shape[2:] == (1, 1) and w.shape[1] > 1 \
                    and np.array_equal(w.reshape(-1), np.arange(w.shape[1])):
                return True
    return False


def assumed_size(in_dims) -> str:
    """' at an assumed 640x640 input (its H/W is dynamic)' where the head's dims were read at a guessed size."""
    if all(isinstance(d, int) for d in in_dims[2:]):
        return ""
    hw = "x".join(str(d if isinstance(d, int) else 640) for d in in_dims[2:])
    return f" at an assumed {hw} input (its H/W is dynamic)"


def _grids(n, in_dims) -> str:
    """' (80x80 + 40x40 + 20x20, strides 8, 16, 32)' when N is that sum at a static input size."""
    h, w = in_dims[2], in_dims[3]
    if not (isinstance(n, int) and isinstance(h, int) and isinstance(w, int)):
        return ""
    for strides in ((8, 16, 32), (8, 16, 32, 64), (4, 8, 16, 32), (16, 32, 64)):
        cells = [(-(-h // s), -(-w // s)) for s in strides]
        if sum(a * b for a, b in cells) == n:
            return f" = {' + '.join(f'{a}x{b}' for a, b in cells)} (strides {', '.join(map(str, strides))})"
    return ""


def describe(model: onnx.ModelProto) -> dict | None:
    """The detection head for `trtdeploy inspect`, or None when there is none (never raises)."""
    if already_patched(model):
        return {"family": "patched", "outputs": [o.name for o in model.graph.output]}
    prod = producers(model.graph)
    if not any((dims_of(o) is None or len(dims_of(o)) == 3)
               and getattr(_through(prod, o.name), "op_type", "") in ("Concat", "Transpose")
               for o in model.graph.output):
        return None  # every supported head ends in a Concat of rank 3: skip the shape inference otherwise
    try:
        head = detect(model)
    except TrtDeployError:
        return None
    return {"family": head.label, "output": head.output, "shape": head.output_shape, "classes": head.num_classes,
            "boxes": head.boxes, "notes": head.evidence, "assumed": assumed_size(head.input_shape)}
