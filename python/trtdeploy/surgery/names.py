"""Rename tensors everywhere they are referenced.

Two implementations with one contract: the reference below walks the ModelProto; the compiled
fast path (trtdeploy._C.rename_bytes / rename_file) rewrites the protobuf wire format without
parsing the weights. Name-bearing fields, in both: node inputs/outputs, graph inputs/outputs/
value_info, initializers and sparse initializers (values and indices), quantization annotations
(tensor and scale/zero-point names), training-info bindings, in the main graph, every If/Loop/Scan
body (outer-scope captures are the same names) and training graphs. Functions keep their own scope.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ..errors import TrtDeployError

if TYPE_CHECKING:  # onnx is imported lazily: the compiled file path needs neither onnx nor numpy
    import onnx

Backend = str  # "auto" | "python" | "native"


def _native():
    try:
        from .. import _C
    except ImportError:
        return None
    return _C if hasattr(_C, "rename_bytes") else None


def tensor_names(model: onnx.ModelProto) -> list[str]:
    """Every tensor name the rename contract covers, without duplicates."""
    from .._graph import model_graphs

    seen: dict[str, None] = {}

    def add(names: Iterable[str]) -> None:
        for n in names:
            if n:
                seen.setdefault(n, None)

    for g in model_graphs(model):
        for node in g.node:
            add(node.input)
            add(node.output)
        add(t.name for t in g.initializer)
        add(v.name for v in itertools.chain(g.input, g.output, g.value_info))
        for ann in g.quantization_annotation:
            add([ann.tensor_name])
            add(e.value for e in ann.quant_parameter_tensor_names)
        for sp in g.sparse_initializer:
            add([sp.values.name, sp.indices.name])
    for info in model.training_info:
        for b in itertools.chain(info.initialization_binding, info.update_binding):
            add([b.key, b.value])
    return list(seen)


def validate_mapping(names: Iterable[str], mapping: Mapping[str, str]) -> None:
    """Unknown names and collisions are errors that name them (same rules as the fast path)."""
    names = set(names)
    empty = [f"'{a}' -> '{b}'" for a, b in mapping.items() if not a or not b]
    if empty:
        raise TrtDeployError(f"empty tensor names cannot be renamed: {_join(empty)}")
    unknown = [a for a in mapping if a not in names]
    if unknown:
        raise TrtDeployError(f"no tensor named {_join(repr(u) for u in unknown)} in the model; "
                             "`trtdeploy inspect --nodes MODEL` lists the names")
    target_of: dict[str, str] = {}
    collisions = []
    for old, new in mapping.items():
        if old == new:
            continue
        if new in target_of:
            collisions.append(f"'{target_of[new]}' and '{old}' both -> '{new}'")
        else:
            target_of[new] = old
            if new in names and mapping.get(new, new) == new:
                collisions.append(f"'{old}' -> '{new}' (already a tensor name)")
    for old, new in mapping.items():
        if old == new and new in target_of:
            collisions.append(f"'{target_of[new]}' -> '{new}' (kept by another entry)")
    if collisions:
        raise TrtDeployError(f"rename would merge tensors: {_join(sorted(collisions))}")


def _join(items: Iterable[str], limit: int = 10) -> str:
    items = list(items)
    s = ", ".join(items[:limit])
    return s + (f" and {len(items) - limit} more" if len(items) > limit else "")


_BAD = re.compile(r"[^A-Za-z0-9_]")


def build_mapping(names: Iterable[str], mapping: Mapping[str, str] | None = None,
                  prefix: str | None = None, sanitize: bool = False) -> dict[str, str]:
    """The full old -> new mapping: explicit entries, then --prefix and --sanitize on every name.
    Sanitized names are made unique with a numeric suffix."""
    names = list(names)
    mapping = dict(mapping or {})
    if not prefix and not sanitize:
        return mapping
    missing = [a for a in mapping if a not in set(names)]
    if missing:  # report as validate_mapping would, before the derived entries hide it
        validate_mapping(names, mapping)
    final = {n: mapping.get(n, n) for n in names}
    if prefix:
        final = {n: prefix + v for n, v in final.items()}
    if sanitize:
        def clean(v: str) -> str:
            v = _BAD.sub("_", v)
            return "_" + v if v[:1].isdigit() else v

        # names that are already clean keep their name; the others get a numeric suffix if needed
        out = {n: v for n, v in final.items() if clean(v) == v}
        taken = set(out.values())
        for n in sorted(set(final) - set(out)):
            base = v = clean(final[n])
            k = 0
            while v in taken:
                k += 1
                v = f"{base}_{k}"
            taken.add(v)
            out[n] = v
        final = out
    return {a: b for a, b in final.items() if a != b}


def _apply(model: onnx.ModelProto, m: Mapping[str, str]) -> None:
    from .._graph import model_graphs, rename_in_graph

    for g in model_graphs(model):
        rename_in_graph(g, m, recurse=False)
    for info in model.training_info:
        for b in itertools.chain(info.initialization_binding, info.update_binding):
            b.key, b.value = m.get(b.key, b.key), m.get(b.value, b.value)


def rename(model: onnx.ModelProto | bytes, mapping: Mapping[str, str] | None = None, *,
           prefix: str | None = None, sanitize: bool = False,
           backend: Backend = "auto") -> onnx.ModelProto | bytes:
    """Rename tensors (inputs, outputs, any intermediate) and every reference to them.

    ``model`` is a ModelProto (a renamed copy is returned) or serialized bytes (bytes are
    returned). backend: "native" is the compiled wire-format path, "python" the reference;
    "auto" uses the compiled path for bytes when it is built, and the reference for an
    in-memory ModelProto (it avoids re-serializing the weights twice).
    """
    if backend not in ("auto", "python", "native"):
        raise ValueError(f"backend must be auto, python or native, not {backend!r}")
    native = _native()
    if backend == "native" and native is None:
        raise TrtDeployError("the compiled fast path (trtdeploy._C) is not built; reinstall trtdeploy")
    is_bytes = isinstance(model, (bytes, bytearray))
    use_native = native is not None and (backend == "native" or (backend == "auto" and is_bytes))
    if use_native:
        data = bytes(model) if is_bytes else model.SerializeToString()
        try:
            names = native.scan_bytes(data)["names"] if (prefix or sanitize) else None
            full = build_mapping(names, mapping, prefix, sanitize) if names is not None else dict(mapping or {})
            out = native.rename_bytes(data, full)
        except ValueError as exc:  # _C.RenameError / _C.ParseError
            raise TrtDeployError(str(exc)) from None
        import onnx

        return out if is_bytes else onnx.ModelProto.FromString(out)
    import onnx

    from .._graph import copy_model

    proto = onnx.ModelProto.FromString(bytes(model)) if is_bytes else copy_model(model)
    names = tensor_names(proto)
    full = build_mapping(names, mapping, prefix, sanitize)
    validate_mapping(names, full)
    _apply(proto, full)
    return proto.SerializeToString() if is_bytes else proto
