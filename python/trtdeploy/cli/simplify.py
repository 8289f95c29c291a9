"""trtdeploy simplify MODEL -o OUT [--input-shapes ...]"""

from __future__ import annotations

from ._common import add_model_io, load, log, output_path, save


def add_parser(sub):
    p = sub.add_parser("simplify", help="constant-fold and clean with onnxslim/onnxsim, keeping dynamic dims")
    add_model_io(p)
    p.add_argument("--input-shapes", metavar="NAME:DxD,...",
                   help="shapes for onnxsim's check run of a dynamic model (onnxslim needs none); "
                        "the model keeps its own input dims either way")
    return p


def run(args):
    from ..runtime import parse_shapes
    from ..surgery.simplify import simplify

    out = output_path(args)
    model = load(args.model)
    before = len(model.graph.node)
    slim = simplify(model, parse_shapes(args.input_shapes))
    log.info("nodes: %d -> %d", before, len(slim.graph.node))
    save(slim, out)
    return 0
