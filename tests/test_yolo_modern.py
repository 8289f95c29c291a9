"""Ultralytics anchor-free and end-to-end heads: family detection from the graph, the NumPy reference
against ultralytics' own post-processing, the appended post-processing against the reference at
batch 1, 2 and 3 (real exports, tests/fixtures/make_ultralytics_fixtures.py), refusals, the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
from conftest import FIXTURES, fixture_path, load_fixture, ort_run, run_cli
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from trtdeploy import TrtDeployError
from trtdeploy.yolo import reference as ref
from trtdeploy.yolo.families import describe, detect
from trtdeploy.yolo.postprocess import patch_detections
from trtdeploy.yolo.verify import patch_options, verify_detections

# fixture: (family, label, classes, boxes)
HEADS = {
    "yolov8n_640": ("yolov8", "yolov8", 80, "cxcywh"),
    "yolov8n_dynamic": ("yolov8", "yolov8", 80, "cxcywh"),
    "yolo11n_384x640": ("yolov8", "yolov8", 80, "cxcywh"),
    "yolo11n_dynamic_op12": ("yolov8", "yolov8", 80, "cxcywh"),
    "yolo26n_raw_320": ("yolov8", "yolo26", 80, "cxcywh"),
    "yolo26n_end2end": ("yolo-end2end", "yolo26-end2end", 80, "xyxy"),
    "yolov10n_end2end": ("yolo-end2end", "yolov10-end2end", 80, "xyxy"),
    "rtdetr_tiny": ("rtdetr", "rtdetr", 80, "cxcywh-normalized"),
    "rtdetr_tiny_dynamic": ("rtdetr", "rtdetr", 80, "cxcywh-normalized"),
    "rtdetr_legacy_nc2": ("rtdetr", "rtdetr-legacy", 2, "cxcywh-normalized"),  # [B, 300, 4+2]: not score, class
}
PATCHABLE = sorted(set(HEADS) - {"rtdetr_tiny"})  # a static RT-DETR export cannot get a dynamic batch
DYNAMIC_HW = {"yolov8n_dynamic": [2, 3, 384, 640], "yolo11n_dynamic_op12": [2, 3, 256, 320],
              "rtdetr_tiny_dynamic": [2, 3, 480, 640], "rtdetr_legacy_nc2": [2, 3, 320, 480]}
TENSORRT_OPS = {  # what the appended post-processing may use: ops TensorRT 10 and 11 import from ONNX
    "Pad", "Slice", "TopK", "Flatten", "Reshape", "Expand", "GatherElements", "Mul", "Sub", "Add", "Concat",
    "Transpose", "Equal", "Where", "NonMaxSuppression", "Gather", "GatherND", "ConstantOfShape", "Shape",
    "ScatterND", "Greater", "Cast", "ReduceSum"}


def _patched(name, **kw):
    model = load_fixture(name)
    patched, _ = patch_detections(model, detect(model), **kw)
    return model, patched


@pytest.mark.parametrize("name", sorted(HEADS))
def test_family_read_from_graph(name):
    family, label, nc, boxes = HEADS[name]
    head = detect(load_fixture(name))
    assert (head.family, head.label, head.num_classes, head.boxes, head.output) == (family, label, nc, boxes, "output0")
    assert describe(load_fixture(name))["family"] == label


def _expected():
    with np.load(FIXTURES / "ultralytics_expected.npz") as d:
        return {k: d[k] for k in d.files}


@pytest.mark.parametrize("name", sorted(HEADS))
def test_reference_equals_ultralytics(name):
    """The NumPy reference on the export's onnxruntime output reproduces ultralytics' own
    non_max_suppression / end-to-end filtering / RT-DETR scaling (conf 0.25, IoU 0.45)."""
    exp = _expected()
    shape = exp[f"{name}/shape"].tolist()
    x = np.random.default_rng(int(exp[f"{name}/seed"])).random(shape, dtype=np.float32)
    model = load_fixture(name)
    static = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    y = np.concatenate([ort_run(model, {"images": x[i:i + 1]})[0] for i in range(2)]) if static \
        else ort_run(model, {"images": x})[0]
    ties = 0
    for b in range(2):
        want = exp[f"{name}/image{b}"]

        def kept(box, score, cls, want=want):  # near-ties go the way ultralytics decided them
            return bool(((want[:, 5] == cls) & (np.abs(want[:, :4] - box).max(1) < 1e-3)).any())

        if HEADS[name][0] == "yolov8":
            got = ref.raw(y[b], 0.25, 0.45, 300, 30000, kept=kept)
        else:
            legacy = HEADS[name][1] == "rtdetr-legacy"
            got = ref.end2end(y[b], 0.25, 300, tuple(shape[2:]) if HEADS[name][0] == "rtdetr" else None,
                              class_probs=legacy)
            if legacy:  # ultralytics 8.3 kept the rows in query order, the reference best first
                want = want[np.argsort(-want[:, 4], kind="stable")]
        ties += len(got.ties)
        assert len(got) == len(want) > 10
        np.testing.assert_allclose(got.boxes, want[:, :4], atol=1e-3)
        np.testing.assert_allclose(got.scores, want[:, 4], atol=1e-6)
        np.testing.assert_array_equal(got.classes, want[:, 5])
    assert ties <= 1


def test_reference_near_ties_follow_the_model():
    """An IoU within 1e-5 of the threshold is decided as the model under test decided it; the
    order of exactly equal scores too. Elsewhere the reference decides alone."""
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 4.5], [100, 100, 110, 110], [100, 100, 110, 110]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.7], np.float32)
    classes = np.zeros(4, np.int64)
    keep, ties = ref.nms(boxes, scores, classes, 0.45, 10)  # IoU(0, 1) = 0.45 exactly: not > 0.45, kept
    assert keep == [0, 1, 2] and len(ties) == 1
    keep, _ = ref.nms(boxes, scores, classes, 0.45, 10, kept=lambda i: i in (0, 3))
    assert keep == [0, 3]  # the model dropped box 1 at the tie and kept box 3 of the equal-score pair
    keep, ties = ref.nms(boxes, scores, classes, 0.3, 10, kept=lambda i: True)  # IoU 0.45 > 0.3: no tie
    assert keep == [0, 2] and not ties


@pytest.mark.parametrize("name", PATCHABLE)
def test_patch_matches_reference(name):
    model, patched = _patched(name)
    onnx.checker.check_model(patched, full_check=True)
    assert [o.name for o in patched.graph.output] == ["num_detections", "detection_boxes", "detection_scores",
                                                      "detection_classes"]
    dims = [[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in patched.graph.output]
    assert dims == [["batch", 1], ["batch", 300, 4], ["batch", 300], ["batch", 300]]
    assert [o.type.tensor_type.elem_type for o in patched.graph.output] == [TP.INT32, TP.FLOAT, TP.FLOAT, TP.INT32]
    report = verify_detections(model, patched, shapes={"images": DYNAMIC_HW[name]} if name in DYNAMIC_HW else None)
    assert [c["check"] for c in report["checks"]] == ["batch 1", "batch 2", "batch 3"]
    assert sum(n > 10 for n in report["detections"]) >= 4, report["detections"]  # NMS/threshold really exercised
    ops = {n.op_type for n in patched.graph.node} - {n.op_type for n in model.graph.node}
    assert ops <= TENSORRT_OPS and "NonZero" not in ops
    assert ("NonMaxSuppression" in {n.op_type for n in patched.graph.node}) == (HEADS[name][0] == "yolov8")


def test_patch_at_other_sizes_of_a_dynamic_export():
    model, patched = _patched("yolov8n_dynamic")
    for shape in ([1, 3, 320, 320], [2, 3, 640, 384]):
        report = verify_detections(model, patched, shapes={"images": shape}, batch_sizes=(2,))
        assert report["checks"][0]["detections"] == report["checks"][0]["reference"]


def test_dynamic_size_is_checked_at_a_non_square_size():
    """A patched model that swaps the input's width and height (RT-DETR scales its normalized boxes
    by them) passes at a square size and is refused at the default size of a dynamic H/W."""
    model, patched = _patched("rtdetr_tiny_dynamic")
    for t in patched.graph.initializer:
        if t.name.startswith("det_whwh"):
            t.CopyFrom(numpy_helper.from_array(np.array([2, 3, 2, 3], np.int64), t.name))  # [h, w, h, w]
    verify_detections(model, patched, shapes={"images": [1, 3, 320, 320]}, batch_sizes=(1,))
    with pytest.raises(TrtDeployError, match="is not in the patched output"):
        verify_detections(model, patched, batch_sizes=(1,))


def test_static_batch_is_made_dynamic_and_batches_are_independent():
    model, patched = _patched("yolov8n_640")
    x = np.random.default_rng(7).random((3, 3, 640, 640), dtype=np.float32)
    batched = ort_run(patched, {"images": x})
    for i in range(3):
        single = ort_run(patched, {"images": x[i:i + 1]})
        for a, b in zip(batched, single):
            np.testing.assert_array_equal(a[i:i + 1], b)
    assert len(set(batched[0].reshape(-1).tolist())) > 1  # the images differ, so a mix-up would show


@pytest.mark.parametrize("kw", [{"max_detections": 7}, {"agnostic": True}, {"topk": 40, "max_detections": 40},
                                {"score_threshold": 0.4, "iou_threshold": 0.7}, {"topk": 3840}])
def test_options(kw):
    model, patched = _patched("yolo26n_raw_320", **kw)  # N = 2100: topk 3840 pads the candidates
    report = verify_detections(model, patched)
    opts = patch_options(patched)
    assert all(opts[k] == v for k, v in kw.items())
    rows = kw.get("max_detections", 300)
    assert ort_run(patched, {"images": np.zeros((2, 3, 320, 320), np.float32)})[1].shape == (2, rows, 4)
    assert max(report["detections"]) <= rows
    if "topk" in kw and kw["topk"] == 40:
        assert sum(c["topk_bounded"] for c in report["checks"]) > 0  # more candidates than K: the reference bounds too


def test_agnostic_keeps_fewer():
    model = load_fixture("yolov8n_640")
    aware = verify_detections(model, _patched("yolov8n_640")[1])["detections"]
    agnostic = verify_detections(model, _patched("yolov8n_640", agnostic=True)[1])["detections"]
    assert sum(agnostic) < sum(aware)


def test_end2end_max_detections_below_and_above_rows():
    for rows in (20, 400):
        model, patched = _patched("yolov10n_end2end", max_detections=rows)
        report = verify_detections(model, patched)
        assert max(report["detections"]) <= min(rows, 300)
        assert ort_run(patched, {"images": np.zeros((1, 3, 320, 320), np.float32)})[2].shape == (1, rows)


def test_verify_catches_a_wrong_model():
    model, patched = _patched("yolov8n_640")
    for t in patched.graph.initializer:
        if t.name.startswith("det_iou"):
            t.CopyFrom(numpy_helper.from_array(np.array([0.7], np.float32), t.name))
    with pytest.raises(TrtDeployError, match="detections, the reference has"):
        verify_detections(model, patched)
    model, patched = _patched("rtdetr_tiny_dynamic")
    for t in patched.graph.initializer:
        if t.name.startswith("det_half"):
            t.CopyFrom(numpy_helper.from_array(np.array(0.6, np.float32), t.name))
    with pytest.raises(TrtDeployError, match="box"):
        verify_detections(model, patched, shapes={"images": [1, 3, 320, 320]})
    from trtdeploy.yolo.verify import verify_postprocess

    with pytest.raises(TrtDeployError, match="is not in the patched output"):
        verify_postprocess(patched, shapes={"images": [1, 3, 320, 320]})


def test_verify_catches_a_small_box_scale_error():
    """Boxes 0.02% too wide (0.02-0.06 px at 640) are refused; onnxruntime's own differences between
    the original and the patched model are 0 to 6e-4 px, within 1e-5 of the input size."""
    model, patched = _patched("yolov8n_640")
    report = verify_detections(model, patched, batch_sizes=(1,))
    assert report["checks"][0]["max_box_diff_px"] <= 6.4e-3
    for t in patched.graph.initializer:
        if t.name.startswith("det_half"):
            t.CopyFrom(numpy_helper.from_array(np.array(0.5 * 1.0002, np.float32), t.name))
    with pytest.raises(TrtDeployError, match="is not in the patched output"):
        verify_detections(model, patched, batch_sizes=(1,))


def test_other_class_columns_never_pass_the_nms_threshold():
    """Class-aware NMS gives each box its score in its own class column only; the other columns must
    stay below every threshold, so the result does not hang on whether an NMS implementation compares
    with > or >= at --score-threshold 0. Emulated here by lowering the NMS's own threshold input a
    hair below 0 (the final threshold stays at 0)."""
    model, patched = _patched("yolo26n_raw_320", score_threshold=0.0, max_detections=100)
    nms = next(n for n in patched.graph.node if n.op_type == "NonMaxSuppression")
    patched.graph.initializer.append(numpy_helper.from_array(np.array([-1e-6], np.float32), "nms_inclusive_0"))
    nms.input[4] = "nms_inclusive_0"
    report = verify_detections(model, patched, batch_sizes=(1, 2))
    assert min(report["detections"]) >= 20


@pytest.mark.parametrize("kw", [{}, {"agnostic": True}])
def test_no_empty_tensor_after_nms(kw):
    """Zero-volume tensors have a history of trouble in TensorRT: every tensor the appended graph
    computes, the NonMaxSuppression output included, has elements with 0 detections and with many."""
    model = load_fixture("yolo26n_raw_320")
    x = np.random.default_rng(5).random((2, 3, 320, 320), dtype=np.float32)
    for thr, expect in ((0.9999, lambda n: (n == 0).all()), (0.0, lambda n: (n > 100).all())):
        patched, _ = patch_detections(model, detect(model), score_threshold=thr, **kw)
        verify_detections(model, patched, feeds={"images": x})
        old = {o for n in model.graph.node for o in n.output}
        new = [o for n in patched.graph.node for o in n.output if o and o not in old]
        probe = onnx.ModelProto()
        probe.CopyFrom(patched)
        probe.graph.output.extend(onnx.ValueInfoProto(name=o) for o in new if o not in
                                  {v.name for v in patched.graph.output})
        outs = ort_run(probe, {"images": x})
        names = [o.name for o in probe.graph.output]
        assert expect(outs[0]), outs[0]
        assert len(names) > 40 and "NonMaxSuppression" in {n.op_type for n in patched.graph.node}
        assert [n for n, v in zip(names, outs) if v.size == 0] == []


def test_opset_forms_of_appended_subgraphs():
    """The subgraphs appended to opset 11/12 models use the attribute forms (issue 8: Unsqueeze in the
    opset-13 form failed onnx.checker on yolov5 --nms exports)."""
    from trtdeploy.yolo.patch import patch

    v5 = patch(load_fixture("yolov5_p5_op11"), nms=True)
    onnx.checker.check_model(v5)
    unsq = [n for n in v5.graph.node if n.op_type == "Unsqueeze"]
    assert unsq and all(len(n.input) == 1 and n.attribute[0].name == "axes" for n in unsq)
    from trtdeploy.yolo.patch import trunk

    assert trunk(v5)[0] is not None
    _, op12 = _patched("yolo11n_dynamic_op12")
    onnx.checker.check_model(op12, full_check=True)
    red = [n for n in op12.graph.node if n.op_type == "ReduceSum"]
    assert red and all(len(n.input) == 1 for n in red)


def test_already_patched_and_not_a_detector(tmp_path):
    _, patched = _patched("yolo26n_end2end")
    with pytest.raises(TrtDeployError, match="already patched"):
        detect(patched)
    from trtdeploy.yolo.patch import patch

    with pytest.raises(TrtDeployError, match="already patched"):
        detect(patch(load_fixture("yolov5_p5_op13")))
    with pytest.raises(TrtDeployError, match=r"output 'logits' \[1, 10\].*supported: yolov5"):
        detect(load_fixture("view_cnn"))


def _synthetic_head(parts: list[int], n: int = 256, decoded_rows: bool = False, batch: int = 1) -> onnx.ModelProto:
    """image -> 1x1 convs -> Concat: [batch, sum(parts), n] channel-first (an ultralytics-like head with
    extra parts; boxes 0 to ~100 px), or with decoded_rows [1, n, 85] rows like a YOLOX export (no
    anchor constants)."""
    rng = np.random.default_rng(0)
    nodes, inits, outs = [], [], []
    for i, c in enumerate(parts):
        w = rng.normal(size=(c, 3, 1, 1)).astype(np.float32)
        w = 20 * np.abs(w) if i == 0 else w
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.array([batch, c, -1], np.int64),
                                                                              f"s{i}")]
        nodes += [helper.make_node("Conv", ["images", f"w{i}"], [f"c{i}"], name=f"conv{i}"),
                  helper.make_node("Reshape", [f"c{i}", f"s{i}"], [f"r{i}"], name=f"reshape{i}")]
        outs.append(f"r{i}")
        if i == 1:
            nodes.append(helper.make_node("Sigmoid", [f"r{i}"], [f"sig{i}"], name="sig"))
            outs[-1] = f"sig{i}"
    if decoded_rows:
        nodes += [helper.make_node("Concat", outs, ["cat"], name="cat", axis=1),
                  helper.make_node("Transpose", ["cat"], ["t"], name="t", perm=[0, 2, 1]),
                  helper.make_node("Concat", ["t", "t"], ["output"], name="levels", axis=1)]
        shape = [1, 2 * n, sum(parts)]
    else:
        nodes.append(helper.make_node("Concat", outs, ["output"], name="cat", axis=1))
        shape = [batch, sum(parts), n]
    side = int(np.sqrt(n))
    g = helper.make_graph(nodes, "head", [helper.make_tensor_value_info("images", TP.FLOAT, [batch, 3, side, side])],
                          [helper.make_tensor_value_info("output", TP.FLOAT, shape)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_refusals_name_what_was_found():
    with pytest.raises(TrtDeployError, match=r"\[1, 116, 256\]: concatenates 3 parts \[4, 80, 32\].*segmentation"):
        detect(_synthetic_head([4, 80, 32]))
    with pytest.raises(TrtDeployError, match=r"not a YOLOv5 Detect head.*YOLOX"):
        detect(_synthetic_head([4, 1, 80], decoded_rows=True))
    head = detect(_synthetic_head([4, 80]))  # the raw-head structure, whatever made it
    assert head.family == "yolov8" and head.num_classes == 80
    with pytest.raises(TrtDeployError, match=r"--family rtdetr needs .*; output 'output' is a raw head"):
        detect(_synthetic_head([4, 80]), family="rtdetr")
    m = _synthetic_head([4, 80])
    m.graph.output[0].type.tensor_type.elem_type = TP.FLOAT16
    with pytest.raises(TrtDeployError, match="float16, not float32.*trtdeploy fp16"):
        patch_detections(m, detect(m))
    m = _synthetic_head([4, 80])
    m.opset_import[0].version = 10
    with pytest.raises(TrtDeployError, match="opset is 10.*needs opset >= 11"):
        patch_detections(m, detect(m))


@pytest.mark.parametrize("name, family, message", [
    ("yolo26n_end2end", "rtdetr", r"not look like the rtdetr head .*normalized.*box values span \[-\d"),
    ("rtdetr_tiny_dynamic", "yolo-end2end",
     r"not look like the yolo-end2end head .*x2 < x1 or y2 < y1 in \d\d+% of the rows"),
])
def test_check_refuses_a_head_read_with_the_wrong_family(tmp_path, name, family, message):
    """The patched model follows what was assumed, so it matches the reference built on the same
    assumption; the check also looks at the values of the original's head."""
    model = load_fixture(name)
    patched, _ = patch_detections(model, detect(model, family=family))
    with pytest.raises(TrtDeployError, match=message + ".*patch again with --family"):
        verify_detections(model, patched, shapes={"images": [1, 3, 320, 320]} if "dynamic" in name else None)
    proc = run_cli("yolo", "patch", fixture_path(name), "-o", tmp_path / "never.onnx", "--family", family)
    assert proc.returncode == 1 and "does not look like" in proc.stderr.strip().splitlines()[-1], proc.stderr
    assert not (tmp_path / "never.onnx").exists()


