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


def plugin_library() -> str | None:
    """Path of the bundled TensorRT plugin library (libtrtdeploy_plugins.so), if it was built."""
    from pathlib import Path

    lib = Path(__file__).parent / "lib" / "libtrtdeploy_plugins.so"
    return str(lib) if lib.is_file() else None


def doctor() -> dict:
    from . import __version__

    info = build_info()
    trt = _version("tensorrt")
    gpu = _gpu()
    return {
        "trtdeploy": __version__,
        "python": platform.python_version(),
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "onnx_graphsurgeon": _version("onnx_graphsurgeon"),
        "onnxslim": _version("onnxslim"),
        "numpy": _version("numpy"),
        "compiled": info,
        "cuda_build": info.get("cuda_version") if info.get("cuda") else None,
        "tensorrt": trt,
        "tensorrt_plugin_library": plugin_library(),
        "gpu": gpu or None,
        "gpu_usable": bool(gpu) and bool(info.get("cuda")),
        "tensorrt_usable": bool(trt) and bool(gpu),
    }
