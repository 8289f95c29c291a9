"""Check a patched model against the original export (`yolo verify`, and `yolo patch` before writing):
the detections of the patched model (onnxruntime, its plugins through their C++ CPU code) against the
NumPy reference of ultralytics' (YOLOv5's) post-processing of the original's head output. The YOLOv5
decode check per anchor is verify_v5.py, the plausibility checks of a head head_check.py."""

from __future__ import annotations

import numpy as np
import onnx

from ..errors import TrtDeployError
from ..ort import random_inputs, run, session
from .families import METADATA_KEY
from .head_check import as_checked, check_head, identified, probe_threshold
from .verify_v5 import verify_patch


# ---- anchor-free and end-to-end heads: the patched model's fixed-size outputs vs the reference ----

BATCH_SIZES = (1, 2, 3)
SCORE_ATOL = 1e-5
BOX_ATOL = 1e-5  # of the input size (6.4e-3 px at 640); measured in onnxruntime: 0 to 6e-4 px
FLOAT32 = {"score_atol": SCORE_ATOL, "box_atol": BOX_ATOL, "iou_tie": 1e-5, "score_tie": 1e-5}
# float16 post-processing (after `trtdeploy fp16`): scores and box corners rounded to float16
FLOAT16 = {"score_atol": 1e-3, "box_atol": 1e-3, "iou_tie": 1e-2, "score_tie": 1e-5}


def patch_options(patched: onnx.ModelProto) -> dict:
    """What `yolo patch` wrote into the model (family, thresholds, head output)."""
    import json

    text = next((p.value for p in patched.metadata_props if p.key == METADATA_KEY), None)
    if text is None:
        raise TrtDeployError(f"the patched model has no '{METADATA_KEY}' metadata; was it written by "
                             "`trtdeploy yolo patch`?")
    return json.loads(text)


def verify(original: onnx.ModelProto, patched: onnx.ModelProto, feeds: dict | None = None,
           shapes: dict | None = None, seed: int = 0) -> dict:
    """`yolo verify`: the YoloLayer_TRT check for YOLOv5 patches, verify_detections otherwise; for a
    patched model converted to float16, its post-processing against the reference on its own head
    output (verify_postprocess with FLOAT16 tolerances), said in the report's ``note``."""
    plugin = any(n.op_type == "YoloLayer_TRT" for n in patched.graph.node)
    head_type = _made_from(original, patched, plugin)
    if plugin:
        at = shapes if feeds is not None else check_shapes(original, shapes)  # a dynamic H/W at DYNAMIC_HW
        report = verify_patch(original, patched, feeds=feeds, shapes=at, seed=seed)
        if not any(p.key == METADATA_KEY for p in patched.metadata_props):
            return {"family": "yolov5", **report}
        # --nms plugin: the decode per anchor (above), then the detections against YOLOv5's post-processing
        return {**verify_detections(original, patched, feeds=feeds, shapes=at, seed=seed), "decode": report}
    if head_type == onnx.TensorProto.FLOAT16:
        report = verify_postprocess(patched, feeds=feeds, shapes=shapes, tol=FLOAT16, seed=seed)
        report["note"] = ("a float16 model: its post-processing was checked against the reference applied to its "
                          "own head output; compare the float16 trunk with `trtdeploy fp16 --verify` on the export")
        return report
    return verify_detections(original, patched, feeds=feeds, shapes=shapes, seed=seed)


