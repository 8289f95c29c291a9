"""Engine build plans, without TensorRT: optimization profiles from the model's own dynamic dims,
precision, plugin libraries.

Shapes are written as trtexec writes them (``images:1x3x640x640``, several inputs comma-separated);
each ``--profile`` starts another optimization profile. Every dynamic dim without a size is named in
one error with a ready-to-paste example (never a silent 1); static dims cannot take other values;
dims that share a name must share a size; sizes start at 1; min <= opt <= max. The plan is a plain
dict, printed by ``trtdeploy build --dry-run``; ``build`` and ``bench`` build from the same plan.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import onnx

from ._graph import data_inputs, dims_of
from .errors import TrtDeployError
from .ort import parse_shapes

KINDS = ("min", "opt", "max")
YOLO_OP = "YoloLayer_TRT"
NMS_OP = "TRTDeploy_NMS"
# the plugins trtdeploy's library holds (as plugins/*/*Attrs.h name them; a test compares with _C)
BUNDLED_OPS = (YOLO_OP, NMS_OP)


@dataclass
class ProfileSpec:
    """What the user asked for one profile: {'min': {input: dims}, ...} and/or a batch range."""
    shapes: dict[str, dict[str, list[int]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    batch: tuple[int, int, int] | None = None


@dataclass
class BuildPlan:
    model: str
    engine: str
    profiles: list[dict[str, dict[str, list[int]]]]
    precision: str = "fp32"
    precision_how: str = ""
    builder_flag: str | None = None  # TensorRT 10 weakly typed: BuilderFlag.FP16 / BF16
    convert: str | None = None  # strongly typed: the model goes through this graph pass first ("fp16")
    plugins: list[str] = field(default_factory=list)
    plugin_ops: list[str] = field(default_factory=list)  # ops TensorRT resolves through plugins
    workspace_mib: int | None = None
    timing_cache: str | None = None
    strongly_typed: bool = False
    tensorrt_version: str | None = None  # the TensorRT the plan was made for (None: not installed here)
    runtime: str = "tensorrt"  # the builder: "tensorrt" or "tensorrt-rtx" (then tensorrt_version is RTX's)
    compute_capabilities: list[str] = field(default_factory=list)  # TensorRT-RTX targets ([]: its defaults)
    notes: list[str] = field(default_factory=list)  # what the plan decided that the user did not ask for
    inputs: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # why a real build would fail (dry runs still print)

    def to_dict(self) -> dict:
        return asdict(self)


# ---- the profile flags, parsed from the strings the user typed -------------------------------------

def parse_batch(text: str, flag: str = "--batch") -> tuple[int, int, int]:
    try:
        lo, opt, hi = (int(x) for x in text.split(":"))
    except ValueError:
        raise TrtDeployError(f"{flag} {text}: expected MIN:OPT:MAX, e.g. {flag} 1:8:32") from None
    if lo < 1:
        raise TrtDeployError(f"{flag} {text}: batch sizes start at 1")
    if not lo <= opt <= hi:
        raise TrtDeployError(f"{flag} {text}: needs MIN <= OPT <= MAX")
    return lo, opt, hi


def parse_shape_flag(flag: str, text: str) -> dict[str, list[int]]:
    """One --min/opt/max-shapes value: NAME:DxDxD[,NAME:DxDxD] (ort.parse_shapes, named after the flag)."""
    if not text.strip():
        raise TrtDeployError(f"{flag} is empty; expected NAME:DxDxD, e.g. images:1x3x640x640")
    return parse_shapes(text, flag)


def profile_specs(raw: list[list[tuple[str, str, str]]] | None) -> list[ProfileSpec]:
    """The profile flags as given, per profile: [(kind, flag as typed, text)], kind in min/opt/max/batch."""
    specs = []
    for pi, flags in enumerate(raw or []):
        where = f"profile {pi}" if len(raw) > 1 else "the profile"
        spec = ProfileSpec()
        first: dict[tuple[str, str], str] = {}
        for kind, flag, text in flags:
            if kind == "batch":
                if spec.batch is not None:
                    raise TrtDeployError(f"{flag} is given twice in {where}; give it once per profile")
                spec.batch = parse_batch(text, flag)
                continue
            for name, dims in parse_shape_flag(flag, text).items():
                if (kind, name) in first:
                    raise TrtDeployError(f"{flag}: input '{name}' already has {kind} shapes in {where} (from "
                                         f"{first[kind, name]}); give each input once per profile, or start "
                                         "another with --profile")
                first[kind, name] = f"{flag} {text}"
                spec.shapes[kind][name] = dims
        specs.append(spec)
    return specs


def add_shapes(spec: ProfileSpec, kind: str, text: str) -> None:
    for name, dims in parse_shape_flag(f"--{kind}-shapes", text).items():
        spec.shapes[kind][name] = dims


# ---- profiles -------------------------------------------------------------------------------------

def plan_profiles(model: onnx.ModelProto, specs: list[ProfileSpec]) -> list[dict[str, dict[str, list[int]]]]:
    """Concrete min/opt/max per data input per profile, validated against the model's dims."""
    inputs = {vi.name: dims_of(vi) for vi in data_inputs(model.graph)}
    dynamic = {n: d for n, d in inputs.items() if d is None or any(not isinstance(x, int) for x in d)}
    if not specs:
        specs = [ProfileSpec()]
    profiles = []
    for pi, spec in enumerate(specs):
        where = f"profile {pi}" if len(specs) > 1 else "the profile"
        for kind in KINDS:
            unknown = set(spec.shapes[kind]) - set(inputs)
            if unknown:
                raise TrtDeployError(f"--{kind}-shapes names {', '.join(sorted(unknown))}, not an input of the "
                                     f"model (inputs: {', '.join(inputs)})")
        profile, missing = {}, []
        for name, dims in inputs.items():
            if dims is None:
                raise TrtDeployError(f"input '{name}' has no shape in the model; re-export it with one")
            given = {k: spec.shapes[k].get(name) for k in KINDS}
            typed = {k for k in KINDS if given[k] is not None}  # what the user wrote, before filling in
            if typed and "opt" not in typed:  # a lone --min-shapes silently became min = opt = max
                shown = " and ".join(f"--{k}-shapes" for k in KINDS if k in typed)
                raise TrtDeployError(f"{where}: input '{name}' has {shown} but no --opt-shapes; add --opt-shapes "
                                     f"{name}:... (a missing min or max then takes opt's sizes, as in trtexec)")
            # trtexec's rule: a missing min/max takes opt's value
            for k in ("min", "max"):
                if given[k] is None:
                    given[k] = given["opt"]
            resolved = {}
            for kind in KINDS:
                vals = given[kind]
                if vals is not None and len(vals) != len(dims):
                    raise TrtDeployError(f"{where}: --{kind}-shapes {name}:{'x'.join(map(str, vals))} has rank "
                                         f"{len(vals)}; input '{name}' has rank {len(dims)} {_fmt(dims)}")
                out = []
                for axis, d in enumerate(dims):
                    v = vals[axis] if vals is not None else None
                    if axis == 0 and not isinstance(d, int) and spec.batch:  # --batch gives the batch
                        b = spec.batch[KINDS.index(kind)]
                        if kind in typed and v is not None and v != b:
                            raise TrtDeployError(f"{where}: --batch {':'.join(map(str, spec.batch))} gives input "
                                                 f"'{name}' a {kind} batch of {b}, --{kind}-shapes gives {v}; give the "
                                                 "batch once, or the same in both")
                        v = b
                    if isinstance(d, int):
                        if v is not None and v != d:
                            raise TrtDeployError(f"{where}: input '{name}' dim {axis} is static ({d}) and cannot be "
                                                 f"{v}; make it dynamic first with `trtdeploy dynamic`")
                        out.append(d)
                        continue
                    if v is None:
                        if kind == "min":
                            missing.append((name, axis, d))
                    elif v < 0:
                        raise TrtDeployError(f"{where}: input '{name}' dim {axis}: {v} is not a size")
                    elif v == 0:
                        raise TrtDeployError(f"{where}: input '{name}' dim {axis}: {kind} 0 makes a 0-size dim (an "
                                             "empty tensor); give sizes >= 1")
                    out.append(v)
                resolved[kind] = out
            profile[name] = resolved
        if missing:
            raise TrtDeployError(_missing_message(where, inputs, profile, missing))
        _check_symbols(where, inputs, profile)
        for name, resolved in profile.items():
            for axis, (lo, opt, hi) in enumerate(zip(resolved["min"], resolved["opt"], resolved["max"])):
                if not lo <= opt <= hi:
                    raise TrtDeployError(f"{where}: input '{name}' dim {axis}: min {lo} <= opt {opt} <= max {hi} "
                                         "does not hold")
        profiles.append(profile)
    if not dynamic and any(spec.batch for spec in specs):
        raise TrtDeployError("--batch given but the model has no dynamic dim; make the batch dynamic with "
                             "`trtdeploy dynamic` first")
    return profiles


