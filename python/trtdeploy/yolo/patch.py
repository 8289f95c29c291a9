"""Replace a YOLOv5 Detect head's decode subgraph with one YoloLayer_TRT plugin node (+ optional NMS).

The trunk is kept up to the detection convs; a Sigmoid is applied to each conv output in its
native [B, na*(nc+5), H, W] layout (the same values the export's sigmoid computes after its
reshape/permute), and the plugin decodes all levels. The attribute list comes from trtdeploy._C,
which the TensorRT plugin creator also reads, so the two cannot disagree.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper

from .._graph import NameGen, copy_model, prune
from ..errors import TrtDeployError
from ._ops import Emitter
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
          nms: bool | str = False, iou_threshold: float = 0.45, max_output_boxes: int = 100,
          head: YoloHead | None = None, topk: int | None = None, agnostic: bool = False) -> onnx.ModelProto:
    """The model with its Detect decode replaced by YoloLayer_TRT, and with ``nms``:

    * False: outputs num_detections int32 [B,1], detection_boxes float [B,N,4] (x1,y1,x2,y2 input pixels),
      detection_scores float [B,N], detection_classes int32 [B,N] (N = max_detections, 0: every anchor);
    * True or "onnx": also NonMaxSuppression, nms_batch_index, nms_boxes, nms_scores, nms_classes for the
      boxes it keeps (at most max_output_boxes per class);
    * "plugin": YoloLayer_TRT keeps the ``topk`` best anchors (default: all, up to 3840) and the TRTDeploy_NMS
      plugin ends the model in the four detection outputs with D = max_detections rows (default 300), as
      every other family (postprocess.py); the options go into the model's metadata for `yolo verify`."""
    if nms not in (False, True, "onnx", "plugin"):
        raise TrtDeployError(f"nms={nms!r}: False, True/'onnx' (NonMaxSuppression) or 'plugin' (TRTDeploy_NMS)")
    head = head or find_head(model)
    plugin_nms = nms == "plugin"
    if plugin_nms and score_mode != 0:
        raise TrtDeployError("--score-mode obj scores boxes by objectness alone; YOLOv5's post-processing, which "
                             "--nms plugin is checked against, uses objectness * class probability")
    opts = plugin_options(head, score_threshold, iou_threshold, max_detections, topk, agnostic) if plugin_nms else None
    attrs = plugin_attributes(head, score_threshold, score_mode, opts["topk"] if opts else max_detections)
    m = copy_model(model)
    g = m.graph
    fresh = NameGen(m)
    sig_outs = []
    for conv in head.convs:
        out = fresh(f"{conv}_sigmoid")
        g.node.append(helper.make_node("Sigmoid", [conv], [out], name=fresh(f"{conv}_Sigmoid")))
        sig_outs.append(out)
    out_names = [fresh(f"candidate_{n}" if plugin_nms else n) for n in OUTPUTS]
    g.node.append(helper.make_node("YoloLayer_TRT", sig_outs, out_names, name=fresh("YoloLayer_TRT"),
                                   domain=PLUGIN_DOMAIN, plugin_version="1", **attrs))
    batch = head.input_shape[0] if head.input_shape else "batch"
    rows = opts["max_detections"] if opts else _rows(head, max_detections)
    outputs = [helper.make_tensor_value_info(OUTPUTS[0], TP.INT32, [batch, 1]),
               helper.make_tensor_value_info(OUTPUTS[1], TP.FLOAT, [batch, rows, 4]),
               helper.make_tensor_value_info(OUTPUTS[2], TP.FLOAT, [batch, rows]),
               helper.make_tensor_value_info(OUTPUTS[3], TP.INT32, [batch, rows])]
    if not plugin_nms:
        for vi, name in zip(outputs, out_names):
            vi.name = name
    e = Emitter(m, min_opset=11 if nms and not plugin_nms else 0, why="NonMaxSuppression")
    e.fresh = fresh
    if plugin_nms:
        from .nms_plugin import append_node

        taken = [n for n in OUTPUTS if fresh(n) != n]  # reserves the names that are free
        if taken:
            raise TrtDeployError(f"the model already has a tensor named '{taken[0]}'; rename it first "
                                 "(trtdeploy rename)")
        append_node(e, *out_names[1:], {**opts, "cast_classes": False}, outputs=list(OUTPUTS))
    elif nms:
        outputs += nms_subgraph(out_names[1:], e, score_threshold, iou_threshold, max_output_boxes)
    e.commit()
    g.ClearField("output")
    g.output.extend(outputs)
    g.ClearField("value_info")
    prune(g)
    if not any(o.domain == PLUGIN_DOMAIN for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid(PLUGIN_DOMAIN, 1))
    if plugin_nms:
        import json

        from .families import METADATA_KEY

        meta = m.metadata_props.add()
        meta.key, meta.value = METADATA_KEY, json.dumps({**opts, "head_output": head.output, "label": "YOLOv5"})
    return m


