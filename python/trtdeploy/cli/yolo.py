"""trtdeploy yolo patch MODEL -o OUT [...] | trtdeploy yolo verify ORIGINAL PATCHED"""

from __future__ import annotations

from ._common import add_model_io, add_verify_options, load, log, output_path, write_checked

FAMILIES = ("yolov5", "yolov8", "yolo-end2end", "rtdetr")


def add_parser(sub):
    p = sub.add_parser("yolo", help="YOLO heads -> fixed-size detection outputs for TensorRT (patch), and the check "
                                    "(verify)")
    ysub = p.add_subparsers(dest="yolo_command", metavar="ACTION", required=True)
    pa = ysub.add_parser(
        "patch", help="recognize the detector head and append the post-processing (YOLOv5: YoloLayer_TRT plugin)",
        description="Recognizes the head from the graph: yolov5 (anchor head -> YoloLayer_TRT plugin), yolov8 (raw "
                    "[B, 4+nc, N] head of YOLOv8/YOLO11/YOLO26/YOLOv10 -> TopK + NonMaxSuppression), yolo-end2end "
                    "and rtdetr ([B, K, 6] NMS-free heads). The new families get a dynamic batch and the outputs "
                    "num_detections [B,1], detection_boxes [B,D,4] (x1,y1,x2,y2 pixels), detection_scores [B,D], "
                    "detection_classes [B,D]. The result is checked against the original before it is written.")
    add_model_io(pa)
    pa.add_argument("--family", choices=FAMILIES, help="override the head family read from the graph")
    pa.add_argument("--head-output", help="the head output to read (default: found from the graph)")
    pa.add_argument("--score-threshold", type=float, default=0.25, help="keep detections with score > this (0.25)")
    pa.add_argument("--iou-threshold", type=float, default=0.45,
                    help="NMS IoU threshold (0.45; ultralytics' predict uses 0.7)")
    pa.add_argument("--max-detections", type=int,
                    help="rows per image, the highest-scoring (default: the K of an end-to-end [B, K, 6] head "
                         "when K is a static dim of its output, else 300; yolov5 without --nms plugin: every anchor)")
    pa.add_argument("--topk", type=int, help="yolov8 (and yolov5 --nms plugin): candidates given to NMS, the best "
                                             "by score (default 3840, "
                                             "TensorRT's TopK limit, or N when the head has fewer anchors; "
                                             "ultralytics' predict/val allow 30000, so results differ when more "
                                             "candidates pass the threshold: the check says so)")
    pa.add_argument("--agnostic", action="store_true", help="yolov8 (and yolov5 --nms plugin): class-agnostic NMS")
    pa.add_argument("--nms", nargs="?", const="onnx", choices=["onnx", "plugin"],
                    help="which NMS ends the model: onnx (NonMaxSuppression, TensorRT INMSLayer; the portable "
                         "default, no library to ship) or plugin (TRTDeploy_NMS from trtdeploy's plugin library: "
                         "fixed-size outputs, builds for TensorRT-RTX); yolov5: --nms appends ONNX NMS after "
                         "YoloLayer_TRT, "
                         "--nms plugin ends it in TRTDeploy_NMS with the four detection outputs")
    add_verify_options(pa)
    v5 = pa.add_argument_group("yolov5 (YoloLayer_TRT plugin)")
    v5.add_argument("--score-mode", choices=["obj*cls", "obj"], default="obj*cls",
                    help="score = objectness * best class prob (default) or objectness only (legacy)")
    v5.add_argument("--max-output-boxes", type=int, help="with --nms: NMS max_output_boxes_per_class (100)")
    v5.add_argument("--anchors", help="override: w,h,w,h,... in pixels, level by level (finest first)")
    v5.add_argument("--num-classes", type=int, help="override the class count")
    pa.add_argument("-v", "--verbose", action="store_true")
    pv = ysub.add_parser("verify", help="check a patched model against the original export")
    pv.add_argument("original", metavar="ORIGINAL")
    pv.add_argument("patched", metavar="PATCHED")
    pv.add_argument("--shapes", metavar="NAME:DxD",
                    help="input shape (default: the model's, 480x640 for a dynamic H/W)")
    pv.add_argument("--inputs", metavar="FILE.npz", help="input values (default: random images at batch 1, 2, 3)")
    pv.add_argument("--json", action="store_true")
    pv.add_argument("-v", "--verbose", action="store_true")
    return p


def run(args):
    return _patch(args) if args.yolo_command == "patch" else _verify(args)