def _missing_message(where, inputs, profile, missing) -> str:
    """Every dynamic dim without a size in one message, and flags that would give them all."""
    names = ", ".join(f"'{n}' dim {a}" + (f" '{d}'" if d else "") for n, a, d in missing)
    example_of: dict[str, tuple[int, int, int]] = {}  # dim name -> example sizes, so shared names agree
    flags = {k: [] for k in KINDS}
    for name in dict.fromkeys(n for n, _, _ in missing):
        dims = inputs[name]
        for kind in KINDS:
            sizes = []
            for axis, d in enumerate(dims):
                v = profile[name][kind][axis] if axis < len(profile[name][kind]) else None
                if v is None or (name, axis, d) in missing:
                    key = d or f"{name}:{axis}"
                    if key not in example_of:
                        example_of[key] = (1, 8, 32) if axis == 0 else (640, 640, 640) if len(dims) == 4 else \
                            (128, 128, 128)
                    v = example_of[key][KINDS.index(kind)]
                sizes.append(str(v))
            flags[kind].append(f"{name}:{'x'.join(sizes)}")
    example = " ".join(f"--{k}-shapes {','.join(flags[k])}" for k in KINDS)
    only_batch = all(a == 0 for _, a, _ in missing)
    return (f"{where}: {len(missing)} dynamic dim{'s have' if len(missing) > 1 else ' has'} no size: {names}; "
            f"give them, e.g. {example} (example sizes: put yours)" + (" or --batch 1:8:32" if only_batch else ""))


