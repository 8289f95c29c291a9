"""YOLO decode benchmark: trtdeploy's CUDA kernel and C++ CPU decode against the full-read floor and
the strongest alternatives, side by side in one run.

    pip install ".[bench]" && python benchmarks/decode.py [--batches 1,8,32,128] [--dtypes float32,float16]
        [--candidates 0.01,0.07,1.0] [--impls "CUDA kernel,full read"] [--name decode]

Inputs: a 640x640 input, 80 classes, 3 levels x 3 anchors = 25200 anchors per image, threshold 0.25,
sigmoid outputs generated so that the controlled quantity `candidates` = f is the fraction of anchors
that pass the full test (obj > 0.25 and obj * max class > 0.25). Per image, exactly round(f * 25200)
anchors, placed uniformly at random, get obj ~ U(0.6, 1) and one random class ~ U(0.6, 1) (score >=
0.36); another round(f/2 * 25200) anchors get obj ~ U(0.3, 0.5) and every class < 0.45, so they pass
the objectness test and fail the score test, as anchors of real outputs do (filter-first decoders pay
for them); every other anchor has obj ~ U(0, 0.2). Box channels ~ U(0, 1), other class
probabilities U(0, 1)^3. The fraction that passes, counted by the C++ decode, is recorded as
`measured_candidates`; every alternative's kept count is checked against it.

Implementations (`impl`):
  CUDA kernel          trtdeploy's kernel, outputs and workspace preallocated (--max-detections rows, 0 = all)
  CUDA kernel (graph)  the same call captured once in a CUDA graph, timed per replay
  full read            torch.amax over the channel axis of each level: every input byte read once, the floor
                       of a decode that reads everything (filter-first decodes read less than this)
  torch filter-first   objectness threshold, nonzero, gather of the candidates' channels, class max, boxes
  torch upstream       YOLOv5 Detect's decode of every anchor in torch ops, then per-image filtering
  C++ CPU              trtdeploy's CPU decode (one thread per core)
  numpy filter-first   the filter-first decode in NumPy (one thread)
  numpy upstream       YOLOv5-style decode of every anchor in NumPy, then per-image filtering
The alternatives return the kept rows of each image (no padding, no top-K); trtdeploy's decoders fill
[B, N] rows (N = anchors unless --max-detections). GPU timings: CUDA events around each call, median of
--iters after warm-up. CPU timings: perf_counter, the implementations of one configuration measured in
interleaved rounds until --cpu-seconds (at least 3 rounds, at most --cpu-iters), median. Implementations
that cannot run here are listed under "skipped", never estimated.

Writes benchmarks/results/<name>.json ({"records": [...], "skipped": [...], "inputs": ...}), <name>.md
(tables and the issue's target ratios) and <name>.png.
"""

from __future__ import annotations

