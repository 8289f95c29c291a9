"""TensorRT at the edge: engine build and runtime. The only package that imports tensorrt and
tensorrt_rtx, lazily (which of the two builds: choose_runtime; TensorRT-RTX's differences: rtx.py).

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


# ---- which builder: TensorRT (`tensorrt`) or TensorRT-RTX (`tensorrt_rtx`) -------------------------
# The rest of the build code takes the module this returns and the plan's `runtime`; only the few
# places that differ ask `is_rtx(trt)` (the RTX rules themselves are in rtx.py).

RUNTIMES = {"tensorrt": ("tensorrt", "TensorRT"), "tensorrt-rtx": ("tensorrt_rtx", "TensorRT-RTX")}


def _import(runtime: str):
    import importlib

    if runtime == "tensorrt-rtx":
        from . import rtx

        rtx.preload()  # before tensorrt_rtx loads its parser: see rtx.preload
    return importlib.import_module(RUNTIMES[runtime][0])


def runtime_version(runtime: str) -> str | None:
    """The installed version of `runtime`, or None when it cannot be imported."""
    try:
        return str(_import(runtime).__version__)
    except Exception:  # noqa: BLE001 - missing or broken installs alike: nothing to plan for
        return None


def choose_runtime(requested: str | None = None, need: bool = True) -> tuple[str, str | None]:
    """(runtime, its version): `requested` (--runtime), else TensorRT when installed, else TensorRT-RTX.
    need=False (dry runs): a runtime that is not installed plans with version None."""
    if requested is not None and requested not in RUNTIMES:
        raise TrtDeployError(f"--runtime {requested}: give {' or '.join(RUNTIMES)}")
    for name in [requested] if requested else list(RUNTIMES):
        version = runtime_version(name)
        if version is not None:
            return name, version
    if need:
        import_runtime(requested or "tensorrt")
    return requested or "tensorrt", None


def import_runtime(runtime: str = "tensorrt"):
    try:
        return _import(runtime)
    except ImportError:
        if runtime == "tensorrt-rtx":
            raise MissingDependencyError(
                "TensorRT-RTX is not installed: `pip install tensorrt-rtx` (or `pip install trtdeploy[rtx]`); it "
                "builds without a GPU") from None
        raise MissingDependencyError(
            "TensorRT is not installed: `pip install tensorrt` (or `pip install trtdeploy[trt]`) on a machine "
            "with an NVIDIA GPU, or `pip install trtdeploy[rtx]` for TensorRT-RTX, which builds without one; "
            "`trtdeploy build --dry-run` shows the plan without either") from None


def import_tensorrt():
    """The installed builder module: TensorRT when installed, else TensorRT-RTX."""
    return import_runtime(choose_runtime()[0])


def is_rtx(trt) -> bool:
    return getattr(trt, "__name__", "tensorrt").split(".")[0] == "tensorrt_rtx"


def label(trt) -> str:
    """'TensorRT 10.16.1' / 'TensorRT-RTX 1.7.1.116': which builder ran, as sidecars and messages say it."""
    return f"{'TensorRT-RTX' if is_rtx(trt) else 'TensorRT'} {trt.__version__}"


def installed_version() -> str | None:
    """The TensorRT version, or None when it cannot be imported (a dry run plans without it)."""
    return runtime_version("tensorrt")


def major_version(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


def load_plugins(trt, libs: list[str]) -> None:
    """Load plugin libraries into TensorRT's (global) plugin registry, once per process each.

    trtdeploy's own library is skipped when one of its plugins (YoloLayer_TRT, TRTDeploy_NMS) is
    already registered (it was loaded before, or another library provides it). load_library returns None on
    every failure, including "a plugin of this library is already registered": that is an error, not a
    silent skip."""
    from ..plan import BUNDLED_OPS, is_bundled

    registry = trt.get_plugin_registry()
    for lib in libs:
        path = str(Path(lib).resolve())
        if path in _loaded:
            continue
        held = [op for op in BUNDLED_OPS if registry.get_creator(op, "1", "") is not None]
        if is_bundled(path) and held:  # loaded before, or another library has one of its plugins (then it would fail)
            log.info("%s is already registered; not loading %s", " and ".join(held), lib)
            continue
        if not Path(path).is_file():
            raise TrtDeployError(f"plugin library {lib} does not exist")
        handle = registry.load_library(path)
        if handle is None:
            raise TrtDeployError(f"{label(trt)} could not load plugin library {lib} (see its messages "
                                 "above): a library built for another TensorRT major version, a missing dependency, "
                                 "or a plugin it holds is already registered")
        _loaded[path] = handle
        log.info("loaded plugin library %s", lib)
