"""trtdeploy insert-cast MODEL -o OUT --tensor NAME --to DTYPE [--no-verify] [--shapes ...] [--inputs FILE.npz]"""

from __future__ import annotations

from ._common import add_model_io, add_verify_options, load, output_path, write_checked


def add_parser(sub):
    p = sub.add_parser("insert-cast", help="cast a tensor, a graph output or a graph input to another dtype; "
                                           "checks that the outputs stay the same (after the cast)")
    add_model_io(p)
    p.add_argument("--tensor", required=True, action="append", metavar="NAME",
                   help="tensor to cast (repeatable); on a graph input, the input itself takes the new dtype "
                        "and a Cast back to the old one follows it (e.g. int64 -> int32 for TensorRT)")
    p.add_argument("--to", required=True, metavar="DTYPE", help="e.g. int64, int32, float16, float32")
    add_verify_options(p)
    return p


def run(args):
    import functools

    from ..surgery.nodes import insert_cast, parse_dtype
    from ..verify import same_outputs

    out = output_path(args)
    to = parse_dtype(args.to)
    model = load(args.model)
    new, casts = model, {}
    for t in args.tensor:
        new = insert_cast(new, t, to, casts)
    import onnx

    narrowing = to in (onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)
    check = functools.partial(same_outputs, tolerance="float16" if narrowing else "float32", casts=casts)
    write_checked(args, model, new, check, out)
    return 0
