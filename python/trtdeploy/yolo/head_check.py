"""Plausibility checks of a head output read as `yolo patch` assumed (family, layout, boxes), and the
head in the layout the detection check reads."""

from __future__ import annotations

import numpy as np
import onnx

from ..errors import TrtDeployError


ASSUMED = {"channels": "then class probabilities", "score-class": "then a score in [0, 1] and a class index",
           "class-probs": "then class probabilities"}
BOXES = {"xyxy": "x1, y1, x2, y2 in pixels", "cxcywh": "cx, cy, w, h in pixels",
         "cxcywh-normalized": "cx, cy, w, h normalized to [0, 1]"}
MOSTLY = 0.9  # box checks that a real head can miss on a few rows (YOLO26's raw distances may be negative)


def identified(original: onnx.ModelProto, opts: dict) -> bool:
    """Whether the graph's structure alone gives the family the patch assumed (not a --family override)."""
    from .families import detect

    try:
        return detect(original, output=opts["head_output"]).family == opts["family"]
    except TrtDeployError:
        return False


def check_head(head: np.ndarray, opts: dict, where: str, structure: bool = True) -> str | None:
    """Cheap plausibility checks of a head output read as ``opts`` says (the family and layout that
    `yolo patch` assumed). The patched model follows what was assumed, so a misread head would match
    the reference; these catch it instead. Values that no head of the family can give, whatever its
    training (probabilities outside [0, 1], class indices that are not integers in [0, nc), normalized
    boxes outside [0, 1]: its graph's sigmoid/argmax guarantee them), refuse. Box geometry (x2 < x1,
    w < 0 in many rows) depends on the weights (an undertrained YOLO26 gives x2 < x1 in 16% of rows)
    and does not overrule the graph's structure: it is returned as a warning naming what was seen, unless
    the family did not come from the structure (``structure`` False: --family), where it refuses."""
    layout = opts.get("layout") or ("channels" if opts["family"] == "yolov8" else "score-class")
    y = head.astype(np.float64)
    tol = 1e-4
    if layout == "channels":
        probs, boxes = y[:, 4:], y[:, :4].transpose(0, 2, 1).reshape(-1, 4)
    else:
        probs, boxes = (y[..., 4:] if layout == "class-probs" else y[..., 4:5]), y[..., :4].reshape(-1, 4)
    problem = odd = None
    if probs.size and (probs.min() < -tol or probs.max() > 1 + tol):
        what = "class probabilities" if layout != "score-class" else "scores"
        problem = f"{what} span [{probs.min():.4g}, {probs.max():.4g}], not [0, 1]"
    elif layout == "score-class":
        cls, nc = y[..., 5], opts.get("num_classes")
        if np.any(cls != np.round(cls)) or cls.min() < 0 or (nc and cls.max() >= nc):
            problem = (f"the class column holds {_sample(cls)}, not class indices"
                       + (f" in [0, {nc})" if nc else ""))
    if problem is None and opts.get("boxes") == "cxcywh-normalized" and boxes.size \
            and (boxes.min() < -tol or boxes.max() > 1 + tol):
        problem = f"box values span [{boxes.min():.4g}, {boxes.max():.4g}], not [0, 1]"
    elif problem is None and opts.get("boxes") == "xyxy" and len(boxes):
        ok = (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])
        if ok.mean() < MOSTLY:
            odd = f"x2 < x1 or y2 < y1 in {1 - ok.mean():.0%} of the rows"
    elif problem is None and opts.get("boxes") == "cxcywh" and len(boxes):
        ok = (boxes[:, 2] >= 0) & (boxes[:, 3] >= 0)
        if ok.mean() < MOSTLY:
            odd = f"w < 0 or h < 0 in {1 - ok.mean():.0%} of the anchors"
    boxes_read = BOXES.get(opts.get("boxes"), opts.get("boxes"))
    assumed = f"{opts['family']} head that was assumed ({boxes_read}, {ASSUMED[layout]})"
    if odd and not structure:
        problem = odd
    if problem:
        raise TrtDeployError(f"output '{opts['head_output']}' of {where} does not look like the {assumed}: {problem}; "
                             "if the family is wrong, patch again with --family")
    if odd:
        return (f"output '{opts['head_output']}' of {where}: {odd} (read as the {assumed}); the graph's structure "
                "identified the head, so it was patched as such: an undertrained model gives such boxes, a misread "
                "head too (then patch again with --family)")
    return None


def _sample(v: np.ndarray) -> str:
    u = np.unique(v)
    return ", ".join(f"{x:.4g}" for x in u[:4]) + (", ..." if len(u) > 4 else "")


def probe_threshold(head: np.ndarray, opts: dict, wanted: int = 200) -> float:
    """A score threshold that about ``wanted`` candidates of this image pass (halfway between two
    neighbouring scores, so no score sits on it)."""
    scores = head[4:].max(0) if opts.get("layout") == "channels" or opts["family"] == "yolov8" else \
        head[:, 4:].max(1) if opts.get("layout") == "class-probs" else head[:, 4]
    s = np.sort(scores.astype(np.float64))[::-1]
    k = min(wanted, len(s) - 1)
    return max(0.0, float((s[k - 1] + s[k]) / 2)) if k > 0 else 0.0


def as_checked(head: np.ndarray, opts: dict) -> np.ndarray:
    """The original's head output in the layout the check reads: a YOLOv5 head's decoded [B, N, 5+nc]
    (cx, cy, w, h, objectness, class probabilities) becomes [B, 4+nc, N] with the class scores
    objectness * probability, as YOLOv5's non_max_suppression computes them (x[:, 5:] *= x[:, 4:5]; its
    objectness > conf filter is implied, the probabilities being <= 1). Other heads as they are."""
    if opts["family"] != "yolov5":
        return head
    obj = head[..., 4:5]
    return np.concatenate([head[..., :4], head[..., 5:] * obj], -1).transpose(0, 2, 1)