def plugin_options(head: YoloHead, score_threshold: float, iou_threshold: float, max_detections: int,
                   topk: int | None, agnostic: bool) -> dict:
    """`yolo patch --nms plugin` of a YOLOv5 head: what its check and `yolo verify` read back (the keys of
    postprocess.options for a head that needs NMS). The reference is YOLOv5's own post-processing
    (utils/general.py non_max_suppression: score = objectness * class probability, > conf; up to
    30000 candidates; class-aware greedy NMS; the first max_det), which verify reads from the original's
    decoded output."""
    from .postprocess import check_rows, check_thresholds, nms_candidates

    check_thresholds(score_threshold, iou_threshold)
    d = max_detections or 300
    check_rows(d, "the rows TRTDeploy_NMS outputs")
    total = _rows(head, 0)  # every anchor when they are fewer than TensorRT's TopK takes
    topk = nms_candidates(topk, d, total if isinstance(total, int) else None,
                          "the candidates YoloLayer_TRT passes to the NMS plugin")
    return {"family": "yolov5", "layout": "channels", "boxes": "cxcywh", "num_classes": head.num_classes,
            "score_threshold": float(score_threshold), "max_detections": int(d), "iou_threshold": float(iou_threshold),
            "topk": int(topk), "agnostic": bool(agnostic), "nms": "plugin"}


def _rows(head: YoloHead, max_detections: int):
    dims = head.input_shape
    if len(dims) == 4 and isinstance(dims[2], int) and isinstance(dims[3], int):
        total = sum(head.num_anchors * (dims[2] // s) * (dims[3] // s) for s in head.strides)
        return total if max_detections <= 0 or max_detections > total else max_detections
    return max_detections if max_detections > 0 else "detections"


def nms_subgraph(det: list[str], e: Emitter, score_threshold: float, iou_threshold: float, max_output_boxes: int):
    """ONNX NonMaxSuppression (TensorRT 10/11: INMSLayer) over the plugin outputs, class-aware by
    offsetting boxes per class; GatherND picks the kept rows. Rows past num_detections have score 0
    and are dropped by the score threshold. Nodes go to ``e`` (in the model's opset form); returns
    the value infos of nms_batch_index, nms_boxes, nms_scores, nms_classes."""
    boxes, scores, classes = det
    outs = [e.name(n) for n in NMS_OUTPUTS]
    cls_f = e.op("Cast", [classes], base="nms_cls_f", to=TP.FLOAT)
    offset = e.op("Mul", [cls_f, e.const("nms_class_offset", np.array(_CLASS_OFFSET, np.float32))], base="nms_cls_off")
    boxes_off = e.op("Add", [boxes, e.unsqueeze(offset, [-1], base="nms_cls_off3")], base="nms_boxes_off")
    selected = e.op("NonMaxSuppression",
                    [boxes_off, e.unsqueeze(scores, [1], base="nms_scores3"),
                     e.ints("nms_max_boxes", [max_output_boxes]),
                     e.const("nms_iou", np.array([iou_threshold], np.float32)),
                     e.const("nms_score", np.array([score_threshold], np.float32))],
                    base="nms_selected", center_point_box=0)
    e.op("Gather", [selected, e.ints("nms_col0", 0)], [outs[0]], base="nms_batch", axis=1)
    box_idx = e.op("Gather", [selected, e.ints("nms_col2", 2)], base="nms_didx", axis=1)
    pairs = e.op("Concat", [e.unsqueeze(outs[0], [1], base="nms_bidx1"), e.unsqueeze(box_idx, [1], base="nms_didx1")],
                 base="nms_pairs", axis=1)
    for src, out in zip((boxes, scores, classes), outs[1:]):
        e.op("GatherND", [src, pairs], [out], base="nms_gather")
    return [helper.make_tensor_value_info(outs[0], TP.INT64, ["kept"]),
            helper.make_tensor_value_info(outs[1], TP.FLOAT, ["kept", 4]),
            helper.make_tensor_value_info(outs[2], TP.FLOAT, ["kept"]),
            helper.make_tensor_value_info(outs[3], TP.INT32, ["kept"])]


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
    prune(g)
    m.ClearField("opset_import")
    m.opset_import.extend([o for o in patched.opset_import if o.domain != PLUGIN_DOMAIN])
    return m, node