import argparse
import json
import os
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
NA, NC = 3, 80
NO = NC + 5
SIZE = 640
THRESHOLD = 0.25
ANCHORS_PER_IMAGE = NA * sum((SIZE // s) ** 2 for s in STRIDES)
GPU_IMPLS = ["CUDA kernel", "CUDA kernel (graph)", "full read", "torch filter-first", "torch upstream"]
CPU_IMPLS = ["C++ CPU", "numpy filter-first", "numpy upstream"]


def make_levels(batch: int, fraction: float, seed: int = 0) -> list[np.ndarray]:
    """float32 levels [B, 3*85, H, W] with exactly round(fraction * 25200) passing anchors per image
    (see the module docstring)."""
    rng = np.random.default_rng(seed)
    hws = [(SIZE // s) ** 2 for s in STRIDES]
    starts = np.cumsum([0] + [NA * hw for hw in hws])
    levels = []
    for hw in hws:
        x = rng.random((batch, NA, NO, hw), dtype=np.float32)
        x[:, :, 4] *= np.float32(0.2)
        x[:, :, 5:] **= 3
        levels.append(x)
    n_pass = round(fraction * ANCHORS_PER_IMAGE)
    n_obj = min(ANCHORS_PER_IMAGE - n_pass, round(fraction / 2 * ANCHORS_PER_IMAGE))
    for b in range(batch):
        chosen = rng.permutation(ANCHORS_PER_IMAGE)[: n_pass + n_obj]
        for passing, ids in ((True, chosen[:n_pass]), (False, chosen[n_pass:])):
            for l, hw in enumerate(hws):
                local = ids[(ids >= starts[l]) & (ids < starts[l + 1])] - starts[l]
                a, cell, x, n = local // hw, local % hw, levels[l], local.size
                if passing:
                    x[b, a, 4, cell] = rng.uniform(0.6, 1.0, n)
                    x[b, a, 5 + rng.integers(0, NC, n), cell] = rng.uniform(0.6, 1.0, n)
                else:
                    x[b, a, 4, cell] = rng.uniform(0.3, 0.5, n)
                    x[b, a, 5:, cell] = rng.uniform(0.0, 0.45, (n, NC))
    return [x.reshape(batch, NA * NO, SIZE // s, SIZE // s) for x, s in zip(levels, STRIDES)]


# ---- the alternatives (each returns per-image (boxes, scores, classes) of the kept anchors) ----------

def _anchor_wh(level: int) -> np.ndarray:
    return np.asarray(ANCHORS[level * 2 * NA:(level + 1) * 2 * NA], np.float32).reshape(NA, 2)


def numpy_filter_first(levels):
    """Threshold objectness, then read only the candidates' channels (fancy indexing)."""
    found = []
    for l, (lv, stride) in enumerate(zip(levels, STRIDES)):
        bsz, _, h, w = lv.shape
        y = lv.reshape(bsz, NA, NO, h, w)
        b, a, gy, gx = np.nonzero(y[:, :, 4] > THRESHOLD)
        cand = y[b, a, :, gy, gx].astype(np.float32)  # [n, 85]
        best = cand[:, 5:].max(1)
        score = cand[:, 4] * best
        k = score > THRESHOLD
        cand, a, b = cand[k], a[k], b[k]
        xy = (cand[:, 0:2] * 2 - 0.5 + np.stack([gx[k], gy[k]], 1)) * stride
        wh = (cand[:, 2:4] * 2) ** 2 * _anchor_wh(l)[a]
        found.append((b, np.concatenate([xy - wh / 2, xy + wh / 2], 1), score[k], cand[:, 5:].argmax(1)))
    return found  # per level: (image index, boxes, scores, classes) of the kept anchors


def numpy_upstream(levels):
    """YOLOv5 Detect's decode of every anchor, then the per-image filter of non_max_suppression."""
    z = []
    for l, (lv, stride) in enumerate(zip(levels, STRIDES)):
        bsz, _, h, w = lv.shape
        y = lv.reshape(bsz, NA, NO, h, w).transpose(0, 1, 3, 4, 2).astype(np.float32)
        gy, gx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
        grid = np.stack([gx, gy], -1) - 0.5
        xy = (y[..., 0:2] * 2 + grid) * stride
        wh = (y[..., 2:4] * 2) ** 2 * _anchor_wh(l)[None, :, None, None]
        z.append(np.concatenate([xy, wh, y[..., 4:]], -1).reshape(bsz, -1, NO))
    out = []
    for p in np.concatenate(z, 1):
        p = p[p[:, 4] > THRESHOLD]
        conf = p[:, 5:] * p[:, 4:5]
        j = conf.argmax(1)
        score = conf[np.arange(len(j)), j]
        k = score > THRESHOLD
        box = np.concatenate([p[:, :2] - p[:, 2:4] / 2, p[:, :2] + p[:, 2:4] / 2], 1)
        out.append((box[k], score[k], j[k]))
    return out


class TorchRivals:
    def __init__(self, torch):
        self.torch = torch
        self.grids, self.anchor_wh = [], []
        for l, s in enumerate(STRIDES):
            n = SIZE // s
            yv, xv = torch.meshgrid(torch.arange(n, device="cuda"), torch.arange(n, device="cuda"), indexing="ij")
            self.grids.append(torch.stack((xv, yv), -1).float() - 0.5)  # [H, W, 2]
            self.anchor_wh.append(torch.from_numpy(_anchor_wh(l)).cuda())  # [na, 2]

    def full_read(self, levels):
        return [self.torch.amax(x, dim=1) for x in levels]

    def filter_first(self, levels):
        torch, found = self.torch, []
        for x, grid, anc, stride in zip(levels, self.grids, self.anchor_wh, STRIDES):
            bsz, _, h, w = x.shape
            y = x.view(bsz, NA, NO, h, w)
            b, a, gy, gx = (y[:, :, 4] > THRESHOLD).nonzero(as_tuple=True)
            cand = y[b, a, :, gy, gx].float()  # [n, 85]
            best, j = cand[:, 5:].max(1)
            score = cand[:, 4] * best
            k = score > THRESHOLD
            cand = cand[k]
            xy = (cand[:, 0:2] * 2 + grid[gy[k], gx[k]]) * stride
            wh = (cand[:, 2:4] * 2) ** 2 * anc[a[k]]
            found.append((b[k], torch.cat([xy - wh / 2, xy + wh / 2], 1), score[k], j[k]))
        return found

    def upstream(self, levels):
        torch, z = self.torch, []
        for x, grid, anc, stride in zip(levels, self.grids, self.anchor_wh, STRIDES):
            bsz, _, h, w = x.shape
            y = x.view(bsz, NA, NO, h, w).permute(0, 1, 3, 4, 2).float()
            xy = (y[..., 0:2] * 2 + grid) * stride
            wh = (y[..., 2:4] * 2) ** 2 * anc.view(1, NA, 1, 1, 2)
            z.append(torch.cat((xy, wh, y[..., 4:]), -1).view(bsz, -1, NO))
        out = []
        for p in torch.cat(z, 1):  # per image, as non_max_suppression does before NMS
            p = p[p[:, 4] > THRESHOLD]
            score, j = (p[:, 5:] * p[:, 4:5]).max(1)
            box = torch.cat((p[:, :2] - p[:, 2:4] / 2, p[:, :2] + p[:, 2:4] / 2), 1)
            k = score > THRESHOLD
            out.append((box[k], score[k], j[k]))
        return out


# ---- timing ----------------------------------------------------------------------------------------

def time_cpu_interleaved(fns: dict, seconds: float, max_iters: int) -> dict:
    """Median wall time (us) of each function, called in rounds (one call of each per round)."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    start = time.perf_counter()
    while True:
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
        n = len(next(iter(times.values())))
        if n >= max_iters or (n >= 3 and time.perf_counter() - start > seconds):
            break
    return {k: statistics.median(v) * 1e6 for k, v in times.items()}


def time_gpu(torch, fn, iters: int) -> float:
    for _ in range(5):
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


def cpu_device() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name} ({cores} cores)"


def _kept(result) -> int:
    """Kept rows of an alternative's result: per-image (boxes, ...) or per-level (image index, boxes, ...)."""
    return int(sum(len(r[1]) for r in result))


# ---- main ------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,8,32,128")
    ap.add_argument("--dtypes", default="float32,float16")
    ap.add_argument("--candidates", default="0.01,0.07,1.0", help="fractions of anchors that pass")
    ap.add_argument("--impls", default=",".join(GPU_IMPLS + CPU_IMPLS))
    ap.add_argument("--max-detections", type=int, default=0, help="rows per image of trtdeploy's decoders")
    ap.add_argument("--iters", type=int, default=100, help="GPU calls timed per measurement")
    ap.add_argument("--cpu-seconds", type=float, default=3.0, help="time budget per CPU configuration")
    ap.add_argument("--cpu-iters", type=int, default=30, help="at most this many rounds per CPU configuration")
    ap.add_argument("--name", default="decode", help="output file stem under --out")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    from trtdeploy.yolo.decode import allocate_cuda, decode_cpu, decode_cuda

    batches = [int(b) for b in args.batches.split(",")]
    dtypes = args.dtypes.split(",")
    fractions = [float(f) for f in args.candidates.split(",")]
    impls = [i.strip() for i in args.impls.split(",")]
    unknown = set(impls) - set(GPU_IMPLS + CPU_IMPLS)
    if unknown:
        ap.error(f"unknown --impls {sorted(unknown)}; choose from {GPU_IMPLS + CPU_IMPLS}")
    skipped = []
    try:
        import torch
    except (ImportError, OSError):  # not installed, or its CUDA libraries do not load
        torch = None
    gpu_why = ("torch is not installed" if torch is None else
               None if torch.cuda.is_available() else "torch sees no CUDA GPU")
    if gpu_why is None:
        from trtdeploy import _C

        if not hasattr(_C, "yolo_decode_cuda"):
            gpu_why = "trtdeploy was built without CUDA"
    gpu_impls = [i for i in impls if i in GPU_IMPLS]
    if gpu_impls and gpu_why:
        skipped.append(f"{', '.join(gpu_impls)}: {gpu_why} on this machine (not measured)")
        gpu_impls = []
    cpu_impls = [i for i in impls if i in CPU_IMPLS]
    gpu_name = torch.cuda.get_device_name() if gpu_impls else None
    cpu_name = cpu_device()
    today = date.today().isoformat()
    command = "python benchmarks/decode.py " + " ".join(sys.argv[1:])
    rivals = TorchRivals(torch) if gpu_impls else None
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # other jobs on the machine
    mdet = args.max_detections
    records = []
    configs = [(b, f) for b in batches for f in fractions]
    step = 0
    for batch, fraction in configs:
        base = make_levels(batch, fraction)
        for dtype in dtypes:
            step += 1
            levels = [x.astype(dtype) for x in base] if dtype != "float32" else base
            per_image = decode_cpu(levels, ANCHORS, 32, NC, THRESHOLD)[0][:, 0]
            count = int(per_image.sum())
            measured = count / (batch * ANCHORS_PER_IMAGE)
            row = dict(batch=batch, dtype=dtype, candidates=fraction, measured_candidates=round(measured, 5),
                       date=today, command=command)
            done = []
            fns = {"C++ CPU": lambda: decode_cpu(levels, ANCHORS, 32, NC, THRESHOLD, 0, mdet),
                   "numpy filter-first": lambda: numpy_filter_first(levels),
                   "numpy upstream": lambda: numpy_upstream(levels)}
            fns = {k: v for k, v in fns.items() if k in cpu_impls}
            for name in set(fns) - {"C++ CPU"}:
                got = _kept(fns[name]())
                if got != count:
                    raise SystemExit(f"{name} keeps {got} anchors, the C++ decode {count}: the comparison is void")
            if fns:
                for name, us in time_cpu_interleaved(fns, args.cpu_seconds, args.cpu_iters).items():
                    records.append(dict(row, impl=name, device=cpu_name, median_us=us))
                    done.append(f"{name} {us:.0f}")
            if gpu_impls:
                done += _gpu_records(torch, rivals, levels, gpu_impls, row, gpu_name, per_image, args, records,
                                     allocate_cuda, decode_cuda)
            print(f"[{step}/{len(configs) * len(dtypes)}] B={batch} {dtype} {fraction:.0%} candidates "
                  f"(measured {measured:.2%}): " + ", ".join(f"{d} us" for d in done), file=sys.stderr, flush=True)
        del base
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load = (load_start, os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
    meta = {"inputs": __doc__.split("Inputs: ", 1)[1].split("\n\n", 1)[0].replace("\n", " "),
            "threshold": THRESHOLD, "anchors_per_image": ANCHORS_PER_IMAGE, "max_detections": mdet,
            "loadavg_1min_start_end": load}
    (out / f"{args.name}.json").write_text(json.dumps({"records": records, "skipped": skipped, **meta}, indent=1))
    md = report(records, skipped, batches, dtypes, fractions, today, command, mdet, load)
    (out / f"{args.name}.md").write_text(md)
    _plot(records, dtypes, fractions, out / f"{args.name}.png")
    print(md)
    return 0


def _gpu_records(torch, rivals, levels, impls, row, gpu_name, per_image, args, records, allocate_cuda, decode_cuda):
    dev = [torch.from_numpy(x).cuda() for x in levels]
    outputs, ws = allocate_cuda(dev, ANCHORS, 32, NC, args.max_detections)

    def kernel():
        decode_cuda(dev, ANCHORS, 32, NC, THRESHOLD, 0, args.max_detections, outputs=outputs, workspace=ws)

    kernel()
    torch.cuda.synchronize()
    count = int(per_image.sum())
    want = count if not args.max_detections else int(np.minimum(per_image, args.max_detections).sum())
    if int(outputs[0].sum()) != want:
        raise SystemExit(f"CUDA kernel keeps {int(outputs[0].sum())} anchors, the C++ decode {want}")
    checks = {"torch filter-first": lambda: _kept(rivals.filter_first(dev)),
              "torch upstream": lambda: _kept(rivals.upstream(dev))}
    for name, fn in checks.items():
        if name in impls and fn() != count:
            raise SystemExit(f"{name} disagrees with the C++ decode on the kept count")
    fns = {"CUDA kernel": kernel, "full read": lambda: rivals.full_read(dev),
           "torch filter-first": lambda: rivals.filter_first(dev), "torch upstream": lambda: rivals.upstream(dev)}
    if "CUDA kernel (graph)" in impls:
        graph, stream = torch.cuda.CUDAGraph(), torch.cuda.Stream()
        with torch.cuda.stream(stream):
            kernel()
            stream.synchronize()
            with torch.cuda.graph(graph, stream=stream):
                kernel()
        fns["CUDA kernel (graph)"] = graph.replay
    done = []
    for name in impls:
        us = time_gpu(torch, fns[name], args.iters if "upstream" not in name else max(5, args.iters // 10))
        records.append(dict(row, impl=name, device=gpu_name, median_us=us,
                            input_mb=sum(x.numel() * x.element_size() for x in dev) / 1e6))
        done.append(f"{name} {us:.0f}")
    del dev, outputs, ws
    torch.cuda.empty_cache()
    return done


# ---- report ----------------------------------------------------------------------------------------

TARGETS = [  # (numerator, denominator, what, target, check(ratio, batch, fraction) -> bool, or None where none applies)
    ("CUDA kernel", "full read", "kernel / full read", "<= 0.35 at 1%, <= 0.75 at 7%, <= 1.0 at 100% (B=32; "
     "<= 1.1 at B=128)", lambda r, b, f: None if b not in (32, 128) else
     r <= {0.01: 0.35, 0.07: 0.75}.get(f, 1.1 if b == 128 else 1.0)),
    ("torch filter-first", "CUDA kernel", "torch filter-first / kernel", ">= 10 at every B", lambda r, b, f: r >= 10),
    ("numpy upstream", "CUDA kernel", "numpy upstream / kernel", ">= 1000 at B=32",
     lambda r, b, f: r >= 1000 if b == 32 else None),
    ("numpy filter-first", "C++ CPU", "numpy filter-first / C++ CPU", ">= 3 at B=32, 1% and 7%",
     lambda r, b, f: r >= 3 if b == 32 and f in (0.01, 0.07) else None),
]


def report(records, skipped, batches, dtypes, fractions, today, command, mdet, load=(None, None)) -> str:
    def pct(f):
        return f"{f:.0%}"

    by = {(r["impl"], r["dtype"], r["candidates"], r["batch"]): r for r in records}
    impls = list(dict.fromkeys(r["impl"] for r in records))
    devices = sorted({r["device"] for r in records})
    md = ["# YOLO decode benchmark", "",
          f"{today}; `{command}`; {', '.join(devices) or 'no device measured'}. {SIZE}x{SIZE} input, {NC} classes, "
          f"{ANCHORS_PER_IMAGE} anchors per image, threshold {THRESHOLD}, trtdeploy's decoders with max_detections "
          f"{mdet} ({'every anchor a row' if not mdet else 'rows per image'}). `candidates`: the fraction of anchors "
          "that pass the score test (half as many again pass only the objectness test); how the inputs are made: "
          "`benchmarks/decode.py`. Median microseconds per call, whole batch."
          + (f" Load average (1 min) of the machine: {load[0]:.2f} at the start, {load[1]:.2f} at the end."
             if None not in load else ""), ""]
    hdr = "| " + " | ".join(f"B={b}" for b in batches) + " |"
    for dtype in dtypes:
        for f in fractions:
            rs = [r for r in records if r["dtype"] == dtype and r["candidates"] == f]
            if not rs:
                continue
            measured = sorted({r["measured_candidates"] for r in rs})
            md += [f"## {dtype}, {pct(f)} candidates (measured {', '.join(f'{m:.2%}' for m in measured)})", "",
                   "| impl | device " + hdr, "|---|---|" + "---:|" * len(batches)]
            for impl in impls:
                cells = [by.get((impl, dtype, f, b)) for b in batches]
                if any(cells):
                    dev = next(c for c in cells if c)["device"]
                    md.append(f"| {impl} | {dev} | " + " | ".join(f"{c['median_us']:.0f}" if c else "-" for c in cells)
                              + " |")
            md.append("")
    rows = []
    for num, den, what, target, ok in TARGETS:
        for dtype in dtypes:
            for f in fractions:
                cells = []
                for b in batches:
                    a, d = by.get((num, dtype, f, b)), by.get((den, dtype, f, b))
                    if a and d:
                        r = a["median_us"] / d["median_us"]
                        verdict = ok(r, b, f)
                        cells.append(f"{r:.3g}" + {None: "", True: " (met)", False: " (missed)"}[verdict])
                    else:
                        cells.append("-")
                if any(c != "-" for c in cells):
                    rows.append(f"| {what} | {dtype} | {pct(f)} | " + " | ".join(cells) + f" | {target} |")
    graph = [r for r in records if r["impl"] == "CUDA kernel (graph)" and r["batch"] == 1]
    if rows or graph:
        md += ["## Ratios (same run) and the targets of issue 10", "", "| ratio | dtype | candidates " + hdr
               + " target |", "|---|---|---|" + "---:|" * len(batches) + "---|"] + rows + [""]
        for r in graph:
            md.append(f"- CUDA kernel (graph), B=1, {r['dtype']}, {pct(r['candidates'])}: {r['median_us']:.1f} us "
                      f"(target <= 8 us: {'met' if r['median_us'] <= 8 else 'missed'})")
        md.append("")
    md += [f"- skipped: {s}" for s in skipped]
    return "\n".join(md).rstrip() + "\n"


def _plot(records, dtypes, fractions, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return
    fig, axes = plt.subplots(len(dtypes), len(fractions), figsize=(5 * len(fractions), 4 * len(dtypes)),
                             sharey=True, squeeze=False)
    impls = list(dict.fromkeys(r["impl"] for r in records))
    for i, dtype in enumerate(dtypes):
        for j, f in enumerate(fractions):
            ax = axes[i][j]
            for impl in impls:
                rs = sorted((r for r in records if r["impl"] == impl and r["dtype"] == dtype
                             and r["candidates"] == f), key=lambda r: r["batch"])
                if rs:
                    ax.plot([r["batch"] for r in rs], [r["median_us"] for r in rs], "o-", label=impl)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("batch")
            ax.set_title(f"{dtype}, {f:.0%} candidates")
            ax.grid(True, which="both", alpha=0.3)
        axes[i][0].set_ylabel("median us per call")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
