"""A plain NumPy reference of ultralytics' post-processing, the oracle `yolo verify` compares a
patched model with (tests check it against ultralytics' own output, tests/fixtures/ultralytics_expected.npz).

Raw heads ``[B, 4+nc, N]`` (ultralytics.utils.nms.non_max_suppression, multi_label=False): score =
best class probability, class = its first argmax; candidates score > conf (float32 compare); at most
``topk`` of them, best first (ultralytics' predict/val take up to max_nms = MAX_NMS = 30000, which is
the reference; the patched model's TopK cannot take more than 3840, so a ``topk`` below MAX_NMS gives
the patched model's own bound, against which its graph is checked exactly);
cx, cy, w, h -> x1, y1, x2, y2; greedy NMS in score order, a box dropped when its IoU with a kept
box of the same class (any class with ``agnostic``) is > iou; the first max_det kept.
End-to-end heads ``[B, K, 6]`` (the end-to-end branch of non_max_suppression, RTDETRPredictor):
rows with score > conf in their order, the first max_det; RT-DETR's normalized cx, cy, w, h become
x1, y1, x2, y2 times the input width/height. The RT-DETR head of ultralytics <= 8.3 ``[B, K, 4+nc]``
(RTDETRPredictor of 8.3): score = best class probability, class = its first argmax, the max_det
best rows above conf.

Boxes are compared as diagonal corners (as ONNX NonMaxSuppression and TensorRT's INMSLayer read
them); boxes with no area never suppress. Near-ties are decided the way the model under test
decided them, and counted, so that the comparison keeps its tolerances: a score within ``SCORE_TIE``
of the score threshold (the original and the patched model are two onnxruntime sessions, whose
results may differ in the last bits), an IoU within ``IOU_TIE`` of the IoU threshold (float32 vs
float64 arithmetic), and the order of candidates with exactly equal scores (any order is a valid
NMS). ``kept(box, score, cls)`` tells whether the patched model output that detection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

MAX_NMS = 30000  # ultralytics' non_max_suppression: at most this many candidates go to NMS
IOU_TIE = 1e-5
SCORE_TIE = 1e-5


@dataclass
class Detections:
    boxes: np.ndarray            # [n, 4] float32 x1, y1, x2, y2 pixels
    scores: np.ndarray           # [n] float32
    classes: np.ndarray          # [n] int64
    candidates: int = 0          # above the score threshold, before NMS
    bounded: bool = False        # more candidates than topk
    ties: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.scores)


def _above(scores: np.ndarray, conf: float, decide, ties: list[str], tie: float = SCORE_TIE) -> np.ndarray:
    """score > conf, with scores within ``tie`` of conf decided by ``decide(i)`` when given."""
    above = scores > np.float32(conf)
    near = np.flatnonzero(np.abs(scores.astype(np.float64) - conf) <= tie)
    for i in near:
        ties.append(f"score {scores[i]:.7f} at the threshold {conf}")
        if decide is not None:
            above[i] = decide(i)
    return above


def _corners(cxcywh: np.ndarray) -> np.ndarray:
    """[n, 4] cx, cy, w, h -> x1, y1, x2, y2 in float32, as the appended graph computes them."""
    xy, half = cxcywh[:, :2], cxcywh[:, 2:4] * np.float32(0.5)
    return np.concatenate([xy - half, xy + half], 1).astype(np.float32)


def raw_candidates(pred: np.ndarray, conf: float, topk: int, kept: Callable | None = None,
                   score_tie: float = SCORE_TIE):
    """One image's [4+nc, N] -> (boxes [k, 4] x1y1x2y2 float32, scores [k], classes [k], count,
    bounded, ties): the best ``topk`` candidates above ``conf``, best first (ties: lower anchor first)."""
    cls = pred[4:]
    score = cls.max(0)
    label = cls.argmax(0).astype(np.int64)
    boxes = _corners(pred[:4].T)
    ties: list[str] = []
    decide = None if kept is None else (lambda i: kept(boxes[i], score[i], label[i]))
    cand = np.flatnonzero(_above(score, conf, decide, ties, score_tie))
    order = cand[np.lexsort((cand, -score[cand].astype(np.float64)))]
    count = len(order)
    order = order[:topk]
    return boxes[order], score[order], label[order], count, count > topk, ties


def nms(boxes, scores, classes, iou: float, max_det: int, agnostic: bool = False,
        kept: Callable[[int], bool] | None = None, iou_tie: float = IOU_TIE) -> tuple[list[int], list[str]]:
    """Greedy NMS over candidates already sorted best first; returns (kept indices, near-ties)."""
    order = list(range(len(scores)))
    ties: list[str] = []
    if kept is not None and len(scores) > 1:  # exactly equal scores: the ones the model kept first
        order.sort(key=lambda i: (-float(scores[i]), not kept(i), i))
    b = boxes.astype(np.float64)
    lo, hi = np.minimum(b[:, :2], b[:, 2:]), np.maximum(b[:, :2], b[:, 2:])
    area = np.prod(hi - lo, axis=1)
    keep: list[int] = []
    for i in order:
        if keep:
            k = np.asarray(keep)
            wh = np.clip(np.minimum(hi[k], hi[i]) - np.maximum(lo[k], lo[i]), 0, None)
            inter = wh[:, 0] * wh[:, 1]
            union = area[k] + area[i] - inter
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where((inter > 0) & (area[k] > 0) & (area[i] > 0) & (union > 0), inter / union, 0.0)
            if not agnostic:
                v = np.where(classes[k] == classes[i], v, 0.0)
            if (v > iou + iou_tie).any():
                continue
            near = np.abs(v - iou) <= iou_tie
            if near.any():
                ties.append(f"candidate {i}: IoU {v[near].max():.7f} with a kept box, threshold {iou}")
                drop = (v > iou).any() if kept is None else not kept(i)
                if drop:
                    continue
        keep.append(i)
        if len(keep) == max_det:
            break
    return keep, ties


def raw(pred: np.ndarray, conf: float, iou: float, max_det: int, topk: int, agnostic: bool = False,
        kept: Callable | None = None, iou_tie: float = IOU_TIE, score_tie: float = SCORE_TIE) -> Detections:
    """One image of a raw head [4+nc, N]; ``kept(box, score, cls)`` resolves near-ties."""
    boxes, scores, classes, count, bounded, ties = raw_candidates(pred, conf, topk, kept, score_tie)
    hint = None if kept is None else (lambda i: kept(boxes[i], scores[i], classes[i]))
    keep, nms_ties = nms(boxes, scores, classes, iou, max_det, agnostic, hint, iou_tie)
    ties += nms_ties
    keep = sorted(keep, key=lambda i: (-float(scores[i]), i))
    return Detections(boxes[keep], scores[keep], classes[keep], count, bounded, ties)


def end2end(rows: np.ndarray, conf: float, max_det: int, normalized_size: tuple[int, int] | None = None,
            kept: Callable | None = None, score_tie: float = SCORE_TIE, class_probs: bool = False) -> Detections:
    """One image of an end-to-end head [K, 6]; ``normalized_size`` (H, W) for RT-DETR's boxes. With
    ``class_probs``, the RT-DETR head of ultralytics <= 8.3 [K, 4+nc]: score = the best class
    probability, class = its first argmax (RTDETRPredictor.postprocess of 8.3), and the max_det
    best rows are kept (that predictor kept every row above conf, in query order)."""
    box = rows[:, :4]
    if normalized_size is not None:
        h, w = normalized_size
        box = _corners(box) * np.array([w, h, w, h], np.float32)
    if class_probs:
        score, classes = rows[:, 4:].max(1), rows[:, 4:].argmax(1).astype(np.int64)
    else:
        score, classes = rows[:, 4], rows[:, 5].astype(np.int64)
    ties: list[str] = []
    decide = None if kept is None else (lambda i: kept(box[i], score[i], classes[i]))
    keep = np.flatnonzero(_above(score, conf, decide, ties, score_tie))
    count = len(keep)
    if class_probs:  # best first (ties: lower row first); [K, 6] rows come sorted from the export's TopK
        keep = keep[np.lexsort((keep, -score[keep].astype(np.float64)))]
    keep = keep[:max_det]
    return Detections(box[keep].astype(np.float32), score[keep], classes[keep], count, ties=ties)
