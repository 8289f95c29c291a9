"""Loading and saving models: atomic writes, external data, models over 2 GB."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import TrtDeployError

if TYPE_CHECKING:  # onnx is imported when a model is loaded/saved: path checks stay light
    import onnx

_PROTOBUF_LIMIT = 2**31 - 1


def load(path: str | os.PathLike, load_external_data: bool = True) -> onnx.ModelProto:
    """Load an ONNX model, with its external data (resolved next to the file) by default."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise TrtDeployError(f"{path}: no such file")
    try:
        return onnx.load(str(path), load_external_data=load_external_data)
    except FileNotFoundError as exc:
        raise TrtDeployError(f"{path}: external data file missing: {exc.filename or exc}") from None
    except Exception as exc:  # protobuf DecodeError and friends
        raise TrtDeployError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None


def model_size(model: onnx.ModelProto) -> int:
    """Serialized size in bytes (ByteSize), which protobuf limits to 2 GB per message."""
    return model.ByteSize()


def check_output_path(src: str | os.PathLike, dst: str | os.PathLike | None, inplace: bool) -> Path:
    """Resolve -o/--inplace: never overwrite the input unless asked."""
    if inplace:
        if dst is not None and Path(dst).resolve() != Path(src).resolve():
            raise TrtDeployError("give either -o OUT or --inplace, not both")
        return Path(src)
    if dst is None:
        raise TrtDeployError("missing -o OUT (or --inplace to overwrite the input)")
    if Path(dst).exists() and Path(dst).resolve() == Path(src).resolve():
        raise TrtDeployError(f"-o {dst} is the input file; pass --inplace to overwrite it")
    return Path(dst)


def save(model: onnx.ModelProto, path: str | os.PathLike, external_data: bool | None = None) -> Path:
    """Write a model atomically (temp file in the same folder, then rename).

    external_data=None stores the weights in ``<name>.data`` beside the file when the model
    would exceed protobuf's 2 GB limit, and inline otherwise.
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if external_data is None:
        external_data = model_size(model) > _PROTOBUF_LIMIT - (64 << 20)
    tmpdir = tempfile.mkdtemp(prefix=".trtdeploy-", dir=path.parent)
    try:
        tmp = Path(tmpdir) / path.name
        if external_data:
            model = _copy(model)  # onnx converts the tensors to external references in place
            location = path.name + ".data"
            onnx.save_model(model, str(tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=location, size_threshold=1024)
            # save_model rewrites the tensors to point at the file; replace data first, then model
            if (Path(tmpdir) / location).exists():
                os.replace(Path(tmpdir) / location, path.parent / location)
        else:
            with open(tmp, "wb") as f:
                f.write(model.SerializeToString())
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def atomic_savez(path: str | os.PathLike, arrays: dict) -> Path:
    """np.savez to a temp file, then rename (keys are tensor names)."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