def _check_symbols(where, inputs, profile) -> None:
    """Dims that share a name are one dim to TensorRT: one size per kind."""
    for kind in ("opt", "min", "max"):  # opt first: min and max default to it
        seen: dict[str, tuple[str, int, int]] = {}
        for name, dims in inputs.items():
            for axis, d in enumerate(dims):
                if isinstance(d, str) and d:
                    v = profile[name][kind][axis]
                    if d in seen and seen[d][2] != v:
                        n0, a0, v0 = seen[d]
                        hint = " (the exporter wrote '?' for unknown dims, and TensorRT reads it as a name)" \
                            if not d.replace("_", "a").replace(".", "a").isalnum() else ""
                        raise TrtDeployError(f"{where}: input '{n0}' dim {a0} and input '{name}' dim {axis} are both "
                                             f"'{d}' but their {kind} sizes differ ({v0} and {v}); TensorRT takes dims "
                                             f"that share a name for one dim, so they must share a size{hint}")
                    seen.setdefault(d, (name, axis, v))


def _fmt(dims) -> str:
    return "[" + ", ".join(str(d) if d is not None else "?" for d in dims) + "]"


# ---- precision ------------------------------------------------------------------------------------

def precision_strategy(precision: str, tensorrt_major: int | None, strongly_typed: bool) -> dict:
    """How a precision is obtained: {'how', 'builder_flag', 'convert', 'strongly_typed'}.

    TensorRT 10 weakly typed: the builder flag. Strongly typed (TensorRT 11 always; 10 with
    --strongly-typed): types come from the model, so fp16 means converting the model first;
    bf16 has no such pass here and is refused rather than silently built in float32."""
    if precision not in ("fp32", "fp16", "bf16"):
        raise TrtDeployError(f"precision must be fp32, fp16 or bf16, not {precision}")
    if tensorrt_major is None:
        how = {"fp32": "float32 as in the model",
               "fp16": "TensorRT 10: builder flag FP16 (weakly typed); strongly typed (TensorRT 11, or "
                       "--strongly-typed): the model is converted with `trtdeploy fp16` first, keeping I/O float32",
               "bf16": "TensorRT 10 weakly typed: builder flag BF16; refused when strongly typed (TensorRT 11, "
                       "--strongly-typed): export the model in bfloat16 instead"}[precision]
        return {"how": how, "builder_flag": None, "convert": None, "strongly_typed": strongly_typed}
    typed = strongly_typed or tensorrt_major >= 11
    why = "TensorRT 11 networks are always strongly typed" if tensorrt_major >= 11 else "--strongly-typed"
    if precision == "fp32":
        return {"how": "float32 as in the model", "builder_flag": None, "convert": None, "strongly_typed": typed}
    if not typed:
        flag = {"fp16": "FP16", "bf16": "BF16"}[precision]
        return {"how": f"TensorRT {tensorrt_major} weakly typed network: builder flag {flag}", "builder_flag": flag,
                "convert": None, "strongly_typed": False}
    if precision == "bf16":
        raise TrtDeployError(f"--bf16 needs a weakly typed network, where it is a builder flag ({why}, so types come "
                             "from the model and nothing would be bfloat16): export the model in bfloat16, or use "
                             "--fp16" + (" or drop --strongly-typed" if tensorrt_major < 11 else ""))
    return {"how": f"strongly typed ({why}): the model is converted with `trtdeploy fp16` first, I/O kept float32",
            "builder_flag": None, "convert": "fp16", "strongly_typed": True}


