"""TensorRT at the edge: engine build and runtime. The only package that imports tensorrt, lazily.

Written against the TensorRT 10 and 11 Python bindings (11 is always strongly typed and has no
FP16/BF16 builder flags). TensorRT cannot be installed on trtdeploy's CI machines, so this code is
kept thin: what it relies on (plans, precision strategy, plugin selection, sidecars, dtype tables,
statistics) lives outside and is tested there.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import MissingDependencyError, TrtDeployError

log = logging.getLogger("trtdeploy")

# TensorRT's plugin registry is one per process; so is this record of what was loaded into it.
_loaded: dict[str, object] = {}


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise MissingDependencyError(
            "TensorRT is not installed: `pip install tensorrt` (or `pip install trtdeploy[trt]`) on a machine "
            "with an NVIDIA GPU; `trtdeploy build --dry-run` shows the plan without it") from None
    return trt


def installed_version() -> str | None:
    """The TensorRT version, or None when it cannot be imported (a dry run plans without it)."""
    try:
        import tensorrt as trt
    except Exception:  # noqa: BLE001 - missing or broken installs alike: no TensorRT to plan for
        return None
    return str(trt.__version__)


def major_version(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


def load_plugins(trt, libs: list[str]) -> None:
    """Load plugin libraries into TensorRT's (global) plugin registry, once per process each.

    trtdeploy's own library is skipped when YoloLayer_TRT is already registered (another library
    provides it, or it was loaded before). load_library returns None on every failure, including
    "a plugin of this library is already registered": that is an error, not a silent skip."""
    from ..plan import YOLO_OP, is_bundled

    registry = trt.get_plugin_registry()
    for lib in libs:
        path = str(Path(lib).resolve())
        if path in _loaded:
            continue
        if is_bundled(path) and registry.get_creator(YOLO_OP, "1", "") is not None:
            log.info("YoloLayer_TRT is already registered; not loading %s", lib)
            continue
        if not Path(path).is_file():
            raise TrtDeployError(f"plugin library {lib} does not exist")
        handle = registry.load_library(path)
        if handle is None:
            raise TrtDeployError(f"TensorRT {trt.__version__} could not load plugin library {lib} (see its messages "
                                 "above): a library built for another TensorRT major version, a missing dependency, "
                                 "or a plugin it holds is already registered")
        _loaded[path] = handle
        log.info("loaded plugin library %s", lib)
