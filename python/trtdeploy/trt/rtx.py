"""TensorRT-RTX: what differs from TensorRT, in one place (pure rules; tensorrt_rtx is not imported here).

TensorRT-RTX (pip `tensorrt-rtx`, module `tensorrt_rtx`) has TensorRT's Python API and builds engines
without a GPU (CPU-only ahead-of-time builds). What trtdeploy has to know about it:
- networks are always strongly typed: fp16 goes through the `fp16` pass, bf16 has no builder flag;
- targets are compute capabilities set on the builder config (``ComputeCapability.SM89``...), and there
  are no data-center ones (SM90/SM100): H100/H200/B200 engines need TensorRT;
- ONNX NonMaxSuppression has no runner (NVIDIA/TensorRT-RTX issue #5): refused by the plan;
- the timing cache is a deprecated no-op (the runtime cache is RTX's equivalent): ignored, and said;
- RTX >= 1.5 has TensorRT 11's ILogger ABI: trtdeploy's plugin library built for TensorRT 11 is the one;
- its ONNX parser dlopens ``libtensorrt_rtx.so`` (unversioned) at the first plugin node, and the wheel
  ships only ``libtensorrt_rtx.so.1``: without that file the process aborts. ``preload`` fixes it in a
  folder trtdeploy owns (see there).
"""

from __future__ import annotations

import os
import re

from ..errors import TrtDeployError

NAME = "tensorrt-rtx"
LABEL = "TensorRT-RTX"
MODULE = "tensorrt_rtx"
PLUGIN_ABI = "11"  # the TensorRT major whose plugin library RTX loads (ILogger derives from IVersionedInterface)
MIN_VERSION = (1, 5)  # the first RTX with that ABI
# ComputeCapability members of TensorRT-RTX 1.7 (the installed module's own list is used when it is there)
KNOWN_CAPABILITIES = ("7.5", "8.0", "8.6", "8.9", "12.0", "12.1")
DEFAULT_TARGETS = ("TensorRT-RTX's default targets: Ampere and later (8.0, 8.6, 8.9, 12.x per its documentation), "
                   "not Turing (7.5, only when named)")
UNBUILDABLE = {"NonMaxSuppression": "TensorRT-RTX has no runner for ONNX NonMaxSuppression (NVIDIA/TensorRT-RTX "
                                    "issue #5)"}
NMS_WAY_AROUND = ("end the head in the NMS plugin instead with `trtdeploy yolo patch --nms plugin`, or build with "
                  "TensorRT (`--runtime tensorrt`)")


def parse_capabilities(text: str, available: tuple[str, ...] = KNOWN_CAPABILITIES, version: str = "") -> list[str]:
    """``8.9,12.0`` / ``sm_89,sm_120`` / ``89`` -> ['8.9', '12.0']; a value RTX lacks is refused, naming
    those it has (and that H100-class GPUs need TensorRT)."""
    out = []
    for item in (x.strip() for x in text.split(",")):
        m = re.fullmatch(r"(?:sm_?)?(\d+)\.(\d)|(?:sm_?)?(\d{2,3})", item.lower())
        if not m:
            raise TrtDeployError(f"--compute-capability {text}: '{item}' is not a compute capability; e.g. 8.9 or "
                                 "sm_89 (comma-separated for several)")
        cc = f"{m[1]}.{m[2]}" if m[1] else f"{m[3][:-1]}.{m[3][-1]}"
        if cc not in available:
            why = ("; data-center GPUs (H100/H200 9.0, B200 10.0) need TensorRT (`--runtime tensorrt`)"
                   if cc.split(".")[0] in ("9", "10", "11") else "")
            raise TrtDeployError(f"--compute-capability {item}: {LABEL} {version or ''}".rstrip() +
                                 f" builds for {', '.join(available)} only{why}")
        if cc not in out:
            out.append(cc)
    return out


