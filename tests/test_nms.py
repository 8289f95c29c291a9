"""The C++ CPU NMS (trtdeploy._C.nms_cpu, the semantics of the TRTDeploy_NMS plugin's kernel) against
the NumPy reference of ultralytics' greedy NMS (trtdeploy.yolo.reference.nms): random and
adversarial inputs, float32 and float16, B = 1..many, K = 1..3840."""

from __future__ import annotations

import numpy as np
import pytest

from trtdeploy import _C
from trtdeploy.yolo import reference as ref


def expected(boxes, scores, classes, iou, thr, d, agnostic, got):
    """The reference's detections per image, near-ties decided as the C++ NMS decided them."""
    out = []
    for b in range(boxes.shape[0]):
        s32 = scores[b].astype(np.float32)
        cand = np.flatnonzero(s32 > np.float32(thr))
        order = cand[np.lexsort((cand, -s32[cand].astype(np.float64)))]
        n = int(got[0][b, 0])
        rows = {(got[1][b, r].tobytes(), got[2][b, r].tobytes(), int(got[3][b, r])) for r in range(n)}

        def kept(i, order=order, rows=rows, b=b):
            j = order[i]
            return (boxes[b, j].tobytes(), scores[b, j].tobytes(), int(classes[b, j])) in rows

        bx = boxes[b, order].astype(np.float32)
        keep, _ = ref.nms(bx, s32[order], classes[b, order], float(np.float32(iou)), d, agnostic, kept)
        keep = sorted(keep, key=lambda i: (-float(s32[order][i]), i))
        out.append(order[keep])
    return out


def check(boxes, scores, classes, iou=0.45, thr=0.25, d=300, agnostic=False):
    got = _C.nms_cpu(boxes, scores, classes, iou, thr, d, agnostic)
    num, ob, os_, oc = got
    assert num.dtype == np.int32 and oc.dtype == np.int32 and ob.dtype == boxes.dtype and os_.dtype == boxes.dtype
    assert ob.shape == (boxes.shape[0], d, 4) and os_.shape == oc.shape == (boxes.shape[0], d)
    for b, idx in enumerate(expected(boxes, scores, classes, iou, thr, d, agnostic, got)):
        n = int(num[b, 0])
        assert n == len(idx), (b, n, len(idx))
        assert ob[b, :n].tobytes() == boxes[b, idx].tobytes()  # bit for bit, in score order
        assert os_[b, :n].tobytes() == scores[b, idx].tobytes()
        assert np.array_equal(oc[b, :n], classes[b, idx])
        assert not ob[b, n:].any() and not os_[b, n:].any() and not oc[b, n:].any()
    return got


def random_case(rng, b, k, nc, dtype=np.float32, size=640.0, spread=60.0):
    xy = rng.uniform(0, size, (b, k, 2))
    wh = rng.uniform(2, spread, (b, k, 2))
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], -1).astype(dtype)
    scores = rng.uniform(0, 1, (b, k)).astype(dtype)
    classes = rng.integers(0, nc, (b, k)).astype(np.int32)
    return boxes, scores, classes


