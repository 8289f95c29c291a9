"""`trtdeploy build` end to end with TensorRT-RTX's CPU-only ahead-of-time builds: real parser, real
builder, trtdeploy's plugin library's build phase, no GPU. Which builder ran: TensorRT-RTX (every
sidecar says so), which is evidence about the ONNX parser, the profiles and the plugin's build phase,
not a TensorRT 10/11 run. Skipped, saying why, where tensorrt_rtx is not installed."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import fixture_path, run_cli

pytestmark = [pytest.mark.rtx, pytest.mark.skipif(importlib.util.find_spec("tensorrt_rtx") is None,
                                                  reason="needs TensorRT-RTX: pip install tensorrt-rtx (or .[rtx])")]

RTX = ["--runtime", "tensorrt-rtx"]


def _cli_ok(*args):
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _built(engine, ccs="default", precision="fp32"):
    """The engine is there and its sidecar names TensorRT-RTX and its compute capabilities."""
    assert engine.is_file() and engine.stat().st_size > 10_000
    side = json.loads((engine.parent / (engine.name + ".json")).read_text())
    assert side["runtime"] == "tensorrt-rtx" and side["builder"].startswith("TensorRT-RTX ")
    assert side["compute_capabilities"] == ccs and side["precision"] == precision
    return side


@pytest.fixture(scope="module")
def yolov5_trt(tmp_path_factory):
    """The README example: a YOLOv5 export made dynamic, then patched with YoloLayer_TRT."""
    d = tmp_path_factory.mktemp("y5")
    _cli_ok("dynamic", fixture_path("yolov5_p5_op13"), "-o", d / "dyn.onnx")
    _cli_ok("yolo", "patch", d / "dyn.onnx", "-o", d / "trt.onnx")
    return d / "trt.onnx"


def test_readme_yolov5_fp32_and_fp16_sm89(yolov5_trt, tmp_path):
    e = tmp_path / "y5.engine"
    proc = _cli_ok("build", yolov5_trt, "-o", e, "--batch", "1:8:32", *RTX)
    side = _built(e)
    assert side["plugins"][0].endswith("libtrtdeploy_plugins_trt11.so") and side["plugin_ops"] == ["YoloLayer_TRT"]
    assert side["profiles"][0]["images"]["max"][0] == 32 and "TensorRT-RTX 1." in proc.stderr
    h = tmp_path / "y5h.engine"
    _cli_ok("build", yolov5_trt, "-o", h, "--batch", "1:8:32", "--fp16", "--compute-capability", "8.9", *RTX)
    assert "fp16" in _built(h, ["8.9"], "fp16")["precision_how"]


def test_yolov5_dynamic_hw_and_several_profiles(tmp_path):
    patched = tmp_path / "p.onnx"
    _cli_ok("yolo", "patch", fixture_path("yolov5_p5_dynamic_op12"), "-o", patched, "--shapes", "images:1x3x320x320")
    e = tmp_path / "hw.engine"
    _cli_ok("build", patched, "-o", e, "--min-shapes", "images:1x3x320x320", "--opt-shapes", "images:4x3x640x640",
            "--max-shapes", "images:8x3x960x960", "--profile", "--min-shapes", "images:1x3x256x256",
            "--opt-shapes", "images:2x3x256x256", "--max-shapes", "images:2x3x256x256", "--compute-capability", "sm_89,sm_120", *RTX)
    side = _built(e, ["8.9", "12.0"])
    assert len(side["profiles"]) == 2 and side["profiles"][0]["images"]["max"] == [8, 3, 960, 960]


def test_a_profile_the_shapes_cannot_take_is_the_builders_error_in_one_line(tmp_path):
    # YOLO11's FPN at 100x100: the upsampled 4x4 map meets a 7x7 one at a Concat (strides of 32 do not divide 100)
    bad = tmp_path / "bad.engine"
    proc = run_cli("build", fixture_path("yolo11n_dynamic_op12"), "-o", bad, "--opt-shapes", "images:1x3x100x100", *RTX)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("trtdeploy build: error: TensorRT-RTX 1.") and "Concat" in last, last
    assert not bad.exists() and not (tmp_path / "bad.engine.json").exists()


@pytest.mark.parametrize("name", ["yolo26n_end2end", "yolov10n_end2end"])
def test_end_to_end_heads_patched(name, tmp_path):
    patched = tmp_path / "p.onnx"
    _cli_ok("yolo", "patch", fixture_path(name), "-o", patched)
    e = tmp_path / "e.engine"
    _cli_ok("build", patched, "-o", e, "--batch", "1:4:16", *RTX)
    _built(e)


def test_made_dynamic_at_its_extremes_and_a_classifier(tmp_path):
    dyn = tmp_path / "cls.onnx"
    _cli_ok("dynamic", fixture_path("view_cnn"), "-o", dyn)
    e = tmp_path / "cls.engine"
    _cli_ok("build", dyn, "-o", e, "--batch", "1:8:64", *RTX)
    _built(e)
    e1 = tmp_path / "one.engine"  # the extremes as their own profiles: batch 1 only, batch 64 only
    _cli_ok("build", dyn, "-o", e1, "--batch", "1:1:1", "--profile", "--batch", "64:64:64", *RTX)
    assert [p[next(iter(p))]["min"][0] for p in _built(e1)["profiles"]] == [1, 64]


def test_onnx_nms_refused_by_the_plan(tmp_path):
    patched = tmp_path / "y8.onnx"
    _cli_ok("yolo", "patch", fixture_path("yolov8n_640"), "-o", patched)
    e = tmp_path / "y8.engine"
    for extra in ([], ["--dry-run"]):
        proc = run_cli("build", patched, "-o", e, "--batch", "1:8:32", *RTX, *extra)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        line = proc.stderr.strip().splitlines()
        assert len(line) == 1 and "NonMaxSuppression" in line[0] and "NVIDIA/TensorRT-RTX issue #5" in line[0]
        assert "yolo patch --nms plugin" in line[0]
    assert not e.exists() and not (tmp_path / "y8.engine.json").exists()


@pytest.mark.parametrize("name,patch_args,ops", [
    ("yolov8n_640", [], ["TRTDeploy_NMS"]),
    ("yolo11n_384x640", [], ["TRTDeploy_NMS"]),
    ("yolov5_p5_dynamic_op12", ["--shapes", "images:1x3x320x320"], ["TRTDeploy_NMS", "YoloLayer_TRT"]),
])
def test_nms_plugin_models_build(name, patch_args, ops, tmp_path):
    """`yolo patch --nms plugin` is the way to NMS on TensorRT-RTX: the ONNX parser finds TRTDeploy_NMS (and
    YoloLayer_TRT) in trtdeploy's library, which the plan loads for either, and the builder runs the plugins'
    build phase (shapes, types, formats) over the whole profile."""
    patched = tmp_path / "p.onnx"
    _cli_ok("yolo", "patch", fixture_path(name), "-o", patched, "--nms", "plugin", *patch_args)
    e = tmp_path / "p.engine"
    size = "384x640" if "384" in name else "640x640"
    _cli_ok("build", patched, "-o", e, "--min-shapes", f"images:1x3x{size}", "--opt-shapes", f"images:4x3x{size}",
            "--max-shapes", f"images:16x3x{size}", *RTX)
    side = _built(e)
    assert side["plugin_ops"] == ops and side["plugins"][0].endswith("libtrtdeploy_plugins_trt11.so")
    assert side["outputs"]["detection_boxes"]["shape"] == ["batch", 300, 4]
    if "yolov5" in name:
        return  # float16 of this random-weight YOLOv5 is refused by the fp16 check (5.3x rounding's error)
    h = tmp_path / "h.engine"  # float16: the plugin takes float16 boxes and scores
    _cli_ok("build", patched, "-o", h, "--min-shapes", f"images:1x3x{size}", "--opt-shapes", f"images:2x3x{size}",
            "--max-shapes", f"images:4x3x{size}", "--fp16", "--compute-capability", "12.0", *RTX)
    _built(h, ["12.0"], "fp16")


def test_rtx_flags_refused_in_one_line(yolov5_trt, tmp_path):
    for flags, want in ((["--compute-capability", "9.0"], "need TensorRT"),
                        (["--compute-capability", "sm_100"], "8.9"), (["--bf16"], "--bf16"),
                        (["--compute-capability", "eight"], "not a compute capability")):
        proc = run_cli("build", yolov5_trt, "-o", tmp_path / "x.engine", "--batch", "1:2:4", *RTX, *flags)
        assert proc.returncode == 1 and want in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
            proc.stderr
    proc = run_cli("build", yolov5_trt, "-o", tmp_path / "t.engine", "--batch", "1:2:4", "--timing-cache",
                   tmp_path / "cache.bin", *RTX)
    assert proc.returncode == 0 and "is ignored" in proc.stderr and not (tmp_path / "cache.bin").exists()


def test_bench_rtx_engine_needs_an_rtx_gpu(yolov5_trt, tmp_path):
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("a GPU is visible: the refusal is for machines without an RTX-class one")
    e = tmp_path / "y5.engine"
    _cli_ok("build", yolov5_trt, "-o", e, "--batch", "1:2:4", *RTX)
    proc = run_cli("bench", e, "--shapes", "images:1x3x128x128")
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "RTX-class GPU" in proc.stderr, proc.stderr


def test_dynamic_check_build(tmp_path):
    out = tmp_path / "cls.onnx"
    proc = _cli_ok("dynamic", fixture_path("view_cnn"), "-o", out, "--check-build", "1:8:64")
    assert "TensorRT-RTX 1." in proc.stderr and "parsed and built it for input:1x3x32x32..64x3x32x32" in proc.stderr
    assert out.is_file()
    bad = tmp_path / "bad.onnx"
    proc = run_cli("dynamic", fixture_path("view_cnn"), "-o", bad, "--check-build", "8:1:64")
    assert proc.returncode == 1 and "MIN <= OPT <= MAX" in proc.stderr and not bad.exists()


def test_tensorrt_rtx_imported_first_is_refused_not_aborted(yolov5_trt, tmp_path):
    """The parser loaded from the wheel's folder (no libtensorrt_rtx.so) aborts at the first plugin node:
    trtdeploy says so in one line instead, unless the link is there."""
    import subprocess
    import sys
    from pathlib import Path

    libs = Path(importlib.util.find_spec("tensorrt_rtx_libs").origin).parent
    if (libs / "libtensorrt_rtx.so").exists():
        pytest.skip(f"{libs} has libtensorrt_rtx.so: nothing aborts there")
    code = ("import sys, tensorrt_rtx; from trtdeploy.cli import main; "
            f"sys.exit(main(['build', {str(yolov5_trt)!r}, '-o', {str(tmp_path / 'e.engine')!r}, '--batch', '1:2:4']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1 and "libtensorrt_rtx.so" in proc.stderr.strip().splitlines()[-1], proc.stderr[-1500:]
    assert not (tmp_path / "e.engine").exists()


def test_doctor_names_tensorrt_rtx_and_its_plugin_library():
    proc = _cli_ok("doctor")
    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith("TensorRT-RTX "))
    assert "builds without a GPU" in line
    assert "libtrtdeploy_plugins_trt11.so" in proc.stdout