def member(cc: str) -> str:
    """'8.9' -> 'SM89': the ComputeCapability member name."""
    return "SM" + cc.replace(".", "")


def capabilities_of(trt) -> tuple[str, ...]:
    """The compute capabilities the installed module knows (members SMxy)."""
    names = [n for n in getattr(trt.ComputeCapability, "__members__", {}) if re.fullmatch(r"SM\d+", n)]
    return tuple(f"{n[2:-1]}.{n[-1]}" for n in sorted(names, key=lambda n: int(n[2:]))) or KNOWN_CAPABILITIES


def precision(precision: str) -> dict:
    """plan.precision_strategy for RTX: always strongly typed."""
    typed = "TensorRT-RTX networks are always strongly typed"
    if precision == "fp32":
        return {"how": f"float32 as in the model ({typed})", "builder_flag": None, "convert": None,
                "strongly_typed": True}
    if precision == "bf16":
        raise TrtDeployError(f"--bf16 is a builder flag, and {typed} (it has none): export the model in bfloat16, "
                             "or use --fp16")
    if precision != "fp16":
        raise TrtDeployError(f"precision must be fp32, fp16 or bf16, not {precision}")
    return {"how": f"{typed}: the model is converted with `trtdeploy fp16` first, I/O kept float32",
            "builder_flag": None, "convert": "fp16", "strongly_typed": True}


def unbuildable(model) -> list[str]:
    """One line per node RTX cannot build (subgraphs included), naming the node and the upstream limit."""
    from .._graph import model_graphs

    out = []
    for g in model_graphs(model):
        for n in g.node:
            if n.domain in ("", "ai.onnx") and n.op_type in UNBUILDABLE:
                out.append(f"node '{n.name or n.output[0]}' is ONNX {n.op_type}: {UNBUILDABLE[n.op_type]}; "
                           + (NMS_WAY_AROUND if n.op_type == "NonMaxSuppression" else "build with TensorRT"))
    return out


def version_ok(version: str) -> bool:
    try:
        return tuple(int(x) for x in version.split(".")[:2]) >= MIN_VERSION
    except ValueError:
        return False


def plan_rules(model, wanted: str, capabilities, available, version, timing_cache) -> dict:
    """TensorRT-RTX's part of plan.make_plan: precision, targets, what it cannot build, notes, the plugin ABI."""
    from ..plan import BUNDLED_OPS, plugin_ops

    notes, missing = [], unbuildable(model)
    ccs = parse_capabilities(capabilities, available or KNOWN_CAPABILITIES, version or "") \
        if capabilities else []
    if not ccs:
        notes.append(f"compute capabilities: {DEFAULT_TARGETS}; --compute-capability 8.9[,12.0] names them")
    if timing_cache:
        notes.append(f"--timing-cache {timing_cache} is ignored: the timing cache is a deprecated no-op on "
                     "TensorRT-RTX (its runtime cache is the equivalent)")
    if version and not version_ok(version) and set(BUNDLED_OPS) & set(plugin_ops(model)):
        missing.append(f"TensorRT-RTX {version} has TensorRT 10's plugin ABI for none of trtdeploy's libraries; "
                       "trtdeploy's plugins need TensorRT-RTX >= 1.5 (`pip install trtdeploy[rtx]`)")
    return {"precision": precision(wanted), "missing": missing, "notes": notes, "capabilities": ccs,
            "plugin_abi": PLUGIN_ABI if version else None}


# ---- the unversioned-library abort ----------------------------------------------------------------

_preloaded: dict[str, str] = {}


