"""trtdeploy bench ENGINE|MODEL [--shapes NAME:DxD ...] [--profile-index N] [--iters N] [--cuda-graph]
[--compare-padded MAXBATCH] [--out DIR]"""

from __future__ import annotations

from ._common import log


def add_parser(sub):
    p = sub.add_parser("bench", help="latency/throughput of an engine (CUDA events), dynamic vs padded batch")
    p.add_argument("target", metavar="ENGINE|MODEL", help="an engine, or an .onnx model to build first")
    p.add_argument("--shapes", action="append", metavar="NAME:DxD,...", required=True,
                   help="input shapes to time (repeatable: one configuration each)")
    p.add_argument("--profile-index", type=int, help="optimization profile to use (default: the first that fits)")
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--cuda-graph", action="store_true", help="replay a captured CUDA graph")
    p.add_argument("--compare-padded", type=int, metavar="MAXBATCH",
                   help="also time a static MAXBATCH engine fed each batch padded to MAXBATCH (needs MODEL)")
    p.add_argument("--fp16", action="store_true", help="when building from MODEL")
    p.add_argument("--plugins", action="append", metavar="LIB")
    p.add_argument("--runtime", choices=("tensorrt", "tensorrt-rtx"), help="the builder, when building from MODEL "
                   "(an engine's is read from its sidecar)")
    p.add_argument("--out", default="benchmarks/results", help="where engine_bench.{json,md,png} go")
    p.add_argument("--name", default="engine_bench")
    return p


def _fits(shapes, prof) -> bool:
    return all(all(lo <= v <= hi for v, lo, hi in zip(shapes[n], prof[n][0], prof[n][2])) for n in shapes if n in prof)


def run(args):
    import sys
    import tempfile
    from datetime import date
    from pathlib import Path

    from .. import io
    from ..bench.stats import compare_padded, engine_markdown, summarize, write_report
    from ..errors import TrtDeployError
    from ..plan import ProfileSpec, make_plan, parse_shape_flag

    configs = [parse_shape_flag("--shapes", s) for s in args.shapes]
    is_model = args.target.endswith(".onnx")
    if args.compare_padded and not is_model:
        raise TrtDeployError("--compare-padded builds a static-batch engine: give the .onnx MODEL, not an engine")
    if args.fp16 and not is_model:
        raise TrtDeployError("--fp16 applies when bench builds the engine from a .onnx MODEL; an engine has its "
                             "precision already")
    if not is_model and not Path(args.target).is_file():
        raise TrtDeployError(f"{args.target}: no such file")
    from ._common import input_files

    inputs = input_files(args) + (io.model_files("the input model", args.target) if is_model else
                                  [(f"the engine {args.target}", Path(args.target))])
    io.check_outputs([("--out", Path(args.out) / f"{args.name}.{ext}") for ext in ("json", "md", "png")], inputs)
    model = io.load(args.target, load_external_data=False) if is_model else None
    from ..trt import choose_runtime, import_runtime
    from ..trt.build import read_sidecar

    runtime = (read_sidecar(args.target) or {}).get("runtime", "tensorrt") if not is_model else \
        choose_runtime(args.runtime)[0]
    if runtime == "tensorrt-rtx":  # RTX engines run on RTX-class GPUs only: said before building or loading
        from ..trt.rtx import gpu_problem

        problem = gpu_problem(args.target)
        if problem:
            raise TrtDeployError(problem)
    trt = import_runtime(runtime)
    from ..trt.build import build_engine
    from ..trt.runtime import EngineRunner

    tmp = tempfile.TemporaryDirectory()
    engine = args.target
    precision = "fp16" if args.fp16 else "fp32"

    def plan_for(m, model_path, engine_path, specs):  # the same plan (precision pass, plugins) as `build`
        return make_plan(m, model_path, engine_path, specs, precision, args.plugins,
                         tensorrt_version=str(trt.__version__), runtime=runtime)

    if is_model:
        spec = ProfileSpec()
        for kind, pick in (("min", min), ("opt", max), ("max", max)):
            for name in configs[0]:
                dims = [pick(c[name][a] for c in configs) for a in range(len(configs[0][name]))]
                spec.shapes[kind][name] = dims
        engine = str(Path(tmp.name) / "dynamic.engine")
        log.info("building a dynamic engine from %s", args.target)
        build_engine(plan_for(model, args.target, engine, [spec]))
    runner = EngineRunner(engine, args.plugins or [])
    runs, by_batch = [], {}
    for shapes in configs:
        profile = args.profile_index
        if profile is None:
            profile = next((i for i in range(runner.num_profiles) if _fits(shapes, runner.profile_shapes(i))), None)
            if profile is None:
                raise TrtDeployError(f"no optimization profile of the engine fits {shapes}")
        runner.prepare(shapes, profile)
        batch = next(iter(shapes.values()))[0]
        stats = summarize(runner.time(args.iters, args.warmup, args.cuda_graph), batch)
        log.info("profile %d %s: median %.1f us, p99 %.1f us", profile, shapes, stats["median_us"], stats["p99_us"])
        runs.append({"profile": profile, "shapes": shapes, "batch": batch, **stats})
        by_batch[batch] = stats
    padded_rows = []
    if args.compare_padded:
        m = io.load(args.target)
        static = _static_batch(m, args.compare_padded)
        static_path = Path(tmp.name) / "static.onnx"
        io.save(static, static_path)
        static_engine = str(Path(tmp.name) / "static.engine")
        log.info("building the static batch-%d engine", args.compare_padded)
        build_engine(plan_for(static, str(static_path), static_engine, []))
        srunner = EngineRunner(static_engine, args.plugins or [])
        padded = {}
        for shapes in configs:
            b = next(iter(shapes.values()))[0]
            full = {n: [args.compare_padded] + v[1:] for n, v in shapes.items()}
            srunner.prepare(full, 0)  # b real samples + padding: the cost is that of the full batch
            padded[b] = summarize(srunner.time(args.iters, args.warmup, args.cuda_graph), b)
        padded_rows = compare_padded(by_batch, padded)
    import platform

    import torch

    result = {"engine": args.target, "tensorrt_version": trt.__version__, "device": torch.cuda.get_device_name(),
              "host": platform.node(), "date": date.today().isoformat(),
              "command": "trtdeploy " + " ".join(sys.argv[1:]), "iters": args.iters, "warmup": args.warmup,
              "cuda_graph": args.cuda_graph, "runs": runs, "padded_batch": args.compare_padded, "padded": padded_rows}
    paths = write_report(args.out, args.name, result, engine_markdown(result), plot=lambda p: _plot(result, p))
    for p in paths:
        log.info("wrote %s", p)
    tmp.cleanup()
    return 0


def _static_batch(model, batch):
    """The model with its symbolic batch dims (axis 0 of inputs and outputs) set to `batch`."""
    from .._graph import copy_model

    m = copy_model(model)
    for vi in list(m.graph.input) + list(m.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = batch
    return m


def _plot(result, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    runs = sorted(result["runs"], key=lambda r: r["batch"])
    ax.plot([r["batch"] for r in runs], [r["median_us"] for r in runs], "o-", label="dynamic batch")
    if result["padded"]:
        pr = result["padded"]
        ax.plot([r["batch"] for r in pr], [r["padded_median_us"] for r in pr], "s--",
                label=f"padded to {result['padded_batch']}")
    ax.set_xlabel("batch")
    ax.set_ylabel("median latency (us)")
    ax.set_title(f"{Path(result['engine']).name} on {result['device']}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


from pathlib import Path  # noqa: E402  (used by _plot)
