"""trtdeploy insert-cast MODEL -o OUT --tensor NAME --to DTYPE"""

from __future__ import annotations

from ._common import add_model_io, load, output_path, save


def add_parser(sub):
    p = sub.add_parser("insert-cast", help="cast a tensor (or a graph output) to another dtype")
    add_model_io(p)
    p.add_argument("--tensor", required=True, action="append", metavar="NAME", help="tensor to cast (repeatable)")
    p.add_argument("--to", required=True, metavar="DTYPE", help="e.g. int64, int32, float16, float32")
    return p


def run(args):
    from ..surgery.nodes import insert_cast

    out = output_path(args)
    model = load(args.model)
    for t in args.tensor:
        model = insert_cast(model, t, args.to)
    save(model, out)
    return 0
