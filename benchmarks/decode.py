"""YOLO decode: the CUDA kernel vs the same decode in torch ops on the GPU (ultralytics style) vs
the NumPy decode used after onnxruntime vs the C++ CPU decode, side by side in one run.

    pip install ".[bench]" && python benchmarks/decode.py [--batches 1,8,32] [--dtypes float32,float16]

640x640 input, 80 classes, 3 levels x 3 anchors (25200 anchors per image). GPU timings use CUDA
events (warm-up, then the median of --iters); CPU timings use perf_counter. Implementations that
cannot run here (no GPU, no torch) are listed as skipped, never estimated. Writes
benchmarks/results/decode.json (records {impl, batch, dtype, median_us, device, date, command}),
decode.md and decode.png.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ANCHORS = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]
STRIDES = [8, 16, 32]
NC = 80
THRESHOLD = 0.25


def make_levels(batch: int, dtype: str, size: int = 640, seed: int = 0) -> list[np.ndarray]:
    """Sigmoid outputs shaped like a trained detector's: objectness mostly low, a few high."""
    rng = np.random.default_rng(seed)
    out = []
    for s in STRIDES:
        h = size // s
        logits = rng.normal(-4.0, 2.0, (batch, 3 * (NC + 5), h, h)).astype(np.float32)
        out.append((1.0 / (1.0 + np.exp(-logits))).astype(dtype))
    return out


def time_cpu(fn, iters: int) -> float:
    fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def time_gpu(torch, fn, iters: int) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3)
    return statistics.median(times)


def torch_decode(torch, levels, grids, anchor_grids, strides, thr):
    """YOLOv5 Detect's decode in torch ops + ultralytics-style candidate filtering per image."""
    z = []
    for x, grid, anchor_grid, stride in zip(levels, grids, anchor_grids, strides):
        b, _, ny, nx = x.shape
        y = x.view(b, 3, NC + 5, ny, nx).permute(0, 1, 3, 4, 2).float()
        xy = (y[..., 0:2] * 2 + grid) * stride
        wh = (y[..., 2:4] * 2) ** 2 * anchor_grid
        z.append(torch.cat((xy, wh, y[..., 4:]), -1).view(b, -1, NC + 5))
    pred = torch.cat(z, 1)
    out = []
    for p in pred:  # per image, as non_max_suppression does before NMS
        p = p[p[:, 4] > thr]
        conf, j = (p[:, 5:] * p[:, 4:5]).max(1)
        box = torch.cat((p[:, :2] - p[:, 2:4] / 2, p[:, :2] + p[:, 2:4] / 2), 1)
        keep = conf > thr
        out.append((box[keep], conf[keep], j[keep]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--dtypes", default="float32,float16")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--cpu-iters", type=int, default=5)
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    from trtdeploy.yolo.decode import allocate_cuda, decode_cpu, decode_cuda, decode_numpy

    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        torch, has_gpu = None, False
    gpu_name = torch.cuda.get_device_name() if has_gpu else None
    cpu_name = f"{platform.processor() or platform.machine()} CPU"
    today = date.today().isoformat()
    command = "python benchmarks/decode.py " + " ".join(sys.argv[1:])
    records, skipped = [], []
    for dtype in args.dtypes.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            print(f"B={batch} {dtype}", file=sys.stderr)
            levels = make_levels(batch, dtype)
            row = dict(batch=batch, dtype=dtype, date=today, command=command)
            records.append(dict(row, impl="numpy (after onnxruntime)", device=cpu_name,
                                median_us=time_cpu(lambda: decode_numpy(levels, ANCHORS, 32, NC, THRESHOLD),
                                                   args.cpu_iters)))
            records.append(dict(row, impl="C++ CPU (trtdeploy._C)", device=cpu_name,
                                median_us=time_cpu(lambda: decode_cpu(levels, ANCHORS, 32, NC, THRESHOLD),
                                                   args.cpu_iters)))
            if not has_gpu:
                continue
            dev = [torch.from_numpy(x).cuda() for x in levels]
            outputs, workspace = allocate_cuda(dev, ANCHORS, 32, NC)
            records.append(dict(row, impl="CUDA kernel (trtdeploy)", device=gpu_name, median_us=time_gpu(
                torch, lambda: decode_cuda(dev, ANCHORS, 32, NC, THRESHOLD, outputs=outputs, workspace=workspace),
                args.iters)))
            grids, agrids = [], []
            for i, s in enumerate(STRIDES):
                n = 640 // s
                yv, xv = torch.meshgrid(torch.arange(n, device="cuda"), torch.arange(n, device="cuda"), indexing="ij")
                grids.append((torch.stack((xv, yv), 2).view(1, 1, n, n, 2).float() - 0.5))
                agrids.append(torch.tensor(ANCHORS[i * 6:(i + 1) * 6], device="cuda").float().view(1, 3, 1, 1, 2))
            records.append(dict(row, impl="torch ops on GPU", device=gpu_name, median_us=time_gpu(
                torch, lambda: torch_decode(torch, dev, grids, agrids, STRIDES, THRESHOLD), args.iters)))
    if not has_gpu:
        skipped.append("CUDA kernel and torch-on-GPU: no CUDA GPU on this machine (not measured)")
    # the bandwidth bound of the kernel: every input byte read once
    for r in records:
        if r["impl"].startswith("CUDA"):
            nbytes = r["batch"] * 3 * (NC + 5) * sum((640 // s) ** 2 for s in STRIDES) * (4 if r["dtype"] == "float32" else 2)
            r["input_mb"] = nbytes / 1e6
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "decode.json").write_text(json.dumps({"records": records, "skipped": skipped}, indent=2))
    md = ["# YOLO decode benchmark", "",
          f"{today}; `{command}`; 640x640, {NC} classes, 25200 anchors/image, threshold {THRESHOLD}. "
          "Median microseconds per call (whole batch).", ""]
    md += ["| impl | device | dtype | B=" + " | B=".join(args.batches.split(",")) + " |",
           "|---|---|---|" + "---:|" * len(args.batches.split(","))]
    for impl in dict.fromkeys(r["impl"] for r in records):
        for dtype in args.dtypes.split(","):
            rs = {r["batch"]: r for r in records if r["impl"] == impl and r["dtype"] == dtype}
            if rs:
                dev = next(iter(rs.values()))["device"]
                md.append(f"| {impl} | {dev} | {dtype} | " +
                          " | ".join(f"{rs[int(b)]['median_us']:.0f}" if int(b) in rs else "-"
                                     for b in args.batches.split(",")) + " |")
    md += [""] + [f"- skipped: {s}" for s in skipped]
    (out / "decode.md").write_text("\n".join(md) + "\n")
    _plot(records, out / "decode.png")
    print("\n".join(md))
    return 0


def _plot(records, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, dtype in zip(axes, ("float32", "float16")):
        for impl in dict.fromkeys(r["impl"] for r in records):
            rs = sorted((r for r in records if r["impl"] == impl and r["dtype"] == dtype), key=lambda r: r["batch"])
            if rs:
                ax.plot([r["batch"] for r in rs], [r["median_us"] for r in rs], "o-", label=impl)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch")
        ax.set_title(f"decode, {dtype} inputs")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("median us per call")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
