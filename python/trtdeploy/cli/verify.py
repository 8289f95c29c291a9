"""trtdeploy verify ORIGINAL DYNAMIC [--batch-sizes ...] [--shapes ...] [--inputs FILE.npz]"""

from __future__ import annotations

from ._common import add_run_options, load


def add_parser(sub):
    p = sub.add_parser("verify", help="check a made-dynamic model against the original with onnxruntime")
    p.add_argument("original", metavar="ORIGINAL")
    p.add_argument("dynamic", metavar="DYNAMIC")
    p.add_argument("--batch-sizes", metavar="N,N,...", help="default: 1x, 2x, 3x the original batch")
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--rtol", type=float, default=1e-3)
    add_run_options(p)
    p.add_argument("--json", action="store_true")
    return p


def run(args):
    import json

    from ..errors import TrtDeployError
    from ..ort import load_inputs, parse_shapes
    from ..verify import verify_dynamic

    try:
        sizes = [int(x) for x in args.batch_sizes.split(",")] if args.batch_sizes else None
    except ValueError:
        raise TrtDeployError(f"--batch-sizes '{args.batch_sizes}': expected numbers separated by ','") from None
    original = load(args.original)
    feeds = load_inputs(args.inputs, original) if args.inputs else None
    report = verify_dynamic(original, load(args.dynamic), batch_sizes=sizes, atol=args.atol, rtol=args.rtol,
                            shapes=parse_shapes(args.shapes), feeds=feeds)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for note in report["notes"]:
            print(f"note: {note}")
        for c in report["checks"]:
            diff = "" if c["max_abs_diff"] is None else f"  (max abs diff {c['max_abs_diff']:.3g})"
            print(f"{'ok' if c['compared'] else 'ran'}  {c['check']}{diff}")
    return 0
