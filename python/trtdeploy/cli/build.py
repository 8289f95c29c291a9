"""trtdeploy build MODEL -o ENGINE [--min-shapes ... --opt-shapes ... --max-shapes ...] [--profile ...]
[--batch MIN:OPT:MAX] [--fp16] [--workspace MiB] [--timing-cache FILE] [--plugins LIB] [--dry-run [--json]]"""

from __future__ import annotations

from ._common import log
from ._profiles import add_profile_options


def add_parser(sub):
    p = sub.add_parser("build", help="build a TensorRT engine with optimization profiles (or --dry-run the plan)")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-o", "--output", metavar="ENGINE", help="engine file (default: MODEL with .engine)")
    add_profile_options(p)
    p.add_argument("--fp16", action="store_true", help="FP16 (TensorRT 10: builder flag; 11: `trtdeploy fp16` pass)")
    p.add_argument("--bf16", action="store_true", help="BF16 builder flag (TensorRT 10)")
    p.add_argument("--strongly-typed", action="store_true", help="build a strongly typed network (types from the model)")
    p.add_argument("--workspace", type=int, metavar="MiB", help="workspace memory pool limit")
    p.add_argument("--timing-cache", metavar="FILE", help="load it if it exists, save it after the build")
    p.add_argument("--plugins", action="append", metavar="LIB",
                   help="plugin library to load (default: trtdeploy's own when the model has YoloLayer_TRT)")
    p.add_argument("--dry-run", action="store_true", help="print the build plan; needs no TensorRT")
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    return p


def run(args):
    import json
    import tempfile
    from pathlib import Path

    from .. import io
    from ..errors import TrtDeployError
    from ..plan import format_plan, make_plan

    if args.fp16 and args.bf16:
        raise TrtDeployError("give --fp16 or --bf16, not both")
    engine = args.output or str(Path(args.model).with_suffix(".engine"))
    if Path(engine).resolve() == Path(args.model).resolve():
        raise TrtDeployError(f"-o {engine} is the model file")
    model = io.load(args.model, load_external_data=False)
    plan = make_plan(model, args.model, engine, args.profiles or [],
                     precision="fp16" if args.fp16 else "bf16" if args.bf16 else "fp32", plugins=args.plugins,
                     workspace_mib=args.workspace, timing_cache=args.timing_cache, strongly_typed=args.strongly_typed)
    if args.dry_run:
        print(json.dumps(plan.to_dict(), indent=2) if args.json else format_plan(plan))
        return 0
    if plan.missing:
        raise TrtDeployError(plan.missing[0])
    from ..trt import import_tensorrt, major_version
    from ..trt.build import build_engine

    trt = import_tensorrt()
    log.info("%s", format_plan(plan))
    if plan.precision == "fp16" and (major_version(trt) >= 11 or plan.strongly_typed):
        from ..surgery.fp16 import to_fp16

        with tempfile.TemporaryDirectory() as d:
            fp16_path = Path(d) / "model.fp16.onnx"
            log.info("strongly typed network: converting the model to float16 first")
            io.save(to_fp16(io.load(args.model)), fp16_path)
            sidecar = build_engine(plan, str(fp16_path))
    else:
        sidecar = build_engine(plan)
    log.info("wrote %s (%.1f s) and %s.json", engine, sidecar["build_seconds"], engine)
    return 0