@pytest.mark.parametrize("b, k, nc, agnostic", [(1, 1, 1, False), (1, 100, 3, False), (2, 1000, 80, False),
                                                (3, 1000, 2, True), (1, 3840, 5, False), (7, 300, 1, False)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_random(b, k, nc, agnostic, dtype):
    rng = np.random.default_rng(k + b)
    check(*random_case(rng, b, k, nc, dtype, spread=120.0), agnostic=agnostic)


def test_dense_clusters_many_suppressed():
    rng = np.random.default_rng(1)
    boxes, scores, classes = random_case(rng, 4, 2000, 3, size=100.0, spread=40.0)
    num = check(boxes, scores, classes, iou=0.5, d=100)[0]
    assert 0 < num.min() and num.max() < 2000


def test_identical_boxes_and_tied_scores():
    boxes = np.tile(np.array([10, 10, 50, 50], np.float32), (2, 64, 1))
    scores = np.full((2, 64), 0.5, np.float32)
    classes = np.zeros((2, 64), np.int32)
    classes[1, ::2] = 1
    num = check(boxes, scores, classes)[0]
    assert num[:, 0].tolist() == [1, 2]


def test_ties_by_index():
    boxes = np.array([[[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]]], np.float32)
    scores = np.array([[0.6, 0.9, 0.9]], np.float32)
    got = check(boxes, scores, np.zeros((1, 3), np.int32), d=3)
    assert got[0][0, 0] == 1 and got[1][0, 0].tolist() == [1, 1, 11, 11]  # 0.9 at index 1 before index 2


def test_nested_boxes():
    boxes = np.array([[[0, 0, 100, 100], [10, 10, 90, 90], [40, 40, 60, 60], [45, 45, 55, 55]]], np.float32)
    scores = np.array([[0.9, 0.8, 0.7, 0.6]], np.float32)
    got = check(boxes, scores, np.zeros((1, 4), np.int32), iou=0.5, d=4)
    assert got[0][0, 0] == 3  # 80x80 in 100x100: IoU 0.64 > 0.5; 20x20 in 100x100 kept; 10x10 in 20x20: 0.25


def test_iou_exactly_at_the_threshold_does_not_suppress():
    # IoU exactly 0.5 (inter 50, union 100) and exactly 1/3, in float32 and float64 alike
    boxes = np.array([[[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 5, 10]]], np.float32)
    scores = np.array([[0.9, 0.8, 0.7]], np.float32)
    classes = np.zeros((1, 3), np.int32)
    assert check(boxes, scores, classes, iou=0.5, d=3)[0][0, 0] == 3
    assert check(boxes, scores, classes, iou=0.49, d=3)[0][0, 0] == 1


def test_touching_and_degenerate_boxes_never_suppress():
    boxes = np.array([[[0, 0, 10, 10], [10, 0, 20, 10], [5, 5, 5, 5], [3, 3, 3, 9], [20, 10, 10, 0]]], np.float32)
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]], np.float32)
    got = check(boxes, scores, np.zeros((1, 5), np.int32), iou=0.1, d=5)
    assert got[0][0, 0] == 4  # the inverted box [20,10,10,0] is box 1 in corner order: suppressed by it


def test_all_one_class_vs_agnostic_and_class_aware():
    rng = np.random.default_rng(5)
    boxes, scores, _ = random_case(rng, 2, 500, 1, size=200.0)
    one = np.zeros((2, 500), np.int32)
    a = check(boxes, scores, one)
    b = check(boxes, scores, one, agnostic=True)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    many = check(boxes, scores, rng.integers(0, 10, (2, 500)).astype(np.int32))
    assert (many[0] >= a[0]).all()


def test_score_threshold_strict_and_max_detections():
    boxes, scores, classes = random_case(np.random.default_rng(2), 1, 50, 50, spread=3.0)
    scores[0, :10] = 0.25
    num = check(boxes, scores, classes, thr=0.25, d=5)[0]
    assert num[0, 0] == 5
    got = _C.nms_cpu(boxes, scores, classes, 0.45, 0.99999, 4, False)
    assert got[0][0, 0] == 0 and not got[1].any()


def test_empty_and_rejections():
    z = np.zeros((0, 5, 4), np.float32)
    num = _C.nms_cpu(z, np.zeros((0, 5), np.float32), np.zeros((0, 5), np.int32), 0.5, 0.1, 3, False)[0]
    assert num.shape == (0, 1)
    boxes, scores, classes = random_case(np.random.default_rng(0), 1, 4, 2)
    with pytest.raises(ValueError, match="max_detections"):
        _C.nms_cpu(boxes, scores, classes, 0.5, 0.1, 0, False)
    with pytest.raises(ValueError, match="int32"):
        _C.nms_cpu(boxes, scores, classes.astype(np.int64), 0.5, 0.1, 3, False)
    with pytest.raises(ValueError, match="dtype of boxes"):
        _C.nms_cpu(boxes, scores.astype(np.float16), classes, 0.5, 0.1, 3, False)
    with pytest.raises(ValueError, match="4096"):
        _C.nms_cpu(np.zeros((1, 5000, 4), np.float32), np.zeros((1, 5000), np.float32),
                   np.zeros((1, 5000), np.int32), 0.5, 0.1, 3, False)
    with pytest.raises(ValueError, match="iou_threshold"):
        _C.nms_cpu(boxes, scores, classes, 1.5, 0.1, 3, False)


def test_attribute_table():
    names = [a["name"] for a in _C.nms_attributes()]
    assert names == ["iou_threshold", "score_threshold", "max_detections", "class_agnostic"]
    assert _C.NMS_PLUGIN_NAME == "TRTDeploy_NMS"


