"""Build a serialized engine from a BuildPlan (TensorRT 10/11 Python API)."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from ..errors import TrtDeployError
from ..plan import BuildPlan
from . import import_tensorrt, major_version

log = logging.getLogger("trtdeploy.build")


def _progress_monitor(trt):
    """IProgressMonitor printing phases and steps to stderr (TensorRT >= 10)."""

    class Progress(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self._steps: dict[str, int] = {}
            self._t0 = time.monotonic()

        def phase_start(self, phase_name, parent_phase, num_steps):
            self._steps[phase_name] = num_steps
            depth = 0 if parent_phase is None else 1
            print(f"{'  ' * depth}[{time.monotonic() - self._t0:6.1f}s] {phase_name} ({num_steps} steps)",
                  file=sys.stderr, flush=True)

        def step_complete(self, phase_name, step):
            n = self._steps.get(phase_name, 0)
            if n > 1 and sys.stderr.isatty():
                print(f"\r    {phase_name}: {step + 1}/{n}", end="", file=sys.stderr, flush=True)
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            if sys.stderr.isatty():
                print("", file=sys.stderr)

    return Progress()


def build_engine(plan: BuildPlan, model_path: str | None = None) -> dict:
    """Parse the ONNX model (model_path overrides plan.model, e.g. the fp16 conversion for TensorRT 11),
    build with the plan's profiles, write the engine and its sidecar atomically. Returns the sidecar."""
    if plan.missing:
        raise TrtDeployError(plan.missing[0])
    trt = import_tensorrt()
    major = major_version(trt)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    registry = builder.get_plugin_registry()
    for lib in plan.plugins:
        if not Path(lib).is_file():
            raise TrtDeployError(f"plugin library {lib} does not exist")
        registry.load_library(str(lib))
        log.info("loaded plugin library %s", lib)
    model_path = model_path or plan.model
    strongly_typed = major >= 11 or plan.strongly_typed  # TensorRT 11 networks are always strongly typed
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(model_path)):
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
        raise TrtDeployError(f"TensorRT cannot parse {model_path}: " + "; ".join(errors[:3]))
    config = builder.create_builder_config()
    if plan.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mib << 20)
    if plan.precision in ("fp16", "bf16") and not strongly_typed:
        config.set_flag(trt.BuilderFlag.FP16 if plan.precision == "fp16" else trt.BuilderFlag.BF16)
    for prof in plan.profiles:
        profile = builder.create_optimization_profile()
        for name, r in prof.items():
            profile.set_shape(name, r["min"], r["opt"], r["max"])
        config.add_optimization_profile(profile)
    cache = None
    if plan.timing_cache:
        blob = Path(plan.timing_cache).read_bytes() if Path(plan.timing_cache).is_file() else b""
        cache = config.create_timing_cache(blob)
        config.set_timing_cache(cache, ignore_mismatch=False)
    config.progress_monitor = _progress_monitor(trt)
    t0 = time.monotonic()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TrtDeployError("TensorRT failed to build the engine (see its messages above)")
    seconds = time.monotonic() - t0
    _atomic_write(Path(plan.engine), memoryview(serialized))
    if cache is not None:
        _atomic_write(Path(plan.timing_cache), memoryview(config.get_timing_cache().serialize()))
    sidecar = make_sidecar(plan, trt.__version__, seconds)
    _atomic_write(Path(sidecar_path(plan.engine)), json.dumps(sidecar, indent=2).encode())
    return sidecar


def sidecar_path(engine: str) -> str:
    return str(engine) + ".json"


def make_sidecar(plan: BuildPlan, trt_version: str, build_seconds: float | None) -> dict:
    from datetime import datetime, timezone

    return {"engine": os.path.basename(plan.engine), "model": plan.model, "tensorrt_version": trt_version,
            "precision": plan.precision, "profiles": plan.profiles, "inputs": plan.inputs, "outputs": plan.outputs,
            "plugins": plan.plugins, "build_seconds": build_seconds,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _atomic_write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
