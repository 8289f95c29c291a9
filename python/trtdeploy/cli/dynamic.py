"""trtdeploy dynamic MODEL -o OUT [--dims NAME:AXIS=SYMBOL,...] [--verify]"""

from __future__ import annotations

import argparse

from ._common import add_model_io, load, log, output_path, save


def add_parser(sub):
    p = sub.add_parser("dynamic", help="make static input dims dynamic (and fix the shapes baked into the graph)")
    add_model_io(p)
    p.add_argument("--dims", action="append", metavar="NAME:AXIS=SYMBOL,...",
                   help="axes to make dynamic, e.g. images:0=batch,2=height,3=width (repeatable; "
                        "default: axis 0 of the data inputs, named 'batch')")
    p.add_argument("--verify", action=argparse.BooleanOptionalAction, default=None,
                   help="check with onnxruntime at several batch sizes (and a new H/W) against the original "
                        "before writing (default: on when onnxruntime is installed)")
    p.add_argument("--batch-sizes", metavar="N,N,...", help="batch sizes for --verify (default: 1x, 2x, 3x the original)")
    return p


def run(args):
    from ..surgery.dims import make_dynamic, parse_dims

    out = output_path(args)
    spec = {}
    for text in args.dims or []:
        for name, axes in parse_dims(text).items():
            spec.setdefault(name, {}).update(axes)
    model = load(args.model)
    log.info("rewriting shapes")
    dyn = make_dynamic(model, spec or None)
    verify = args.verify
    if verify is None:
        import importlib.util

        verify = importlib.util.find_spec("onnxruntime") is not None
        if not verify:
            log.warning("not verified: onnxruntime is not installed (pip install onnxruntime, or --no-verify)")
    if verify:
        from ..verify import verify_dynamic

        sizes = [int(x) for x in args.batch_sizes.split(",")] if args.batch_sizes else None
        report = verify_dynamic(model, dyn, batch_sizes=sizes)
        for c in report["checks"]:
            log.info("verified: %s (max abs diff %.3g)", c["check"], c["max_abs_diff"])
    save(dyn, out)
    return 0