def _feeds(path, model):
    """--inputs: the images at any batch of 1 or more (the batch is made dynamic)."""
    if not path:
        return None
    from .._graph import data_inputs
    from ..errors import TrtDeployError
    from ..ort import load_inputs

    feeds = load_inputs(path, model, any_batch=True)
    image = data_inputs(model.graph)[0].name
    if image not in feeds or feeds[image].ndim == 0 or feeds[image].shape[0] < 1:
        raise TrtDeployError(f"--inputs {path}: no images under '{image}' (the model's image input; an array "
                             "[B, 3, H, W] with B >= 1)")
    return feeds


def _patch(args):
    from ..errors import TrtDeployError
    from ..ort import parse_shapes
    from ..yolo.families import detect

    out = output_path(args)
    model = load(args.model)
    shapes, feeds = parse_shapes(args.shapes), _feeds(args.inputs, model)
    v5_flags = [f for f, on in (("--anchors", args.anchors), ("--num-classes", args.num_classes is not None),
                                ("--score-mode", args.score_mode != "obj*cls"),
                                ("--max-output-boxes", args.max_output_boxes is not None)) if on]
    family = args.family or ("yolov5" if args.anchors or args.num_classes is not None else None)
    if family == "yolov5" and (args.anchors or args.num_classes is not None):
        head = None  # the v5 matcher with the overrides below
    else:
        head = detect(model, family=family, output=args.head_output)
        log.info("head: %s", head.describe())
        for note in head.evidence:
            log.info("  %s", note)
        family = head.family
    if family != "yolov5" and v5_flags:
        raise TrtDeployError(f"{', '.join(v5_flags)} apply to yolov5 heads; this one is {head.label}")
    if family == "yolov5":
        patched = _patch_yolov5(args, model, head.yolov5 if head else None)

        def check(original, new, _probe):
            from ..yolo.verify import check_shapes
            from ..yolo.verify_v5 import verify_patch

            at = shapes if feeds is not None else check_shapes(original, shapes, log)
            r = verify_patch(original, new, feeds=feeds, shapes=at)
            decoded = {"checks": [{"check": _v5_line(r)}]}
            if args.nms != "plugin":
                return decoded
            report = _check_detections(original, new, feeds, at)  # YoloLayer_TRT + TRTDeploy_NMS on the CPU
            return {**report, "checks": decoded["checks"] + report["checks"]}
    else:
        from ..yolo.postprocess import patch_detections, topk_note

        kw = dict(score_threshold=args.score_threshold, iou_threshold=args.iou_threshold,
                  max_detections=args.max_detections, topk=args.topk, agnostic=args.agnostic, nms=args.nms or "onnx")
        static: list[str] = []  # a batch that cannot be made dynamic stays static, said here
        patched, opts = _with_advice(lambda: patch_detections(model, head, notes=static, **kw))
        for line in static:
            log.warning("note: %s", line)
        log.info("post-processing: %s", ", ".join(f"{k} {v}" for k, v in opts.items() if k != "family"))
        note = topk_note(opts, args.topk is not None, head)
        if note:
            log.warning("note: %s", note)

        def check(original, new, _probe):
            return _check_detections(original, new, feeds, shapes)
    write_checked(args, model, patched, check, out)
    return 0


def _with_advice(fn):
    from ..errors import TrtDeployError

    try:
        return fn()
    except TrtDeployError as exc:
        if str(exc).startswith("cannot make the model dynamic"):
            raise TrtDeployError(f"{exc}; the batch of this static export cannot be made dynamic: re-export it with "
                                 "a dynamic batch (ultralytics: dynamic=True)") from None
        raise