# ---- the CUDA kernel (trtdeploy.yolo.nms.nms_cuda) against the C++ CPU NMS, bit for bit -------------

def _gpu_cases():
    rng = np.random.default_rng(7)
    at = np.array([[[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 5, 10]]], np.float32)  # IoU exactly 0.5 and 1/3
    nested = np.array([[[0, 0, 100, 100], [10, 10, 90, 90], [40, 40, 60, 60], [45, 45, 55, 55]]], np.float32)
    same = np.tile(np.array([10, 10, 50, 50], np.float32), (4, 512, 1))
    yield "identical boxes, tied scores", same, np.full((4, 512), 0.5, np.float32), np.zeros((4, 512), np.int32), {}
    yield "nested", nested, np.array([[0.9, 0.8, 0.7, 0.6]], np.float32), np.zeros((1, 4), np.int32), {"iou": 0.5}
    yield "at the threshold", at, np.array([[0.9, 0.8, 0.7]], np.float32), np.zeros((1, 3), np.int32), {"iou": 0.5}
    for b, k, nc, agnostic in [(1, 1, 1, False), (1, 1000, 80, False), (32, 1000, 80, False), (1, 3840, 1, False),
                               (2, 3840, 3, True), (128, 200, 5, False), (5, 4096, 80, False)]:
        for dtype in (np.float32, np.float16):
            boxes, scores, classes = random_case(rng, b, k, nc, dtype, spread=150.0)
            scores[:, ::7] = dtype(0.5)  # ties
            yield f"B={b} K={k} nc={nc} {np.dtype(dtype).name}", boxes, scores, classes, {"agnostic": agnostic}


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(_gpu_cases()), ids=lambda c: c[0])
def test_kernel_equals_cpu(case):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available() or not hasattr(_C, "nms_cuda"):
        pytest.skip("needs a CUDA device and trtdeploy built with CUDA")
    from trtdeploy.yolo.nms import nms_cuda

    _, boxes, scores, classes, kw = case
    iou, agnostic = kw.get("iou", 0.45), kw.get("agnostic", False)
    want = check(boxes, scores, classes, iou=iou, agnostic=agnostic)  # the CPU against the reference first
    dev = [torch.from_numpy(x).cuda() for x in (boxes, scores, classes)]
    for _ in range(2):  # the same answer on a reused workspace
        got = nms_cuda(*dev, iou_threshold=iou, score_threshold=0.25, max_detections=300, class_agnostic=agnostic)
        torch.cuda.synchronize()
        for g, w in zip(got, want):
            assert g.cpu().numpy().tobytes() == w.tobytes()


@pytest.mark.gpu
def test_kernel_in_a_cuda_graph():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available() or not hasattr(_C, "nms_cuda"):
        pytest.skip("needs a CUDA device and trtdeploy built with CUDA")
    from trtdeploy.yolo.nms import allocate_cuda, nms_cuda

    boxes, scores, classes = random_case(np.random.default_rng(3), 8, 1000, 80)
    dev = [torch.from_numpy(x).cuda() for x in (boxes, scores, classes)]
    outputs, workspace = allocate_cuda(dev[0], 300)
    nms_cuda(*dev, outputs=outputs, workspace=workspace)  # loads the kernels before the capture
    s = torch.cuda.Stream()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=s):
        nms_cuda(*dev, outputs=outputs, workspace=workspace, stream=s.cuda_stream)
    for o in outputs:
        o.zero_()
    graph.replay()
    torch.cuda.synchronize()
    for g, w in zip(outputs, _C.nms_cpu(boxes, scores, classes, 0.45, 0.25, 300, False)):
        assert g.cpu().numpy().tobytes() == w.tobytes()


def test_cuda_entry_refuses_bad_arrays_without_a_gpu():
    """What nms_cuda checks before any pointer reaches the kernel (runs on NumPy arrays: no GPU needed)."""
    from trtdeploy.errors import TrtDeployError
    from trtdeploy.yolo.nms import nms_cuda

    boxes, scores, classes = random_case(np.random.default_rng(0), 1, 10, 2)
    with pytest.raises(TrtDeployError, match="without CUDA|torch CUDA tensors or cupy arrays"):
        nms_cuda(boxes, scores, classes)
