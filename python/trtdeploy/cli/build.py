"""trtdeploy build MODEL -o ENGINE [--min-shapes ... --opt-shapes ... --max-shapes ...] [--profile ...]
[--batch MIN:OPT:MAX] [--fp16|--bf16] [--workspace MiB] [--timing-cache FILE] [--plugins LIB] [--dry-run [--json]]"""

from __future__ import annotations

from ._common import log
from ._profiles import add_profile_options, profile_specs


def add_parser(sub):
    p = sub.add_parser("build", help="build a TensorRT engine with optimization profiles (or --dry-run the plan)")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-o", "--output", metavar="ENGINE", help="engine file (default: MODEL with .engine)")
    add_profile_options(p)
    p.add_argument("--fp16", action="store_true",
                   help="FP16 (TensorRT 10: builder flag; strongly typed/11: the model goes through `trtdeploy fp16`)")
    p.add_argument("--bf16", action="store_true", help="BF16 builder flag (TensorRT 10, weakly typed networks only)")
    p.add_argument("--strongly-typed", action="store_true", help="build a strongly typed network (types from the model)")
    p.add_argument("--workspace", type=int, metavar="MiB", help="workspace memory pool limit")
    p.add_argument("--timing-cache", metavar="FILE", help="load it if it exists, save it after the build")
    p.add_argument("--plugins", action="append", metavar="LIB",
                   help="plugin library to load (trtdeploy's own is added when the model has YoloLayer_TRT)")
    p.add_argument("--runtime", choices=("tensorrt", "tensorrt-rtx"),
                   help="the builder (default: TensorRT when installed, else TensorRT-RTX)")
    p.add_argument("--compute-capability", metavar="CC[,CC]",
                   help="TensorRT-RTX targets, e.g. 8.9,12.0 or sm_89 (default: TensorRT-RTX's own)")
    p.add_argument("--dry-run", action="store_true", help="print the build plan; needs no TensorRT; exits 1 when "
                                                          "the plan cannot build")
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    return p


def run(args):
    import json
    from pathlib import Path

    from .. import io
    from ..errors import TrtDeployError
    from ..plan import format_plan, make_plan

    if args.fp16 and args.bf16:
        raise TrtDeployError("give --fp16 or --bf16, not both")
    specs = profile_specs(args)
    engine = args.output or str(Path(args.model).with_suffix(".engine"))
    from ..trt.build import sidecar_path
    from ._common import check_outputs

    check_outputs(args, [("-o", engine), ("the build sidecar", sidecar_path(engine))]
                  + ([("--timing-cache", args.timing_cache)] if args.timing_cache else []))
    model = io.load(args.model, load_external_data=False)
    from ..trt import choose_runtime

    runtime, version = choose_runtime(args.runtime, need=not args.dry_run)
    plan = make_plan(model, args.model, engine, specs, runtime=runtime, compute_capabilities=args.compute_capability,
                     available_capabilities=_capabilities(runtime, version),
                     precision="fp16" if args.fp16 else "bf16" if args.bf16 else "fp32", plugins=args.plugins,
                     workspace_mib=args.workspace, timing_cache=args.timing_cache, strongly_typed=args.strongly_typed,
                     tensorrt_version=version)
    if args.dry_run and plan.precision == "fp16" and plan.builder_flag is None and not plan.missing:
        from ..plan import convert_for_build  # strongly typed (or TensorRT 11, when none is installed):

        convert_for_build(args.model)  # the build's own conversion, so that what it refuses is refused now
    if args.dry_run:
        print(json.dumps(plan.to_dict(), indent=2) if args.json else format_plan(plan))
    if plan.missing:
        more = f" (and {len(plan.missing) - 1} more, see the plan)" if len(plan.missing) > 1 and args.dry_run else ""
        raise TrtDeployError(plan.missing[0] + more)
    if args.dry_run:
        return 0
    from ..trt.build import build_engine

    log.info("%s", format_plan(plan))
    for note in plan.notes:
        log.warning("note: %s", note)
    sidecar = build_engine(plan)
    log.info("wrote %s (%s, %.2f s) and %s.json", engine, sidecar["builder"], sidecar["build_seconds"], engine)
    return 0


def _capabilities(runtime, version):
    """The compute capabilities the installed TensorRT-RTX knows (None: its known list)."""
    if runtime != "tensorrt-rtx" or version is None:
        return None
    from ..trt import import_runtime
    from ..trt.rtx import capabilities_of

    return capabilities_of(import_runtime(runtime))
