"""The YOLOv5 check: YoloLayer_TRT's decode (C++ on the CPU, the kernel's semantics) of the patched
trunk's levels against the original export's own decoded output, every anchor."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from ..errors import TrtDeployError
from ..ort import input_shapes, random_inputs, run, session
from .patch import trunk


def plugin_params(node: onnx.NodeProto) -> dict:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    missing = [k for k in ("max_stride", "num_classes", "anchors") if k not in attrs]
    if missing:
        raise TrtDeployError(f"YoloLayer_TRT node '{node.name}' lacks {', '.join(missing)}")
    return {"anchors": [float(a) for a in attrs["anchors"]], "max_stride": int(attrs["max_stride"]),
            "num_classes": int(attrs["num_classes"]),
            "score_threshold": float(attrs.get("prenms_score_threshold", 0.25)),
            "score_mode": int(attrs.get("score_mode", 0)), "max_detections": int(attrs.get("max_detections", 0))}


def decode(levels, p: dict, score_threshold: float | None = None, max_detections: int | None = None):
    """The plugin's decode on the CPU: C++ when built, the NumPy oracle otherwise."""
    from . import decode as dec

    thr = p["score_threshold"] if score_threshold is None else score_threshold
    mdet = p["max_detections"] if max_detections is None else max_detections
    try:
        from .. import _C  # noqa: F401

        fn = dec.decode_cpu
    except ImportError:
        fn = dec.decode_numpy
    return fn(levels, p["anchors"], p["max_stride"], p["num_classes"], thr, p["score_mode"], mdet)


def verify_patch(original: onnx.ModelProto, patched: onnx.ModelProto, feeds: dict | None = None,
                 shapes: dict | None = None, seed: int = 0, box_atol: float = 1e-2, score_atol: float = 1e-5) -> dict:
    """Every anchor's box/score/class from the plugin's decode vs the original model's output, and
    the number of detections above the plugin's threshold. Raises TrtDeployError on disagreement."""
    trunk_model, node = trunk(patched)
    p = plugin_params(node)
    if feeds is None:
        feeds = random_inputs(original, input_shapes(original, shapes), seed=seed)
    orig_outs = run(session(original), feeds)
    out = next((v for v in orig_outs.values() if v.ndim == 3 and v.shape[-1] == p["num_classes"] + 5), None)
    if out is None:
        raise TrtDeployError(f"the original model has no [B, N, {p['num_classes'] + 5}] output to compare with")
    levels = list(run(session(trunk_model), feeds, list(node.input)).values())
    num, boxes, scores, classes = decode(levels, p, score_threshold=-1.0, max_detections=0)  # every anchor
    b, n = out.shape[:2]
    if boxes.shape[1] != n:
        raise TrtDeployError(f"the plugin decodes {boxes.shape[1]} anchors per image, the original outputs {n}")
    out = out.astype(np.float64)
    xy, wh = out[..., 0:2], out[..., 2:4]
    want_boxes = np.concatenate([xy - wh / 2, xy + wh / 2], -1)
    obj, cls = out[..., 4], out[..., 5:]
    want_scores = obj * cls.max(-1) if p["score_mode"] == 0 else obj
    want_classes = cls.argmax(-1)
    box_err = float(np.abs(boxes - want_boxes).max())
    score_err = float(np.abs(scores - want_scores).max())
    top2 = np.sort(cls, -1)[..., -2:] if cls.shape[-1] > 1 else None
    clear = (top2[..., 1] - top2[..., 0] > 1e-5) if top2 is not None else np.ones(want_classes.shape, bool)
    class_mismatch = int(((classes != want_classes) & clear).sum())
    thr = p["score_threshold"]
    got_count = decode(levels, p)[0].reshape(-1)
    want_count = ((want_scores > thr) & (obj > thr)).sum(1)
    borderline = (np.abs(want_scores - thr) < score_atol * 10).sum(1)
    rows = p["max_detections"] if 0 < p["max_detections"] < n else n  # the plugin outputs at most this many
    count_ok = bool((np.abs(got_count - np.minimum(want_count, rows)) <= borderline).all())
    report = {"images": int(b), "anchors_per_image": int(n), "max_box_abs_diff_px": box_err,
              "max_score_abs_diff": score_err, "class_mismatches": class_mismatch,
              "detections_plugin": got_count.tolist(), "detections_original": want_count.tolist(), "rows": int(rows),
              "score_threshold": thr, "ok": box_err <= box_atol and score_err <= score_atol and not class_mismatch
              and count_ok}
    if not report["ok"]:
        raise TrtDeployError(f"the patched model disagrees with the original: max box diff {box_err:.3g} px, "
                             f"max score diff {score_err:.3g}, {class_mismatch} class mismatches, detections "
                             f"{got_count.tolist()} vs {want_count.tolist()} (wrong anchors/strides? pass --anchors)")
    return report