def test_check_refuses_implausible_heads():
    """Heads whose structure matches but whose values do not: a raw head whose w, h rows are
    negative, an end-to-end head whose class column is no class index."""
    m = _synthetic_head([4, 80])
    w = next(t for t in m.graph.initializer if t.name == "w0")
    w.CopyFrom(numpy_helper.from_array(-np.abs(numpy_helper.to_array(w)) - 0.1, "w0"))  # every box row < 0
    patched, _ = patch_detections(m, detect(m))
    report = verify_detections(m, patched)  # the structure identified the head: box geometry only warns
    assert re.search(r"w < 0 or h < 0 in 100% of .*yolov8 head .*cx, cy, w, h in pixels", report["warnings"][0])
    m = _end2end_like(False)
    patched, _ = patch_detections(m, detect(m))
    with pytest.raises(TrtDeployError, match=r"the class column holds [\d.]+, .*not class indices"):
        verify_detections(m, patched)


def _after_output(model: onnx.ModelProto, op: str, **attrs) -> onnx.ModelProto:
    """The model with one more node (Identity, Cast, Transpose) between its head and its output."""
    out = model.graph.output[0]
    for n in model.graph.node:
        n.output[:] = [f"{out.name}_head" if o == out.name else o for o in n.output]
    model.graph.node.append(helper.make_node(op, [f"{out.name}_head"], [out.name], name=f"after_{op}", **attrs))
    if op == "Transpose":
        dims = out.type.tensor_type.shape.dim
        d1, d2 = dims[1].dim_value, dims[2].dim_value
        dims[1].dim_value, dims[2].dim_value = d2, d1
    return model


