"""trtdeploy build/bench/fp16 without TensorRT: plans, profiles, the fp16 pass, statistics, errors."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import fixture_path, load_fixture, ort_run, run_cli

from trtdeploy import TrtDeployError, make_dynamic
from trtdeploy.bench.stats import compare_padded, engine_markdown, summarize, write_report
from trtdeploy.plan import ProfileSpec, add_shapes, make_plan, plan_profiles
from trtdeploy.surgery.fp16 import to_fp16, verify_fp16

DYN = "yolov5_p5_dynamic_op12"  # images: [batch, 3, height, width]


def spec(**kinds):
    s = ProfileSpec()
    for kind, text in kinds.items():
        if kind == "batch":
            s.batch = text
        else:
            add_shapes(s, kind, text)
    return s


def test_profiles_from_shapes_and_batch():
    m = load_fixture(DYN)
    profiles = plan_profiles(m, [spec(min="images:1x3x320x320", opt="images:8x3x640x640", max="images:32x3x640x640"),
                                 spec(opt="images:1x3x1280x1280")])
    assert profiles[0]["images"] == {"min": [1, 3, 320, 320], "opt": [8, 3, 640, 640], "max": [32, 3, 640, 640]}
    assert profiles[1]["images"]["min"] == profiles[1]["images"]["max"] == [1, 3, 1280, 1280]
    batch_only = make_dynamic(load_fixture("yolov5_p5_op13"))
    p = plan_profiles(batch_only, [spec(batch=(1, 8, 32))])
    assert p[0]["images"] == {"min": [1, 3, 128, 128], "opt": [8, 3, 128, 128], "max": [32, 3, 128, 128]}


def test_dynamic_dim_without_value_names_it():
    m = load_fixture(DYN)
    with pytest.raises(TrtDeployError, match=r"'images' dim 2 'height' is dynamic"):
        plan_profiles(m, [spec(batch=(1, 8, 32))])
    with pytest.raises(TrtDeployError, match=r"'images' dim 0 'batch'"):
        plan_profiles(m, [])


def test_static_dims_and_order_checked():
    static = load_fixture("yolov5_p5_op13")
    with pytest.raises(TrtDeployError, match=r"dim 0 is static \(1\) and cannot be 4"):
        plan_profiles(static, [spec(opt="images:4x3x128x128")])
    assert plan_profiles(static, [])[0]["images"]["opt"] == [1, 3, 128, 128]
    m = load_fixture(DYN)
    with pytest.raises(TrtDeployError, match="min 8 <= opt 4"):
        plan_profiles(m, [spec(min="images:8x3x64x64", opt="images:4x3x64x64", max="images:16x3x64x64")])
    with pytest.raises(TrtDeployError, match="rank 3"):
        plan_profiles(m, [spec(opt="images:1x3x64")])
    with pytest.raises(TrtDeployError, match="not an input"):
        plan_profiles(m, [spec(opt="image:1x3x64x64")])


def test_plan_dict_and_plugins(tmp_path):
    from trtdeploy.yolo.patch import patch

    m = make_dynamic(load_fixture("yolov5_p5_op13"))
    plan = make_plan(m, "m.onnx", "m.engine", [spec(batch=(1, 4, 8))], precision="fp16", workspace_mib=1024,
                     timing_cache="cache.bin")
    d = plan.to_dict()
    assert d["profiles"][0]["images"]["max"] == [8, 3, 128, 128]
    assert d["precision"] == "fp16" and "TensorRT 11" in d["precision_how"]
    assert d["plugins"] == [] and d["outputs"]["output0"]["shape"] == ["batch", 1008, 85]
    patched = patch(m)
    from trtdeploy._info import plugin_library

    planned = make_plan(patched, "p.onnx", "p.engine", [spec(batch=(1, 4, 8))])
    if plugin_library() is None:  # built without TensorRT: the plan says what is missing
        assert "plugin library was not built" in planned.missing[0]
    else:
        assert planned.plugins == [plugin_library()] and not planned.missing
    assert make_plan(patched, "p.onnx", "p.engine", [spec(batch=(1, 4, 8))], plugins=["/x/lib.so"]).plugins == ["/x/lib.so"]


def test_cli_dry_run_json_and_errors(tmp_path):
    proc = run_cli("build", fixture_path(DYN), "--dry-run", "--json", "--min-shapes", "images:1x3x320x320",
                   "--opt-shapes", "images:8x3x640x640", "--max-shapes", "images:32x3x640x640",
                   "--profile", "--batch", "1:1:1", "--opt-shapes", "images:1x3x1280x1280")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert len(plan["profiles"]) == 2 and plan["profiles"][1]["images"]["opt"] == [1, 3, 1280, 1280]
    proc = run_cli("build", fixture_path(DYN), "--dry-run", "--batch", "1:8:32")
    assert proc.returncode == 1 and "dim 2 'height'" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_build_without_tensorrt_is_one_line(tmp_path):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    proc = run_cli("build", fixture_path("yolov5_p5_op13"), "-o", tmp_path / "m.engine")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "pip install tensorrt" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.engine").exists()
    proc = run_cli("bench", fixture_path("yolov5_p5_op13"), "--shapes", "images:1x3x128x128")
    assert proc.returncode == 1 and "pip install tensorrt" in proc.stderr


@pytest.mark.parametrize("name", ["yolov5_p5_op13", "yolov5_p5_dynamo", "retina_head", "cls_token", "fpn_interp"])
def test_fp16_pass_matches_fp32(name):
    m = load_fixture(name)
    h = to_fp16(m)
    assert all(t.data_type != onnx.TensorProto.FLOAT for t in h.graph.initializer if t.dims and np.prod(t.dims) > 16)
    assert [o.type.tensor_type.elem_type for o in h.graph.output] == [onnx.TensorProto.FLOAT] * len(h.graph.output)
    assert h.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    errs = verify_fp16(m, h)
    assert max(errs.values()) < 2e-2
    assert max(errs.values()) > 0  # it really computes in float16


def test_fp16_keeps_plugin_contract_and_sensitive_ops():
    from trtdeploy.yolo.patch import patch

    patched = patch(load_fixture("yolov5_p5_op13"))
    h = to_fp16(patched)
    plugin = next(n for n in h.graph.node if n.op_type == "YoloLayer_TRT")
    producers = {o: n for n in h.graph.node for o in n.output}
    for x in plugin.input:  # float16 sigmoids are cast back: the plugin sees float32 as exported
        assert producers[x].op_type == "Cast"
        assert next(a.i for a in producers[x].attribute if a.name == "to") == onnx.TensorProto.FLOAT
    kept = to_fp16(load_fixture("view_cnn"), keep_nodes={"/fc/Gemm"})
    gemm = next(n for n in kept.graph.node if n.name == "/fc/Gemm")
    producers = {o: n for n in kept.graph.node for o in n.output}
    assert producers[gemm.input[0]].op_type == "Cast"
    with pytest.raises(TrtDeployError, match="no node named 'nope'"):
        to_fp16(load_fixture("view_cnn"), keep_nodes={"nope"})


def test_fp16_cli_verify(tmp_path):
    out = tmp_path / "h.onnx"
    proc = run_cli("fp16", fixture_path("retina_head"), "-o", out, "--verify")
    assert proc.returncode == 0, proc.stderr
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    got = ort_run(onnx.load(str(out)), {"input": x})
    want = ort_run(load_fixture("retina_head"), {"input": x})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=2e-2 * np.abs(w).max())


def test_stats_and_padded_report(tmp_path):
    s = summarize([10.0, 12.0, 11.0, 50.0, 11.5], batch=8)
    assert s["median_us"] == 11.5 and s["min_us"] == 10.0
    assert s["p99_us"] == pytest.approx(np.percentile([10.0, 12.0, 11.0, 50.0, 11.5], 99))
    assert s["throughput_per_s"] == pytest.approx(8 / 11.5e-6)
    dyn = {1: summarize([100.0], 1), 8: summarize([400.0], 8)}
    pad = {1: summarize([800.0], 1), 8: summarize([800.0], 8)}
    rows = compare_padded(dyn, pad)
    assert [r["padded_over_dynamic"] for r in rows] == [8.0, 2.0]
    result = {"engine": "m.engine", "date": "2026-11-22", "device": "GPU", "tensorrt_version": "10.x", "command": "c",
              "warmup": 1, "iters": 1, "runs": [{"profile": 0, "shapes": {"images": [1, 3, 8, 8]}, **dyn[1]}],
              "padded_batch": 8, "padded": rows}
    paths = write_report(tmp_path, "engine_bench", result, engine_markdown(result))
    assert json.loads(paths[0].read_text())["padded"][0]["padded_over_dynamic"] == 8.0
    assert "8.00x" in paths[1].read_text()
