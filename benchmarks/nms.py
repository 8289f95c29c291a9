"""NMS benchmark: the TRTDeploy_NMS kernel and trtdeploy's C++ CPU NMS beside the CPU post-processing they
replace and the strongest alternatives, side by side in one run.

    pip install ".[bench]" && python benchmarks/nms.py [--batches 1,32] [--candidates 1000] [--max-detections 300]
        [--impls "CUDA kernel,C++ CPU"] [--name nms]

Inputs: per image, an ultralytics raw head [84, 8400] (640x640, 80 classes): 64 objects at random places,
each seen by 15 anchors with jittered boxes (+-8% of its size) and scores U(0.3, 1) in its class, so that
NMS suppresses most of them; every other anchor scores U(0, 0.2) in every class. The NMS inputs are the
head's --candidates best anchors (what `yolo patch --nms plugin` computes with TopK): boxes x1, y1, x2, y2,
score, class; threshold 0.25, IoU 0.45, --max-detections rows.

Implementations (`impl`):
  CUDA kernel              trtdeploy.yolo.nms.nms_cuda (the plugin's enqueue), outputs and workspace preallocated
  CUDA kernel (graph)      the same call captured once in a CUDA graph, timed per replay
  torchvision batched_nms  torchvision.ops.batched_nms per image on the GPU, then the first D rows padded
  GPU post-processing      from the raw head on the GPU: class max, torch.topk(K), corners, the kernel
  C++ CPU                  trtdeploy.yolo.nms.nms_cpu (one thread), the plugin's semantics
  OpenCV NMSBoxesBatched   cv2.dnn.NMSBoxesBatched per image on the same candidates (class-aware)
  CPU post-processing      what runs on the host without NMS in the engine: from the raw head, class max,
                           threshold, the best 30000 (ultralytics' max_nms), cv2.dnn.NMSBoxesBatched, first D
GPU timings: CUDA events around each call, median of --iters after warm-up. CPU timings: perf_counter,
interleaved rounds until --cpu-seconds (at least 3 rounds), median. Implementations that cannot run here
are listed under "skipped", never estimated. The kept count of every implementation is recorded next to
the C++ NMS's (OpenCV's IoU differs from torchvision's in the last bits, so its count may differ by a few).

Writes benchmarks/results/<name>.json, <name>.md (tables, the issue's targets) and <name>.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from decode import cpu_device, time_cpu_interleaved, time_gpu  # noqa: E402

NC, ANCHORS, OBJECTS, VIEWS = 80, 8400, 64, 15
THRESHOLD, IOU, MAX_NMS = 0.25, 0.45, 30000
GPU_IMPLS = ["CUDA kernel", "CUDA kernel (graph)", "torchvision batched_nms", "GPU post-processing"]
CPU_IMPLS = ["C++ CPU", "OpenCV NMSBoxesBatched", "CPU post-processing"]
TARGETS_US = {1: 15.0, 32: 60.0}  # the issue's, for the CUDA kernel at K = 1000, D = 300 on an H100/H200


def make_head(batch: int, seed: int = 0) -> np.ndarray:
    """[B, 4 + NC, ANCHORS] float32: cx, cy, w, h in pixels, then class probabilities (see the docstring)."""
    rng = np.random.default_rng(seed)
    head = np.empty((batch, 4 + NC, ANCHORS), np.float32)
    head[:, :2] = rng.uniform(0, 640, (batch, 2, ANCHORS))
    head[:, 2:4] = rng.uniform(4, 200, (batch, 2, ANCHORS))
    head[:, 4:] = rng.uniform(0, 0.2, (batch, NC, ANCHORS))
    for b in range(batch):
        anchors = rng.permutation(ANCHORS)[: OBJECTS * VIEWS].reshape(OBJECTS, VIEWS)
        for obj in anchors:
            box = np.array([*rng.uniform(40, 600, 2), *rng.uniform(16, 160, 2)], np.float32)
            jitter = 1 + rng.uniform(-0.08, 0.08, (VIEWS, 4)).astype(np.float32)
            head[b, :4, obj] = box * jitter
            head[b, 4 + rng.integers(NC), obj] = rng.uniform(0.3, 1.0, VIEWS)
    return head


def candidates(head: np.ndarray, k: int):
    """The K best anchors by best class: boxes [B, K, 4] x1y1x2y2, scores [B, K], classes [B, K] int32."""
    score, cls = head[:, 4:].max(1), head[:, 4:].argmax(1).astype(np.int32)
    idx = np.argsort(-score, axis=1, kind="stable")[:, :k]
    box = np.take_along_axis(head[:, :4], idx[:, None, :], 2).transpose(0, 2, 1)
    half = box[..., 2:] * np.float32(0.5)
    boxes = np.ascontiguousarray(np.concatenate([box[..., :2] - half, box[..., :2] + half], -1))
    return boxes, np.take_along_axis(score, idx, 1), np.take_along_axis(cls, idx, 1)


def opencv_nms(cv2, boxes, scores, classes, d: int):
    """Per image: cv2.dnn.NMSBoxesBatched over the candidates above the threshold; the first d kept."""
    out = []
    for b in range(boxes.shape[0]):
        xywh = np.concatenate([boxes[b, :, :2], boxes[b, :, 2:] - boxes[b, :, :2]], 1)
        keep = np.asarray(cv2.dnn.NMSBoxesBatched(xywh, scores[b], classes[b], THRESHOLD, IOU)).reshape(-1)[:d]
        out.append(keep)
    return out


def cpu_postprocess(cv2, head: np.ndarray, d: int):
    """The host's whole job without NMS in the engine (ultralytics' non_max_suppression, OpenCV's NMS)."""
    out = []
    for y in head:
        cls = y[4:]
        score = cls.max(0)
        cand = np.flatnonzero(score > THRESHOLD)
        cand = cand[np.argsort(-score[cand], kind="stable")[:MAX_NMS]]
        label = cls[:, cand].argmax(0)
        xy, wh = y[:2, cand].T, y[2:4, cand].T
        keep = np.asarray(cv2.dnn.NMSBoxesBatched(np.concatenate([xy - wh / 2, wh], 1), score[cand], label,
                                                  THRESHOLD, IOU)).reshape(-1)[:d]
        out.append((xy[keep], score[cand][keep], label[keep]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--candidates", type=int, default=1000, help="K: candidates per image given to NMS")
    ap.add_argument("--max-detections", type=int, default=300, help="D: rows per image")
    ap.add_argument("--impls", default=",".join(GPU_IMPLS + CPU_IMPLS))
    ap.add_argument("--iters", type=int, default=200, help="GPU calls timed per measurement")
    ap.add_argument("--cpu-seconds", type=float, default=3.0, help="time budget per CPU configuration")
    ap.add_argument("--cpu-iters", type=int, default=200, help="at most this many rounds per CPU configuration")
    ap.add_argument("--name", default="nms", help="output file stem under --out")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    from trtdeploy import _C
    from trtdeploy.yolo.nms import allocate_cuda, nms_cpu, nms_cuda

    impls = [i.strip() for i in args.impls.split(",")]
    if set(impls) - set(GPU_IMPLS + CPU_IMPLS):
        ap.error(f"unknown --impls {sorted(set(impls) - set(GPU_IMPLS + CPU_IMPLS))}; choose from "
                 f"{GPU_IMPLS + CPU_IMPLS}")
    k, d = args.candidates, args.max_detections
    skipped, torch, tv, cv2 = [], None, None, None
    try:
        import torch
    except (ImportError, OSError):
        pass
    gpu_why = ("torch is not installed" if torch is None else None if torch.cuda.is_available() else
               "torch sees no CUDA GPU")
    if gpu_why is None and not hasattr(_C, "nms_cuda"):
        gpu_why = "trtdeploy was built without CUDA"
    if gpu_why is None and "torchvision batched_nms" in impls:
        try:
            import torchvision as tv
        except (ImportError, OSError, RuntimeError) as exc:
            impls.remove("torchvision batched_nms")
            skipped.append(f"torchvision batched_nms: torchvision does not load ({str(exc).splitlines()[0][:100]})")
    try:
        import cv2
    except ImportError:
        for name in ("OpenCV NMSBoxesBatched", "CPU post-processing"):
            if name in impls:
                impls.remove(name)
                skipped.append(f"{name}: OpenCV is not installed (pip install opencv-python-headless)")
    gpu_impls = [i for i in impls if i in GPU_IMPLS]
    if gpu_impls and gpu_why:
        skipped.append(f"{', '.join(gpu_impls)}: {gpu_why} on this machine (not measured)")
        gpu_impls = []
    today, command = date.today().isoformat(), "python benchmarks/nms.py " + " ".join(sys.argv[1:])
    cpu_name, gpu_name = cpu_device(), torch.cuda.get_device_name() if gpu_impls else None
    records = []
    batches = [int(b) for b in args.batches.split(",")]
    for step, batch in enumerate(batches, 1):
        head = make_head(batch)
        boxes, scores, classes = candidates(head, k)
        want = nms_cpu(boxes, scores, classes, IOU, THRESHOLD, d)
        kept = int(want[0].sum())
        row = dict(batch=batch, candidates=k, max_detections=d, kept_cpp=kept, date=today, command=command)
        fns = {"C++ CPU": lambda: nms_cpu(boxes, scores, classes, IOU, THRESHOLD, d),
               "OpenCV NMSBoxesBatched": lambda: opencv_nms(cv2, boxes, scores, classes, d),
               "CPU post-processing": lambda: cpu_postprocess(cv2, head, d)}
        fns = {name: fn for name, fn in fns.items() if name in impls}
        counts = {"C++ CPU": kept}
        if "OpenCV NMSBoxesBatched" in fns:
            counts["OpenCV NMSBoxesBatched"] = sum(len(x) for x in fns["OpenCV NMSBoxesBatched"]())
        if "CPU post-processing" in fns:
            counts["CPU post-processing"] = sum(len(x[1]) for x in fns["CPU post-processing"]())
        done = []
        for name, us in (time_cpu_interleaved(fns, args.cpu_seconds, args.cpu_iters).items() if fns else []):
            records.append(dict(row, impl=name, device=cpu_name, median_us=us, kept=counts[name]))
            done.append(f"{name} {us:.1f}")
        if gpu_impls:
            done += _gpu(torch, tv, head, boxes, scores, classes, want, gpu_impls, row, gpu_name, args, records,
                         allocate_cuda, nms_cuda)
        print(f"[{step}/{len(batches)}] B={batch} K={k} D={d}, {kept} kept: " + ", ".join(f"{x} us" for x in done),
              file=sys.stderr, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"inputs": __doc__.split("Inputs: ", 1)[1].split("\n\n", 1)[0].replace("\n", " "),
            "threshold": THRESHOLD, "iou": IOU,
            "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    (out / f"{args.name}.json").write_text(json.dumps({"records": records, "skipped": skipped, **meta}, indent=1))
    md = report(records, skipped, batches, k, d, today, command)
    (out / f"{args.name}.md").write_text(md)
    _plot(records, batches, out / f"{args.name}.png")
    print(md)
    return 0


def _gpu(torch, tv, head, boxes, scores, classes, want, impls, row, gpu_name, args, records, allocate_cuda, nms_cuda):
    k, d = args.candidates, args.max_detections
    dev = [torch.from_numpy(x).cuda() for x in (boxes, scores, classes)]
    head_dev = torch.from_numpy(head).cuda()
    outputs, ws = allocate_cuda(dev[0], d)
    kernel = lambda: nms_cuda(*dev, IOU, THRESHOLD, d, outputs=outputs, workspace=ws)  # noqa: E731
    kernel()
    torch.cuda.synchronize()
    for g, w in zip(outputs, want):
        if g.cpu().numpy().tobytes() != w.tobytes():
            raise SystemExit("the CUDA kernel's outputs differ from the C++ NMS's: the comparison is void")
    post_ws = allocate_cuda(dev[0], d)

    def post():  # the whole post-processing on the GPU, from the raw head
        score, label = head_dev[:, 4:].max(1)
        s, idx = torch.topk(score, k, dim=1)
        box = torch.gather(head_dev[:, :4], 2, idx[:, None, :].expand(-1, 4, -1)).transpose(1, 2)
        corners = torch.cat([box[..., :2] - box[..., 2:] / 2, box[..., :2] + box[..., 2:] / 2], -1).contiguous()
        cls = torch.gather(label, 1, idx).to(torch.int32)
        return nms_cuda(corners, s.contiguous(), cls, IOU, THRESHOLD, d, outputs=post_ws[0], workspace=post_ws[1])

    def torchvision_nms():
        n = torch.zeros((len(dev[0]), 1), dtype=torch.int32, device="cuda")
        rows = torch.zeros((len(dev[0]), d, 4), device="cuda")
        for b in range(len(dev[0])):
            m = dev[1][b] > THRESHOLD
            keep = tv.ops.batched_nms(dev[0][b][m], dev[1][b][m], dev[2][b][m], IOU)[:d]
            rows[b, : len(keep)] = dev[0][b][m][keep]
            n[b, 0] = len(keep)
        return n, rows

    fns = {"CUDA kernel": kernel, "GPU post-processing": post, "torchvision batched_nms": torchvision_nms}
    done = []
    for name in impls:
        if name == "CUDA kernel (graph)":
            s = torch.cuda.Stream()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=s):
                nms_cuda(*dev, IOU, THRESHOLD, d, outputs=outputs, workspace=ws, stream=s.cuda_stream)
            us = time_gpu(torch, graph.replay, args.iters)
        else:
            us = time_gpu(torch, fns[name], args.iters)
        records.append(dict(row, impl=name, device=gpu_name, median_us=us))
        done.append(f"{name} {us:.1f}")
    return done


def report(records, skipped, batches, k, d, today, command) -> str:
    lines = [f"# NMS benchmark ({today})", "", f"`{command}`", "",
             f"K = {k} candidates per image, D = {d} rows, IoU {IOU}, threshold {THRESHOLD}. Median microseconds.", ""]
    impls = list(dict.fromkeys(r["impl"] for r in records))
    lines += ["| impl | device | " + " | ".join(f"B={b}" for b in batches) + " |",
              "|---|---|" + "---|" * len(batches)]
    for impl in impls:
        rs = {r["batch"]: r for r in records if r["impl"] == impl}
        dev = next(iter(rs.values()))["device"]
        lines.append(f"| {impl} | {dev} | " + " | ".join(f"{rs[b]['median_us']:.1f}" if b in rs else "-"
                                                        for b in batches) + " |")
    lines += ["", "Kept detections (all images): " + "; ".join(
        f"B={b}: C++ {next(r['kept_cpp'] for r in records if r['batch'] == b)}"
        + "".join(f", {r['impl']} {r['kept']}" for r in records if r["batch"] == b and "kept" in r
                  and r["impl"] != "C++ CPU") for b in batches if any(r["batch"] == b for r in records)), ""]
    lines.append("Targets (the issue, H100/H200): " + "; ".join(
        f"CUDA kernel B={b} <= {t:g} us: " + next((f"{r['median_us']:.1f} us on {r['device']}" for r in records
                                                    if r["impl"] == "CUDA kernel" and r["batch"] == b), "not measured")
        for b, t in TARGETS_US.items()))
    cpu = {r["batch"]: r["median_us"] for r in records if r["impl"] == "CPU post-processing"}
    gpu = {r["batch"]: r["median_us"] for r in records if r["impl"] == "GPU post-processing"}
    for b in sorted(set(cpu) & set(gpu)):
        lines.append(f"- B={b}: the GPU post-processing takes {gpu[b] / cpu[b]:.3f}x the CPU post-processing's time")
    cpp = {r["batch"]: r["median_us"] for r in records if r["impl"] == "C++ CPU"}
    ocv = {r["batch"]: r["median_us"] for r in records if r["impl"] == "OpenCV NMSBoxesBatched"}
    for b in sorted(set(cpp) & set(ocv)):
        lines.append(f"- B={b}: trtdeploy's C++ NMS takes {cpp[b] / ocv[b]:.2f}x OpenCV's NMSBoxesBatched time "
                     "(same candidates, one thread each)")
    lines += [""] + [f"Skipped: {s}" for s in skipped]
    return "\n".join(lines) + "\n"


def _plot(records, batches, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    impls = list(dict.fromkeys(r["impl"] for r in records))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(impls), 1)
    for i, impl in enumerate(impls):
        rs = {r["batch"]: r["median_us"] for r in records if r["impl"] == impl}
        ax.bar([j + i * width for j, b in enumerate(batches) if b in rs], [rs[b] for b in batches if b in rs],
               width, label=impl)
    ax.set_xticks([j + width * (len(impls) - 1) / 2 for j in range(len(batches))], [f"B={b}" for b in batches])
    ax.set_yscale("log")
    ax.set_ylabel("median latency (us, log)")
    ax.set_title("NMS: K candidates -> D fixed rows")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
