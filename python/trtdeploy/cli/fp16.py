"""trtdeploy fp16 MODEL -o OUT [--keep-node NAME ...] [--keep-op OP ...] [--io-fp16] [--verify]"""

from __future__ import annotations

from ._common import add_model_io, load, log, output_path, save


def add_parser(sub):
    p = sub.add_parser("fp16", help="convert float32 weights/activations to float16 (for strongly typed TensorRT)")
    add_model_io(p)
    p.add_argument("--keep-node", action="append", default=[], metavar="NAME", help="a node to keep in float32")
    p.add_argument("--keep-op", action="append", default=[], metavar="OP",
                   help="an op type to keep in float32 (added to the default precision-sensitive list)")
    p.add_argument("--io-fp16", action="store_true", help="float16 graph outputs too (default: keep float32 I/O)")
    p.add_argument("--verify", action="store_true", help="compare with the float32 model in onnxruntime")
    p.add_argument("--rtol", type=float, default=2e-2, help="--verify tolerance, relative to each output's range")
    return p


def run(args):
    from ..surgery.fp16 import KEEP_FP32_OPS, to_fp16

    out = output_path(args)
    model = load(args.model)
    half = to_fp16(model, keep_io_fp32=not args.io_fp16, keep_ops=KEEP_FP32_OPS | set(args.keep_op),
                   keep_nodes=set(args.keep_node))
    if args.verify:
        from ..surgery.fp16 import verify_fp16

        for name, err in verify_fp16(model, half, rtol=args.rtol).items():
            log.info("verified %s: max error %.3g of the output range", name, err)
    save(half, out)
    return 0
