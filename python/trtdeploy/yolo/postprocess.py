"""Post-processing appended to anchor-free (``yolov8``) and end-to-end (``yolo-end2end``,
``rtdetr``) heads, ending every family in one contract:

    num_detections     int32 [B, 1]
    detection_boxes    float [B, D, 4]   x1, y1, x2, y2 in input pixels
    detection_scores   float [B, D]      sorted, highest first, within each image
    detection_classes  int32 [B, D]

with D = max_detections and rows past num_detections zero. The batch is dynamic end to end.

Raw head ``[B, 4+nc, N]``: score = max class probability and class = its argmax (first on ties),
both from one TopK(k=1) over the classes; the K best anchors by score (TopK, K <= 3840, TensorRT's
limit; INMSLayer considers at most 5000; ultralytics' own predict/val give NMS up to 30000, so with
many candidates above the threshold the results differ) go to ONNX NonMaxSuppression (TensorRT 10
and 11 import it as INMSLayer), class-aware by giving each box its score in its own class column
and -1 in the others (below any threshold, whether NMS compares with > or >=; no coordinate
offsets, so nothing leaves the float16 range), with the score threshold as its ``score_threshold``
input. The kept (image, box) pairs are scattered back as their scores into a [B, K] tensor of -1,
and one TopK(D) per image orders them into the fixed-size outputs. One dummy candidate per image (a
zero-area box scoring 2 in class 0, dropped after the scatter) keeps every tensor after NMS
non-empty when nothing passes the threshold.

End-to-end head ``[B, K, 6]``: no NMS; RT-DETR's normalized cx, cy, w, h become x1, y1, x2, y2 and
are scaled by the input width/height; then the same TopK(D) + threshold tail. The RT-DETR head of
ultralytics <= 8.3, ``[B, K, 4+nc]``, first gets score = best class and class = its first argmax
(TopK k=1 over the class columns).

Only ops that TensorRT 10/11 import from ONNX, no NonZero, no float values outside float16's range;
comparisons (Greater) and TopK/NonMaxSuppression keep their float32 inputs under ``trtdeploy fp16``.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper

from .._graph import copy_model, dims_of, prune
from ..errors import TrtDeployError
from ._ops import Emitter
from .families import DETECTION_OUTPUTS, METADATA_KEY, Head

TOPK_LIMIT = 3840  # TensorRT's TopK maximum K
MIN_OPSET = 11     # GatherElements, ScatterND, NonMaxSuppression with the forms used here


def options(head: Head, score_threshold: float = 0.25, iou_threshold: float = 0.45,
            max_detections: int | None = None, topk: int | None = None, agnostic: bool = False,
            nms: str = "onnx") -> dict:
    """Checked post-processing options (the defaults filled in). ``nms``: "onnx" (NonMaxSuppression,
    the portable default) or "plugin" (the TRTDeploy_NMS plugin, nms_plugin.py)."""
    check_thresholds(score_threshold, iou_threshold)
    if max_detections is None and head.rows is not None and head.rows > TOPK_LIMIT:
        raise TrtDeployError(f"the head gives K = {head.rows} rows per image, more than TensorRT's TopK takes "
                             f"({TOPK_LIMIT}), and the default keeps all K: pass --max-detections N with N <= "
                             f"{TOPK_LIMIT} (the N highest-scoring rows are kept)")
    if max_detections is None:
        max_detections = head.rows or 300
    check_rows(max_detections)
    opts = {"family": head.family, "layout": head.layout, "num_classes": head.num_classes,
            "score_threshold": float(score_threshold), "max_detections": int(max_detections)}
    if head.family == "yolov8":
        topk = nms_candidates(topk, max_detections, anchors(head))
        opts.update(iou_threshold=float(iou_threshold), topk=int(topk), agnostic=bool(agnostic))
        if nms not in ("onnx", "plugin"):
            raise TrtDeployError(f"--nms {nms}: onnx or plugin")
        if nms == "plugin":
            opts["nms"] = "plugin"
    elif nms == "plugin":
        raise TrtDeployError(f"--nms plugin applies to heads that need NMS; '{head.output}' is {head.label} (NMS-free)")
    elif topk is not None or agnostic:
        raise TrtDeployError(f"--topk/--agnostic apply to heads that need NMS; '{head.output}' is {head.label} "
                             "(NMS-free)")
    return opts


def check_thresholds(score_threshold: float, iou_threshold: float) -> None:
    if not 0.0 <= score_threshold < 1.0:
        raise TrtDeployError(f"--score-threshold {score_threshold}: must be in [0, 1)")
    if not 0.0 <= iou_threshold <= 1.0:
        raise TrtDeployError(f"--iou-threshold {iou_threshold}: must be in [0, 1]")


def check_rows(max_detections: int, why: str = "TensorRT's TopK limit") -> None:
    if not 1 <= max_detections <= TOPK_LIMIT:
        raise TrtDeployError(f"--max-detections {max_detections}: must be in 1..{TOPK_LIMIT} ({why})")


def nms_candidates(topk: int | None, max_detections: int, n: int | None,
                   why: str = "TensorRT's TopK limit") -> int:
    """--topk checked, or its default: as many as TensorRT's TopK takes; the head's N anchors when they are
    known and fewer (nothing to pad)."""
    if topk is None:
        topk = TOPK_LIMIT if n is None else max(max_detections, min(TOPK_LIMIT, n))
    if not max_detections <= topk <= TOPK_LIMIT:
        raise TrtDeployError(f"--topk {topk}: must be between --max-detections ({max_detections}) and "
                             f"{TOPK_LIMIT} ({why})")
    return topk


LOW_THRESHOLD = 0.05  # below this, many candidates may pass: the --topk bound is said


def anchors(head: Head) -> int | None:
    """N of a raw [B, 4+nc, N] head when it is fixed (static output and input H/W), else None."""
    n = head.output_shape[2] if len(head.output_shape or []) == 3 else None
    return n if isinstance(n, int) and all(isinstance(d, int) for d in head.input_shape[2:]) else None


def topk_note(opts: dict, topk_given: bool, head: Head | None = None) -> str | None:
    """What the --topk bound means when a low score threshold lets many candidates through (None otherwise,
    and when the head's N anchors all fit in --topk)."""
    if opts["family"] != "yolov8" or topk_given or opts["score_threshold"] >= LOW_THRESHOLD:
        return None
    if head is not None and anchors(head) is not None and anchors(head) <= opts["topk"]:
        return None
    more = "" if opts["topk"] >= TOPK_LIMIT else f"; --topk {TOPK_LIMIT} (TensorRT's TopK limit) narrows the gap"
    return (f"at --score-threshold {opts['score_threshold']:g}, NMS sees only the {opts['topk']} best candidates per "
            f"image (--topk, default {TOPK_LIMIT}, TensorRT's TopK limit); ultralytics' predict/val give it up "
            f"to 30000 (max_nms), so detections can differ where more candidates pass the threshold{more}")


def append_postprocess(model: onnx.ModelProto, head: Head, opts: dict) -> onnx.ModelProto:
    """A copy of ``model`` (batch already dynamic) with the post-processing after ``head.output``
    and the four detection outputs as its only outputs. ``opts`` comes from options()."""
    out = next((o for o in model.graph.output if o.name == head.output), None)
    if out is not None and out.type.tensor_type.elem_type != TP.FLOAT:
        raise TrtDeployError(f"output '{head.output}' is {TP.DataType.Name(out.type.tensor_type.elem_type).lower()}, "
                             "not float32 (a half=True export?): patch the float32 export, then run `trtdeploy fp16`")
    m = copy_model(model)
    e = Emitter(m, min_opset=MIN_OPSET, why="the detection post-processing")
    image = next(i for i in m.graph.input if i.name == head.input_name)
    in_dims = dims_of(image)
    thr = e.const("score_threshold", np.array([opts["score_threshold"]], np.float32))
    if opts.get("nms") == "plugin":
        from .nms_plugin import append_node

        score_k, index_k, boxes, class_k = _raw_topk(e, head, opts)
        outputs = append_node(e, boxes, score_k, class_k, opts)
    else:
        if head.family == "yolov8":
            scores, boxes, classes = _raw_candidates(e, head, opts, thr)
        else:
            scores, boxes, classes = _end2end_candidates(e, head, in_dims)
        outputs = _fixed_rows(e, scores, boxes, classes, thr, opts["max_detections"], _rows_known(head, opts))
    e.commit()
    g = m.graph
    batch = in_dims[0] if isinstance(in_dims[0], (str, int)) and in_dims[0] else "batch"
    d = opts["max_detections"]
    shapes = {"num_detections": (TP.INT32, [batch, 1]), "detection_boxes": (TP.FLOAT, [batch, d, 4]),
              "detection_scores": (TP.FLOAT, [batch, d]), "detection_classes": (TP.INT32, [batch, d])}
    g.ClearField("output")
    for name, inner in zip(DETECTION_OUTPUTS, outputs):
        _rename_output(g, inner, name)
        g.output.append(helper.make_tensor_value_info(name, *shapes[name]))
    g.ClearField("value_info")
    prune(g)
    meta = m.metadata_props.add()
    meta.key, meta.value = METADATA_KEY, json.dumps({**opts, "head_output": head.output, "boxes": head.boxes,
                                                     "label": head.label})
    return m


def _rename_output(g: onnx.GraphProto, inner: str, name: str) -> None:
    taken = {x for n in g.node for x in list(n.input) + list(n.output)} | {t.name for t in g.initializer}
    if name in taken:
        raise TrtDeployError(f"the model already has a tensor named '{name}'; rename it first (trtdeploy rename)")
    for n in g.node:
        n.output[:] = [name if o == inner else o for o in n.output]
        n.input[:] = [name if x == inner else x for x in n.input]


def _rows_known(head: Head, opts: dict) -> bool:
    """Whether the candidates certainly number at least max_detections (else they are padded)."""
    if head.family == "yolov8":
        return True  # K >= max_detections by construction
    return head.rows is not None and head.rows >= opts["max_detections"]


def _raw_topk(e: Emitter, head: Head, opts: dict):
    """[B, 4+nc, N] -> the K best anchors: scores [B, K] (best first), their indices, boxes [B, K, 4]
    x1y1x2y2, classes [B, K] (int64)."""
    k, nc = opts["topk"], opts["num_classes"]
    y = head.output
    n = head.output_shape[2]
    if not (isinstance(n, int) and all(isinstance(d, int) for d in head.input_shape[2:]) and n >= k):
        y = e.pad(y, [0, 0, 0, 0, 0, k], 0.0, base="det_pad")  # N may be < K: K zero-score anchors more
    box = e.slice(y, [0], [4], [1], base="det_box_cxcywh")
    cls = e.slice(y, [4], [4 + nc], [1], base="det_cls")
    best, label = e.topk(cls, 1, axis=1, base="det_best_class")  # max and first argmax over the classes
    score = e.op("Flatten", [best], base="det_score", axis=1)
    label = e.op("Flatten", [label], base="det_label", axis=1)
    score_k, index_k = e.topk(score, k, axis=1, base="det_topk")
    idx_row = e.op("Reshape", [index_k, e.ints("det_row", [0, 1, -1])], base="det_index_row")
    idx4 = e.op("Expand", [idx_row, e.ints("det_four", [1, 4, 1])], base="det_index4")
    box_k = e.op("GatherElements", [box, idx4], base="det_box_k", axis=2)
    xy = e.slice(box_k, [0], [2], [1], base="det_xy")
    wh = e.slice(box_k, [2], [4], [1], base="det_wh")
    half = e.op("Mul", [wh, e.const("det_half", np.array(0.5, np.float32))], base="det_half_wh")
    corners = e.op("Concat", [e.op("Sub", [xy, half], base="det_xy1"), e.op("Add", [xy, half], base="det_xy2")],
                   base="det_xyxy", axis=1)
    boxes = e.op("Transpose", [corners], base="det_boxes", perm=[0, 2, 1])
    class_k = e.op("GatherElements", [label, index_k], base="det_class_k", axis=1)
    return score_k, index_k, boxes, class_k


def _raw_candidates(e: Emitter, head: Head, opts: dict, thr: str):
    """[B, 4+nc, N] -> scores [B, K] (-1 where NMS dropped the box), boxes [B, K, 4] x1y1x2y2, classes [B, K]."""
    k, nc = opts["topk"], opts["num_classes"]
    score_k, index_k, boxes, class_k = _raw_topk(e, head, opts)
    # One candidate more per image, column K: score 2 (above any threshold) in class 0 and a zero-area
    # box (it suppresses nothing). NMS selects it in every image, so neither its output nor anything
    # after it is ever empty (zero-volume tensors have a history of trouble in TensorRT); its column
    # is dropped after the scatter.
    score_x = e.pad(score_k, [0, 0, 0, 1], 2.0, base="det_dummy_score")
    boxes_x = e.pad(boxes, [0, 0, 0, 0, 1, 0], 0.0, base="det_dummy_box")
    score_row = e.op("Reshape", [score_x, e.ints("det_row", [0, 1, -1])], base="det_score_row")
    if opts["agnostic"]:
        nms_scores = score_row
    else:  # each box's score in its own class column, -1 (below any threshold) elsewhere: per-class NMS
        classes_col = e.ints("det_class_ids", np.arange(nc).reshape(1, nc, 1))  # without coordinate offsets
        class_x = e.pad(class_k, [0, 0, 0, 1], base="det_dummy_class")  # class 0
        own = e.op("Equal", [e.op("Reshape", [class_x, e.ints("det_row", [0, 1, -1])], base="det_class_row"),
                             classes_col], base="det_own_class")
        nms_scores = e.op("Where", [own, score_row, e.const("det_other_class", np.array(-1.0, np.float32))],
                          base="det_nms_scores")
    per_class = e.ints("det_max_per_class", [opts["max_detections"] + 1])  # + the dummy in class 0
    selected = e.op("NonMaxSuppression", [boxes_x, nms_scores, per_class,
                                          e.const("det_iou", np.array([opts["iou_threshold"]], np.float32)), thr],
                    base="det_nms", center_point_box=0)
    pairs = e.op("Gather", [selected, e.ints("det_batch_box", [0, 2])], base="det_pairs", axis=1)
    kept = e.op("GatherND", [score_x, pairs], base="det_kept")
    none = e.op("ConstantOfShape", [e.op("Shape", [score_x], base="det_shape")], base="det_none",
                value=helper.make_tensor("value", TP.FLOAT, [1], [-1.0]))
    scattered = e.op("ScatterND", [none, pairs, kept], base="det_nms_kept_x")
    scores = e.slice(scattered, [0], [k], [1], base="det_nms_kept")
    return scores, boxes, class_k


def _end2end_candidates(e: Emitter, head: Head, in_dims):
    """[B, K, 6] -> scores [B, K], boxes [B, K, 4] x1y1x2y2 pixels, classes [B, K] (float)."""
    y = head.output
    box = e.slice(y, [0], [4], [2], base="det_box")
    if head.layout == "class-probs":  # [B, K, 4+nc]: score = the best class, class = its first argmax
        best, label = e.topk(e.slice(y, [4], [4 + head.num_classes], [2], base="det_class_probs"), 1, axis=2,
                             base="det_best_class")
        score = e.op("Flatten", [best], base="det_score", axis=1)
        cls = e.op("Flatten", [label], base="det_class", axis=1)
    else:
        score = e.op("Flatten", [e.slice(y, [4], [5], [2], base="det_score_col")], base="det_score", axis=1)
        cls = e.op("Flatten", [e.slice(y, [5], [6], [2], base="det_class_col")], base="det_class", axis=1)
    if head.boxes == "cxcywh-normalized":
        xy = e.slice(box, [0], [2], [2], base="det_xy")
        wh = e.slice(box, [2], [4], [2], base="det_wh")
        half = e.op("Mul", [wh, e.const("det_half", np.array(0.5, np.float32))], base="det_half_wh")
        corners = e.op("Concat", [e.op("Sub", [xy, half], base="det_xy1"), e.op("Add", [xy, half], base="det_xy2")],
                       base="det_xyxy", axis=2)
        h, w = in_dims[2], in_dims[3]
        if isinstance(h, int) and isinstance(w, int):
            size = e.const("det_image_size", np.array([w, h, w, h], np.float32))
        else:  # dynamic H/W: the size of this run's input
            hw = e.op("Gather", [e.op("Shape", [head.input_name], base="det_input_shape"),
                                 e.ints("det_whwh", [3, 2, 3, 2])], base="det_whwh_int", axis=0)
            size = e.op("Cast", [hw], base="det_image_size", to=TP.FLOAT)
        box = e.op("Mul", [corners, size], base="det_box_pixels")
    return score, box, cls


def _fixed_rows(e: Emitter, scores: str, boxes: str, classes: str, thr: str, rows: int, enough: bool):
    """The best ``rows`` candidates per image, sorted; rows not above the threshold zeroed."""
    if not enough:  # fewer candidates than rows (or unknown): pad with ones that never pass
        scores = e.pad(scores, [0, 0, 0, rows], -1.0, base="det_pad_scores")
        boxes = e.pad(boxes, [0, 0, 0, 0, rows, 0], 0.0, base="det_pad_boxes")
        classes = e.op("Cast", [classes], base="det_classes_f", to=TP.FLOAT)
        classes = e.pad(classes, [0, 0, 0, rows], 0.0, base="det_pad_classes")
    top, index = e.topk(scores, rows, axis=1, base="det_final")
    valid = e.op("Greater", [top, thr], base="det_valid")
    count = e.reduce("ReduceSum", e.op("Cast", [valid], base="det_valid_i", to=TP.INT32), [1], keepdims=1,
                     base="det_count")
    zero = e.const("det_zero_f", np.array(0.0, np.float32))
    out_scores = e.op("Where", [valid, top, zero], base="det_scores")
    idx4 = e.op("Expand", [e.op("Reshape", [index, e.ints("det_col", [0, -1, 1])], base="det_index_col"),
                           e.ints("det_four_last", [1, 1, 4])], base="det_index4_last")
    picked = e.op("GatherElements", [boxes, idx4], base="det_picked_boxes", axis=1)
    valid_col = e.op("Reshape", [valid, e.ints("det_col", [0, -1, 1])], base="det_valid_col")
    out_boxes = e.op("Where", [valid_col, picked, zero], base="det_boxes_out")
    cls = e.op("Cast", [e.op("GatherElements", [classes, index], base="det_picked_classes", axis=1)],
               base="det_classes_i", to=TP.INT32)
    out_classes = e.op("Where", [valid, cls, e.const("det_zero_i", np.array(0, np.int32))], base="det_classes_out")
    return [count, out_boxes, out_scores, out_classes]


def patch_detections(model: onnx.ModelProto, head: Head, notes: list | None = None,
                     **kw) -> tuple[onnx.ModelProto, dict]:
    """The model with a dynamic batch (made so with the ``dynamic`` pass when it is static) and the
    post-processing appended; ``kw`` are options()'s. A batch that cannot be made dynamic stays static
    when ``notes`` is a list (which then says so), else it is refused. Returns (patched model, options)."""
    from dataclasses import replace

    if head.family not in ("yolov8", "yolo-end2end", "rtdetr"):
        raise TrtDeployError(f"{head.label} heads are patched with the YoloLayer_TRT plugin, not here")
    opts = options(head, **kw)
    if isinstance(head.input_shape[0], int):
        from ..surgery.dims import CannotRewrite, make_dynamic

        try:
            model = make_dynamic(model, {head.input_name: {0: "batch"}})
            head = replace(head, input_shape=["batch", *head.input_shape[1:]])
        except CannotRewrite as exc:  # (a static RT-DETR export): its outputs at the exported batch
            if notes is None:
                raise
            notes.append(f"the batch stays static at {head.input_shape[0]}: it cannot be made dynamic ({exc}); "
                         "the outputs are fixed at that batch (re-export with dynamic=True for others)")
    return append_postprocess(model, head, opts), opts
