"""`yolo patch --nms plugin`: the model ends in TRTDeploy_NMS; the written model's detections (onnxruntime
up to the plugins' inputs, then YoloLayer_TRT's C++ decode for YOLOv5 and the C++ CPU NMS) equal the NumPy
reference of ultralytics' (YOLOv5's) post-processing of the original, at batch 1, 2, 3; the check refuses
a wrong plugin node; the low-threshold recheck and the float16 check reach the plugins' models too."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import fixture_path, load_fixture, run_cli
from onnx import helper

from trtdeploy.errors import TrtDeployError
from trtdeploy.yolo.families import DETECTION_OUTPUTS, detect
from trtdeploy.yolo.nms_plugin import PLUGIN_DOMAIN, find_node
from trtdeploy.yolo.patch import patch
from trtdeploy.yolo.postprocess import patch_detections
from trtdeploy.yolo.verify import at_threshold, verify, verify_detections


@pytest.mark.parametrize("name", ["yolov8n_640", "yolo11n_384x640", "yolov5_p5_dynamic_op12"])
def test_cli_patch_nms_plugin(tmp_path, name):
    out = tmp_path / "p.onnx"
    r = run_cli("yolo", "patch", fixture_path(name), "-o", out, "--nms", "plugin")
    assert r.returncode == 0, r.stderr
    who = "YOLOv5's" if "yolov5" in name else "ultralytics'"
    for b in (1, 2, 3):
        assert f"checked: batch {b} against {who} post-processing" in r.stderr + r.stdout
    m = onnx.load(str(out))
    node = find_node(m)
    assert node is not None and node.domain == PLUGIN_DOMAIN and list(node.output) == list(DETECTION_OUTPUTS)
    assert not any(n.op_type == "NonMaxSuppression" for n in m.graph.node)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["max_detections"] == 300 and attrs["class_agnostic"] == 0 and attrs["plugin_version"] == b"1"
    v = run_cli("yolo", "verify", fixture_path(name), out)
    assert v.returncode == 0 and v.stdout.count(f"= {who} post-processing") == 3, v.stderr
    if "yolov5" in name:  # and YoloLayer_TRT's decode of every anchor against the original, before it
        assert v.stdout.startswith("ok: 1 image(s) x 18900 anchors") and "decoded as the plugin does" in r.stderr
        yolo = next(n for n in m.graph.node if n.op_type == "YoloLayer_TRT")
        assert [a.i for a in yolo.attribute if a.name == "max_detections"] == [3840]  # --topk's default
        assert list(yolo.output)[1:] == list(node.input)  # its candidates straight into the NMS plugin


@pytest.mark.parametrize("agnostic", [False, True])
def test_plugin_detections_equal_the_reference_at_a_low_threshold(agnostic):
    model = load_fixture("yolov8n_640")
    head = detect(model)
    patched, opts = patch_detections(model, head, score_threshold=0.01, max_detections=100, topk=1000,
                                     agnostic=agnostic, nms="plugin")
    r = verify_detections(model, patched)
    assert min(r["detections"]) > 0 and [c["check"] for c in r["checks"]] == ["batch 1", "batch 2", "batch 3"]


def test_check_refuses_a_wrong_plugin_node():
    model = load_fixture("yolov8n_640")
    patched, _ = patch_detections(model, detect(model), score_threshold=0.05, nms="plugin")
    node = find_node(patched)
    for a in node.attribute:
        if a.name == "iou_threshold":
            a.f = 0.9  # NMS that suppresses less than the options say
    with pytest.raises(TrtDeployError, match="reference"):
        verify_detections(model, patched)


def test_nms_plugin_refused_for_nms_free_heads():
    model = load_fixture("yolo26n_end2end")
    with pytest.raises(TrtDeployError, match="--nms plugin applies to heads that need NMS"):
        patch_detections(model, detect(model), nms="plugin")


def test_onnx_stays_the_default(tmp_path):
    out = tmp_path / "p.onnx"
    r = run_cli("yolo", "patch", fixture_path("yolov8n_640"), "-o", out)
    assert r.returncode == 0, r.stderr
    m = onnx.load(str(out))
    assert find_node(m) is None and any(n.op_type == "NonMaxSuppression" for n in m.graph.node)
    assert np.all([o.domain != PLUGIN_DOMAIN for o in m.opset_import])


@pytest.mark.parametrize("agnostic", [False, True])
def test_yolov5_plugin_detections_equal_yolov5s_post_processing(agnostic):
    """YoloLayer_TRT (--topk best anchors) then TRTDeploy_NMS, both through their C++ CPU code, against the
    reference on the original's own decoded output (scores objectness * class, as YOLOv5's NMS)."""
    model = load_fixture("yolov5_p5_dynamic_op12")
    patched = patch(model, score_threshold=0.0001, nms="plugin", max_detections=50, topk=1000, agnostic=agnostic)
    r = verify_detections(model, patched, shapes={"images": [1, 3, 320, 320]})
    assert r["family"] == "YOLOv5" and r["reference_by"] == "YOLOv5"
    assert min(r["detections"]) > 10 and [c["check"] for c in r["checks"]] == ["batch 1", "batch 2", "batch 3"]
    assert verify(model, patched, shapes={"images": [1, 3, 320, 320]})["decode"]["class_mismatches"] == 0


def test_yolov5_check_refuses_a_wrong_plugin_node():
    model = load_fixture("yolov5_p5_dynamic_op12")
    patched = patch(model, score_threshold=0.0001, nms="plugin", max_detections=50, topk=1000)
    yolo = next(n for n in patched.graph.node if n.op_type == "YoloLayer_TRT")
    for a in yolo.attribute:
        if a.name == "max_detections":
            a.i = 60  # fewer candidates than the options say: the NMS sees another set
    with pytest.raises(TrtDeployError, match="reference"):
        verify_detections(model, patched, shapes={"images": [1, 3, 320, 320]})


@pytest.mark.parametrize("flags,want", [
    (["--max-output-boxes", "5"], "--max-output-boxes applies to the ONNX NonMaxSuppression"),
    (["--score-mode", "obj"], "--score-mode obj scores boxes by objectness alone"),
    (["--topk", "10", "--max-detections", "20"], "--topk 10: must be between --max-detections (20)"),
])
def test_yolov5_plugin_flags_refused_in_one_line(tmp_path, flags, want):
    out = tmp_path / "p.onnx"
    r = run_cli("yolo", "patch", fixture_path("yolov5_p5_op13"), "-o", out, "--nms", "plugin", *flags)
    assert r.returncode == 2 or r.returncode == 1, r.stderr
    assert want in r.stderr.strip().splitlines()[-1] and "Traceback" not in r.stderr and not out.exists()


@pytest.mark.parametrize("name", ["yolov8n_640", "yolov5_p5_dynamic_op12"])
def test_low_threshold_recheck_reaches_the_plugins(name):
    """Random images at threshold 0.9 leave (almost) no detection: the recheck lowers the threshold the plugins hold
    (TRTDeploy_NMS's, YoloLayer_TRT's) and compares again."""
    model = load_fixture(name)
    if "yolov5" in name:
        patched = patch(model, score_threshold=0.9, nms="plugin")
    else:
        patched, _ = patch_detections(model, detect(model), score_threshold=0.9, nms="plugin")
    low = at_threshold(patched, 0.01)
    thresholds = [helper.get_attribute_value(a) for n in low.graph.node for a in n.attribute
                  if a.name in ("score_threshold", "prenms_score_threshold")]
    assert thresholds and np.allclose(thresholds, 0.01)
    r = verify_detections(model, patched, shapes={"images": [1, 3, 320, 320]} if "yolov5" in name else None)
    assert min(r["detections"]) < 10 and "matched the reference too" in r["notes"][0], r["notes"]


def test_fp16_of_a_plugin_nms_model(tmp_path):
    """`trtdeploy fp16` of a --nms plugin model: its post-processing (TopKs, then the plugin through the C++
    NMS on float16 boxes and scores) against the reference on its own float16 head."""
    patched, half = tmp_path / "p.onnx", tmp_path / "h.onnx"
    assert run_cli("yolo", "patch", fixture_path("yolov8n_640"), "-o", patched, "--nms", "plugin").returncode == 0
    r = run_cli("fp16", patched, "-o", half)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "checked: float16 post-processing, batch 3: detections" in r.stderr
    node = find_node(onnx.load(str(half)))
    assert node is not None and list(node.output) == list(DETECTION_OUTPUTS)


def test_bundled_plugin_names_are_the_compiled_ones():
    from trtdeploy import _C
    from trtdeploy.plan import BUNDLED_OPS

    assert set(BUNDLED_OPS) == {_C.YOLO_PLUGIN_NAME, _C.NMS_PLUGIN_NAME}


def test_fp16_of_a_yolov5_plugin_nms_model_says_what_it_compared(tmp_path):
    patched, half = tmp_path / "p.onnx", tmp_path / "h.onnx"
    r = run_cli("yolo", "patch", fixture_path("yolov5_p5_dynamic_op12"), "-o", patched, "--nms", "plugin")
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli("fp16", patched, "-o", half, "--shapes", "images:1x3x320x320")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "what 'YoloLayer_TRT' (YoloLayer_TRT) reads" in r.stderr and "not compared with it" in r.stderr


def test_yolov5_more_candidates_than_topk_is_a_bound_not_a_refusal():
    """At threshold 0 every anchor passes and YoloLayer_TRT keeps the best --topk 100: the decode check
    counts what the plugin can output (it refused a correct model, 100 vs 6300), and the detection check
    reports the --topk bound as a difference from YOLOv5's post-processing."""
    model = load_fixture("yolov5_p5_dynamic_op12")
    patched = patch(model, score_threshold=0.0, nms="plugin", max_detections=50, topk=100)
    r = verify(model, patched, shapes={"images": [1, 3, 320, 320]})
    assert r["decode"]["detections_plugin"] == [100] and r["decode"]["detections_original"] == [6300]
    assert r["differences"] and "--topk 100 keeps only the best 100" in r["differences"][0]
    assert "differs from YOLOv5" in r["differences"][0]


def test_patch_api_refusals():
    model = load_fixture("yolov5_p5_dynamic_op12")
    with pytest.raises(TrtDeployError, match="--score-mode obj scores boxes by objectness alone"):
        patch(model, nms="plugin", score_mode=1)
    with pytest.raises(TrtDeployError, match="nms='Plugin'"):
        patch(model, nms="Plugin")
