"""rename_file: the file-to-file rename (surgery.names.rename, or the compiled wire-format path that
streams the weights), checked structurally (verify.same_names) before its rename into place.

It lives beside io.py rather than in surgery/: a pass does not import its check, and this one
function needs both the pass and the check.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import TrtDeployError
from .surgery.names import Backend, _native, build_mapping, rename, tensor_names, validate_mapping


def rename_file(src: str | os.PathLike, dst: str | os.PathLike, mapping: Mapping[str, str] | None = None,
                *, prefix: str | None = None, sanitize: bool = False, backend: Backend = "auto",
                verify: bool = True, protect: Iterable[str | os.PathLike] | None = None) -> dict:
    """Rename tensors in the file ``src`` and write ``dst`` atomically. With the compiled path the
    weights are streamed byte for byte (memory stays far below the file size, files over 2 GB work).

    External data: the output gets its own copy, named after it (``<dst name>.data``, or
    ``<dst name>.data.<i>`` for several files), written under a temporary name and renamed with the
    model; only an in-place rename (dst is src) keeps the files it refers to. ``verify``: before the
    rename into place, the written file is checked structurally (verify.same_names: its names are the
    input's, mapped). ``protect``: files that must not be replaced (default: src and its data files,
    unless dst is src). Returns scan info, with the check's report under "check"."""
    from . import io
    from .verify import same_names

    src, dst = Path(src), Path(dst)
    native = _native()
    if backend == "native" and native is None:
        raise TrtDeployError("the compiled fast path (trtdeploy._C) is not built; reinstall trtdeploy")
    inplace = dst.resolve() == src.resolve()
    if native is None or backend == "python":
        model = io.load(src)
        names = tensor_names(model)
        full = build_mapping(names, mapping, prefix, sanitize)
        validate_mapping(names, full)
        new = rename(model, full, backend="python")
        report: dict = {}

        def check_python(_staged):
            report.update(same_names(_listing(model, names), _listing(new), full))

        if protect is None:
            protect = [] if inplace else [src, *io.external_files(src)]
        io.save(new, dst, check=check_python if verify else None, protect=protect)
        return {"backend": "python", "check": report or None}
    before = io.scan(src)
    full = dict(mapping or {})
    if prefix or sanitize:
        full = build_mapping(before["names"], mapping, prefix, sanitize)
    olds = sorted(before["external_locations"])
    if inplace:
        locations = {}
    elif len(olds) == 1:
        locations = {olds[0]: io.data_name(dst)}
    else:
        locations = {loc: f"{io.data_name(dst)}.{i}" for i, loc in enumerate(olds)}
    if protect is None:
        protect = [] if inplace else [src, *(src.parent / loc for loc in olds)]
    with io.Staging(dst, protect) as st:
        try:
            for old, new_name in locations.items():  # the weights first: a missing file fails early
                data = src.parent / old
                if not data.is_file():
                    raise TrtDeployError(f"{src}: external data file '{old}' is missing")
                _copy_file(data, st.path(new_name))
            info = native.rename_file(str(src), str(st.model), full, locations)
        except ValueError as exc:  # _C.RenameError / _C.ParseError
            raise TrtDeployError(f"{src}: {exc}") from None
        except OSError as exc:
            raise TrtDeployError(f"cannot write {dst}: {exc.strerror or exc}") from None
        except RuntimeError as exc:  # the compiled path's I/O errors
            raise TrtDeployError(str(exc)) from None
        if verify:
            after = io.scan(st.model)
            after["file_size"] = st.model.stat().st_size
            info["check"] = same_names(info, after, full, locations)
        st.commit()
    info["backend"] = "native"
    info["data_files"] = [str(dst.parent / n) for n in locations.values()]
    info.pop("names", None)
    return info


def _listing(model, names: list[str] | None = None) -> dict:
    """What same_names compares, from a loaded model."""
    return {"names": names if names is not None else tensor_names(model),
            "graph_inputs": [i.name for i in model.graph.input],
            "graph_outputs": [o.name for o in model.graph.output]}


def _copy_file(src: Path, dst: Path) -> None:
    """Copy in chunks (so that Ctrl-C/SIGTERM is handled between them)."""
    import shutil

    with open(src, "rb") as fi, open(dst, "wb") as fo:
        shutil.copyfileobj(fi, fo, 16 << 20)
