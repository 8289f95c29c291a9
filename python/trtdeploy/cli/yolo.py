"""trtdeploy yolo patch MODEL -o OUT [...] | trtdeploy yolo verify ORIGINAL PATCHED"""

from __future__ import annotations

from ._common import add_model_io, load, log, output_path, save


def add_parser(sub):
    p = sub.add_parser("yolo", help="YOLOv5 head -> YoloLayer_TRT plugin (patch), and its check (verify)")
    ysub = p.add_subparsers(dest="yolo_command", metavar="ACTION", required=True)
    pa = ysub.add_parser("patch", help="cut the Detect decode after its sigmoids and insert YoloLayer_TRT")
    add_model_io(pa)
    pa.add_argument("--score-threshold", type=float, default=0.25, help="prenms_score_threshold (default 0.25)")
    pa.add_argument("--score-mode", choices=["obj*cls", "obj"], default="obj*cls",
                    help="score = objectness * best class prob (default) or objectness only (legacy)")
    pa.add_argument("--max-detections", type=int, default=0, help="output rows per image (default: all anchors)")
    pa.add_argument("--nms", action="store_true", help="append ONNX NonMaxSuppression (TensorRT INMSLayer)")
    pa.add_argument("--iou-threshold", type=float, default=0.45)
    pa.add_argument("--max-output-boxes", type=int, default=100, help="NMS max_output_boxes_per_class")
    pa.add_argument("--anchors", help="override: w,h,w,h,... in pixels, level by level (finest first)")
    pa.add_argument("--num-classes", type=int, help="override the class count")
    pa.add_argument("--head-output", help="the decoded output to replace (default: the [B, N, nc+5] output)")
    pa.add_argument("--verify", action="store_true", help="run `yolo verify` on the result before writing it")
    pa.add_argument("-v", "--verbose", action="store_true")
    pv = ysub.add_parser("verify", help="compare the patched model's decode with the original's output")
    pv.add_argument("original", metavar="ORIGINAL")
    pv.add_argument("patched", metavar="PATCHED")
    pv.add_argument("--shapes", metavar="NAME:DxD", help="input shape when the original is dynamic")
    pv.add_argument("--inputs", metavar="FILE.npz", help="input values (default: random)")
    pv.add_argument("--json", action="store_true")
    pv.add_argument("-v", "--verbose", action="store_true")
    return p


def run(args):
    return _patch(args) if args.yolo_command == "patch" else _verify(args)


def _patch(args):
    from ..errors import TrtDeployError
    from ..yolo.head import find_head
    from ..yolo.patch import patch

    out = output_path(args)
    model = load(args.model)
    anchors = None
    if args.anchors:
        try:
            anchors = [float(a) for a in args.anchors.replace(" ", "").split(",") if a]
        except ValueError:
            raise TrtDeployError("--anchors: expected numbers separated by commas") from None
    head = find_head(model, output=args.head_output, anchors=anchors, num_classes=args.num_classes)
    log.info("head: %d levels (strides %s), %d anchors per level, %d classes, convs %s", len(head.convs),
             head.strides, head.num_anchors, head.num_classes, ", ".join(head.conv_nodes))
    patched = patch(model, score_threshold=args.score_threshold, score_mode=0 if args.score_mode == "obj*cls" else 1,
                    max_detections=args.max_detections, nms=args.nms, iou_threshold=args.iou_threshold,
                    max_output_boxes=args.max_output_boxes, head=head)
    if args.verify:
        _report(_check(model, patched, None, None))
    save(patched, out)
    return 0


def _check(original, patched, shapes, inputs):
    import numpy as np

    from ..errors import TrtDeployError
    from ..runtime import parse_shapes
    from ..yolo.verify import verify_patch

    feeds = None
    if inputs:
        try:
            with np.load(inputs) as d:
                feeds = {k: d[k] for k in d.files}
        except (OSError, ValueError) as exc:
            raise TrtDeployError(f"--inputs {inputs}: {exc}") from None
    return verify_patch(original, patched, feeds=feeds, shapes=parse_shapes(shapes))


def _report(r):
    log.info("verified %d image(s) x %d anchors: max box diff %.3g px, max score diff %.3g, %d class mismatches, "
             "detections %s (original %s)", r["images"], r["anchors_per_image"], r["max_box_abs_diff_px"],
             r["max_score_abs_diff"], r["class_mismatches"], r["detections_plugin"], r["detections_original"])


def _verify(args):
    import json

    r = _check(load(args.original), load(args.patched), args.shapes, args.inputs)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"ok: {r['images']} image(s) x {r['anchors_per_image']} anchors; max box diff "
              f"{r['max_box_abs_diff_px']:.3g} px, max score diff {r['max_score_abs_diff']:.3g}, "
              f"class mismatches {r['class_mismatches']}, detections {r['detections_plugin']} "
              f"(original {r['detections_original']})")
    return 0
