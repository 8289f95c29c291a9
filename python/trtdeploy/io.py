"""Loading and saving models: atomic writes, external data, models over 2 GB.

Every model file trtdeploy writes goes through a Staging folder: a hidden temporary folder beside the
destination where the model (and its external data, named after the model) is written and may be
checked; commit() then renames the data files and, last, the model into place. An error, a check that
fails, Ctrl-C or SIGTERM (the CLI turns it into an exception) removes the folder: nothing partial is
ever left under a final name, and no file the command did not create is overwritten.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import TrtDeployError

if TYPE_CHECKING:  # onnx is imported when a model is loaded/saved: path checks stay light
    import onnx

_PROTOBUF_LIMIT = 2**31 - 1


def load(path: str | os.PathLike, load_external_data: bool = True) -> onnx.ModelProto:
    """Load an ONNX model, with its external data (resolved next to the file) by default. Refuses what
    is not a model (an empty file, other bytes that happen to parse as protobuf)."""
    import onnx

    path = Path(path)
    _check_model_file(path)
    try:
        model = onnx.load(str(path), load_external_data=load_external_data)
    except FileNotFoundError as exc:
        raise TrtDeployError(f"{path}: external data file missing: {exc.filename or exc}") from None
    except Exception as exc:  # protobuf DecodeError and friends
        import re

        missing = re.search(r"should be stored in (.*), but it is not regular file", str(exc))
        if missing:
            raise TrtDeployError(f"{path}: external data file missing: {missing.group(1)}") from None
        raise TrtDeployError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    if not model.HasField("graph"):
        raise TrtDeployError(f"{path}: not an ONNX model (the file parses, but holds no graph)")
    return model


def _check_model_file(path: Path) -> None:
    if path.is_dir():
        raise TrtDeployError(f"{path}: is a folder, not an .onnx file")
    if not path.is_file():
        raise TrtDeployError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise TrtDeployError(f"{path}: empty file (0 bytes), not an ONNX model")


def scan(path: str | os.PathLike) -> dict | None:
    """Names, graph inputs/outputs and external data locations of a model file, read by the compiled
    wire reader without loading the weights; None when the compiled module is not built."""
    try:
        from . import _C
    except ImportError:
        return None
    path = Path(path)
    _check_model_file(path)
    try:
        info = _C.scan_file(str(path))
    except ValueError as exc:  # _C.ParseError
        raise TrtDeployError(f"{path}: not a readable ONNX model ({exc})") from None
    except RuntimeError as exc:  # cannot open/map
        raise TrtDeployError(str(exc)) from None
    if not info["has_graph"]:
        raise TrtDeployError(f"{path}: not an ONNX model (the file parses, but holds no graph)")
    return info


def external_files(path: str | os.PathLike) -> list[Path]:
    """The external data files a model file refers to (resolved beside it), without loading weights."""
    path = Path(path)
    info = scan(path)
    if info is not None:
        locations = info["external_locations"]
    else:
        model = load(path, load_external_data=False)
        locations = sorted({e.value for t in _tensors(model) for e in t.external_data if e.key == "location"})
    return [path.parent / loc for loc in locations]


def _tensors(model: onnx.ModelProto):
    from ._graph import model_graphs

    for g in model_graphs(model):
        yield from g.initializer
        for sp in g.sparse_initializer:
            yield sp.values
            yield sp.indices
        for n in g.node:
            for a in n.attribute:
                if a.HasField("t"):
                    yield a.t


def model_size(model: onnx.ModelProto) -> int:
    """Serialized size in bytes, or a number over protobuf's 2 GB limit for a model past it (protobuf
    refuses to even compute the size of such a message)."""
    from google.protobuf.message import EncodeError

    try:
        return model.ByteSize()
    except EncodeError:
        return _PROTOBUF_LIMIT + 1


def fits_in_protobuf(model: onnx.ModelProto) -> bool:
    """Whether the model serializes as one message (with a margin for what serializing adds)."""
    return model_size(model) < _PROTOBUF_LIMIT - (64 << 20)


def check_output_path(src: str | os.PathLike, dst: str | os.PathLike | None, inplace: bool) -> Path:
    """Resolve -o/--inplace (which file is the output; check_outputs then checks it against the inputs)."""
    if inplace:
        if dst is not None and not same_file(dst, src):
            raise TrtDeployError("give either -o OUT or --inplace, not both")
        dst = Path(src)
    elif dst is None:
        raise TrtDeployError("missing -o OUT (or --inplace to overwrite the input)")
    return Path(dst)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: the same path once symlinks and '..' are resolved, or (where
    both exist) the same file by device and inode (a hardlink, a bind mount)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def model_files(label: str, path: str | os.PathLike) -> list[tuple[str, Path]]:
    """An input model and its external data files, described for check_outputs ("the input model
    m.onnx"); a file that is not a readable model is left to the load, which says why."""
    files = [(f"{label} {path}", Path(path))]
    if Path(path).is_file():
        try:
            files += [(f"the external data file {p} of {label} {path}", p) for p in external_files(path)]
        except TrtDeployError:
            pass
    return files


def check_outputs(outputs: Iterable[tuple[str, str | os.PathLike]], inputs: Iterable[tuple[str, str | os.PathLike]],
                  replaceable: Iterable[str | os.PathLike] = (), inplace: bool = False, hint: str = "") -> None:
    """Every file one call writes, checked before any work: each can be written (check_writable), and
    none is one of the call's inputs (a model with its external data files: model_files) or another
    of its outputs. A symlink, a relative path or a hardlink to a file is that file (same_file).
    ``outputs``: (flag, path), read as "FLAG PATH" ("--dump", "x.npz"), the main output first;
    ``inputs``: (description, path) ("the input model m.onnx"). ``replaceable``: the inputs the main
    output may replace with ``inplace`` (--inplace: the model and its data files); when it is one of
    them without ``inplace``, ``hint`` ends the message."""
    outputs = [(flag, Path(p)) for flag, p in outputs]
    replaceable = list(replaceable)
    for i, (flag, path) in enumerate(outputs):
        for other, opath in outputs[:i]:
            if same_file(path, opath):
                raise TrtDeployError(f"refusing to write {flag} {path}: it is also {other} {opath}; give each "
                                     "output its own file")
        for what, ipath in inputs:
            if not same_file(path, ipath):
                continue
            own = i == 0 and any(same_file(path, r) for r in replaceable)
            if not (own and inplace):
                raise TrtDeployError(f"refusing to write {flag} {path}: it is {what}; give another file name"
                                     f"{hint if own else ''}")
        check_writable(path, flag)


def check_writable(path: str | os.PathLike, flag: str = "-o") -> None:
    """The file can be created: it is not a folder, and its nearest existing folder is writable."""
    path = Path(path)
    if path.is_dir():
        raise TrtDeployError(f"{flag} {path}: is a folder; give a file name, e.g. {path / 'model.onnx'}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise TrtDeployError(f"{flag} {path}: '{folder}' is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TrtDeployError(f"{flag} {path}: cannot write in '{folder}' (permission denied)")
    if Path(os.path.realpath(folder)).parts[1:2] in (("proc",), ("sys",)):
        raise TrtDeployError(f"{flag} {path}: '{folder}' is a kernel file system, not a place for files")


class Staging:
    """A temporary folder beside ``dst`` for the files of one output (see the module doc).

    path(name) gives where to write a file that will be ``dst.parent / name``; commit() moves them
    all into place (everything else first, ``dst`` itself last). ``protect`` lists files that must not
    be replaced (the input model's own files): committing over one of them is an error."""

    def __init__(self, dst: str | os.PathLike, protect: Iterable[str | os.PathLike] = ()):
        self.dst = Path(dst)
        self.protect = {os.path.realpath(p) for p in protect}
        self.dir: Path | None = None
        self.created: list[Path] = []  # folders made for dst, deepest first: removed unless committed
        self.committed = False

    def __enter__(self) -> Staging:
        check_writable(self.dst)
        missing = self.dst.parent
        while not missing.exists() and missing != missing.parent:
            self.created.append(missing)
            missing = missing.parent
        try:
            self.dst.parent.mkdir(parents=True, exist_ok=True)
            self.dir = Path(tempfile.mkdtemp(prefix=f".{self.dst.name}.trtdeploy-", dir=self.dst.parent))
        except OSError as exc:
            self._remove_created()
            raise TrtDeployError(f"cannot write {self.dst}: {exc.strerror or exc}") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if not self.committed:
            self._remove_created()

    def _remove_created(self) -> None:
        for folder in self.created:  # deepest first; a folder something else wrote into stays
            try:
                folder.rmdir()
            except OSError:
                break
        self.created = []

    @property
    def model(self) -> Path:
        """Where the model itself is written."""
        return self.path(self.dst.name)

    def path(self, name: str) -> Path:
        assert self.dir is not None, "use Staging as a context manager"
        p = self.dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def commit(self) -> list[Path]:
        """Move the staged files into place, the model last. Returns their final paths."""
        assert self.dir is not None
        files = [p for p in sorted(self.dir.rglob("*")) if p.is_file() and p != self.model]
        files.append(self.model)
        targets = [(p, self.dst.parent / p.relative_to(self.dir)) for p in files]
        for _, final in targets:
            if os.path.realpath(final) in self.protect:
                raise TrtDeployError(f"refusing to overwrite {final}: it belongs to the input model; "
                                     "choose another output name")
            if final.is_dir():
                raise TrtDeployError(f"cannot write {final}: a folder has that name")
        try:
            for tmp, final in targets:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
                self.committed = True
        except OSError as exc:
            raise TrtDeployError(f"cannot write {self.dst}: {exc.strerror or exc}") from None
        return [final for _, final in targets]


def data_name(path: str | os.PathLike) -> str:
    """The external data file of a model written by trtdeploy: named after the model."""
    return Path(path).name + ".data"


def write_model(model: onnx.ModelProto, path: str | os.PathLike, external_data: bool | None = None) -> Path:
    """Write ``model`` at ``path`` directly (no staging): the model, and with external data (None: only
    when the model is over protobuf's 2 GB limit) all weights in ``<name>.data`` beside it."""
    import onnx

    path = Path(path)
    if external_data is None:
        external_data = not fits_in_protobuf(model)
    if external_data:
        model = _copy(model)  # onnx converts the tensors to external references in place
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name(path), size_threshold=1024)
    else:
        with open(path, "wb") as f:
            f.write(model.SerializeToString())
    return path


def save(model: onnx.ModelProto, path: str | os.PathLike, external_data: bool | None = None,
         check: Callable[[Path], None] | None = None, protect: Iterable[str | os.PathLike] = ()) -> Path:
    """Write a model atomically: staged beside ``path``, checked by ``check(staged_path)`` when given
    (it raises to refuse), then renamed into place. external_data=None stores the weights in
    ``<name>.data`` beside the file when the model exceeds protobuf's 2 GB limit, and inline otherwise.
    ``protect``: files that must not be replaced (the input's)."""
    path = Path(path)
    with Staging(path, protect) as st:
        try:
            write_model(model, st.model, external_data)
        except OSError as exc:
            raise TrtDeployError(f"cannot write {path}: {exc.strerror or exc}") from None
        if check is not None:
            check(st.model)
        st.commit()
    return path


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def atomic_savez(path: str | os.PathLike, arrays: dict) -> Path:
    """An .npz (what np.savez writes: one NAME.npy entry per array; np.load gives them back by name),
    staged, then renamed into place. Written entry by entry rather than through np.savez(**arrays), whose
    own parameter names ('file', 'allow_pickle') cannot be tensor names there."""
    import zipfile

    import numpy as np

    path = Path(path)
    with Staging(path) as st:
        with zipfile.ZipFile(st.model, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, arr in arrays.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)
        st.commit()
    return path


def atomic_write_bytes(path: str | os.PathLike, data, protect: Iterable[str | os.PathLike] = ()) -> Path:
    """Bytes (an engine, a timing cache, a JSON sidecar) staged beside ``path``, then renamed into place."""
    path = Path(path)
    with Staging(path, protect) as st:
        try:
            with open(st.model, "wb") as f:
                f.write(data)
        except OSError as exc:
            raise TrtDeployError(f"cannot write {path}: {exc.strerror or exc}") from None
        st.commit()
    return path