def _made_from(original: onnx.ModelProto, patched: onnx.ModelProto, plugin: bool) -> int | None:
    """Refuse two files that cannot be an export and its patch: other input names, a static size that
    differs (the patch may only have made a dim dynamic), or, for the new families (not ``plugin``), no
    head output of that name and dims in the original. Returns the element type of the head tensor the
    post-processing reads (float16 after `trtdeploy fp16`; None for a plugin model)."""
    from .._graph import data_inputs, dims_of, format_dims

    theirs = {vi.name: vi for vi in data_inputs(patched.graph)}
    for vi in data_inputs(original.graph):
        if vi.name not in theirs:
            raise TrtDeployError(f"PATCHED was not made from ORIGINAL: it has no input '{vi.name}' "
                                 f"(its inputs: {', '.join(theirs) or 'none'})")
        a, b = dims_of(vi), dims_of(theirs[vi.name])
        if a is not None and b is not None and (len(a) != len(b) or any(
                isinstance(y, int) and x != y for x, y in zip(a, b))):  # a patch may make a dim dynamic, no more
            raise TrtDeployError(f"PATCHED was not made from ORIGINAL: input '{vi.name}' is {format_dims(a)} in "
                                 f"ORIGINAL, {format_dims(b)} in PATCHED")
    if plugin:
        return None
    from .._shapes import propagate

    head = patch_options(patched).get("head_output")
    outputs = {o.name: dims_of(o) for o in original.graph.output}
    if head not in outputs:
        raise TrtDeployError(f"PATCHED was not made from ORIGINAL: its head '{head}' is not an output of ORIGINAL "
                             f"(outputs: {', '.join(outputs)})")
    elem, b = propagate(patched).get(head) or (onnx.TensorProto.FLOAT, None)
    a = outputs[head]
    if a is not None and b is not None and (len(a) != len(b) or any(
            isinstance(x, int) and isinstance(y, int) and x != y for x, y in zip(a, b))):
        raise TrtDeployError(f"PATCHED was not made from ORIGINAL: its head '{head}' is {format_dims(b)}, the output "
                             f"of ORIGINAL {format_dims(a)}")
    return elem


DYNAMIC_HW = (480, 640)  # a dynamic H/W is checked at this size by default: not square, so a swap of W and H shows


def check_shapes(original: onnx.ModelProto, shapes: dict | None, log=None) -> dict[str, list[int]]:
    """The image input's shape for the check: given, else its static dims with a dynamic H/W at
    DYNAMIC_HW (said in the log) and batch 1."""
    from .._graph import data_inputs, dims_of

    shapes = dict(shapes or {})
    image = data_inputs(original.graph)[0]
    unknown = sorted(set(shapes) - {vi.name for vi in data_inputs(original.graph)})
    if unknown:
        raise TrtDeployError(f"--shapes: no input named {', '.join(unknown)} (the image input is '{image.name}')")
    if image.name in shapes:
        if len(shapes[image.name]) != 4:
            raise TrtDeployError(f"--shapes {image.name}: expected 4 dims, e.g. {image.name}:1x3x640x640")
        return shapes
    dims = dims_of(image) or []
    default = {0: 1, 2: DYNAMIC_HW[0], 3: DYNAMIC_HW[1]}
    fixed = [d if isinstance(d, int) else default.get(a, 640) for a, d in enumerate(dims)]
    if log is not None and any(not isinstance(d, int) for d in dims[1:]):
        log.info("input '%s' has a dynamic size %s; checking at %s (not square, so that a swap of width and "
                 "height shows; give --shapes to choose)", image.name, dims, "x".join(map(str, fixed[1:])))
    return {image.name: fixed}