def _patch_yolov5(args, model, head):
    from ..errors import TrtDeployError
    from ..yolo.head import find_head
    from ..yolo.patch import patch

    if head is None:
        anchors = None
        if args.anchors:
            try:
                anchors = [float(a) for a in args.anchors.replace(" ", "").split(",") if a]
            except ValueError:
                raise TrtDeployError("--anchors: expected numbers separated by commas") from None
        head = find_head(model, output=args.head_output, anchors=anchors, num_classes=args.num_classes)
    plugin = args.nms == "plugin"
    if (args.topk is not None or args.agnostic) and not plugin:
        raise TrtDeployError("--topk/--agnostic apply to yolov8 heads and to yolov5 with --nms plugin (the NMS "
                             "plugin's candidates and classes)")
    if args.max_output_boxes is not None and (not args.nms or plugin):
        why = " (with --nms plugin, --max-detections gives the rows)" if plugin else "; pass --nms too"
        raise TrtDeployError(f"--max-output-boxes applies to the ONNX NonMaxSuppression that --nms appends{why}")
    log.info("yolov5 head: %d levels (strides %s), %d anchors per level, %d classes, convs %s", len(head.convs),
             head.strides, head.num_anchors, head.num_classes, ", ".join(head.conv_nodes))
    patched = patch(model, score_threshold=args.score_threshold, score_mode=0 if args.score_mode == "obj*cls" else 1,
                    max_detections=args.max_detections or 0, nms=args.nms or False, iou_threshold=args.iou_threshold,
                    max_output_boxes=100 if args.max_output_boxes is None else args.max_output_boxes, head=head,
                    topk=args.topk, agnostic=args.agnostic)
    if plugin:
        from ..yolo.verify import patch_options

        opts = patch_options(patched)
        log.info("post-processing: YoloLayer_TRT keeps the %d best anchors, then TRTDeploy_NMS: %s", opts["topk"],
                 ", ".join(f"{k} {opts[k]}" for k in ("score_threshold", "iou_threshold", "max_detections",
                                                      "agnostic")))
    return patched


def _check_detections(model, patched, feeds, shapes) -> dict:
    """The written model against the reference (a write_checked report); a difference from ultralytics'
    post-processing (the --topk bound) and an odd-looking head are warnings."""
    from ..yolo.verify import verify_detections

    report = verify_detections(model, patched, feeds=feeds, shapes=shapes, log=log)
    for line in report["warnings"] + report["differences"]:
        log.warning("warning: %s", line)
    return {"checks": [{"check": _detections_line(c, report["reference_by"])} for c in report["checks"]],
            "notes": report["notes"]}


def _detections_line(c, who: str) -> str:
    extra = ""
    if c["near_ties"]:
        extra += f", {c['near_ties']} near-tie(s) decided as the model did"
    if c["topk_bounded"]:
        extra += f", {c['topk_bounded']} image(s) with more candidates than --topk"
    from ..yolo.verify import possessive

    return (f"{c['check']} against {possessive(who)} post-processing: detections {c['detections']} ({who} "
            f"{c['reference']}{', differs' if c['differences'] else ''}), "
            f"max box diff {c['max_box_diff_px']:.3g} px, max score diff {c['max_score_diff']:.3g}{extra}")


def _v5_line(r) -> str:
    return (f"{r['images']} image(s) x {r['anchors_per_image']} anchors decoded as the plugin does, against the "
            f"original: max box diff {r['max_box_abs_diff_px']:.3g} px, max score diff {r['max_score_abs_diff']:.3g}, "
            f"{r['class_mismatches']} class mismatches, detections {r['detections_plugin']} (original "
            f"{r['detections_original']}{_capped(r)})")


def _capped(r) -> str:
    return f"; the plugin keeps the best {r['rows']}" if max(r["detections_original"], default=0) > r["rows"] else ""


def _verify(args):
    import json

    from ..ort import parse_shapes
    from ..yolo.verify import possessive, verify

    original = load(args.original)
    r = verify(original, load(args.patched), feeds=_feeds(args.inputs, original), shapes=parse_shapes(args.shapes))
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    decoded = r.get("decode", r if "images" in r else None)  # YOLOv5: YoloLayer_TRT's decode per anchor
    if decoded is not None:
        print(f"ok: {decoded['images']} image(s) x {decoded['anchors_per_image']} anchors; max box diff "
              f"{decoded['max_box_abs_diff_px']:.3g} px, max score diff {decoded['max_score_abs_diff']:.3g}, "
              f"class mismatches {decoded['class_mismatches']}, detections {decoded['detections_plugin']} "
              f"(original {decoded['detections_original']}{_capped(decoded)})")
    if "checks" in r:
        who = r["reference_by"]
        for c in r["checks"]:
            bound = c["differences"][0]["topk"] if c["differences"] else None
            same = (f"= {possessive(who)} post-processing" if bound is None else
                    f"= the reference with the --topk {bound} bound, {who} {c['reference']}")
            print(f"ok: {r['family']} {c['check']}: detections {c['detections']} {same}; max box diff "
                  f"{c['max_box_diff_px']:.3g} px, max score diff {c['max_score_diff']:.3g}, near-ties "
                  f"{c['near_ties']}")
        for line in r.get("warnings", []) + r.get("differences", []):
            print(f"warning: {line}")
        for note in r.get("notes", []) + ([r["note"]] if r.get("note") else []):
            print(f"note: {note}")
    return 0
