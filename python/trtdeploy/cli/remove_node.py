"""trtdeploy remove-node MODEL -o OUT --node NAME [...]"""

from __future__ import annotations

from ._common import add_model_io, load, output_path, save


def add_parser(sub):
    p = sub.add_parser("remove-node", help="delete nodes and reconnect the graph (single data input/output)")
    add_model_io(p)
    p.add_argument("--node", nargs="+", action="extend", required=True, metavar="NAME",
                   help="node name (or, for unnamed nodes, its output tensor)")
    return p


def run(args):
    from ..surgery.nodes import remove_nodes

    out = output_path(args)
    save(remove_nodes(load(args.model), args.node), out)
    return 0
