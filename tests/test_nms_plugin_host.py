"""TRTDeploy_NMS driven through IPluginV3 by the test host (tests/plugin_host/), once per plugin library
built: creator identity and fields (from the one attribute table), output types and shapes through
the host's expression builder, formats, configure, workspace from the profile's max, serialization
round trip, clone/attach, rejections with their log lines, and enqueue: the error path without a
GPU; on a GPU (marked ``gpu``) every output against the C++ CPU NMS bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from test_plugin_host import LIBS, host, lib_params  # noqa: F401  (the fixture and the libraries)

from trtdeploy import _C

pytestmark = pytest.mark.skipif(not LIBS, reason="no plugin library was built")
LAYER = "/model/TRTDeploy_NMS"


def make(host, lib, max_det=300, iou=0.45, thr=0.25, agnostic=0, extra=()):
    h = host(lib)
    assert h("creator TRTDeploy_NMS")["ok"]
    h.fields([f"field max_detections int32 {max_det}", f"field iou_threshold float32 {iou}",
              f"field score_threshold float32 {thr}", f"field class_agnostic int32 {agnostic}",
              "field plugin_version char 49", *extra])
    return h


def inputs(t, b, k):
    return f"{t}:{b}x{k}x4 {t}:{b}x{k} int32:{b}x{k}"


@lib_params
def test_creator_identity_and_fields(host, lib):
    h = host(lib)
    c = next(c for c in h.creators if c.get("name") == "TRTDeploy_NMS")
    assert (c["kind"], c["major"], c["version"], c["namespace"]) == ("PLUGIN CREATOR_V3ONE", 1, "1", "")
    want = [{"name": s["name"], "type": "int32" if s["type"] == "int" else "float32", "length": 1}
            for s in _C.nms_attributes()]
    assert c["fields"] == want


@lib_params
@pytest.mark.parametrize("t", ["float32", "float16"])
def test_build_phase(host, lib, t):
    h = make(host, lib, max_det=100)
    assert h("create build " + LAYER)["ok"]
    caps = h("capabilities")
    assert caps["name"] == "TRTDeploy_NMS" and caps["nb_outputs"] == 4
    types = h(f"datatypes {t} {t} int32")
    assert types["rc"] == 0 and types["types"] == ["int32", t, t, "int32"]
    s = h("shapes B,K,4 B,K B,K -- B=1,K=1000 B=32,K=3840")
    assert s["rc"] == 0
    assert [[d["values"] for d in o] for o in s["outputs"]] == [
        [[1, 32], [1, 1]], [[1, 32], [100, 100], [4, 4]], [[1, 32], [100, 100]], [[1, 32], [100, 100]]]
    ok = h(f"formats 3 {t}:0 {t}:0 int32:0 int32:0 {t}:0 {t}:0 int32:0")["supported"]
    assert ok == [True] * 7
    other = "float16" if t == "float32" else "float32"
    assert h(f"formats 3 {t}:0 {other}:0 int32:0 int32:0 {t}:0 {t}:0 int32:0")["supported"][1] is False
    assert h(f"formats 3 {t}:1 {t}:0 int32:0 int32:0 {t}:0 {t}:0 int32:0")["supported"][0] is False
    dyn = f"{t}:-1x-1x4:1x1x4:32x3840x4 {t}:-1x-1:1x1:32x3840 int32:-1x-1:1x1:32x3840"
    assert h("configure " + dyn)["rc"] == 0
    ws = h("workspace " + dyn)["bytes"]
    words = (3840 + 63) // 64
    assert ws >= 32 * 3840 * words * 8 and ws == h("workspace " + dyn.replace("32x", "32x"))["bytes"]
    small = h("workspace " + dyn.replace("32x3840", "1x10"))["bytes"]
    assert 0 < small < ws


@lib_params
def test_serialize_round_trip_clone_attach(host, lib):
    h = make(host, lib, max_det=7, iou=0.6, thr=0.1, agnostic=1)
    assert h("create build " + LAYER)["ok"]
    fields = {f["name"]: (f["type"], f["values"]) for f in h("serialize")["fields"]}
    assert fields == {"iou_threshold": ("float32", [pytest.approx(0.6)]),
                      "score_threshold": ("float32", [pytest.approx(0.1)]),
                      "max_detections": ("int32", [7]), "class_agnostic": ("int32", [1])}
    assert h("create runtime " + LAYER)["ok"]  # the serialized fields, through the same createPlugin
    assert {f["name"]: f["values"] for f in h("serialize")["fields"]} == {k: v[1] for k, v in fields.items()}
    assert h("clone")["ok"] and h("attach")["ok"]
    assert h("shapechange " + inputs("float32", 2, 50))["rc"] == 0
    assert h("shapes B,K,4 B,K B,K -- B=2,K=50")["outputs"][1][1]["values"] == [7]


@lib_params
@pytest.mark.parametrize("fields, log", [
    (["field iou_threshold float32 0.5"], "missing required field 'max_detections'"),
    (["field max_detections int32 0"], "max_detections must be 1 to 4096"),
    (["field max_detections int32 5000"], "max_detections must be 1 to 4096"),
    (["field max_detections int32 10", "field iou_threshold float32 1.5"], "iou_threshold must be in [0, 1]"),
    (["field max_detections int32 10", "field class_agnostic int32 2"], "class_agnostic must be 0 or 1"),
    (["field max_detections int32 10", "field topk int32 2"], "unknown field 'topk'"),
    (["field max_detections int32 10", "field max_detections int32 2"], "field 'max_detections' given twice"),
    (["field max_detections float32 10"], "field 'max_detections' must be one int32"),
    (["field max_detections int32 10", "field score_threshold float32 nan"],
     "field 'score_threshold' must be a finite number"),
])
def test_create_rejections(host, lib, fields, log):
    h = host(lib)
    h("creator TRTDeploy_NMS")
    h.fields(fields)
    r = h("create build " + LAYER)
    assert r["ok"] is False and r["logs"] == [f"ERROR: TRTDeploy_NMS ({LAYER}) createPlugin: {log}"], r


@lib_params
@pytest.mark.parametrize("command, log", [
    ("configure float32:1x5x4 float16:1x5 int32:1x5", "input 1 (scores) is float16, boxes are float32"),
    ("configure float32:1x5x4 float32:1x5 int64:1x5", "input 2 (classes) is int64; it must be int32"),
    ("configure int32:1x5x4 int32:1x5 int32:1x5", "input 0 (boxes) is int32; float32 or float16"),
    ("configure float32:1x5x3 float32:1x5 int32:1x5", "input 0 (boxes) must be [B, K, 4]"),
    ("configure float32:1x5x4 float32:1x6 int32:1x5", "inputs disagree on K: 5 vs 6"),
    ("configure float32:2x5x4 float32:1x5 int32:2x5", "inputs disagree on B: 2 vs 1"),
    ("configure float32:1x5000x4 float32:1x5000 int32:1x5000", "5000 candidates per image; at most 4096"),
    ("configure float32:1x5x4 float32:1x5", "takes 3 inputs (boxes, scores, classes), not 2"),
    ("configure float32:-1x-1x4:1x1x4:1x5000x4 float32:-1x-1:1x1:1x5000 int32:-1x-1:1x1:1x5000",
     "the profile's max boxes shape must be [B <= 65535, K <= 4096, 4]"),
])
def test_shape_and_type_rejections(host, lib, command, log):
    h = make(host, lib)
    assert h("create build " + LAYER)["ok"]
    r = h(command)
    assert r["rc"] == -1 and len(r["logs"]) == 1 and r["logs"][0].startswith(
        f"ERROR: TRTDeploy_NMS ({LAYER}) configurePlugin: {log}"), r


def _gpu(h) -> bool:
    return h("devices")["count"] > 0


@lib_params
def test_enqueue_without_gpu_fails_cleanly(host, lib):
    h = make(host, lib)
    assert h("create runtime " + LAYER)["ok"]
    if _gpu(h):
        pytest.skip("a CUDA device is visible: the GPU test below runs enqueue for real")
    assert h("shapechange " + inputs("float32", 2, 100))["rc"] == 0
    r = h("enqueue " + inputs("float32", 2, 100) + " -- /nonexistent /nonexistent")
    assert r["device"] is False and r["rc"] == -1 and r["output_shapes"][1] == [2, 300, 4]
    assert len(r["logs"]) == 1 and f"TRTDeploy_NMS ({LAYER}) enqueue: the NMS kernels did not launch: cuda" in \
        r["logs"][0], r
    r = h("enqueue " + inputs("float32", 2, 100) + " -- /nonexistent /nonexistent noworkspace")
    assert r["rc"] == -1 and "enqueue: no workspace; these shapes need" in r["logs"][0], r
    h("devices")


@pytest.mark.gpu
@lib_params
@pytest.mark.parametrize("b, k, agnostic", [(1, 1, 0), (3, 1000, 0), (2, 3840, 1), (128, 200, 0)])
def test_enqueue_on_gpu_equals_cpu(host, lib, tmp_path, b, k, agnostic):
    h = make(host, lib, max_det=300, agnostic=agnostic)
    assert h("create runtime " + LAYER)["ok"]
    if not _gpu(h):
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(k)
    xy = rng.uniform(0, 640, (b, k, 2))
    wh = rng.uniform(2, 150, (b, k, 2))
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], -1).astype(np.float32)
    boxes[:, : k // 4] = boxes[:, :1]  # identical boxes
    scores = rng.uniform(0, 1, (b, k)).astype(np.float32)
    scores[:, ::7] = 0.5  # ties
    classes = rng.integers(0, 3, (b, k)).astype(np.int32)
    (tmp_path / "in.bin").write_bytes(boxes.tobytes() + scores.tobytes() + classes.tobytes())
    assert h("shapechange " + inputs("float32", b, k))["rc"] == 0
    r = h("enqueue " + inputs("float32", b, k) + f" -- {tmp_path / 'in.bin'} {tmp_path / 'out'}")
    assert r["rc"] == 0 and r["logs"] == [], r
    want = _C.nms_cpu(boxes, scores, classes, 0.45, 0.25, 300, bool(agnostic))
    for o, w in enumerate(want):
        got = np.fromfile(tmp_path / f"out.{o}.bin", dtype=w.dtype).reshape(w.shape)
        assert got.tobytes() == w.tobytes(), o