# ---- plugins --------------------------------------------------------------------------------------

def plugin_ops(model: onnx.ModelProto) -> list[str]:
    """Ops outside the ONNX domain: TensorRT's parser resolves them through its plugin registry."""
    return sorted({n.op_type for n in model.graph.node if n.domain not in ("", "ai.onnx")})


def plugin_plan(ops: list[str], user_plugins: list[str], tensorrt_version: str | None) -> tuple[list[str], list[str]]:
    """(libraries to load, what is missing): the user's --plugins, then trtdeploy's own library for
    YoloLayer_TRT and TRTDeploy_NMS, the one built for this TensorRT major (all of them when TensorRT is not installed,
    for the dry run to show). Without --plugins, a model that needs it and has no library fails."""
    from ._info import NOT_BUILT, plugin_libraries, select_plugin_library

    libs, missing = [], []
    for lib in user_plugins:
        (libs if os.path.isfile(lib) else missing).append(lib if os.path.isfile(lib) else
                                                          f"--plugins {lib}: no such file")
    if any(op in BUNDLED_OPS for op in ops):
        built = plugin_libraries()
        if tensorrt_version is not None:
            try:
                libs.append(select_plugin_library(built, tensorrt_version))
            except TrtDeployError as exc:
                if not user_plugins:  # with --plugins, the user's library may provide it
                    missing.append(str(exc))
        elif built:
            libs += [row["library"] for row in built]
        elif not user_plugins:
            missing.append(NOT_BUILT)
    return libs, missing


def is_bundled(lib: str) -> bool:
    from ._info import PLUGIN_PREFIX

    return os.path.basename(lib).startswith(PLUGIN_PREFIX)


