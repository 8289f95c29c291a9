"""Bulk rename on a ~600 MB exporter-like model: the compiled fast path (API and CLI, the CLI with
and without its structural check of the written file) vs onnx load + dict rename + save,
onnx-graphsurgeon, and `cp`, side by side in one run.

    pip install ".[bench]" && python benchmarks/rename.py [--size-mb 600] [--repeat 3]

Every method runs in its own process (so peak RSS is its own), each timed --repeat times; the
median is reported. Writes benchmarks/results/rename.json, rename.md and rename.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# Each method: a Python snippet run as `python -c`, argv = [src, dst, mapping.json]; it must not
# print anything but may use stderr. Timing includes interpreter start and imports (what a user waits for).
METHODS = {
    "trtdeploy API (rename_file)": (
        "import sys, json, trtdeploy; m = json.load(open(sys.argv[3])); "
        "trtdeploy.rename_file(sys.argv[1], sys.argv[2], m)"),
    "trtdeploy CLI": None,  # the console script itself, see run_method
    "trtdeploy CLI --no-verify": None,  # the same without the structural check of what it wrote
    "onnx load + dict + save": (
        "import sys, json, onnx\n"
        "m = json.load(open(sys.argv[3])); model = onnx.load(sys.argv[1]); g = model.graph\n"
        "for n in g.node:\n"
        "    n.input[:] = [m.get(x, x) for x in n.input]; n.output[:] = [m.get(x, x) for x in n.output]\n"
        "for v in list(g.input) + list(g.output) + list(g.value_info) + list(g.initializer):\n"
        "    v.name = m.get(v.name, v.name)\n"
        "onnx.save(model, sys.argv[2])"),
    "onnx-graphsurgeon": (
        "import sys, json, onnx, onnx_graphsurgeon as gs\n"
        "m = json.load(open(sys.argv[3])); graph = gs.import_onnx(onnx.load(sys.argv[1]))\n"
        "for t in graph.tensors().values():\n"
        "    t.name = m.get(t.name, t.name)\n"
        "onnx.save(gs.export_onnx(graph), sys.argv[2])"),
    "cp": None,
}


def make_model(path: Path, size_mb: int, seed: int = 0) -> dict:
    """Conv/BatchNorm/Relu blocks with exporter-style auto names (onnx::Conv_123, /layer1/...)."""
    import numpy as np
    import onnx
    from onnx import TensorProto as TP
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    blocks = 1000
    per_block = size_mb * (1 << 20) // blocks // 4  # float32 weights per block
    c = 64
    k = max(1, int(round((per_block / (c * c)) ** 0.5)))
    nodes, inits = [], []
    x = "input.1"
    uid = 100
    for i in range(blocks):
        w = f"onnx::Conv_{uid}"
        b = f"onnx::Conv_{uid + 1}"
        uid += 2
        inits.append(numpy_helper.from_array(rng.standard_normal((c, c, k, k), dtype=np.float32), w))
        inits.append(numpy_helper.from_array(rng.standard_normal(c, dtype=np.float32), b))
        conv_out = f"/layer{i // 10}/block{i % 10}/conv/Conv_output_0"
        nodes.append(helper.make_node("Conv", [x, w, b], [conv_out], name=f"/layer{i // 10}/block{i % 10}/conv/Conv",
                                      pads=[k // 2] * 4))
        relu_out = f"onnx::Relu_{uid}"
        uid += 1
        nodes.append(helper.make_node("Relu", [conv_out], [relu_out], name=f"/layer{i // 10}/block{i % 10}/Relu"))
        add_out = f"/layer{i // 10}/block{i % 10}/Add_output_0"
        nodes.append(helper.make_node("Add", [relu_out, x], [add_out], name=f"/layer{i // 10}/block{i % 10}/Add"))
        x = add_out
    g = helper.make_graph(nodes, "main_graph", [helper.make_tensor_value_info("input.1", TP.FLOAT, [1, c, 8, 8])],
                          [helper.make_tensor_value_info(x, TP.FLOAT, [1, c, 8, 8])], initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="pytorch")
    onnx.save(model, str(path))
    names = [n for node in nodes for n in list(node.input) + list(node.output)]
    return {n: f"t{i}" for i, n in enumerate(dict.fromkeys(names))}


def run_method(name: str, src: Path, dst: Path, mapping: Path) -> tuple[float, int]:
    """(seconds, peak RSS bytes) of one run in a fresh process."""
    os.sync()  # start every run with no dirty pages of the previous one still being written back
    if name == "cp":
        cmd = ["cp", str(src), str(dst)]
    elif name.startswith("trtdeploy CLI"):
        exe = shutil.which("trtdeploy")
        cmd = [exe] if exe else [sys.executable, "-m", "trtdeploy"]
        cmd += ["rename", str(src), "-o", str(dst), "--map-file", str(mapping)] + name.split()[2:]
    else:
        cmd = [sys.executable, "-c", METHODS[name], str(src), str(dst), str(mapping)]
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); "
            "dt = time.perf_counter() - t; "
            "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, r.returncode); "
            "sys.stderr.write(r.stderr.decode()[-2000:])")
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True)
    dt, rss, rc = out.stdout.split()
    if int(rc) != 0:
        raise RuntimeError(f"{name} failed: {out.stderr}")
    if dst.exists():
        dst.unlink()
    return float(dt), int(rss)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=600)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=None, help="where to write the model (default: a temp dir)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="trtdeploy-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    src, dst, mpath = work / "model.onnx", work / "renamed.onnx", work / "map.json"
    print(f"generating a ~{args.size_mb} MB model in {work} ...", file=sys.stderr)
    mapping = make_model(src, args.size_mb)
    mpath.write_text(json.dumps(mapping))
    size = src.stat().st_size
    print(f"model: {size / 1e6:.0f} MB, {len(mapping)} names renamed", file=sys.stderr)
    rows = []
    for name in METHODS:
        times, rss = [], 0
        for r in range(args.repeat):
            print(f"  {name}: run {r + 1}/{args.repeat}", file=sys.stderr)
            dt, peak = run_method(name, src, dst, mpath)
            times.append(dt)
            rss = max(rss, peak)
        med = statistics.median(times)
        rows.append({"method": name, "seconds": med, "mb_per_s": size / 1e6 / med, "peak_rss_mb": rss / 1e6,
                     "rss_over_file": rss / size, "runs": times})
    # the library call alone, in-process (no interpreter start): the >= 1 GB/s target
    import trtdeploy

    lib_times = []
    for _ in range(args.repeat):
        os.sync()
        t = time.perf_counter()
        trtdeploy.rename_file(src, dst, mapping)
        lib_times.append(time.perf_counter() - t)
        dst.unlink()
    med = statistics.median(lib_times)
    rows.append({"method": "trtdeploy.rename_file (in-process call)", "seconds": med, "mb_per_s": size / 1e6 / med,
                 "peak_rss_mb": None, "rss_over_file": None, "runs": lib_times})
    base = next(r["seconds"] for r in rows if r["method"] == "onnx load + dict + save")
    for r in rows:
        r["speedup_vs_onnx_dict"] = base / r["seconds"]
    result = {"benchmark": "rename", "file_bytes": size, "names_renamed": len(mapping), "date": date.today().isoformat(),
              "device": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (CPU only)",
              "command": "python benchmarks/rename.py " + " ".join(sys.argv[1:]), "results": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rename.json").write_text(json.dumps(result, indent=2))
    lines = [f"# rename benchmark ({size / 1e6:.0f} MB model, {len(mapping)} names)", "",
             f"{result['date']}, {result['device']}; `{result['command']}`; median of {args.repeat} runs, "
             "each in a fresh process (interpreter start included) unless noted.", "",
             "| method | seconds | MB/s | peak RSS (MB) | RSS / file | speed-up vs onnx dict |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        rss = "-" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}"
        ratio = "-" if r["rss_over_file"] is None else f"{r['rss_over_file']:.2f}"
        lines.append(f"| {r['method']} | {r['seconds']:.3f} | {r['mb_per_s']:.0f} | {rss} | {ratio} | "
                     f"{r['speedup_vs_onnx_dict']:.1f}x |")
    (out / "rename.md").write_text("\n".join(lines) + "\n")
    _plot(rows, out / "rename.png", size)
    print("\n".join(lines))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _plot(rows, path, size):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install trtdeploy[bench])", file=sys.stderr)
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    names = [r["method"] for r in rows]
    a.barh(names, [r["seconds"] for r in rows], color="tab:blue")
    a.set_xlabel("seconds (median)")
    a.set_title(f"rename all names, {size / 1e6:.0f} MB model")
    a.invert_yaxis()
    rss = [(r["method"], r["peak_rss_mb"]) for r in rows if r["peak_rss_mb"] is not None]
    b.barh([n for n, _ in rss], [v for _, v in rss], color="tab:orange")
    b.axvline(size / 1e6, color="gray", ls="--", label="file size")
    b.set_xlabel("peak RSS (MB)")
    b.legend()
    b.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