def preload() -> str | None:
    """Load RTX's ONNX parser from a folder trtdeploy owns, beside a ``libtensorrt_rtx.so`` link, before
    ``tensorrt_rtx`` is imported; returns the folder (None: no wheel layout found, nothing done).

    The parser's RPATH is $ORIGIN and it dlopens ``libtensorrt_rtx.so`` at the first plugin node; the
    wheel has only ``libtensorrt_rtx.so.1``, so the lookup fails and the process aborts. Loaded through a
    link in our folder, the parser's $ORIGIN is that folder, where ``libtensorrt_rtx.so`` links to the
    wheel's ``.so.1`` (the same file: the loader reuses the library already loaded). The wheel is not
    touched; the folder lives as long as the process."""
    import ctypes
    import importlib.util
    import sys

    if MODULE in sys.modules or "libs" in _preloaded:
        return _preloaded.get("dir")
    spec = importlib.util.find_spec("tensorrt_rtx_libs")
    libdir = os.path.dirname(spec.origin) if spec and spec.origin else None
    _preloaded["libs"] = libdir or ""
    if not libdir or not os.path.isfile(os.path.join(libdir, "libtensorrt_onnxparser_rtx.so.1")):
        return None
    if os.path.exists(os.path.join(libdir, "libtensorrt_rtx.so")):
        return libdir  # the link is there already (a system install, or made by hand)
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="trtdeploy-rtx-libs-")
    atexit.register(shutil.rmtree, folder, True)
    for name, target in (("libtensorrt_rtx.so", "libtensorrt_rtx.so.1"),
                         ("libtensorrt_rtx.so.1", "libtensorrt_rtx.so.1"),
                         ("libtensorrt_onnxparser_rtx.so.1", "libtensorrt_onnxparser_rtx.so.1")):
        os.symlink(os.path.join(libdir, target), os.path.join(folder, name))
    ctypes.CDLL(os.path.join(folder, "libtensorrt_rtx.so.1"), mode=ctypes.RTLD_GLOBAL)
    ctypes.CDLL(os.path.join(folder, "libtensorrt_onnxparser_rtx.so.1"), mode=ctypes.RTLD_GLOBAL)
    _preloaded["dir"] = folder
    return folder


def parser_problem() -> str | None:
    """Why parsing a plugin node would abort this process, or None: tensorrt_rtx was imported before
    preload could run and the wheel's folder has no ``libtensorrt_rtx.so``."""
    import importlib.util

    if _preloaded.get("dir"):
        return None
    spec = importlib.util.find_spec("tensorrt_rtx_libs")
    folder = os.path.dirname(spec.origin) if spec and spec.origin else None
    if folder is None or os.path.exists(os.path.join(folder, "libtensorrt_rtx.so")):
        return None
    return (f"{LABEL}'s ONNX parser aborts the process at the first plugin node when {folder} has no "
            "libtensorrt_rtx.so, and tensorrt_rtx was imported before trtdeploy could load the parser beside one: "
            "import trtdeploy.trt and call import_runtime('tensorrt-rtx') before importing tensorrt_rtx, or run "
            f"`ln -s libtensorrt_rtx.so.1 {folder}/libtensorrt_rtx.so`")


# ---- the GPU an RTX engine runs on ----------------------------------------------------------------

def gpu_problem(engine: str) -> str | None:
    """None when an RTX-class GPU (SM 7.5-12.x) is visible (nvidia-smi); else one line saying why not."""
    import shutil
    import subprocess

    found = ""
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20)
            found = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""
        except (OSError, subprocess.TimeoutExpired):
            found = ""
    need = f"{engine} is a {LABEL} engine: it runs on an RTX-class GPU (SM 7.5-12.x, except 9.x-11.x)"
    if not found:
        return f"{need}, and this machine has none (nvidia-smi finds no GPU)"
    name, _, cc = (x.strip() for x in found.rpartition(","))
    try:
        major, minor = (int(x) for x in cc.split("."))
    except ValueError:
        return None  # cannot tell: let TensorRT-RTX decide
    if (major, minor) < (7, 5) or 9 <= major <= 11 or major > 12:
        return f"{need}; this GPU is {name} (SM {cc}): build for it with TensorRT (`--runtime tensorrt`)"
    return None
