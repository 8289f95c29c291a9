"""Real TensorRT: build and bench engines (marked `trt`; skipped without tensorrt and a CUDA GPU).

These exercise the paths the review found broken: the plugin loaded by `bench` from the sidecar or
the engine's bytes, the fp16 pass on strongly typed TensorRT through the shared build path, two
builds in one process, data-dependent NMS outputs, out-of-profile shapes, corrupt timing caches,
bf16 refused where it would silently be float32, and the plugin's outputs inside a real engine
against the NumPy oracle.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import load_fixture, ort_run, run_cli

from trtdeploy import make_dynamic


def _have():
    try:
        import tensorrt  # noqa: F401
        import torch
    except ImportError:
        return None
    return tensorrt if torch.cuda.is_available() else None


trt_mod = _have()
pytestmark = [pytest.mark.trt, pytest.mark.gpu,
              pytest.mark.skipif(trt_mod is None, reason="needs tensorrt and torch with a CUDA GPU")]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from trtdeploy.yolo.patch import patch

    d = tmp_path_factory.mktemp("models")
    dyn = make_dynamic(load_fixture("yolov5_p5_op13"))
    out = {"plain": d / "dyn.onnx", "patched": d / "patched.onnx", "nms": d / "nms.onnx"}
    onnx.save(dyn, str(out["plain"]))
    onnx.save(patch(dyn), str(out["patched"]))
    onnx.save(patch(dyn, nms=True), str(out["nms"]))
    return out


def _bench(target, *args, out):
    return run_cli("bench", target, "--iters", "5", "--warmup", "1", "--out", out, *args)


def test_build_then_bench_patched_engine(models, tmp_path):
    from trtdeploy._info import plugin_libraries, select_plugin_library

    engine = tmp_path / "p.engine"
    proc = run_cli("build", models["patched"], "-o", engine, "--batch", "1:2:4", "--fp16")
    assert proc.returncode == 0, proc.stderr
    sidecar = json.loads((tmp_path / "p.engine.json").read_text())
    assert sidecar["plugins"] == [select_plugin_library(plugin_libraries(), trt_mod.__version__)]
    assert sidecar["plugin_ops"] == ["YoloLayer_TRT"] and sidecar["precision"] == "fp16"
    proc = _bench(engine, "--shapes", "images:1x3x128x128", "--shapes", "images:4x3x128x128", out=tmp_path)
    assert proc.returncode == 0, proc.stderr  # the plugin was loaded without --plugins
    (tmp_path / "p.engine.json").unlink()
    proc = _bench(engine, "--shapes", "images:2x3x128x128", out=tmp_path)
    assert proc.returncode == 0 and "its bytes name YoloLayer_TRT" in proc.stderr, proc.stderr
    proc = _bench(engine, "--shapes", "images:8x3x128x128", "--profile-index", "0", out=tmp_path)
    assert proc.returncode == 1 and "is outside profile 0" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_model_fp16_compare_padded_builds_twice(models, tmp_path):
    proc = _bench(models["patched"], "--fp16", "--shapes", "images:1x3x128x128", "--shapes", "images:2x3x128x128",
                  "--compare-padded", "2", out=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "engine_bench.json").read_text())
    assert [r["batch"] for r in result["padded"]] == [1, 2]


def test_bench_nms_outputs_and_cuda_graph(models, tmp_path):
    proc = _bench(models["nms"], "--shapes", "images:2x3x128x128", out=tmp_path)
    assert proc.returncode == 0, proc.stderr  # data-dependent outputs through the output allocator
    proc = _bench(models["nms"], "--shapes", "images:2x3x128x128", "--cuda-graph", out=tmp_path)
    assert proc.returncode == 1 and "data-dependent shape" in proc.stderr and "Traceback" not in proc.stderr


def test_timing_cache_and_bf16_refusals(models, tmp_path):
    cache = tmp_path / "cache.bin"
    cache.write_bytes(b"\x00garbage" * 64)
    proc = run_cli("build", models["plain"], "-o", tmp_path / "m.engine", "--batch", "1:1:2", "--timing-cache", cache)
    assert proc.returncode == 1 and "--timing-cache" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m.engine").exists()
    if int(trt_mod.__version__.split(".")[0]) >= 11:
        proc = run_cli("build", models["plain"], "-o", tmp_path / "b.engine", "--batch", "1:1:2", "--bf16")
        assert proc.returncode == 1 and "--bf16 needs a weakly typed network" in proc.stderr


def test_plugin_in_a_real_engine_equals_the_oracle(models, tmp_path):
    """The engine's YoloLayer_TRT outputs against onnxruntime's trunk + the NumPy decode, same input."""
    from trtdeploy.plan import make_plan, profile_specs
    from trtdeploy.trt.build import build_engine
    from trtdeploy.trt.runtime import EngineRunner
    from trtdeploy.yolo.decode import decode_numpy
    from trtdeploy.yolo.patch import trunk
    from trtdeploy.yolo.verify_v5 import plugin_params

    from trtdeploy.yolo.patch import patch

    # threshold 0 keeps every anchor, so rows align one to one whatever TensorRT's conv rounding (TF32)
    patched = patch(make_dynamic(load_fixture("yolov5_p5_op13")), score_threshold=0.0)
    path = tmp_path / "all.onnx"
    onnx.save(patched, str(path))
    engine = str(tmp_path / "e.engine")
    build_engine(make_plan(patched, str(path), engine, profile_specs([[("batch", "--batch", "1:2:3")]]),
                           tensorrt_version=trt_mod.__version__))
    runner = EngineRunner(engine)
    runner.prepare({"images": [3, 3, 128, 128]})
    runner.run()
    runner.stream.synchronize()
    x = runner.buffers["images"].cpu().numpy()
    trunk_model, node = trunk(patched)
    p = plugin_params(node)
    want = decode_numpy(ort_run(trunk_model, {"images": x}), p["anchors"], p["max_stride"], p["num_classes"],
                        p["score_threshold"], p["score_mode"], p["max_detections"])
    got = [runner.buffers[o.name].cpu().numpy() for o in patched.graph.output]
    np.testing.assert_array_equal(got[0], want[0])
    assert want[0].min() == got[1].shape[1]  # every anchor kept, every row written
    np.testing.assert_allclose(got[1], want[1], rtol=1e-3, atol=0.05)  # TensorRT's convs vs onnxruntime's
    np.testing.assert_allclose(got[2], want[2], rtol=1e-3, atol=1e-3)
    assert (got[3] == want[3]).mean() > 0.99  # argmax over 80 classes: near ties may flip under TF32
