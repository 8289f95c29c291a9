"""trtdeploy dynamic MODEL -o OUT [--dims NAME:AXIS=SYMBOL,...] [--keep-fixed NODE ...] [--no-verify]
[--batch-sizes N,N] [--shapes ...] [--inputs FILE.npz]"""

from __future__ import annotations

from ._common import add_batch_sizes, add_model_io, add_verify_options, batch_sizes, load, log, output_path, write_checked


def add_parser(sub):
    p = sub.add_parser("dynamic", help="make static input dims dynamic (and fix the shapes baked into the graph)")
    add_model_io(p)
    p.add_argument("--dims", action="append", metavar="NAME:AXIS=SYMBOL,...",
                   help="axes to make dynamic: AXIS=SYMBOL items for the NAME before them, several inputs in one "
                        "flag, e.g. images:0=batch,2=height,3=width or input:0=batch,state:1=batch (repeatable; "
                        "default: the batch axis of the data inputs, named 'batch': axis 0, or axis 1 of an "
                        "LSTM/GRU/RNN initial state)")
    p.add_argument("--keep-fixed", action="append", default=[], metavar="NODE",
                   help="a Resize/Slice whose fixed size is meant (interpolate(size=...), x[:, :n]): left as it is "
                        "(the output lists the nodes rewritten on that guess)")
    add_verify_options(p)
    add_batch_sizes(p)
    p.add_argument("--check-build", nargs="?", const="", metavar="MIN:OPT:MAX",
                   help="also parse and build the written model with TensorRT or TensorRT-RTX (whichever is installed) "
                        "before it is renamed into place, for a batch profile MIN:OPT:MAX (default: the batch sizes "
                        "the check ran; other dynamic dims at the --shapes/check sizes)")
    return p


def run(args):
    import functools

    from ..errors import TrtDeployError
    from ..surgery.dims import CannotRewrite, default_dims, explain_default, make_dynamic, parse_dims
    from ..verify import CannotRun, dynamic_outputs

    out = output_path(args)
    sizes = batch_sizes(args.batch_sizes)
    spec = {}
    for text in args.dims or []:
        for name, axes in parse_dims(text).items():
            spec.setdefault(name, {}).update(axes)
    model = load(args.model)
    default = None if spec else default_dims(model)
    log.info("rewriting shapes")
    guesses: list[str] = []

    def explained(exc):  # default axes that fail: which input looks wrong, if one does; else the error as it is
        text = explain_default(model, default, str(exc)) if default else None
        return TrtDeployError(text) if text else exc

    try:
        dyn = make_dynamic(model, spec or default, keep_fixed=set(args.keep_fixed), guesses=guesses)
    except CannotRewrite as exc:
        raise explained(exc) from None
    for g in guesses:
        log.warning("guessed: %s", g)

    # --shapes for a dim made dynamic here: the new model runs at that size, the original at its own
    from ..ort import parse_shapes
    from ..verify.dynamic import new_dim_sizes

    fit, new_sizes = new_dim_sizes(model, dyn, parse_shapes(getattr(args, "shapes", None)))
    if new_sizes:
        args.shapes = ",".join(f"{n}:{'x'.join(map(str, d))}" for n, d in fit.items())

    def check(original, new, probe):
        try:
            report = dynamic_outputs(original, new, probe, batch_sizes=sizes, sizes=new_sizes)
        except CannotRun:
            raise
        except TrtDeployError as exc:
            raise explained(exc) from None
        if args.check_build is not None:
            from ..trt.build import check_build

            report.setdefault("checks", []).append(check_build(new, probe.written[1], args.check_build, probe, sizes))
        return report

    write_checked(args, model, dyn, functools.update_wrapper(check, dynamic_outputs), out)
    if guesses:
        log.warning("the check cannot tell those guesses apart: at another height/width there is no original "
                    "to compare with; check the %d node(s) above", len(guesses))
    return 0
