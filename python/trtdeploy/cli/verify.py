"""trtdeploy verify ORIGINAL DYNAMIC [--batch-sizes ...]"""

from __future__ import annotations

from ._common import load, log


def add_parser(sub):
    p = sub.add_parser("verify", help="check a made-dynamic model against the original with onnxruntime")
    p.add_argument("original", metavar="ORIGINAL")
    p.add_argument("dynamic", metavar="DYNAMIC")
    p.add_argument("--batch-sizes", metavar="N,N,...", help="default: 1x, 2x, 3x the original batch")
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--json", action="store_true")
    return p


def run(args):
    import json

    from ..verify import verify_dynamic

    sizes = [int(x) for x in args.batch_sizes.split(",")] if args.batch_sizes else None
    report = verify_dynamic(load(args.original), load(args.dynamic), batch_sizes=sizes, atol=args.atol, rtol=args.rtol)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for c in report["checks"]:
            print(f"ok  {c['check']}  (max abs diff {c['max_abs_diff']:.3g})")
    log.info("verified")
    return 0