def engine_plugins(sidecar: dict | None, engine_names_bundled: bool, user_plugins: list[str],
                   tensorrt_version: str) -> tuple[list[str], list[str]]:
    """(libraries to load before deserializing an engine, notes). From the build sidecar: its plugin
    libraries, with trtdeploy's own re-resolved for this TensorRT (the recorded path may be another
    venv's); without a sidecar, trtdeploy's library when the engine's bytes name one of its plugins."""
    notes = []
    recorded = list((sidecar or {}).get("plugins") or [])
    ops = list((sidecar or {}).get("plugin_ops") or [])
    needs_ours = any(op in BUNDLED_OPS for op in ops) or any(is_bundled(p) for p in recorded)
    if sidecar is None and engine_names_bundled:
        needs_ours = True
        notes.append(f"no build sidecar (ENGINE.json) next to the engine; its bytes name {' or '.join(BUNDLED_OPS)}, "
                     "so trtdeploy's plugin library is loaded")
    extra = [p for p in recorded if not is_bundled(p) and p not in user_plugins]
    for p in extra:
        if not os.path.isfile(p):
            raise TrtDeployError(f"the engine was built with plugin library {p} (per its sidecar), which does not "
                                 "exist here; pass --plugins PATH")
    libs, missing = plugin_plan([YOLO_OP] if needs_ours else [], list(user_plugins) + extra, tensorrt_version)
    if missing:
        raise TrtDeployError(missing[0])
    return libs, notes


# ---- the plan -------------------------------------------------------------------------------------

def make_plan(model: onnx.ModelProto, model_path: str, engine_path: str, specs: list[ProfileSpec],
              precision: str = "fp32", plugins: list[str] | None = None, workspace_mib: int | None = None,
              timing_cache: str | None = None, strongly_typed: bool = False,
              tensorrt_version: str | None = None, runtime: str = "tensorrt",
              compute_capabilities: str | None = None, available_capabilities: tuple | None = None) -> BuildPlan:
    """The plan for TensorRT `tensorrt_version` (None: not installed, for a dry run), or with
    runtime="tensorrt-rtx" for that TensorRT-RTX version (its rules: trt/rtx.py)."""
    if not model.graph.output:
        raise TrtDeployError(f"{model_path}: the model has no outputs, so there is nothing to build (is it an ONNX "
                             "model?)")
    ops = plugin_ops(model)
    if runtime == "tensorrt-rtx":
        from .trt.rtx import plan_rules

        rtx = plan_rules(model, precision, compute_capabilities, available_capabilities, tensorrt_version, timing_cache)
        prec, missing, notes, capabilities = rtx["precision"], rtx["missing"], rtx["notes"], rtx["capabilities"]
        libs, more = plugin_plan(ops, list(plugins or []), rtx["plugin_abi"])
        missing += more
    else:
        if compute_capabilities:
            raise TrtDeployError("--compute-capability sets TensorRT-RTX's targets (--runtime tensorrt-rtx); TensorRT "
                                 "builds for the GPU it runs on: build on the target GPU, or drop the flag")
        major = int(str(tensorrt_version).split(".")[0]) if tensorrt_version else None
        prec, notes, capabilities = precision_strategy(precision, major, strongly_typed), [], []
        libs, missing = plugin_plan(ops, list(plugins or []), tensorrt_version)
    if precision == "fp32" and (half := _float16_tensors(model)):
        prec["how"] = f"the model's own types: it is already float16 ({half}), e.g. from `trtdeploy fp16`"
    if workspace_mib is not None and workspace_mib <= 0:
        raise TrtDeployError(f"--workspace {workspace_mib}: give a positive size in MiB (or leave it out for "
                             "TensorRT's default)")
    missing += _unwritable(engine_path, "-o")  # found now, not after minutes of building
    if timing_cache and os.path.isdir(timing_cache):
        missing.append(f"--timing-cache {timing_cache} is a folder; give a file")
    elif timing_cache:
        missing += _unwritable(timing_cache, "--timing-cache")  # saved after the build
    if runtime == "tensorrt-rtx":
        timing_cache = None  # a no-op there: said in the notes, never written
    io = {vi.name: {"dtype": onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type).lower(),
                    "shape": dims_of(vi)} for vi in data_inputs(model.graph)}
    outs = {vi.name: {"dtype": onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type).lower(),
                      "shape": dims_of(vi)} for vi in model.graph.output}
    return BuildPlan(model=str(model_path), engine=str(engine_path), profiles=plan_profiles(model, specs),
                     precision=precision, precision_how=prec["how"], builder_flag=prec["builder_flag"],
                     convert=prec["convert"], plugins=libs, plugin_ops=ops, workspace_mib=workspace_mib,
                     timing_cache=timing_cache, strongly_typed=prec["strongly_typed"],
                     tensorrt_version=tensorrt_version, inputs=io, outputs=outs, missing=missing, runtime=runtime,
                     compute_capabilities=capabilities, notes=notes)


