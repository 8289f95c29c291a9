"""Replace a YOLOv5 Detect head's decode subgraph with one YoloLayer_TRT plugin node (+ optional NMS).

The trunk is kept up to the detection convs; a Sigmoid is applied to each conv output in its
native [B, na*(nc+5), H, W] layout (the same values the export's sigmoid computes after its
reshape/permute), and the plugin decodes all levels. The attribute list comes from trtdeploy._C,
which the TensorRT plugin creator also reads, so the two cannot disagree.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from .._graph import NameGen, copy_model, outer_references, subgraphs
from ..errors import TrtDeployError
from .head import YoloHead, find_head

PLUGIN_DOMAIN = "trt.plugins"
OUTPUTS = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
NMS_OUTPUTS = ("nms_batch_index", "nms_boxes", "nms_scores", "nms_classes")
_CLASS_OFFSET = 7680.0  # boxes of different classes are moved this far apart for one NMS pass (YOLOv5's max_wh)


def attribute_specs() -> list[dict]:
    """The YoloLayer_TRT attribute table from the compiled module (declared once, in C++)."""
    try:
        from .. import _C
    except ImportError:
        raise TrtDeployError("trtdeploy._C is not built; reinstall trtdeploy") from None
    return list(_C.yolo_layer_attributes())


def plugin_attributes(head: YoloHead, score_threshold: float, score_mode: int = 0,
                      max_detections: int = 0) -> dict:
    values = {"max_stride": head.max_stride, "num_classes": head.num_classes, "anchors": head.flat_anchors,
              "prenms_score_threshold": float(score_threshold), "score_mode": int(score_mode),
              "max_detections": int(max_detections)}
    out = {}
    for spec in attribute_specs():
        name = spec["name"]
        if name not in values:
            if spec["required"]:
                raise TrtDeployError(f"YoloLayer_TRT attribute '{name}' has no value")
            continue
        v = values.pop(name)
        out[name] = int(v) if spec["type"] == "int" else float(v) if spec["type"] == "float" else [float(x) for x in v]
    if values:  # a value the C++ table does not declare: the plugin would reject it
        raise TrtDeployError(f"YoloLayer_TRT does not declare {sorted(values)}")
    return out


def patch(model: onnx.ModelProto, score_threshold: float = 0.25, score_mode: int = 0, max_detections: int = 0,
          nms: bool = False, iou_threshold: float = 0.45, max_output_boxes: int = 100,
          head: YoloHead | None = None) -> onnx.ModelProto:
    """The model with its Detect decode replaced by YoloLayer_TRT (and NonMaxSuppression with nms=True).

    Outputs: num_detections int32 [B,1], detection_boxes float [B,N,4] (x1,y1,x2,y2 input pixels),
    detection_scores float [B,N], detection_classes int32 [B,N]; with nms, also nms_batch_index,
    nms_boxes, nms_scores, nms_classes for the K boxes NMS keeps."""
    head = head or find_head(model)
    attrs = plugin_attributes(head, score_threshold, score_mode, max_detections)
    m = copy_model(model)
    g = m.graph
    fresh = NameGen(m)
    sig_outs = []
    for conv in head.convs:
        out = fresh(f"{conv}_sigmoid")
        g.node.append(helper.make_node("Sigmoid", [conv], [out], name=fresh(f"{conv}_Sigmoid")))
        sig_outs.append(out)
    out_names = [fresh(n) for n in OUTPUTS]
    g.node.append(helper.make_node("YoloLayer_TRT", sig_outs, out_names, name=fresh("YoloLayer_TRT"),
                                   domain=PLUGIN_DOMAIN, plugin_version="1", **attrs))
    batch = head.input_shape[0] if head.input_shape else "batch"
    rows = _rows(head, max_detections)
    outputs = [helper.make_tensor_value_info(out_names[0], TP.INT32, [batch, 1]),
               helper.make_tensor_value_info(out_names[1], TP.FLOAT, [batch, rows, 4]),
               helper.make_tensor_value_info(out_names[2], TP.FLOAT, [batch, rows]),
               helper.make_tensor_value_info(out_names[3], TP.INT32, [batch, rows])]
    if nms:
        nodes, inits, nms_outputs = nms_subgraph(out_names[1:], fresh, score_threshold, iou_threshold, max_output_boxes)
        g.node.extend(nodes)
        g.initializer.extend(inits)
        outputs += nms_outputs
    g.ClearField("output")
    g.output.extend(outputs)
    g.ClearField("value_info")
    _prune(g)
    if not any(o.domain == PLUGIN_DOMAIN for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid(PLUGIN_DOMAIN, 1))
    if nms and next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 0) < 11:
        raise TrtDeployError("NonMaxSuppression needs opset >= 11; convert the model first")
    return m


def _rows(head: YoloHead, max_detections: int):
    dims = head.input_shape
    if len(dims) == 4 and isinstance(dims[2], int) and isinstance(dims[3], int):
        total = sum(head.num_anchors * (dims[2] // s) * (dims[3] // s) for s in head.strides)
        return total if max_detections <= 0 or max_detections > total else max_detections
    return max_detections if max_detections > 0 else "detections"


def nms_subgraph(det: list[str], fresh, score_threshold: float, iou_threshold: float, max_output_boxes: int):
    """ONNX NonMaxSuppression (TensorRT 10/11: INMSLayer) over the plugin outputs, class-aware by
    offsetting boxes per class; GatherND picks the kept rows. Rows past num_detections have score 0
    and are dropped by the score threshold."""
    boxes, scores, classes = det
    c = lambda name, value: numpy_helper.from_array(value, fresh(name))  # noqa: E731
    import numpy as np

    inits = [c("nms_class_offset", np.array(_CLASS_OFFSET, np.float32)),
             c("nms_max_boxes", np.array([max_output_boxes], np.int64)),
             c("nms_iou", np.array([iou_threshold], np.float32)),
             c("nms_score", np.array([score_threshold], np.float32)),
             c("nms_axis1", np.array([1], np.int64)),
             c("nms_col0", np.array(0, np.int64)), c("nms_col2", np.array(2, np.int64)),
             c("nms_axis_last", np.array([-1], np.int64))]
    off, maxb, iou, sth, ax1, col0, col2, axl = (t.name for t in inits)
    t = {k: fresh(k) for k in ("cls_f", "cls_off", "cls_off3", "boxes_off", "scores3", "selected", "bidx", "didx",
                               "bidx1", "didx1", "pairs")}
    outs = [fresh(n) for n in NMS_OUTPUTS]
    n = helper.make_node
    nodes = [
        n("Cast", [classes], [t["cls_f"]], name=fresh("nms_Cast"), to=TP.FLOAT),
        n("Mul", [t["cls_f"], off], [t["cls_off"]], name=fresh("nms_Mul")),
        n("Unsqueeze", [t["cls_off"], axl], [t["cls_off3"]], name=fresh("nms_Unsqueeze")),
        n("Add", [boxes, t["cls_off3"]], [t["boxes_off"]], name=fresh("nms_Add")),
        n("Unsqueeze", [scores, ax1], [t["scores3"]], name=fresh("nms_Unsqueeze")),
        n("NonMaxSuppression", [t["boxes_off"], t["scores3"], maxb, iou, sth], [t["selected"]],
          name=fresh("NonMaxSuppression"), center_point_box=0),
        n("Gather", [t["selected"], col0], [outs[0]], name=fresh("nms_Gather"), axis=1),
        n("Gather", [t["selected"], col2], [t["didx"]], name=fresh("nms_Gather"), axis=1),
        n("Unsqueeze", [outs[0], ax1], [t["bidx1"]], name=fresh("nms_Unsqueeze")),
        n("Unsqueeze", [t["didx"], ax1], [t["didx1"]], name=fresh("nms_Unsqueeze")),
        n("Concat", [t["bidx1"], t["didx1"]], [t["pairs"]], name=fresh("nms_Concat"), axis=1),
        n("GatherND", [boxes, t["pairs"]], [outs[1]], name=fresh("nms_GatherND")),
        n("GatherND", [scores, t["pairs"]], [outs[2]], name=fresh("nms_GatherND")),
        n("GatherND", [classes, t["pairs"]], [outs[3]], name=fresh("nms_GatherND")),
    ]
    outputs = [helper.make_tensor_value_info(outs[0], TP.INT64, ["kept"]),
               helper.make_tensor_value_info(outs[1], TP.FLOAT, ["kept", 4]),
               helper.make_tensor_value_info(outs[2], TP.FLOAT, ["kept"]),
               helper.make_tensor_value_info(outs[3], TP.INT32, ["kept"])]
    return nodes, inits, outputs


def _prune(g: onnx.GraphProto) -> None:
    """Drop nodes and initializers that no graph output needs any more (the old decode)."""
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


def trunk(patched: onnx.ModelProto) -> tuple[onnx.ModelProto, onnx.NodeProto]:
    """The patched model without its plugin (and NMS): outputs are the plugin's inputs, so
    onnxruntime can run it. Returns (trunk model, the YoloLayer_TRT node)."""
    m = copy_model(patched)
    g = m.graph
    plugin = next((n for n in g.node if n.op_type == "YoloLayer_TRT"), None)
    if plugin is None:
        raise TrtDeployError("no YoloLayer_TRT node in the model; run `trtdeploy yolo patch` first")
    node = onnx.NodeProto()
    node.CopyFrom(plugin)
    from .._shapes import propagate

    types = propagate(m)
    g.ClearField("output")
    for x in node.input:
        g.output.append(helper.make_tensor_value_info(x, types.get(x, (TP.FLOAT, None))[0] or TP.FLOAT, None))
    _prune(g)
    m.ClearField("opset_import")
    m.opset_import.extend([o for o in patched.opset_import if o.domain != PLUGIN_DOMAIN])
    return m, node
