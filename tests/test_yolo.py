"""YOLO: head matching on real exports, plugin insertion checked against the original output
(the decode itself: tests/test_decode.py)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import load_fixture, ort_run, run_cli, fixture_path
from onnx import helper

from trtdeploy import TrtDeployError
from trtdeploy.yolo.decode import decode_cpu
from trtdeploy.yolo.head import find_head
from trtdeploy.yolo.patch import nms_subgraph, patch
from trtdeploy.yolo.verify_v5 import plugin_params, verify_patch

P5 = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]
P6 = [19, 27, 44, 40, 38, 94, 96, 68, 86, 152, 180, 137, 140, 301, 303, 264, 238, 542, 436, 615, 739, 380, 925, 792]
CASES = {"yolov5_p5_op11": (80, P5, [8, 16, 32]), "yolov5_p5_op13": (80, P5, [8, 16, 32]),
         "yolov5_p5_op17": (80, P5, [8, 16, 32]), "yolov5_p5_dynamo": (80, P5, [8, 16, 32]),
         "yolov5_p5_b2_rect": (80, P5, [8, 16, 32]), "yolov5_p5_dynamic_op12": (80, P5, [8, 16, 32]),
         "yolov5_p6_op13": (20, P6, [8, 16, 32, 64])}


@pytest.mark.parametrize("name", sorted(CASES))
def test_head_read_from_graph(name):
    nc, anchors, strides = CASES[name]
    head = find_head(load_fixture(name))
    assert head.num_classes == nc and head.num_anchors == 3 and head.strides == strides
    np.testing.assert_allclose(head.flat_anchors, anchors, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_patch_matches_original(name):
    model = load_fixture(name)
    patched = patch(model, score_threshold=0.001)
    plugins = [n for n in patched.graph.node if n.op_type == "YoloLayer_TRT"]
    assert len(plugins) == 1
    assert not any(n.op_type in ("Pow", "Split") for n in patched.graph.node)  # the decode is gone
    assert [o.name for o in patched.graph.output] == ["num_detections", "detection_boxes", "detection_scores",
                                                      "detection_classes"]
    onnx.checker.check_model(patched)
    shapes = {"images": [2, 3, 96, 160]} if "dynamic" in name else None
    report = verify_patch(model, patched, shapes=shapes)
    assert report["ok"] and report["max_box_abs_diff_px"] < 1e-3 and report["class_mismatches"] == 0


def test_patch_detects_something_and_counts_agree():
    """Raise the objectness so that plenty of anchors pass the threshold."""
    model = load_fixture("yolov5_p5_op13")
    for t in model.graph.initializer:
        if t.name.startswith("detect.m.") and t.name.endswith(".bias"):
            b = onnx.numpy_helper.to_array(t).reshape(3, 85).copy()
            b[:, 4] += 8.0
            b[:, 5:] += 6.0
            t.CopyFrom(onnx.numpy_helper.from_array(b.reshape(-1), t.name))
    patched = patch(model, score_threshold=0.25)
    report = verify_patch(model, patched)
    assert report["detections_plugin"][0] > 50
    assert report["detections_plugin"] == report["detections_original"]


def test_attributes_single_sourced():
    from trtdeploy import _C

    specs = {s["name"]: s for s in _C.yolo_layer_attributes()}
    assert {"max_stride", "num_classes", "anchors", "prenms_score_threshold"} <= set(specs)
    node = next(n for n in patch(load_fixture("yolov5_p5_op13")).graph.node if n.op_type == "YoloLayer_TRT")
    attrs = {a.name: a for a in node.attribute}
    assert set(attrs) - {"plugin_version"} == set(specs)
    kinds = {"int": onnx.AttributeProto.INT, "float": onnx.AttributeProto.FLOAT, "floats": onnx.AttributeProto.FLOATS}
    for name, spec in specs.items():
        assert attrs[name].type == kinds[spec["type"]], name
    assert plugin_params(node)["max_stride"] == 32


def test_not_a_yolo_model():
    with pytest.raises(TrtDeployError, match=r"\[B, N, nc\+5\]|Conv"):
        find_head(load_fixture("view_cnn"))
    proc = run_cli("yolo", "patch", fixture_path("retina_head"), "-o", "/tmp/never.onnx")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_wrong_anchors_are_caught():
    model = load_fixture("yolov5_p5_op13")
    bad = patch(model, head=find_head(model, anchors=[a * 1.5 for a in P5]))
    with pytest.raises(TrtDeployError, match="disagrees"):
        verify_patch(model, bad)


def _levels(seed, shapes, dtype=np.float32, skew=3.0):
    rng = np.random.default_rng(seed)
    return [(rng.random(s, dtype=np.float32) ** skew).astype(dtype) for s in shapes]


def _nms_reference(boxes, scores, classes, n, score_thr, iou_thr, max_boxes):
    kept = []
    for b in range(boxes.shape[0]):
        idx = [i for i in range(n[b]) if scores[b, i] > score_thr]
        idx.sort(key=lambda i: (-scores[b, i], i))
        sel = []
        for i in idx:
            ok = True
            for j in sel:
                if classes[b, i] != classes[b, j]:
                    continue
                x1, y1 = np.maximum(boxes[b, i, :2], boxes[b, j, :2])
                x2, y2 = np.minimum(boxes[b, i, 2:], boxes[b, j, 2:])
                inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
                area = lambda k: (boxes[b, k, 2] - boxes[b, k, 0]) * (boxes[b, k, 3] - boxes[b, k, 1])  # noqa: E731
                if inter / (area(i) + area(j) - inter) > iou_thr:
                    ok = False
                    break
            if ok:
                sel.append(i)
            if len(sel) == max_boxes:
                break
        kept += [(b, i) for i in sel]
    return sorted(kept)


def test_nms_subgraph_in_onnxruntime():
    from trtdeploy.yolo._ops import Emitter

    lv = _levels(3, [(2, 3 * 9, 16, 16), (2, 3 * 9, 8, 8)], skew=1.0)
    anchors = [12, 12, 24, 30, 40, 20, 60, 60, 90, 70, 120, 140]
    num, boxes, scores, classes = decode_cpu(lv, anchors, 16, 4, 0.3)
    g = helper.make_graph([], "nms", [], [])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    names = ["boxes", "scores", "classes"]
    e = Emitter(m)
    outputs = nms_subgraph(names, e, 0.3, 0.45, 20)
    g = helper.make_graph(e.nodes, "nms",
                          [helper.make_tensor_value_info("boxes", onnx.TensorProto.FLOAT, [2, None, 4]),
                           helper.make_tensor_value_info("scores", onnx.TensorProto.FLOAT, [2, None]),
                           helper.make_tensor_value_info("classes", onnx.TensorProto.INT32, [2, None])],
                          outputs, initializer=e.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    bidx, kb, ks, kc = ort_run(m, {"boxes": boxes, "scores": scores, "classes": classes})
    got = [(int(b), int(np.flatnonzero((boxes[b] == box).all(1))[0])) for b, box in zip(bidx, kb)]
    want = _nms_reference(boxes, scores, classes, num[:, 0], 0.3, 0.45, 20)
    assert len(want) > 5
    assert sorted(got) == want
    np.testing.assert_array_equal(kc, [classes[b, i] for b, i in got])


def test_patch_with_nms_structure():
    patched = patch(load_fixture("yolov5_p5_op13"), nms=True)
    ops = [n.op_type for n in patched.graph.node]
    assert "NonMaxSuppression" in ops and ops.index("YoloLayer_TRT") < ops.index("NonMaxSuppression")
    assert [o.name for o in patched.graph.output][4:] == ["nms_batch_index", "nms_boxes", "nms_scores", "nms_classes"]
    onnx.checker.check_model(patched)


def test_cli_patch_verify(tmp_path):
    out = tmp_path / "patched.onnx"
    proc = run_cli("yolo", "patch", fixture_path("yolov5_p5_op17"), "-o", out, "--nms", "--verify")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("yolo", "verify", fixture_path("yolov5_p5_op17"), out, "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"ok": true' in proc.stdout
