"""Latency statistics, padded-vs-dynamic ratios, and result files (JSON + markdown + plot)."""

from __future__ import annotations

import json
import math
from pathlib import Path


def summarize(times_us: list[float], batch: int) -> dict:
    """median / p99 / mean latency (us) and throughput (samples/s) of one configuration."""
    if not times_us:
        raise ValueError("no timings")
    s = sorted(times_us)
    median = _quantile(s, 0.5)
    return {"iters": len(s), "median_us": median, "p99_us": _quantile(s, 0.99), "mean_us": sum(s) / len(s),
            "min_us": s[0], "throughput_per_s": batch / (median * 1e-6)}


def _quantile(s: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def padded_batches(batches: list[int], max_batch: int) -> list[int]:
    bad = [b for b in batches if b > max_batch or b < 1]
    if bad:
        raise ValueError(f"batch sizes {bad} do not fit the padded engine's batch {max_batch}")
    return sorted(set(batches))


def compare_padded(dynamic: dict[int, dict], padded: dict[int, dict]) -> list[dict]:
    """For each batch b: the dynamic engine at b vs the static max-batch engine fed b real samples
    padded to its batch. ratio > 1 means padding costs that factor more time per call."""
    rows = []
    for b in sorted(dynamic):
        if b not in padded:
            continue
        d, p = dynamic[b], padded[b]
        rows.append({"batch": b, "dynamic_median_us": d["median_us"], "padded_median_us": p["median_us"],
                     "padded_over_dynamic": p["median_us"] / d["median_us"],
                     "dynamic_throughput_per_s": d["throughput_per_s"],
                     "padded_throughput_per_s": b / (p["median_us"] * 1e-6)})
    return rows


def write_report(out_dir: str | Path, name: str, result: dict, markdown: list[str], plot=None) -> list[Path]:
    """result -> NAME.json, markdown -> NAME.md, plot(path) -> NAME.png (when matplotlib is there), each
    staged and renamed into place (io.Staging); the caller has checked them with io.check_outputs."""
    from ..io import Staging, atomic_write_bytes

    out = Path(out_dir)
    paths = [atomic_write_bytes(out / f"{name}.json", json.dumps(result, indent=2).encode()),
             atomic_write_bytes(out / f"{name}.md", ("\n".join(markdown) + "\n").encode())]
    if plot is not None:
        try:
            import matplotlib

            matplotlib.use("Agg")
        except ImportError:
            return paths
        with Staging(out / f"{name}.png") as st:
            plot(st.model)
            paths += st.commit()
    return paths


def engine_markdown(result: dict) -> list[str]:
    lines = [f"# engine benchmark: {result['engine']}", "",
             f"{result['date']}, {result['device']}, TensorRT {result['tensorrt_version']}; `{result['command']}`; "
             f"CUDA events, {result['warmup']} warm-up + {result['iters']} timed iterations"
             f"{', CUDA graphs' if result.get('cuda_graph') else ''}.", "",
             "| profile | shapes | median us | p99 us | throughput /s |", "|---:|---|---:|---:|---:|"]
    for r in result["runs"]:
        shapes = ", ".join(f"{k}:{'x'.join(map(str, v))}" for k, v in r["shapes"].items())
        lines.append(f"| {r['profile']} | {shapes} | {r['median_us']:.1f} | {r['p99_us']:.1f} | "
                     f"{r['throughput_per_s']:.1f} |")
    if result.get("padded"):
        lines += ["", f"Padded static batch {result['padded_batch']} vs dynamic batch:", "",
                  "| batch | dynamic us | padded us | padded / dynamic |", "|---:|---:|---:|---:|"]
        for r in result["padded"]:
            lines.append(f"| {r['batch']} | {r['dynamic_median_us']:.1f} | {r['padded_median_us']:.1f} | "
                         f"{r['padded_over_dynamic']:.2f}x |")
    return lines
