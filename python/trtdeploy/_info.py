"""What is installed and usable: compiled parts, CUDA, TensorRT (for `trtdeploy doctor`)."""

from __future__ import annotations

import importlib
import platform
import shutil
import subprocess


def build_info() -> dict:
    """trtdeploy._C.build_info(), or {'error': why} when the compiled module is missing."""
    try:
        from . import _C
    except ImportError as exc:
        return {"error": f"trtdeploy._C is not importable ({exc})", "parts": [], "cuda": False}
    return dict(_C.build_info())


def _version(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - broken installs count as missing
        return None
    return getattr(mod, "__version__", "installed")


def _gpu() -> str:
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired):
            pass
    return ""


PLUGIN_PREFIX = "libtrtdeploy_plugins_trt"


def plugin_libraries() -> list[dict]:
    """The YoloLayer_TRT plugin libraries this build installed, one per TensorRT major version whose
    headers were found: [{'library': path, 'tensorrt_major': 10, 'tensorrt_version': '10.16.1',
    'tensorrt_headers': folder, 'host': path of the test host or None}].

    The test hosts (tests/plugin_host) are not part of the package: they are built for the tests, in
    the folder that TRTDEPLOY_PLUGIN_HOST_DIR names (tools/test_wheel.py sets it)."""
    import os
    from pathlib import Path

    lib_dir = Path(__file__).parent / "lib"
    host_dir = os.environ.get("TRTDEPLOY_PLUGIN_HOST_DIR")
    rows = []
    for row in build_info().get("tensorrt_plugins", []):
        path = lib_dir / row["library"]
        if not path.is_file():
            continue
        host = Path(host_dir) / row["host"] if host_dir and row.get("host") else None
        rows.append({**row, "library": str(path), "host_name": row.get("host") or None,
                     "host": str(host) if host and host.is_file() else None})
    return rows


def select_plugin_library(libraries: list[dict], tensorrt_version: str) -> str:
    """The library built for this TensorRT's major version. ILogger differs between TensorRT 10 and
    11 (a library built for one loses its messages or crashes under the other), so there is no
    fallback: without a match, a one-line error names both versions."""
    from .errors import TrtDeployError

    major = int(str(tensorrt_version).split(".")[0])
    for row in libraries:
        if row["tensorrt_major"] == major:
            return row["library"]
    if not libraries:
        raise TrtDeployError(NOT_BUILT)
    built = ", ".join(f"{row['tensorrt_version']} ({row['library'].rsplit('/', 1)[-1]})" for row in libraries)
    raise TrtDeployError(
        f"the installed TensorRT is {tensorrt_version} but trtdeploy's plugin library was built for TensorRT "
        f"{built} only, and a plugin library loads only into the major version it was built for; reinstall "
        f"trtdeploy with TRTDEPLOY_TENSORRT_INCLUDE_DIRS naming the TensorRT {major} include folder, or pass "
        "--plugins PATH")


NOT_BUILT = ("the model needs trtdeploy's plugin library (YoloLayer_TRT, TRTDeploy_NMS), but trtdeploy was installed "
             "without it (no TensorRT headers "
             "were found at build time): reinstall with TRTDEPLOY_TENSORRT_INCLUDE_DIRS=/path/to/TensorRT/include "
             "(or TENSORRT_ROOT) set, or pass --plugins PATH")


def doctor() -> dict:
    from . import __version__
    from .errors import TrtDeployError

    info = build_info()
    trt = _version("tensorrt")
    gpu = _gpu()
    plugins = plugin_libraries()
    usable, problem = None, None
    if trt and trt != "installed":
        try:
            usable = select_plugin_library(plugins, trt)
        except TrtDeployError as exc:
            problem = str(exc)
    rtx = _version("tensorrt_rtx")
    rtx_plugin, rtx_problem = None, None
    if rtx and rtx != "installed":
        from .trt.rtx import PLUGIN_ABI, version_ok

        try:
            rtx_plugin = select_plugin_library(plugins, PLUGIN_ABI) if version_ok(rtx) else None
            rtx_problem = None if version_ok(rtx) else f"TensorRT-RTX {rtx} predates 1.5: no plugin library fits it"
        except TrtDeployError as exc:
            rtx_problem = str(exc)
    return {
        "trtdeploy": __version__,
        "tensorrt_rtx": rtx,
        "tensorrt_rtx_plugin": rtx_plugin,
        "tensorrt_rtx_plugin_problem": rtx_problem,
        "python": platform.python_version(),
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "onnxslim": _version("onnxslim"),
        "numpy": _version("numpy"),
        "compiled": info,
        "cuda_build": info.get("cuda_version") if info.get("cuda") else None,
        "tensorrt": trt,
        "tensorrt_plugins": plugins,
        "tensorrt_plugin_for_installed": usable,
        "tensorrt_plugin_problem": problem,
        "gpu": gpu or None,
        "gpu_usable": bool(gpu) and bool(info.get("cuda")),
        "tensorrt_usable": bool(trt) and bool(gpu),
    }