def test_layout_from_the_concat_not_the_dims():
    """A raw head is told by its Concat of box rows and Sigmoid class rows, not by dims[1] < dims[2]
    (imgsz 64 with 80 classes: [1, 84, 84]; here 64 anchors: [1, 84, 64]), and is found behind an
    Identity or a Cast to float."""
    head = detect(_synthetic_head([4, 80], n=64))
    assert (head.family, head.num_classes, head.output_shape) == ("yolov8", 80, [1, 84, 64])
    for op, attrs in (("Identity", {}), ("Cast", {"to": TP.FLOAT})):
        head = detect(_after_output(_synthetic_head([4, 80]), op, **attrs))
        assert (head.family, head.num_classes, head.output) == ("yolov8", 80, "output"), op
        m = _after_output(_end2end_like(False), op, **attrs)
        assert detect(m).family == "yolo-end2end", op


def test_legacy_rtdetr_with_two_classes_is_not_score_class():
    """ultralytics <= 8.3 RT-DETR with nc=2 gives [B, 300, 6] = boxes + 2 class probabilities: its
    Concat has widths [4, 2], not the [4, 1, 1] of the end-to-end layout. Read as class probabilities
    (score = best, class = argmax) and checked against ultralytics 8.3's post-processing."""
    model = load_fixture("rtdetr_legacy_nc2")
    head = detect(model)
    assert (head.label, head.layout, head.num_classes, head.output_shape) == ("rtdetr-legacy", "class-probs", 2,
                                                                            [1, 300, 6])
    with pytest.raises(TrtDeployError, match=r"--family yolo-end2end needs .*widths \[4, 1, 1\].* RT-DETR head "
                                             r"\[B, K, 4\+nc\] \(2 classes\)"):
        detect(model, family="yolo-end2end")
    patched, _ = patch_detections(model, head, max_detections=20)  # the best 20 of the rows above 0.25
    report = verify_detections(model, patched, shapes={"images": [1, 3, 320, 480]})
    assert report["detections"] == [20, 20, 20, 20, 20, 20]
    y = ort_run(patched, {"images": np.random.default_rng(0).random((1, 3, 320, 480), dtype=np.float32)})
    assert set(np.unique(y[3][0, :int(y[0][0, 0])])) == {0, 1}  # both classes, from the argmax


