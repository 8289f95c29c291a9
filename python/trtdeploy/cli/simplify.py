"""trtdeploy simplify MODEL -o OUT [--input-shapes ...] [--no-verify] [--shapes ...] [--inputs FILE.npz]"""

from __future__ import annotations

from ._common import add_model_io, add_verify_options, load, log, output_path, write_checked


def add_parser(sub):
    p = sub.add_parser("simplify", help="constant-fold and clean with onnxslim/onnxsim, keeping dynamic dims; "
                                        "checks that the outputs stay the same")
    add_model_io(p)
    p.add_argument("--input-shapes", metavar="NAME:DxD,...",
                   help="shapes for onnxsim's check run of a dynamic model (onnxslim needs none); "
                        "the model keeps its own input dims either way")
    add_verify_options(p)
    return p


def run(args):
    from ..ort import parse_shapes
    from ..surgery.simplify import simplify
    from ..verify import same_outputs

    out = output_path(args)
    model = load(args.model)
    notes: list[str] = []
    slim = simplify(model, parse_shapes(args.input_shapes, "--input-shapes"), notes=notes)
    for note in notes:
        log.info("note: %s", note)
    log.info("nodes: %d -> %d", len(model.graph.node), len(slim.graph.node))
    write_checked(args, model, slim, same_outputs, out)
    return 0
