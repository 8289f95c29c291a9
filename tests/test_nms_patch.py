"""`yolo patch --nms plugin`: the model ends in TRTDeploy_NMS; the written model's detections (onnxruntime
up to the plugin's inputs, the plugin through the C++ CPU NMS) equal the NumPy reference of ultralytics'
post-processing of the original, at batch 1, 2, 3; the check refuses a wrong plugin node."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import fixture_path, load_fixture, run_cli
from onnx import helper

from trtdeploy.errors import TrtDeployError
from trtdeploy.yolo.families import DETECTION_OUTPUTS, detect
from trtdeploy.yolo.nms_plugin import PLUGIN_DOMAIN, find_node
from trtdeploy.yolo.postprocess import patch_detections
from trtdeploy.yolo.verify import verify_detections


@pytest.mark.parametrize("name", ["yolov8n_640", "yolo11n_384x640"])
def test_cli_patch_nms_plugin(tmp_path, name):
    out = tmp_path / "p.onnx"
    r = run_cli("yolo", "patch", fixture_path(name), "-o", out, "--nms", "plugin")
    assert r.returncode == 0, r.stderr
    for b in (1, 2, 3):
        assert f"checked: batch {b} against ultralytics" in r.stderr + r.stdout
    m = onnx.load(str(out))
    node = find_node(m)
    assert node is not None and node.domain == PLUGIN_DOMAIN and list(node.output) == list(DETECTION_OUTPUTS)
    assert not any(n.op_type == "NonMaxSuppression" for n in m.graph.node)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["max_detections"] == 300 and attrs["class_agnostic"] == 0 and attrs["plugin_version"] == b"1"
    v = run_cli("yolo", "verify", fixture_path(name), out)
    assert v.returncode == 0 and v.stdout.count("ok: ") == 3, v.stderr


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