@pytest.mark.parametrize("model, family, message", [
    (lambda: _after_output(_synthetic_head([4, 80]), "Transpose", perm=[0, 2, 1]), "yolov8",
     r"--family yolov8 needs a raw head .*; output 'output' is a raw head \[B, 4\+nc, N\] transposed to "
     r"\[B, N, 4\+nc\]"),
    (lambda: _after_output(_synthetic_head([4, 80]), "Transpose", perm=[0, 2, 1]), None,
     r"transposed to \[B, N, 4\+nc\] .*export without the Transpose"),
    (lambda: _synthetic_head([4, 80, 32]), "yolov8", r"concatenates 3 parts \[4, 80, 32\].*segmentation"),
    (lambda: _end2end_like(False, extra=32), "yolo-end2end", "32 more columns.*segmentation"),
    (lambda: _end2end_like(False), "yolov8", r"--family yolov8 needs .*; output 'output0' is an end-to-end head"),
    (lambda: _synthetic_head([4, 80]), "yolo-end2end", r"--family yolo-end2end needs .* is a raw head"),
    (lambda: load_fixture("yolov8n_640"), "rtdetr", r"--family rtdetr needs .* is a raw head"),
    (lambda: load_fixture("view_cnn"), "yolov8", r"'logits' is \[1, 10\], not rank 3"),
])
def test_forced_family_still_needs_its_layout(model, family, message):
    with pytest.raises(TrtDeployError, match=message):
        detect(model(), family=family)


def test_forced_family_overrides_only_the_box_format():
    """--family picks pixels vs normalized for a [B, K, 6] head (the one heuristic); nothing else."""
    assert detect(load_fixture("rtdetr_tiny_dynamic"), family="yolo-end2end").boxes == "xyxy"
    assert detect(load_fixture("yolo26n_end2end"), family="rtdetr").boxes == "cxcywh-normalized"
    assert detect(load_fixture("yolo26n_end2end"), family="yolo-end2end").label == "yolo26-end2end"