def convert_for_build(model_path: str):
    """(model, its float16 conversion): what a strongly typed fp16 build parses (trt.build.prepare_model)
    and what `build --dry-run` runs too, so that the dry run refuses what the build would."""
    from . import io
    from .surgery.fp16 import to_fp16

    model = io.load(model_path)
    return model, to_fp16(model)


def _float16_tensors(model: onnx.ModelProto) -> str:
    """What of the model is float16 (weights, Cast-to-float16 nodes, graph inputs/outputs), as words; ''
    when nothing is."""
    f16 = onnx.TensorProto.FLOAT16
    g = model.graph
    weights = sum(t.data_type == f16 for t in g.initializer) + sum(
        a.t.data_type == f16 for n in g.node if n.op_type == "Constant" for a in n.attribute if a.HasField("t"))
    casts = sum(n.op_type == "Cast" and any(a.name == "to" and a.i == f16 for a in n.attribute) for n in g.node)
    io = sum(vi.type.tensor_type.elem_type == f16 for vi in list(g.input) + list(g.output))
    parts = [f"{weights} float16 weight(s)" if weights else "", f"{casts} Cast(s) to float16" if casts else "",
             f"{io} float16 graph input(s)/output(s)" if io else ""]
    return ", ".join(p for p in parts if p)


def _unwritable(path: str, flag: str) -> list[str]:
    from .io import check_writable

    try:
        check_writable(path, flag)
    except TrtDeployError as exc:
        return [str(exc)]
    return []


def format_plan(plan: BuildPlan) -> str:
    lines = [f"model: {plan.model}", f"engine: {plan.engine}"]
    if plan.runtime == "tensorrt-rtx":
        lines += [f"builder: TensorRT-RTX {plan.tensorrt_version or '(not installed here)'}",
                  f"compute capabilities: {', '.join(plan.compute_capabilities) or 'TensorRT-RTX default'}"]
    else:
        lines.append(f"tensorrt: {plan.tensorrt_version or 'not installed here (the plan shows both 10 and 11)'}")
    lines.append(f"precision: {plan.precision} ({plan.precision_how})")
    for i, prof in enumerate(plan.profiles):
        lines.append(f"profile {i}:")
        for name, r in prof.items():
            dims = {k: "x".join(map(str, r[k])) or "scalar" for k in KINDS}
            lines.append(f"  {name}: min {dims['min']}  opt {dims['opt']}  max {dims['max']}")
    plugins = ", ".join(plan.plugins) or "none"
    if plan.tensorrt_version is None and set(BUNDLED_OPS) & set(plan.plugin_ops) and len(plan.plugins) > 1:
        plugins += " (one per TensorRT major: the build loads the one for the installed TensorRT)"
    lines.append(f"plugins: {plugins}" + (f" for {', '.join(plan.plugin_ops)}" if plan.plugin_ops else ""))
    lines += [f"MISSING: {m}" for m in plan.missing]
    lines += [f"note: {n}" for n in plan.notes]
    lines.append(f"workspace: {f'{plan.workspace_mib} MiB' if plan.workspace_mib else 'TensorRT default'}")
    lines.append(f"timing cache: {plan.timing_cache or 'none'}")
    typed = "strongly typed" if plan.strongly_typed else \
        "weakly typed" if plan.tensorrt_version else "weakly typed on TensorRT 10, strongly typed on 11"
    lines.append(f"network: {typed}")
    return "\n".join(lines)
