"""trtdeploy inspect MODEL [--nodes] [--json]"""

from __future__ import annotations

from ._common import add_model_io


def add_parser(sub):
    p = sub.add_parser("inspect", help="print a model's I/O, opsets, ops, weights, dynamic dims (and nodes)")
    add_model_io(p, output=False)
    p.add_argument("--nodes", action="store_true",
                   help="list every node (those of If/Loop/Scan bodies too) with its inputs/outputs and inferred shapes")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def run(args):
    import json

    from .. import io
    from ..inspection import format_summary, summary

    info = summary(io.load(args.model, load_external_data=False), nodes=args.nodes, path=args.model)
    print(json.dumps(info, indent=2) if args.json else format_summary(info))
    return 0
