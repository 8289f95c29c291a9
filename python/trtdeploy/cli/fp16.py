"""trtdeploy fp16 MODEL -o OUT [--keep-node NAME ...] [--keep-op OP ...] [--io-fp16] [--no-verify]
[--shapes ...] [--inputs FILE.npz]"""

from __future__ import annotations

from ._common import add_model_io, add_verify_options, load, log, output_path, write_checked


def add_parser(sub):
    p = sub.add_parser("fp16", help="convert float32 weights/activations to float16 (for strongly typed TensorRT); "
                                    "checks the error against what float16 rounding explains")
    add_model_io(p)
    p.add_argument("--keep-node", action="append", default=[], metavar="NAME", help="a node to keep in float32")
    p.add_argument("--keep-op", action="append", default=[], metavar="OP",
                   help="an op type to keep in float32 (added to the default precision-sensitive list)")
    p.add_argument("--io-fp16", action="store_true", help="float16 graph outputs too (default: keep float32 I/O)")
    add_verify_options(p)
    return p


def run(args):
    from ..surgery.fp16 import KEEP_FP32_OPS, check_keep_ops, to_fp16
    from ..verify import fp16_outputs
    from ..yolo.families import METADATA_KEY

    out = output_path(args)
    model = load(args.model)
    for note in check_keep_ops(model, args.keep_op):
        log.info("note: %s", note)
    kept: list[str] = []
    half = to_fp16(model, keep_io_fp32=not args.io_fp16, keep_ops=KEEP_FP32_OPS | set(args.keep_op),
                   keep_nodes=set(args.keep_node), kept=kept)
    for note in kept:
        log.info("kept in float32: %s", note)
    check = fp16_outputs
    if any(p.key == METADATA_KEY for p in model.metadata_props):  # written by `yolo patch`: its outputs too
        from ..yolo.verify import fp16_detections as check
    write_checked(args, model, half, check, out)
    return 0
