"""trtdeploy expose MODEL [--tensors ...|--nodes ...|--all] [--inputs FILE.npz] [-o OUT.onnx] [--dump OUT.npz]"""

from __future__ import annotations

from ._common import add_model_io, load, log, save


def add_parser(sub):
    p = sub.add_parser("expose", help="add intermediate tensors as outputs, run them with onnxruntime, dump them")
    add_model_io(p, output=False)
    p.add_argument("--tensors", nargs="+", default=[], metavar="NAME", help="tensors to expose")
    p.add_argument("--nodes", nargs="+", default=[], metavar="NODE", help="expose these nodes' outputs")
    p.add_argument("--all", action="store_true", help="expose every node output")
    p.add_argument("--inputs", metavar="FILE.npz", help="input values (default: random, right shape and dtype)")
    p.add_argument("--shapes", metavar="NAME:DxD,...", help="input shapes for random inputs with dynamic dims")
    p.add_argument("-o", "--output", metavar="OUT.onnx", help="write the model with the extra outputs")
    p.add_argument("--dump", metavar="OUT.npz", help="save the values (one array per tensor)")
    p.add_argument("--no-run", action="store_true", help="only write the model; do not run onnxruntime")
    p.add_argument("--seed", type=int, default=0)
    return p


def run(args):
    import numpy as np

    from ..errors import TrtDeployError
    from ..io import check_output_path
    from ..surgery.expose import expose

    model = load(args.model)
    exposed_model, names = expose(model, args.tensors, args.nodes, args.all)
    log.info("exposing %d tensor(s)", len(names))
    if args.output:
        save(exposed_model, check_output_path(args.model, args.output, False))
    if args.no_run:
        return 0
    from .. import runtime

    if args.inputs:
        try:
            with np.load(args.inputs) as data:
                feeds = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise TrtDeployError(f"--inputs {args.inputs}: {exc}") from None
    else:
        shapes = runtime.input_shapes(model, runtime.parse_shapes(args.shapes))
        feeds = runtime.random_inputs(model, shapes, seed=args.seed)
    values = runtime.run(runtime.session(exposed_model), feeds, names)
    width = max(len(n) for n in names)
    for name in names:
        v = values[name]
        stats = ""
        if v.size and v.dtype.kind in "fiub":
            f = v.astype(np.float64)
            stats = f"min {f.min():.6g}  max {f.max():.6g}  mean {f.mean():.6g}"
        print(f"{name:<{width}}  {str(v.dtype):<8} {str(list(v.shape)):<20} {stats}")
    if args.dump:
        from ..io import atomic_savez

        atomic_savez(args.dump, values)
        log.info("wrote %s", args.dump)
    return 0
