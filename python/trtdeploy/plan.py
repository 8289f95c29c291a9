"""Engine build plans, without TensorRT: optimization profiles from the model's own dynamic dims.

Shapes are written as trtexec writes them (``images:1x3x640x640``, several inputs comma-separated);
each ``--profile`` starts another optimization profile. A dynamic dim without a value is an error
naming the input and the dim (never a silent 1); static dims cannot take other values; min <= opt <=
max is checked. The plan is a plain dict, printed by ``trtdeploy build --dry-run``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import onnx

from ._graph import data_inputs, dims_of
from .errors import TrtDeployError
from .runtime import parse_shapes

KINDS = ("min", "opt", "max")


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
    plugins: list[str] = field(default_factory=list)
    workspace_mib: int | None = None
    timing_cache: str | None = None
    strongly_typed: bool = False
    inputs: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # what a real build would lack (dry runs still print)

    def to_dict(self) -> dict:
        return asdict(self)


def parse_batch(text: str) -> tuple[int, int, int]:
    try:
        lo, opt, hi = (int(x) for x in text.split(":"))
    except ValueError:
        raise TrtDeployError(f"--batch '{text}': expected MIN:OPT:MAX, e.g. 1:8:32") from None
    return lo, opt, hi


def add_shapes(spec: ProfileSpec, kind: str, text: str) -> None:
    for name, dims in parse_shapes(text).items():
        spec.shapes[kind][name] = dims


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
        profile = {}
        for name, dims in inputs.items():
            if dims is None:
                raise TrtDeployError(f"input '{name}' has no shape in the model; re-export it with one")
            given = {k: spec.shapes[k].get(name) for k in KINDS}
            # trtexec's rule: a missing min/max takes opt's value, a missing opt takes max's
            if given["opt"] is None:
                given["opt"] = given["max"] or given["min"]
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
                    if v is None and axis == 0 and not isinstance(d, int) and spec.batch:
                        v = spec.batch[KINDS.index(kind)]
                    if isinstance(d, int):
                        if v is not None and v != d:
                            raise TrtDeployError(f"{where}: input '{name}' dim {axis} is static ({d}) and cannot be "
                                                 f"{v}; make it dynamic first with `trtdeploy dynamic`")
                        out.append(d)
                    else:
                        if v is None:
                            label = f" '{d}'" if d else ""
                            hint = " (or --batch MIN:OPT:MAX)" if axis == 0 else ""
                            raise TrtDeployError(f"{where}: input '{name}' dim {axis}{label} is dynamic and has no "
                                                 f"{kind} value; give --{kind}-shapes {name}:" +
                                                 "x".join(str(x) if isinstance(x, int) else "N" for x in dims) + hint)
                        if v < 0:
                            raise TrtDeployError(f"{where}: input '{name}' dim {axis}: {v} is not a size")
                        out.append(v)
                resolved[kind] = out
            for axis, (lo, opt, hi) in enumerate(zip(resolved["min"], resolved["opt"], resolved["max"])):
                if not lo <= opt <= hi:
                    raise TrtDeployError(f"{where}: input '{name}' dim {axis}: min {lo} <= opt {opt} <= max {hi} "
                                         "does not hold")
            profile[name] = resolved
        profiles.append(profile)
    if not dynamic and any(spec.batch for spec in specs):
        raise TrtDeployError("--batch given but the model has no dynamic dim; make the batch dynamic with "
                             "`trtdeploy dynamic` first")
    return profiles


def _fmt(dims) -> str:
    return "[" + ", ".join(str(d) if d is not None else "?" for d in dims) + "]"


MISSING_YOLO_PLUGIN = ("the model has a YoloLayer_TRT node but the trtdeploy plugin library was not built "
                       "(TensorRT headers were not found when trtdeploy was installed); reinstall with "
                       "TENSORRT_ROOT set, or pass --plugins PATH")


def required_plugins(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    """(plugin libraries the model needs, what is missing): the bundled one for YoloLayer_TRT."""
    ops = {n.op_type for n in model.graph.node}
    libs, missing = [], []
    if "YoloLayer_TRT" in ops:
        from ._info import plugin_library

        lib = plugin_library()
        (libs.append(lib) if lib else missing.append(MISSING_YOLO_PLUGIN))
    return libs, missing


def make_plan(model: onnx.ModelProto, model_path: str, engine_path: str, specs: list[ProfileSpec],
              precision: str = "fp32", plugins: list[str] | None = None, workspace_mib: int | None = None,
              timing_cache: str | None = None, strongly_typed: bool = False) -> BuildPlan:
    if precision not in ("fp32", "fp16", "bf16"):
        raise TrtDeployError(f"precision must be fp32, fp16 or bf16, not {precision}")
    how = {
        "fp32": "float32 as in the model",
        "fp16": "TensorRT 10: builder flag FP16 (weakly typed); TensorRT 11 (always strongly typed): the model "
                "is converted with `trtdeploy fp16` first, keeping I/O float32",
        "bf16": "TensorRT 10: builder flag BF16; TensorRT 11: not converted automatically (export in bf16)",
    }[precision]
    libs, missing = list(plugins or []), []
    if not plugins:
        libs, missing = required_plugins(model)
    io = {vi.name: {"dtype": onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type).lower(),
                    "shape": dims_of(vi)} for vi in data_inputs(model.graph)}
    outs = {vi.name: {"dtype": onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type).lower(),
                      "shape": dims_of(vi)} for vi in model.graph.output}
    return BuildPlan(model=str(model_path), engine=str(engine_path), profiles=plan_profiles(model, specs),
                     precision=precision, precision_how=how, plugins=libs, workspace_mib=workspace_mib,
                     timing_cache=timing_cache, strongly_typed=strongly_typed, inputs=io, outputs=outs,
                     missing=missing)


def format_plan(plan: BuildPlan) -> str:
    lines = [f"model: {plan.model}", f"engine: {plan.engine}", f"precision: {plan.precision} ({plan.precision_how})"]
    for i, prof in enumerate(plan.profiles):
        lines.append(f"profile {i}:")
        for name, r in prof.items():
            lines.append(f"  {name}: min {'x'.join(map(str, r['min']))}  opt {'x'.join(map(str, r['opt']))}  "
                         f"max {'x'.join(map(str, r['max']))}")
    lines.append("plugins: " + (", ".join(plan.plugins) or "none"))
    lines += [f"MISSING: {m}" for m in plan.missing]
    lines.append(f"workspace: {f'{plan.workspace_mib} MiB' if plan.workspace_mib else 'TensorRT default'}")
    lines.append(f"timing cache: {plan.timing_cache or 'none'}")
    lines.append(f"network: {'strongly typed' if plan.strongly_typed else 'weakly typed on TensorRT 10, strongly typed on 11'}")
    return "\n".join(lines)