def _end2end_like(with_nms: bool, extra: int = 0, rows: int = 16, side: int = 8, dynamic: bool = False,
                  declared=None, argmax: bool = False) -> onnx.ModelProto:
    """[1, 3, side, side] -> boxes/scores -> (NonMaxSuppression ->) Concat on the last axis: [1, rows, 6 + extra]
    (the input's H/W dynamic with ``dynamic``; ``declared``: the output's declared dims; ``argmax``: the
    class column is the ArgMax over 4 columns, as agnostic exports take it)."""
    nodes = [helper.make_node("Conv", ["images", "w"], ["c"], name="conv"),
             helper.make_node("Reshape", ["c", "s"], ["r"], name="reshape"),  # [1, side * side, 6 + extra]
             helper.make_node("Slice", ["r", "z", "nrows", "one"], ["rows"], name="rows")]  # [1, rows, 6 + extra]
    if with_nms:
        nodes += [helper.make_node("Slice", ["r", "z", "four", "two"], ["b"], name="b"),
                  helper.make_node("Slice", ["r", "four", "five", "two"], ["sc"], name="sc"),
                  helper.make_node("Transpose", ["sc"], ["sct"], name="sct", perm=[0, 2, 1]),
                  helper.make_node("NonMaxSuppression", ["b", "sct", "n16"], ["sel"], name="nms"),
                  helper.make_node("Gather", ["sel", "two1"], ["idx"], name="idx", axis=1),
                  helper.make_node("Gather", ["r", "idx"], ["picked"], name="pick", axis=1),
                  helper.make_node("Slice", ["picked", "z", "n16", "one"], ["rows2"], name="rows2")]
    src = "rows2" if with_nms else "rows"
    widths = [4, 1, 1] + ([extra] if extra else [])
    starts = np.cumsum([0] + widths)
    for i, w in enumerate(widths):
        nodes.append(helper.make_node("Slice", [src, f"st{i}", f"en{i}", "two"], [f"p{i}"], name=f"p{i}"))
    if argmax:
        nodes[-1] = helper.make_node("Slice", [src, "z", "four", "two"], ["scores4"], name="scores4")
        nodes += [helper.make_node("ArgMax", ["scores4"], ["am"], name="argmax", axis=-1, keepdims=1),
                  helper.make_node("Cast", ["am"], ["p2"], name="cls", to=TP.FLOAT)]
    nodes.append(helper.make_node("Concat", [f"p{i}" for i in range(len(widths))], ["output0"], name="cat", axis=-1))
    c = 6 + extra
    inits = [numpy_helper.from_array(np.full((c, 3, 1, 1), 0.1, np.float32), "w"),
             numpy_helper.from_array(np.array([0, -1, c], np.int64), "s")]
    for name, v in (("z", 0), ("one", 1), ("two", 2), ("four", 4), ("five", 5), ("n16", 16), ("nrows", rows)):
        inits.append(numpy_helper.from_array(np.array([v], np.int64), name))
    inits.append(numpy_helper.from_array(np.array([2], np.int64), "two1"))
    for i in range(len(widths)):
        inits += [numpy_helper.from_array(np.array([starts[i]], np.int64), f"st{i}"),
                  numpy_helper.from_array(np.array([starts[i + 1]], np.int64), f"en{i}")]
    hw = ["height", "width"] if dynamic else [side, side]
    g = helper.make_graph(nodes, "e2e", [helper.make_tensor_value_info("images", TP.FLOAT, [1, 3, *hw])],
                          [helper.make_tensor_value_info("output0", TP.FLOAT, declared)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_end2end_default_rows_are_k():
    """--max-detections defaults to K of an end-to-end head when K does not depend on the input size:
    a static dim of the output, also with a dynamic H/W; a K beyond TensorRT's TopK names the flag."""
    m = _end2end_like(False, rows=16, dynamic=True, declared=[1, 16, 6])
    patched, opts = patch_detections(m, detect(m))
    assert opts["max_detections"] == 16
    x = np.random.default_rng(0).random((2, 3, 48, 64), dtype=np.float32)
    assert ort_run(patched, {"images": x})[1].shape == (2, 16, 4)
    m = _end2end_like(False, rows=16, dynamic=True, declared=[1, "k", 6])  # K unknown: 300, padded
    assert patch_detections(m, detect(m))[1]["max_detections"] == 300
    m = _end2end_like(False, rows=4000, side=64)
    with pytest.raises(TrtDeployError, match=r"K = 4000 rows .* pass --max-detections N with N <= 3840"):
        patch_detections(m, detect(m))
    assert patch_detections(m, detect(m), max_detections=3840)[1]["max_detections"] == 3840


def test_inspect_agnostic_end2end_classes():
    """An agnostic end-to-end export takes the class as an ArgMax over the class scores (no index % nc):
    the class count is that ArgMax's width."""
    m = _end2end_like(False, argmax=True)
    assert [n.op_type for n in m.graph.node][-3:] == ["ArgMax", "Cast", "Concat"]
    assert detect(m).num_classes == 4 and describe(m)["classes"] == 4
    assert detect(_end2end_like(False)).num_classes is None  # no class structure at all: unknown, not guessed


def test_yolov5_segmentation_is_refused():
    """YOLOv5-seg: [B, N, 5+nc+32]; its mask coefficients would read as 32 more classes."""
    with pytest.raises(TrtDeployError, match=r"YOLOv5 segmentation head: .*117 values per anchor .* without a "
                                             r"Sigmoid \(mask coefficients, so not 112 classes\); output 'output1' "
                                             r"\[1, 32, 32, 32\] holds the mask prototypes"):
        detect(load_fixture("yolov5_seg_op13"))
    with pytest.raises(TrtDeployError, match="YOLOv5 segmentation head"):
        detect(load_fixture("yolov5_seg_op13"), family="yolov5")
    from trtdeploy.yolo.head import find_head

    with pytest.raises(TrtDeployError, match="YOLOv5 segmentation head"):
        find_head(load_fixture("yolov5_seg_op13"))
    assert find_head(load_fixture("yolov5_p5_dynamic_op12")).num_classes == 80  # grid from Shape: still detection


def test_static_batch_export_is_checked_at_batch_1():
    """A static batch-2 export runs on batches padded to a multiple of 2; the patched model is checked
    at 1, 2 and 3 like any other."""
    m = _synthetic_head([4, 20], batch=2)
    patched, _ = patch_detections(m, detect(m))
    report = verify_detections(m, patched)
    assert [c["check"] for c in report["checks"]] == ["batch 1", "batch 2", "batch 3"]
    assert min(report["detections"]) > 5


def test_yolo_verify_picks_the_float16_check_from_the_head_dtype():
    """A float32 model with a float16 constant inside is checked as float32; a model whose head is
    float16 (after `trtdeploy fp16`) with the float16 check."""
    from trtdeploy.surgery.fp16 import to_fp16
    from trtdeploy.yolo.verify import verify

    model = load_fixture("yolo26n_raw_320")
    first = model.graph.node[0]
    model.graph.initializer.append(numpy_helper.from_array(np.zeros([1], np.float16), "zero_h"))
    model.graph.node.insert(0, helper.make_node("Cast", ["zero_h"], ["zero_f"], name="zero_cast", to=TP.FLOAT))
    model.graph.node.insert(1, helper.make_node("Add", [first.input[0], "zero_f"], ["images_plus"], name="plus"))
    first.input[0] = "images_plus"
    patched, _ = patch_detections(model, detect(model))
    report = verify(model, patched)
    assert "note" not in report and [c["check"] for c in report["checks"]] == ["batch 1", "batch 2", "batch 3"]
    report = verify(model, to_fp16(patched))
    assert "a float16 model" in report["note"]


def test_end2end_refusals():
    head = detect(_end2end_like(False))
    assert head.family == "yolo-end2end" and head.output_shape == [1, 16, 6]
    with pytest.raises(TrtDeployError, match="NonMaxSuppression inside.*nms=True"):
        detect(_end2end_like(True))
    with pytest.raises(TrtDeployError, match="32 more columns.*segmentation"):
        detect(_end2end_like(False, extra=32))


def test_cli_patch_verifies_by_default_and_verify(tmp_path):
    out = tmp_path / "out.onnx"
    proc = run_cli("yolo", "patch", fixture_path("yolo11n_384x640"), "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "head: yolov8" in proc.stderr and "checked: batch 3 against ultralytics' post-processing" in proc.stderr
    proc = run_cli("yolo", "verify", fixture_path("yolo11n_384x640"), out, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["family"] == "yolov8" and len(report["detections"]) == 6
    x = np.random.default_rng(3).random((2, 3, 384, 640), dtype=np.float32)
    np.savez(tmp_path / "in.npz", images=x)
    proc = run_cli("yolo", "verify", fixture_path("yolo11n_384x640"), out, "--inputs", tmp_path / "in.npz")
    assert proc.returncode == 0 and proc.stdout.count("ok:") == 1, proc.stderr
    proc = run_cli("yolo", "patch", fixture_path("yolov8n_dynamic"), "-o", tmp_path / "dyn.onnx")
    assert proc.returncode == 0 and "checking at 3x480x640 (not square" in proc.stderr, proc.stderr
    assert "checked: batch 1 against ultralytics' post-processing" in proc.stderr
    proc = run_cli("yolo", "patch", fixture_path("yolo26n_end2end"), "-o", tmp_path / "e2e.onnx", "--no-verify")
    assert proc.returncode == 0 and "without checking it (--no-verify)" in proc.stderr
    proc = run_cli("yolo", "patch", fixture_path("rtdetr_tiny_dynamic"), "-o", tmp_path / "rt.onnx",
                   "--shapes", "images:1x3x320x480")
    assert proc.returncode == 0 and "checked: batch 2 against ultralytics' post-processing" in proc.stderr, proc.stderr
    proc = run_cli("inspect", fixture_path("yolov10n_end2end"))
    assert "detector: yolov10-end2end (80 classes) on 'output0' [1, 300, 6]" in proc.stdout


def test_cli_verify_refuses_files_that_do_not_belong_together_and_bad_inputs(tmp_path):
    """A patched model checked against another export, or --inputs that are no .npz or do not fit:
    one line each, exit 1 (were a KeyError/EOFError traceback or onnxruntime's dimension error)."""
    out = tmp_path / "v8.onnx"
    assert run_cli("yolo", "patch", fixture_path("yolov8n_640"), "-o", out, "--no-verify").returncode == 0
    for original, message in [("yolo11n_384x640", r"input 'images' is \[1, 3, 384, 640\] in ORIGINAL, "
                                                   r"\[batch, 3, 640, 640\] in PATCHED"),
                               ("yolov8n_dynamic", r"input 'images' is \[batch, 3, height, width\] in ORIGINAL"),
                               ("yolo26n_end2end", r"its head .output0. is \[batch, 84, 8400\], the output of "
                                                   r"ORIGINAL \[1, 300, 6\]"),
                               ("yolov5_p5_op13", r"not made from ORIGINAL")]:
        proc = run_cli("yolo", "verify", fixture_path(original), out)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert re.search(message, proc.stderr.splitlines()[-1]), proc.stderr
    (tmp_path / "junk.npz").write_text("junk")
    np.savez(tmp_path / "other.npz", x=np.zeros((1, 3, 640, 640), np.float32))
    np.savez(tmp_path / "small.npz", images=np.zeros((1, 3, 320, 320), np.float32))
    np.savez(tmp_path / "empty.npz")
    np.savez(tmp_path / "zero.npz", images=np.zeros((0, 3, 640, 640), np.float32))
    for npz, message in [("junk.npz", "not an .npz file"), ("missing.npz", "no such file"),
                         ("empty.npz", "no images under 'images'"), ("zero.npz", "no images under 'images'"),
                         ("other.npz", "'x' is not an input of the model"),
                         ("small.npz", r"'images' has shape \[1, 3, 320, 320\], the model takes")]:
        for cmd in (["patch", fixture_path("yolov8n_640"), "-o", tmp_path / "never.onnx"],
                    ["verify", fixture_path("yolov8n_640"), out]):
            proc = run_cli("yolo", *cmd, "--inputs", tmp_path / npz)
            assert proc.returncode == 1 and re.search(message, proc.stderr.splitlines()[-1]), proc.stderr
    assert not (tmp_path / "never.onnx").exists()


def test_cli_low_threshold_says_the_topk_bound(tmp_path):
    """ultralytics' predict/val give NMS up to 30000 candidates; the patched model its --topk best
    (default 3840, or N when the head has fewer anchors: then nothing is cut and nothing is said)."""
    proc = run_cli("yolo", "patch", fixture_path("yolov8n_640"), "-o", tmp_path / "lo.onnx",
                   "--score-threshold", "0.01", "--max-detections", "100")
    assert proc.returncode == 0, proc.stderr
    assert "NMS sees only the 3840 best candidates per image" in proc.stderr and "max_nms" in proc.stderr
    assert "narrows the gap" not in proc.stderr
    for extra in (["--score-threshold", "0.25"], ["--score-threshold", "0.01"],
                  ["--score-threshold", "0.01", "--topk", "1000"]):
        proc = run_cli("yolo", "patch", fixture_path("yolo26n_raw_320"), "-o", tmp_path / "hi.onnx", *extra)
        assert proc.returncode == 0 and "NMS sees only" not in proc.stderr, proc.stderr


def test_default_topk_is_tensorrts_limit_or_n():
    assert patch_options(_patched("yolov8n_640")[1])["topk"] == 3840
    assert patch_options(_patched("yolo26n_raw_320")[1])["topk"] == 2100  # N: no padding, nothing cut
    assert patch_options(_patched("yolov8n_dynamic")[1])["topk"] == 3840


def test_a_topk_cut_is_a_difference_from_ultralytics_not_equal(tmp_path):
    """Many candidates (a low threshold, as a crowd gives): the patched model matches the reference
    with its own --topk bound exactly, and the check says that it differs from ultralytics' own
    post-processing (max_nms 30000) with the counts, in `yolo patch` and in `yolo verify`."""
    out = tmp_path / "p.onnx"
    proc = run_cli("yolo", "patch", fixture_path("yolov8n_640"), "-o", out, "--topk", "100",
                   "--max-detections", "100", "--score-threshold", "0.05")
    assert proc.returncode == 0, proc.stderr
    line = re.compile(r"differs from ultralytics: \d+ vs 100 detections in batch 1, image 0 \(and in 5 more of the 6 "
                      r"images checked\), because --topk 100 keeps only the best 100 of \d{4} candidates .*raise --topk "
                      r"\(max 3840\)")
    assert len(line.findall(proc.stderr)) == 1, proc.stderr
    proc = run_cli("yolo", "verify", fixture_path("yolov8n_640"), out)
    assert proc.returncode == 0 and "= reference" not in proc.stdout and line.search(proc.stdout), proc.stdout
    assert "= the reference with the --topk 100 bound, ultralytics [100]" in proc.stdout
    report = json.loads(run_cli("yolo", "verify", fixture_path("yolov8n_640"), out, "--json").stdout)
    assert report["checks"][0]["reference"] == [100] and report["checks"][0]["detections"][0] < 100
    proc = run_cli("yolo", "verify", fixture_path("yolov8n_640"), tmp_path / "p.onnx")  # unbounded: equal
    model, patched = _patched("yolov8n_640", score_threshold=0.05, max_detections=100)
    report = verify_detections(model, patched)
    assert not report["differences"] and all(c["detections"] == c["reference"] for c in report["checks"])


def test_random_images_without_detections_are_rechecked_lower(tmp_path):
    """A trained detector on random images gives no detections: the check says so and runs the same
    patched post-processing at a lower threshold, in `yolo verify` as in `yolo patch`; --inputs too."""
    from trtdeploy.yolo.verify import verify

    model, patched = _patched("yolov8n_640", score_threshold=0.99)  # nothing passes 0.99 on these images
    report = verify(model, patched)
    assert max(report["detections"]) == 0
    assert re.search(r"random images leave \[0, 0, 0, 0, 0, 0\] detections .* at score threshold [\d.]+ gave "
                     r"\[\d\d+", report["notes"][0]), report["notes"]
    onnx.save(patched, tmp_path / "p.onnx")
    np.savez(tmp_path / "in.npz", images=np.random.default_rng(1).random((1, 3, 640, 640), dtype=np.float32))
    proc = run_cli("yolo", "verify", fixture_path("yolov8n_640"), tmp_path / "p.onnx", "--inputs", tmp_path / "in.npz")
    assert proc.returncode == 0 and "note: the --inputs images leave [0] detections" in proc.stdout, proc.stdout


def test_fp16_post_processing_check_uses_the_inputs(tmp_path):
    from trtdeploy.surgery.fp16 import to_fp16  # noqa: F401

    out = tmp_path / "p.onnx"
    assert run_cli("yolo", "patch", fixture_path("yolo26n_raw_320"), "-o", out).returncode == 0
    x = np.random.default_rng(5).random((2, 3, 320, 320), dtype=np.float32)
    np.savez(tmp_path / "in.npz", images=x)
    proc = run_cli("fp16", out, "-o", tmp_path / "h.onnx", "--inputs", tmp_path / "in.npz")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"float16 post-processing, batch 2: detections \[\d+, \d+\]", proc.stderr), proc.stderr
    assert "float16 post-processing, batch 3" not in proc.stderr


def test_undertrained_end2end_boxes_warn_not_refuse(tmp_path):
    """YOLO26 end-to-end: the graph identifies the head; boxes with x2 < x1 in many rows (undertrained
    weights, here fed by inverted images) are a warning naming what was seen, not a refusal."""
    model, patched = _patched("yolo26n_end2end")
    from trtdeploy.yolo.head_check import check_head

    head = ort_run(model, {"images": np.random.default_rng(0).random((1, 3, 640, 640), dtype=np.float32)})[0]
    odd = head.copy()
    odd[..., [0, 2]] = odd[..., [2, 0]]  # x1 and x2 swapped: x2 < x1 in every row
    opts = patch_options(patched)
    text = check_head(odd, opts, "the original")
    assert re.search(r"x2 < x1 or y2 < y1 in \d+% of the rows .*structure identified the head", text), text
    with pytest.raises(TrtDeployError, match="does not look like the yolo-end2end head"):
        check_head(odd, opts, "the original", structure=False)  # --family given: the values are the evidence


def test_cli_yolov5_verifies_by_default(tmp_path):
    proc = run_cli("yolo", "patch", fixture_path("yolov5_p5_op11"), "-o", tmp_path / "v5.onnx", "--nms")
    assert proc.returncode == 0, proc.stderr
    assert "checked: 1 image(s) x" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["yolo26n_end2end", "--nms", "plugin"], "--nms plugin applies to heads that need NMS"),
    (["yolov8n_640", "--max-output-boxes", "50"], "--max-output-boxes apply to yolov5 heads"),
    (["yolov5_p5_op13", "--max-output-boxes", "50"], "--max-output-boxes applies to the ONNX NonMaxSuppression that --nms appends"),
    (["yolov8n_640", "--topk", "5000"], "--topk 5000"),
    (["yolo26n_end2end", "--agnostic"], "NMS-free"),
    (["yolov8n_640", "--score-threshold", "1.5"], "--score-threshold 1.5"),
    (["view_cnn"], "no detection head recognized"),
])
def test_cli_refusals(tmp_path, args, message):
    import re

    out = tmp_path / "never.onnx"
    proc = run_cli("yolo", "patch", fixture_path(args[0]), "-o", out, *args[1:])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert re.search(message, proc.stderr.strip().splitlines()[-1]), proc.stderr
    assert not out.exists()