def verify_detections(original: onnx.ModelProto, patched: onnx.ModelProto, feeds: dict | None = None,
                      shapes: dict | None = None, batch_sizes=BATCH_SIZES, seed: int = 0, log=None,
                      recheck: bool = True) -> dict:
    """Run the original export and the patched model in onnxruntime on the same images (random
    ones at each batch size, or ``feeds``) and compare the patched model's four outputs with the
    NumPy reference of ultralytics' post-processing of the original's output: the same number of
    detections per image, the same classes, boxes within 1e-5 of the input size, scores within 1e-5,
    scores sorted, rows past the count zero. Raises TrtDeployError naming the first difference."""
    from .._graph import data_inputs, dims_of

    opts = patch_options(patched)
    image = data_inputs(original.graph)[0].name
    orig_batch = (dims_of(data_inputs(original.graph)[0]) or [None])[0]
    # The trunk is the original's in both models: computed alike, only the appended part can differ.
    # Run at the same batch, basic graph optimizations make it bit-exact (the extended ones choose per
    # graph: 6e-3 px apart on YOLO12's attention); a static-batch original runs in chunks, where
    # the full optimizations are (their conv kernels do not depend on the batch; the basic ones do).
    basic = not isinstance(orig_batch, int)
    from .nms_plugin import runner

    sess_o, run_p = session(original, basic=basic), runner(patched, basic=basic)  # --nms plugin: C++ NMS
    if feeds is not None:
        runs = [feeds]
    else:
        base = check_shapes(original, shapes, log)[image]
        sizes = list(batch_sizes)
        fixed = (dims_of(data_inputs(patched.graph)[0]) or [None])[0]
        if isinstance(fixed, int):  # the patch kept a static batch (one that cannot be made dynamic): at it only
            sizes = [fixed]
        if isinstance(orig_batch, int) and orig_batch > 1:  # a static batch-4 export: also at 4
            sizes += [orig_batch] if orig_batch not in sizes else []
            if log is not None:
                log.info("the export's batch is fixed at %d: the original runs on each batch padded to a multiple "
                         "of %d (copies of the last image), the patched model on the batch itself", orig_batch,
                         orig_batch)
        runs = [random_inputs(patched, {image: [b] + list(base[1:])}, seed=seed + b) for b in sizes]
    checks, probe, warnings = [], None, []
    structure = identified(original, opts)
    for run_feeds in runs:
        x = run_feeds[image]
        head = as_checked(_run_original(sess_o, run_feeds, image, orig_batch, opts["head_output"]), opts)
        warnings.append(check_head(head, opts, f"the original at batch {x.shape[0]}", structure))
        got = run_p(run_feeds)
        checks.append(_compare(head, got, opts, x.shape[2:], f"batch {x.shape[0]}", FLOAT32))
        if probe is None:
            probe = probe_threshold(head[0], opts)
    report = {"family": opts["label"], "options": {k: v for k, v in opts.items() if k not in ("label", "boxes")},
              "checks": checks, "ok": True, "detections": [n for c in checks for n in c["detections"]],
              "differences": difference_lines(checks, reference_by(opts)), "reference_by": reference_by(opts),
              "warnings": [w for w in warnings if w][:1]}
    if recheck:
        report["notes"] = _recheck(report, patched, opts, probe, feeds is not None, lambda low: verify_detections(
            original, low, feeds=feeds, shapes=shapes, batch_sizes=batch_sizes, seed=seed, recheck=False))
    return report


MIN_CHECKED = 10  # fewer detections per image than this: also checked at a lower score threshold


def _recheck(report: dict, patched: onnx.ModelProto, opts: dict, probe: float | None, given: bool, rerun) -> list:
    """When the check inputs leave fewer than MIN_CHECKED detections in an image (random images on a
    trained detector: often none), the selection (NMS, the gathers, the fixed rows) was hardly
    compared: ``rerun`` checks the same patched model with its score threshold lowered to ``probe``
    (about 200 candidates in the first image). Returns the notes that say what was compared."""
    dets, thr = report["detections"], opts["score_threshold"]
    if min(dets, default=0) >= MIN_CHECKED:
        return []
    what = "the --inputs images" if given else "random images"
    low = at_threshold(patched, probe) if probe is not None and probe < thr else None
    if low is None:
        return [f"{what} leave {dets} detections per image above {thr:g} and no lower threshold gives more: "
                "the selection was not compared; pass images with objects (--inputs FILE.npz)"]
    r = rerun(low)
    return [f"{what} leave {dets} detections per image above {thr:g}; the same post-processing at score threshold "
            f"{probe:.4g} gave {r['detections']} and matched the reference too"]


PLUGIN_THRESHOLDS = {"YoloLayer_TRT": "prenms_score_threshold", "TRTDeploy_NMS": "score_threshold"}


