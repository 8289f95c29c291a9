"""trtdeploy doctor: versions, compiled parts, CUDA and TensorRT status."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("doctor", help="print versions, compiled parts, and whether CUDA/TensorRT are usable")
    p.add_argument("--json", action="store_true")
    return p


def run(args):
    import json

    from .._info import doctor

    d = doctor()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    c = d["compiled"]
    missing = "not installed"
    print(f"trtdeploy {d['trtdeploy']} (python {d['python']})")
    for k in ("onnx", "onnxruntime", "onnxslim", "numpy"):
        print(f"  {k:<18} {d[k] or missing}")
    if "error" in c:
        print(f"  compiled module    MISSING: {c['error']}")
    else:
        print(f"  compiled module    {', '.join(c['parts'])} ({c['compiler']})")
    print("  CUDA               " + (f"kernels built with CUDA {c['cuda_version']} for {c['cuda_architectures']}"
                                      if c.get("cuda") else "kernels not built (no CUDA toolkit at build time)"))
    print(f"  GPU                {d['gpu'] or 'none found (nvidia-smi)'}; CUDA decode usable: "
          f"{'yes' if d['gpu_usable'] else 'no'}")
    print(f"  TensorRT           {d['tensorrt'] or 'not installed (pip install tensorrt, or trtdeploy[trt])'}; "
          f"usable: {'yes' if d['tensorrt_usable'] else 'no'}")
    print(f"  TensorRT-RTX       {d['tensorrt_rtx'] or 'not installed (pip install tensorrt-rtx, or trtdeploy[rtx])'}"
          + ("; builds without a GPU (CPU-only ahead of time); its engines run on RTX-class GPUs, SM 7.5-12.x, not "
             "H100/H200/B200" if d["tensorrt_rtx"] else ""))
    if d["tensorrt_rtx_plugin"]:
        print(f"  TensorRT-RTX plugin {d['tensorrt_rtx_plugin']} (TensorRT 11's plugin ABI)")
    if d["tensorrt_rtx_plugin_problem"]:
        print(f"  TensorRT-RTX plugin PROBLEM: {d['tensorrt_rtx_plugin_problem']}")
    if not d["tensorrt_plugins"]:
        print("  TensorRT plugin    not built (no TensorRT headers were found at build time; set "
              "TRTDEPLOY_TENSORRT_INCLUDE_DIRS and reinstall)")
    for row in d["tensorrt_plugins"]:
        used = " <- loaded by the installed TensorRT" if row["library"] == d["tensorrt_plugin_for_installed"] else ""
        print(f"  TensorRT plugin    {row['library']} (built for TensorRT {row['tensorrt_version']}){used}")
    if d["tensorrt_plugin_problem"]:
        print(f"  TensorRT plugin    PROBLEM: {d['tensorrt_plugin_problem']}")
    return 0