def test_cli_already_patched(tmp_path):
    out = tmp_path / "p.onnx"
    assert run_cli("yolo", "patch", fixture_path("yolov5_p5_op13"), "-o", out).returncode == 0
    proc = run_cli("yolo", "patch", out, "-o", tmp_path / "again.onnx")
    assert proc.returncode == 1 and "already patched" in proc.stderr and "Traceback" not in proc.stderr


def test_failed_check_writes_nothing(tmp_path, monkeypatch):
    """A patched model that disagrees with the reference is refused before the final path exists."""
    from trtdeploy.cli import main
    from trtdeploy.yolo import postprocess

    real = postprocess.append_postprocess

    def wrong_iou(model, head, opts):  # the model says 0.45 but runs NMS at 0.9
        m = real(model, head, opts)
        for t in m.graph.initializer:
            if t.name.startswith("det_iou"):
                t.CopyFrom(numpy_helper.from_array(np.array([0.9], np.float32), t.name))
        return m

    monkeypatch.setattr(postprocess, "append_postprocess", wrong_iou)
    out = tmp_path / "out.onnx"
    assert main(["yolo", "patch", str(fixture_path("yolov8n_640")), "-o", str(out)]) == 1
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["yolov8n_640", "yolo26n_end2end", "rtdetr_tiny_dynamic"])
def test_fp16(name):
    """`trtdeploy fp16` on a patched detector: NMS, TopK and the threshold comparison keep float32
    inputs, nothing overflows float16; the converted model's post-processing matches the reference
    applied to its own (float16) head tensor, and the trunk passes the fp16 check of the original."""
    from trtdeploy._shapes import propagate
    from trtdeploy.surgery.fp16 import to_fp16
    from trtdeploy.verify import verify_fp16
    from trtdeploy.yolo.verify import FLOAT16, verify_postprocess

    model, patched = _patched(name)
    half = to_fp16(patched)
    shapes = {"images": [1, 3, 320, 480]} if "dynamic" in name else None
    types = {k: v[0] for k, v in propagate(half, {"images": shapes["images"]} if shapes else None).items()}
    for n in half.graph.node:
        if n.op_type in ("NonMaxSuppression", "TopK", "Greater"):
            assert all(types.get(x) != TP.FLOAT16 for x in n.input if x), n.name
    assert any(t.data_type == TP.FLOAT16 for t in half.graph.initializer)  # the trunk did convert
    thr = [t for t in half.graph.initializer if t.name.startswith("score_threshold")]
    assert thr and all(t.data_type == TP.FLOAT for t in thr)
    report = verify_postprocess(half, shapes=shapes, tol=FLOAT16)
    assert sum(report["detections"]) > 40
    verify_postprocess(patched, shapes=shapes)  # float32: the strict tolerances
    if HEADS[name][0] == "yolov8":  # the raw head output itself, as `trtdeploy fp16 --verify` checks it (an
        verify_fp16(model, to_fp16(model), shapes=shapes)  # end-to-end head's rows reorder: no row-wise check)