def at_threshold(patched: onnx.ModelProto, threshold: float) -> onnx.ModelProto | None:
    """A copy of a patched model with its score threshold set to ``threshold``: the 'score_threshold'
    constant that NMS and the final rows compare with, or the plugins' threshold attributes
    (PLUGIN_THRESHOLDS) that hold it; None when it has neither."""
    import json

    from onnx import numpy_helper

    from .._graph import copy_model

    opts = patch_options(patched)
    old = np.float32(opts["score_threshold"])
    m = copy_model(patched)
    found = [t for t in m.graph.initializer
             if t.name.startswith("score_threshold") and t.data_type == onnx.TensorProto.FLOAT
             and numpy_helper.to_array(t).size == 1 and float(numpy_helper.to_array(t).reshape(-1)[0]) == old]
    attrs = [a for n in m.graph.node for a in n.attribute if PLUGIN_THRESHOLDS.get(n.op_type) == a.name
             and a.type == onnx.AttributeProto.FLOAT and np.float32(a.f) == old]
    if len(found) > 1 or not found and not attrs:
        return None
    for t in found:
        t.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(t).shape, threshold, np.float32), t.name))
    for a in attrs:
        a.f = float(threshold)
    meta = next(p for p in m.metadata_props if p.key == METADATA_KEY)
    meta.value = json.dumps({**opts, "score_threshold": float(np.float32(threshold))})
    return m


def reference_by(opts: dict) -> str:
    """Whose post-processing the reference is: YOLOv5's (its repository's detect.py non_max_suppression,
    multi_label=False) for a YOLOv5 head, ultralytics' otherwise."""
    return "YOLOv5" if opts["family"] == "yolov5" else "ultralytics"


def possessive(name: str) -> str:
    return name + ("'" if name.endswith("s") else "'s")


def difference_lines(checks: list[dict], who: str = "ultralytics") -> list[str]:
    """One line (or none): where the patched model's detections differ from ``who``'s post-processing,
    and why (the images' other differences counted)."""
    from .postprocess import TOPK_LIMIT
    from .reference import MAX_NMS

    found = [d for c in checks for d in c["differences"]]
    if not found:
        return []
    d = found[0]
    images = sum(len(c["detections"]) for c in checks)
    counts = (f"{d['detections']} vs {d['ultralytics']} detections" if d["detections"] != d["ultralytics"] else
              f"the same number of detections ({d['detections']}), not all the same ones,")
    fix = (f"raise --topk (max {TOPK_LIMIT})" if d["topk"] < TOPK_LIMIT else
           f"{TOPK_LIMIT} is TensorRT's TopK limit; a higher --score-threshold leaves fewer candidates")
    more = f" (and in {len(found) - 1} more of the {images} images checked)" if len(found) > 1 else ""
    return [f"differs from {who}: {counts} in {d['where']}{more}, because --topk {d['topk']} keeps only the "
            f"best {d['topk']} of {d['candidates']} candidates ({possessive(who)} NMS takes up to {MAX_NMS}); {fix}"]


def _run_original(sess, feeds, image, orig_batch, output) -> np.ndarray:
    x = feeds[image]
    b = x.shape[0]
    if isinstance(orig_batch, int) and orig_batch != b:  # a static-batch export: chunk by chunk, the last padded
        x = np.concatenate([x, np.repeat(x[-1:], -b % orig_batch, 0)])
        parts = [run(sess, {**feeds, image: x[i:i + orig_batch]}, [output])[output]
                 for i in range(0, len(x), orig_batch)]
        return np.concatenate(parts)[:b]
    return run(sess, feeds, [output])[output]


