"""trtdeploy expose MODEL [--tensors ...|--nodes ...|--all [--include-constants]] [--inputs FILE.npz]
[--shapes ...] [-o OUT.onnx [--no-verify]] [--dump OUT.npz]"""

from __future__ import annotations

from ._common import add_model_io, add_run_options, load, log, write_checked


def add_parser(sub):
    p = sub.add_parser("expose", help="add intermediate tensors as outputs, run them with onnxruntime, dump them")
    add_model_io(p, output=False)
    p.add_argument("--tensors", nargs="+", default=[], metavar="NAME", help="tensors to expose")
    p.add_argument("--nodes", nargs="+", default=[], metavar="NODE", help="expose these nodes' outputs")
    p.add_argument("--all", action="store_true",
                   help="expose every node output, in If/Loop/Scan bodies too (a body's tensor is output as "
                        "NAME@NODE; of a Loop/Scan, one slice per iteration)")
    p.add_argument("--include-constants", action="store_true",
                   help="with --all: also the tensors that depend on no input (skipped by default)")
    add_run_options(p)
    p.add_argument("-o", "--output", metavar="OUT.onnx",
                   help="write the model with the extra outputs (checked: its original outputs stay the same)")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="with -o: write without the check")
    p.add_argument("--dump", metavar="OUT.npz", help="save the values (one array per tensor)")
    p.add_argument("--no-run", action="store_true", help="only write the model; do not run onnxruntime")
    p.add_argument("--seed", type=int, default=0)
    return p


def run(args):
    import numpy as np

    from ..errors import TrtDeployError
    from ..surgery.expose import expose
    from ..verify import same_outputs
    from ._common import check_outputs, output_path

    dump = [("--dump", args.dump)] if args.dump else []
    out = output_path(args, dump) if args.output else None
    if out is None:
        check_outputs(args, dump)
    model = load(args.model)
    notes: list[str] = []
    branches: set[str] = set()  # carried out of an If branch: empty on every axis where it did not run
    exposed_model, names = expose(model, args.tensors, args.nodes, args.all, args.include_constants, notes,
                                  branches)
    for note in notes:
        log.info("note: %s", note)
    log.info("exposing %d tensor(s)", len(names))
    if out is not None:
        write_checked(args, model, exposed_model, same_outputs, out)
    if args.no_run:
        return 0
    from .. import ort
    from ._common import probe

    problem = ort.exchange_problem(exposed_model)
    if problem:
        raise TrtDeployError(f"cannot run the model: its {problem}" + ("" if out else "; --no-run -o OUT writes "
                                                                       "the model without running it"))
    pr = probe(args, model)
    if pr.note():
        log.info("note: %s", pr.note())
    feeds = pr.feeds()
    values = ort.run(ort.session(exposed_model), feeds, names)
    width = max(len(n) for n in names)
    not_taken = [n for n in names if n in branches and values[n].ndim and not any(values[n].shape)]
    for name in names:
        v = values[name]
        stats = ""
        if name in not_taken:
            stats = "(branch not taken)"
        elif v.size and v.dtype.kind in "fiub":
            f = v.astype(np.float64)
            stats = f"min {f.min():.6g}  max {f.max():.6g}  mean {f.mean():.6g}"
        print(f"{name:<{width}}  {str(v.dtype):<8} {str(list(v.shape)):<20} {stats}")
    if args.dump:
        from ..io import atomic_savez

        atomic_savez(args.dump, {n: v for n, v in values.items() if n not in not_taken})
        skipped = ", ".join(not_taken[:5]) + (f" and {len(not_taken) - 5} more" if len(not_taken) > 5 else "")
        log.info("wrote %s", args.dump + (f" (without {skipped}: not computed, their If branch did not run)"
                                          if not_taken else ""))
    return 0