def test_without_onnxruntime_only_the_checker_runs(tmp_path):
    import os
    import subprocess
    import sys

    stub = tmp_path / "stub" / "onnxruntime"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('onnxruntime is not installed here')\n")
    env = dict(os.environ, PYTHONPATH=f"{stub.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = tmp_path / "out.onnx"
    proc = subprocess.run([sys.executable, "-m", "trtdeploy.cli", "yolo", "patch", str(fixture_path("yolo26n_raw_320")),
                           "-o", str(out)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
    assert "only onnx.checker ran: onnxruntime is not installed" in proc.stderr
    assert "onnx.checker (full): ok" in proc.stderr and "against ultralytics'" not in proc.stderr


def test_unknown_head_reasons_are_said_once():
    """Several outputs that fail for the same reason (a PicoDet-like head): the sentence once, the outputs listed."""
    x = helper.make_tensor_value_info("images", TP.FLOAT, [1, 3, 64, 64])
    nodes = [helper.make_node("Reshape", ["images", "shape"], [f"out{i}"], name=f"r{i}") for i in range(4)]
    outs = [helper.make_tensor_value_info(f"out{i}", TP.FLOAT, None) for i in range(4)]
    shape = numpy_helper.from_array(np.array([1, 3, 4096], np.int64), "shape")
    m = helper.make_model(helper.make_graph(nodes, "g", [x], outs, [shape]), opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(TrtDeployError) as exc:
        detect(m)
    text = str(exc.value)
    assert text.count("not a YOLOv5 Detect head") == 1 and "outputs 'out0' [1, 3, 4096], 'out1'" in text, text
    assert "no Conv feeds the output" in text and len(text) < 900, text


def test_inspect_says_the_assumed_size_of_a_dynamic_hw():
    proc = run_cli("inspect", fixture_path("yolov8n_dynamic"))
    assert proc.returncode == 0 and "[1, 84, 8400] at an assumed 640x640 input (its H/W is dynamic)" in proc.stdout
    assert "assumed" not in run_cli("inspect", fixture_path("yolov8n_640")).stdout


def test_static_rtdetr_is_patched_at_its_batch(tmp_path):
    """A static RT-DETR export whose batch cannot be made dynamic: patched with its static batch, said
    in a note, and checked at that batch."""
    out = tmp_path / "rt.onnx"
    proc = run_cli("yolo", "patch", fixture_path("rtdetr_tiny"), "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "note: the batch stays static at 1" in proc.stderr and "checked: batch 1 against" in proc.stderr
    patched = onnx.load(out)
    assert patched.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    assert patched.graph.output[1].type.tensor_type.shape.dim[0].dim_value == 1
    proc = run_cli("yolo", "verify", fixture_path("rtdetr_tiny"), out)
    assert proc.returncode == 0 and proc.stdout.count("ok: rtdetr batch 1") == 1, proc.stdout + proc.stderr
    with pytest.raises(TrtDeployError, match="cannot make the model dynamic"):
        patch_detections(load_fixture("rtdetr_tiny"), detect(load_fixture("rtdetr_tiny")))  # the API: refused