def _compare(head: np.ndarray, got: list, opts: dict, hw, label: str, tol: dict) -> dict:
    from . import reference as ref

    num, boxes, scores, classes = got
    h, w = int(hw[0]), int(hw[1])
    box_tol = tol["box_atol"] * max(h, w)
    score_atol = tol["score_atol"]
    rows = opts["max_detections"]
    out = {"check": label, "detections": [], "reference": [], "max_box_diff_px": 0.0, "max_score_diff": 0.0,
           "near_ties": 0, "topk_bounded": 0, "differences": []}
    for b in range(head.shape[0]):
        n = int(num[b, 0])
        where = f"{label}, image {b}"
        gb, gs, gc = boxes[b, :n].astype(np.float64), scores[b, :n].astype(np.float64), classes[b, :n]

        def kept(box, score, cls, gb=gb, gs=gs, gc=gc):
            return bool(((gc == cls) & (np.abs(gs - score) <= score_atol)
                         & (np.abs(gb - box).max(1, initial=0) <= box_tol)).any()) if len(gs) else False

        ultra = None
        if "topk" in opts:  # a head that needs NMS (yolov8, yolov5 --nms plugin): NMS over its --topk best
            nms = (opts["score_threshold"], opts["iou_threshold"], rows)
            want = ref.raw(head[b], *nms, opts["topk"], opts["agnostic"], kept, tol["iou_tie"], tol["score_tie"])
            if want.bounded:  # more candidates than --topk: ultralytics' own post-processing takes up to 30000
                ultra = ref.raw(head[b], *nms, ref.MAX_NMS, opts["agnostic"], kept, tol["iou_tie"], tol["score_tie"])
        else:
            want = ref.end2end(head[b], opts["score_threshold"], rows,
                               (h, w) if opts["family"] == "rtdetr" else None, kept, tol["score_tie"],
                               class_probs=opts.get("layout") == "class-probs")
        out["detections"].append(n)
        out["reference"].append(len(want if ultra is None else ultra))  # ultralytics' post-processing
        out["near_ties"] += len(want.ties)
        out["topk_bounded"] += int(want.bounded)
        if n != len(want):
            bound = f" and the --topk {opts['topk']} bound" if want.bounded else ""
            raise TrtDeployError(f"{where}: {n} detections, the reference{bound} has {len(want)} "
                                 f"({want.candidates} candidates above {opts['score_threshold']})")
        if ultra is not None and (len(ultra) != n or not all(
                kept(ultra.boxes[i].astype(np.float64), float(ultra.scores[i]), ultra.classes[i])
                for i in range(len(ultra)))):
            out["differences"].append({"where": where, "detections": n, "ultralytics": len(ultra),
                                       "candidates": want.candidates, "topk": opts["topk"]})
        if np.any(np.diff(gs) > 0):
            raise TrtDeployError(f"{where}: detection_scores are not sorted highest first")
        tail = [boxes[b, n:], scores[b, n:], classes[b, n:]]
        if any(np.any(t != 0) for t in tail):
            raise TrtDeployError(f"{where}: rows past num_detections ({n}) are not zero")
        if not n:
            continue
        sd, bd = _match(gb, gs, gc, want, box_tol, score_atol, where)
        out["max_score_diff"] = max(out["max_score_diff"], sd)
        out["max_box_diff_px"] = max(out["max_box_diff_px"], bd)
    return out


def _match(gb, gs, gc, want, box_tol: float, score_atol: float, where: str) -> tuple[float, float]:
    """Pair every reference detection with a patched one of the same class, score within ``score_atol`` and
    box within ``box_tol`` (rows with nearly equal scores may come in either order); raises naming
    the first reference detection without a partner."""
    free = np.ones(len(gs), bool)
    worst_s = worst_b = 0.0
    for i in range(len(want)):
        box, score, cls = want.boxes[i].astype(np.float64), float(want.scores[i]), want.classes[i]
        sd, bd = np.abs(gs - score), np.abs(gb - box).max(1)
        ok = free & (gc == cls) & (sd <= score_atol) & (bd <= box_tol)
        if not ok.any():
            near = int(np.argmin(np.where(gc == cls, sd, np.inf) + bd / max(box_tol, 1e-9)))
            raise TrtDeployError(f"{where}: reference detection {i} (class {cls}, score {score:.6f}, box "
                                 f"{np.round(box, 2).tolist()}) is not in the patched output; nearest: class "
                                 f"{gc[near]}, score {gs[near]:.6f}, box {np.round(gb[near], 2).tolist()}")
        j = int(np.flatnonzero(ok)[np.argmin(bd[ok])])
        free[j] = False
        worst_s, worst_b = max(worst_s, float(sd[j])), max(worst_b, float(bd[j]))
    return worst_s, worst_b


