"""same_names: a rename, structurally, from the names the wire reader lists (no full load)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import TrtDeployError

if TYPE_CHECKING:
    import numpy as np  # noqa: F401
    import onnx  # noqa: F401


def same_names(before: dict, after: dict, mapping: dict[str, str], locations: dict[str, str] | None = None) -> dict:
    """A rename, checked structurally from what the wire reader (or tensor_names) lists of the input
    and the written file: the names, in first-seen order, are the input's with the mapping applied
    (so every renamed name is gone everywhere and nothing else was renamed), the graph inputs/outputs
    likewise, the external data files are the ones meant; and, given ``output_size``, the file has the
    size the rename computed (nothing else changed length)."""
    def mapped(names):
        return list(dict.fromkeys(mapping.get(n, n) for n in names))

    for key, what in (("names", "tensor names"), ("graph_inputs", "graph inputs"), ("graph_outputs", "graph outputs")):
        if key not in before or key not in after:
            continue
        want, got = mapped(before[key]), list(dict.fromkeys(after[key]))
        if got != want:
            i = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
            g = repr(got[i]) if i < len(got) else "nothing"
            w = repr(want[i]) if i < len(want) else "nothing"
            raise TrtDeployError(f"the renamed model is wrong: its {what} differ from the input's renamed, first at "
                                 f"#{i}: {g} where {w} was expected")
    if "external_locations" in before and "external_locations" in after:
        want_locs = sorted({(locations or {}).get(x, x) for x in before["external_locations"]})
        if sorted(after["external_locations"]) != want_locs:
            raise TrtDeployError(f"the renamed model refers to data files {sorted(after['external_locations'])}, "
                                 f"expected {want_locs}")
    if "output_size" in before and "file_size" in after and before["output_size"] != after["file_size"]:
        raise TrtDeployError(f"the renamed model has {after['file_size']} bytes, the rename computed "
                             f"{before['output_size']}")
    renamed = sum(1 for n in before.get("names", []) if mapping.get(n, n) != n)
    return {"ok": True, "checks": [{"check": f"structure: {renamed} name(s) renamed everywhere, "
                                             f"{len(before.get('names', [])) - renamed} unchanged"}],
            "notes": []}
