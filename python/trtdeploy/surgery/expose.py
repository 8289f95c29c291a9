"""Expose intermediate tensors as graph outputs (to dump them with onnxruntime)."""

from __future__ import annotations

import onnx
from onnx import helper

from .._graph import copy_model, initializer_names
from .._shapes import propagate
from ..errors import TrtDeployError
from .nodes import find_node


def expose(model: onnx.ModelProto, tensors: list[str] | None = None, nodes: list[str] | None = None,
           all_tensors: bool = False) -> tuple[onnx.ModelProto, list[str]]:
    """Add tensors (by name, by producing node, or every node output) as graph outputs.
    Returns the new model and the exposed names, in graph order."""
    m = copy_model(model)
    g = m.graph
    produced = [o for n in g.node for o in n.output if o]
    wanted: list[str] = []
    if all_tensors:
        wanted = list(produced)
    for name in nodes or []:
        wanted.extend(o for o in find_node(g, name).output if o)
    known = set(produced) | {i.name for i in g.input} | initializer_names(g)
    for t in tensors or []:
        if t not in known:
            import difflib

            close = difflib.get_close_matches(t, sorted(known), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise TrtDeployError(f"no tensor named '{t}' in the main graph{hint}")
        wanted.append(t)
    if not wanted:
        raise TrtDeployError("nothing to expose: give --tensors, --nodes or --all")
    existing = {o.name for o in g.output}
    types = propagate(m)
    order = {name: i for i, name in enumerate(produced)}
    exposed = []
    for t in sorted(dict.fromkeys(wanted), key=lambda x: order.get(x, -1)):
        exposed.append(t)
        if t in existing:
            continue
        elem, dims = types.get(t, (0, None))
        if not elem:
            raise TrtDeployError(f"the type of '{t}' cannot be inferred (custom op?); cannot expose it")
        g.output.append(helper.make_tensor_value_info(t, elem, dims))
    return m, exposed
