"""Build a serialized engine from a BuildPlan (TensorRT 10/11 Python API, which TensorRT-RTX shares).
`build`, `bench` and `dynamic --check-build` all come here, so what a plan says (precision pass,
plugins, profiles, cache, RTX's targets) happens the same way."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from ..errors import TrtDeployError
from ..io import atomic_write_bytes
from ..plan import BuildPlan
from . import import_runtime, is_rtx, label, load_plugins, major_version

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


def prepare_model(plan: BuildPlan, workdir: str) -> str:
    """The ONNX file TensorRT parses: the model itself, or (strongly typed fp16) its float16
    conversion, checked against the float32 model in onnxruntime at the first profile's opt shapes
    (verify.fp16_outputs: plugin ops are compared at their inputs)."""
    if plan.convert is None:
        return plan.model
    from .. import io
    from ..plan import convert_for_build
    from ..verify import verify_fp16

    model, half = convert_for_build(plan.model)
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        log.info("float16 conversion not checked: onnxruntime is not installed")
    else:  # plugin ops (YoloLayer_TRT): compared at their inputs, which onnxruntime can run
        shapes = {name: r["opt"] for name, r in plan.profiles[0].items()} if plan.profiles else None
        for name, err in verify_fp16(model, half, shapes=shapes).items():
            log.info("float16 conversion checked: %s within %.3g of its range", name, err)
    path = os.path.join(workdir, "model.fp16.onnx")
    io.save(half, path)
    log.info("strongly typed network: building from the float16 conversion of the model")
    return path


def build_engine(plan: BuildPlan) -> dict:
    """Parse the model, build with the plan's profiles, write the engine and its sidecar
    atomically. Returns the sidecar."""
    trt, serialized, config, seconds = build_serialized(plan)
    atomic_write_bytes(plan.engine, memoryview(serialized), protect=[plan.model])
    if plan.timing_cache:
        atomic_write_bytes(plan.timing_cache, memoryview(config.get_timing_cache().serialize()), protect=[plan.model])
    sidecar = make_sidecar(plan, str(trt.__version__), seconds, label(trt))
    atomic_write_bytes(sidecar_path(plan.engine), json.dumps(sidecar, indent=2).encode(), protect=[plan.model])
    return sidecar


def build_serialized(plan: BuildPlan, model_path: str | None = None):
    """(module, serialized engine, builder config, seconds): the plan built in memory, nothing written.
    ``model_path``: parse this file instead of plan.model (a staged file under check)."""
    if plan.missing:
        raise TrtDeployError(plan.missing[0])
    trt = import_runtime(plan.runtime)
    if plan.tensorrt_version != str(trt.__version__):
        raise TrtDeployError(f"the plan was made for {label(trt).split()[0]} {plan.tensorrt_version}; this is "
                             f"{label(trt)}")
    logger = _logger(trt)
    load_plugins(trt, plan.plugins)
    if is_rtx(trt) and plan.plugin_ops:
        from .rtx import parser_problem

        problem = parser_problem()  # refused here: parsing the first plugin node would abort the process
        if problem:
            raise TrtDeployError(problem)
    builder = trt.Builder(logger)
    with tempfile.TemporaryDirectory(prefix="trtdeploy-build-") as workdir:
        model_path = prepare_model(plan, workdir) if model_path is None or plan.convert else model_path
        flags = 0
        # TensorRT 11 and TensorRT-RTX: always strongly typed, and the flag is deprecated
        if plan.strongly_typed and not is_rtx(trt) and major_version(trt) < 11:
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(model_path)):
            errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
            raise TrtDeployError(f"{label(trt)} cannot parse {plan.model}: " + "; ".join(errors[:3]))
        config = builder.create_builder_config()
        if plan.compute_capabilities:  # TensorRT-RTX's targets (the plan refuses them for TensorRT)
            config.num_compute_capabilities = len(plan.compute_capabilities)
            for i, cc in enumerate(plan.compute_capabilities):
                if not config.set_compute_capability(getattr(trt.ComputeCapability, "SM" + cc.replace(".", "")), i):
                    raise TrtDeployError(f"{label(trt)} refused compute capability {cc}")
        if plan.workspace_mib:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mib << 20)
        if plan.builder_flag:
            if not hasattr(trt.BuilderFlag, plan.builder_flag):
                raise TrtDeployError(f"TensorRT {trt.__version__} has no builder flag {plan.builder_flag}")
            config.set_flag(getattr(trt.BuilderFlag, plan.builder_flag))
        for i, prof in enumerate(plan.profiles):
            profile = builder.create_optimization_profile()
            for name, r in prof.items():
                try:
                    profile.set_shape(name, r["min"], r["opt"], r["max"])
                except RuntimeError as exc:
                    raise TrtDeployError(f"profile {i}: {label(trt)} rejects the shapes of '{name}': {exc}") from None
            if config.add_optimization_profile(profile) < 0:
                raise TrtDeployError(f"profile {i}: {label(trt)} rejected it (see its messages above)")
        if plan.timing_cache:
            _timing_cache(config, plan.timing_cache, trt.__version__)
        config.progress_monitor = _progress_monitor(trt)
        t0 = time.monotonic()
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            why = f": {logger.first}" if logger.first else " (see its messages above)"
            raise TrtDeployError(f"{label(trt)} failed to build the engine{why}")
        seconds = time.monotonic() - t0
    return trt, serialized, config, seconds


def _logger(trt):
    """A WARNING-level logger that prints as TensorRT's does and keeps the first error, for the one-line
    message of a failed build."""

    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.first = None

        def log(self, severity, msg):
            if severity <= trt.ILogger.Severity.ERROR and self.first is None:
                self.first = str(msg).strip().splitlines()[0] if str(msg).strip() else None
            if severity <= trt.ILogger.Severity.WARNING:
                print(f"[{label(trt)}] {msg}", file=sys.stderr, flush=True)

    return Logger()


def _timing_cache(config, path: str, version: str):
    """Attach the cache at `path` (a new one if the file does not exist); refuse one TensorRT
    cannot read or that was made elsewhere, rather than building without it unknowingly."""
    p = Path(path)
    blob = p.read_bytes() if p.is_file() else b""
    cache = config.create_timing_cache(blob)
    if cache is None:
        raise TrtDeployError(f"--timing-cache {path}: TensorRT {version} cannot read it (corrupt, or written by another "
                             "TensorRT version); delete it to start a new one")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        raise TrtDeployError(f"--timing-cache {path} was made on another GPU or TensorRT version and TensorRT refused "
                             "it; delete it to start a new one")
    return cache


def sidecar_path(engine: str) -> str:
    return str(engine) + ".json"


def read_sidecar(engine: str) -> dict | None:
    p = Path(sidecar_path(engine))
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise TrtDeployError(f"{p}: not a readable build sidecar ({exc}); delete it or rebuild the engine") from None


def make_sidecar(plan: BuildPlan, trt_version: str, build_seconds: float | None, builder: str | None = None) -> dict:
    from datetime import datetime, timezone

    return {"engine": os.path.basename(plan.engine), "model": plan.model, "tensorrt_version": trt_version,
            "runtime": plan.runtime, "builder": builder or f"TensorRT {trt_version}",
            "compute_capabilities": plan.compute_capabilities or ("default" if plan.runtime == "tensorrt-rtx" else None),
            "precision": plan.precision, "precision_how": plan.precision_how, "profiles": plan.profiles,
            "inputs": plan.inputs, "outputs": plan.outputs, "plugins": plan.plugins, "plugin_ops": plan.plugin_ops,
            "build_seconds": build_seconds, "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def check_build(model, path: str, batch: str, probe, batch_sizes=None) -> dict:
    """`dynamic --check-build`: parse and build the staged file ``path`` (nothing written) for one
    profile: the batch range ``batch`` (MIN:OPT:MAX; "" = the batch sizes of the check: 1x..3x the
    original), the other dynamic dims at the check's base sizes. A check report entry."""
    from ..plan import ProfileSpec, make_plan, parse_batch
    from . import choose_runtime

    runtime, version = choose_runtime()
    base = probe.shapes  # the check's sizes: --shapes, else the model's own (guesses named by the check)
    n = next((d[0] for d in base.values() if d), 1) or 1
    lo, opt, hi = parse_batch(batch, "--check-build") if batch else \
        (min(batch_sizes or [n]), max(batch_sizes or [3 * n]), max(batch_sizes or [3 * n]))
    spec = ProfileSpec(batch=(lo, opt, hi))
    for kind in ("min", "opt", "max"):
        for name, dims in base.items():
            if dims:
                spec.shapes[kind][name] = [(lo, opt, hi)[("min", "opt", "max").index(kind)]] + list(dims[1:])
    with tempfile.TemporaryDirectory(prefix="trtdeploy-check-build-") as tmp:
        plan = make_plan(model, path, os.path.join(tmp, "check.engine"), [spec], tensorrt_version=version,
                         runtime=runtime)
        trt, _, _, seconds = build_serialized(plan, path)
    shapes = ", ".join(f"{k}:{'x'.join(map(str, v['min']))}..{'x'.join(map(str, v['max']))}"
                       for k, v in plan.profiles[0].items())
    return {"check": f"{label(trt)} parsed and built it for {shapes} ({seconds:.2f} s)", "max_abs_diff": None,
            "output": True}
