"""trtdeploy verify ORIGINAL DYNAMIC [--batch-sizes ...] [--shapes ...] [--inputs FILE.npz]"""

from __future__ import annotations

from ._common import add_batch_sizes, add_run_options, batch_sizes, load


def add_parser(sub):
    p = sub.add_parser("verify", help="check a made-dynamic model against the original with onnxruntime")
    p.add_argument("original", metavar="ORIGINAL")
    p.add_argument("dynamic", metavar="DYNAMIC")
    add_batch_sizes(p)
    p.add_argument("--atol", type=float, help="absolute tolerance, as a fraction of each output's range "
                                              "(default 1e-4, as every trtdeploy check)")
    p.add_argument("--rtol", type=float, help="relative tolerance (default 1e-3)")
    add_run_options(p)
    p.add_argument("--json", action="store_true")
    return p


def run(args):
    import json

    from ..ort import load_inputs, parse_shapes
    from ..verify import verify_dynamic

    sizes = batch_sizes(args.batch_sizes)
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
