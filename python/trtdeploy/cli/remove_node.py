"""trtdeploy remove-node MODEL -o OUT --node NAME [...] [--no-verify] [--shapes ...] [--inputs FILE.npz]"""

from __future__ import annotations

from ._common import add_model_io, add_verify_options, load, output_path, write_checked


def add_parser(sub):
    p = sub.add_parser("remove-node", help="delete nodes and reconnect the graph (single data input/output); "
                                           "checks that the outputs stay the same")
    add_model_io(p)
    p.add_argument("--node", nargs="+", action="extend", required=True, metavar="NAME",
                   help="node name (or, for unnamed nodes, its output tensor)")
    add_verify_options(p)
    return p


def run(args):
    from ..errors import TrtDeployError
    from ..surgery.nodes import remove_nodes
    from ..verify import CannotRun, same_outputs

    out = output_path(args)
    model = load(args.model)

    def check(original, new, probe):
        try:
            return same_outputs(original, new, probe)
        except CannotRun:
            raise
        except TrtDeployError as exc:  # removing a Softmax to get logits changes the outputs on purpose
            raise TrtDeployError(f"{exc}; if changing the outputs is the point, --no-verify writes it") from None

    write_checked(args, model, remove_nodes(model, args.node), check, out)
    return 0