def verify_postprocess(patched: onnx.ModelProto, feeds: dict | None = None, shapes: dict | None = None,
                       tol: dict | None = None, batch_sizes=(1, 3), seed: int = 0, recheck: bool = True) -> dict:
    """The appended post-processing alone: the reference applied to the head tensor of this very run
    of ``patched`` (read as an extra output) against its four outputs. For a patched model converted
    with `trtdeploy fp16`, with FLOAT16 tolerances: together with the fp16 check of the original
    export (the head output within float16's error), this is the check of the converted model, whose
    detections cannot be compared with the float32 ones row by row (float16 moves scores, which
    reorders rows and moves boxes across the thresholds)."""
    from .._graph import copy_model, data_inputs
    from .families import DETECTION_OUTPUTS
    from .nms_plugin import runner

    opts = patch_options(patched)
    tol = tol or FLOAT32
    probe = copy_model(patched)
    probe.graph.output.append(onnx.ValueInfoProto(name=opts["head_output"]))
    image = data_inputs(patched.graph)[0].name
    names = [*DETECTION_OUTPUTS, opts["head_output"]]
    go = runner(probe, outputs=names)  # --nms plugin: the plugin through the C++ NMS
    runs = [feeds] if feeds is not None else [
        random_inputs(patched, {image: [b] + check_shapes(patched, shapes)[image][1:]}, seed=seed + b)
        for b in batch_sizes]
    checks, warnings, probe_thr = [], [], None
    for f in runs:
        out = dict(zip(names, go(f)))
        head = out[opts["head_output"]].astype(np.float32)
        warnings.append(check_head(head, opts, f"the patched model at batch {f[image].shape[0]}"))
        checks.append(_compare(head, [out[k] for k in DETECTION_OUTPUTS], opts, f[image].shape[2:],
                               f"batch {f[image].shape[0]}", tol))
        if probe_thr is None:
            probe_thr = probe_threshold(head[0], opts)
    report = {"family": opts["label"], "checks": checks, "ok": True,
              "detections": [n for c in checks for n in c["detections"]],
              "differences": difference_lines(checks, reference_by(opts)), "reference_by": reference_by(opts),
              "warnings": [w for w in warnings if w][:1]}
    if recheck:
        report["notes"] = _recheck(report, patched, opts, probe_thr, feeds is not None, lambda low: verify_postprocess(
            low, feeds=feeds, shapes=shapes, tol=tol, batch_sizes=batch_sizes, seed=seed, recheck=False))
    return report


def fp16_detections(original: onnx.ModelProto, new: onnx.ModelProto, probe) -> dict:
    """The float16 check of a model `yolo patch` wrote (a write_checked check for `trtdeploy fp16`):
    verify.fp16_outputs (the head within what float16 rounding explains, compared where the
    post-processing starts selecting) and the converted post-processing against the reference on the
    converted model's own head output (verify_postprocess, FLOAT16 tolerances)."""
    from .._graph import data_inputs
    from ..verify import _cast_feeds, fp16_outputs

    report = fp16_outputs(original, new, probe)
    head = patch_options(new)["head_output"]
    if not any(head in n.output for n in new.graph.node):  # YOLOv5 --nms plugin: YoloLayer_TRT replaced it
        report["notes"] = report.get("notes", []) + [
            f"the post-processing is the plugins' (YoloLayer_TRT, then TRTDeploy_NMS), which read the float16 tensors "
            f"compared above; the model has no '{head}' to apply the reference to, so the float16 detections were "
            "not compared with it"]
        return report
    image = data_inputs(new.graph)[0].name
    feeds = _cast_feeds(new, probe.feeds(0)) if probe.values else None  # --inputs: those images
    post = verify_postprocess(new, feeds=feeds, shapes={image: probe.shapes_at(0)[image]}, tol=FLOAT16,
                              seed=probe.seed)
    report["checks"] += [{"check": f"float16 post-processing, {c['check']}: detections {c['detections']} = the "
                                   f"reference on the model's own float16 head, max box diff "
                                   f"{c['max_box_diff_px']:.3g} px, max score diff {c['max_score_diff']:.3g}"}
                         for c in post["checks"]]
    report["notes"] = report.get("notes", []) + post["warnings"] + post["differences"] + post["notes"]
    return report
