"""The YOLO decode, three implementations of one semantics (plugins/yolo_layer/README.md): the NumPy
oracle, the C++ CPU decode and the CUDA kernel, against each other and against an independent
brute-force reference for the max_detections (top-K) rule. GPU tests are marked `gpu` and need torch
with a CUDA device; everything else runs on any machine."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_fixture, ort_run

from trtdeploy import TrtDeployError
from trtdeploy.yolo.decode import _check_buffers, decode_cpu, decode_numpy
from trtdeploy.yolo.patch import patch, trunk
from trtdeploy.yolo.verify_v5 import plugin_params

P5 = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]
SHAPES_P5 = [(3, 255, 20, 24), (3, 255, 10, 12), (3, 255, 5, 6)]  # a 160x192 input, batch 3


def _levels(seed, shapes, dtype=np.float32, skew=3.0):
    rng = np.random.default_rng(seed)
    return [(rng.random(s, dtype=np.float32) ** skew).astype(dtype) for s in shapes]


def _assert_same(got, want):
    """Same rows, bit for bit: counts, classes, scores (one float32 multiply everywhere) and boxes (the same
    float32 operations in the same order, none fused into an FMA: yoloDecode.h, make_box)."""
    names = ("num_detections", "boxes", "scores", "classes")
    for name, x, y in zip(names, got, want):
        assert x.shape == y.shape and x.dtype == y.dtype, (name, x.shape, y.shape, x.dtype, y.dtype)
        np.testing.assert_array_equal(x, y, err_msg=name)


def _brute_force_rows(levels, anchors, max_stride, nc, thr, mode, max_det):
    """Independent reference for which anchors are kept and in which order: every kept anchor of the
    oracle with max_detections=0, then Python's sort by (score desc, anchor) and back to anchor order."""
    num, boxes, scores, classes = decode_numpy(levels, anchors, max_stride, nc, thr, mode, 0)
    out = []
    for b in range(num.shape[0]):
        n = int(num[b, 0])
        rows = list(range(n))  # row i of the full decode is the i-th kept anchor in anchor order
        if max_det and n > max_det:
            rows = sorted(sorted(rows, key=lambda i: (-float(scores[b, i]), i))[:max_det])
        out.append((boxes[b, rows], scores[b, rows], classes[b, rows]))
    return out


def _check_rows(result, reference):
    num, boxes, scores, classes = result
    for b, (rb, rs, rc) in enumerate(reference):
        n = int(num[b, 0])
        assert n == len(rs)
        np.testing.assert_array_equal(scores[b, :n], rs)
        np.testing.assert_array_equal(classes[b, :n], rc)
        np.testing.assert_array_equal(boxes[b, :n], rb)
        assert not boxes[b, n:].any() and not scores[b, n:].any() and not classes[b, n:].any()


# ---- C++ CPU decode vs the oracle ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("mode", [0, 1])
def test_cpp_equals_oracle_random(dtype, mode):
    lv = _levels(1, SHAPES_P5, dtype)
    for thr in (-1.0, 0.0, 0.05, 0.3, 0.99):  # every anchor ... dense ... sparse ... none
        for max_det in (0, 1, 37, 500, 10**6):
            _assert_same(decode_cpu(lv, P5, 32, 80, thr, mode, max_det), decode_numpy(lv, P5, 32, 80, thr, mode, max_det))


def test_max_detections_keeps_the_best_not_the_first():
    """Fine-level anchors come first in anchor order but score low; the coarse level holds the best."""
    shapes = [(2, 3 * 9, 16, 16), (2, 3 * 9, 8, 8), (2, 3 * 9, 4, 4)]
    lv = _levels(5, shapes, skew=1.0)
    lv[0][:, 4::9] *= 0.4  # objectness of every anchor of the finest level: at most 0.4
    lv[2][:, 4::9] = 0.99
    anchors = [12, 12, 24, 30, 40, 20] * 3
    first_k = decode_numpy(lv, anchors, 32, 4, 0.1, 0, 0)
    for max_det in (1, 10, 48, 100):
        for impl in (decode_numpy, decode_cpu):
            got = impl(lv, anchors, 32, 4, 0.1, 0, max_det)
            _check_rows(got, _brute_force_rows(lv, anchors, 32, 4, 0.1, 0, max_det))
        # the rule makes a difference here: the first max_det rows in anchor order are not the best
        assert not np.array_equal(got[2][:, :max_det], first_k[2][:, :max_det])


def _saturated_levels(shapes, seed: int = 7) -> list[np.ndarray]:
    """fp16 levels of 3 anchors x 2 classes where 30% of the anchors saturate: objectness 1.0 and both
    classes 1.0 (class 0, the first maximum, wins): many scores exactly 1.0."""
    rng = np.random.default_rng(seed)
    lv = [rng.uniform(0.3, 0.9, s).astype(np.float16) for s in shapes]
    for x in lv:
        sat = rng.random((x.shape[0], 3, x.shape[2], x.shape[3])) < 0.3
        for a in range(3):
            for k in (4, 5, 6):  # obj, class 0, class 1
                x[:, a * 7 + k][sat[:, a]] = 1.0
    return lv


def test_ties_are_broken_by_anchor_order():
    """Saturated fp16 sigmoids: many scores exactly 1.0, more than max_detections of them."""
    lv = _saturated_levels([(2, 3 * 7, 8, 8), (2, 3 * 7, 4, 4)])
    anchors = [10, 10, 20, 20, 30, 30, 40, 40, 50, 50, 60, 60]
    full = decode_numpy(lv, anchors, 16, 2, 0.25, 0, 0)
    n_ones = (full[2] == 1.0).sum(1)
    assert n_ones.min() > 20
    for max_det in (5, 20, int(n_ones.min()), int(n_ones.max()) + 3):
        ref = _brute_force_rows(lv, anchors, 16, 2, 0.25, 0, max_det)
        for impl in (decode_numpy, decode_cpu):
            got = impl(lv, anchors, 16, 2, 0.25, 0, max_det)
            _check_rows(got, ref)
    got = decode_cpu(lv, anchors, 16, 2, 0.25, 0, 5)
    assert (got[2] == 1.0).all() and (got[3] == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_signed_zero_scores_tie(dtype):
    """-0.0 and +0.0 scores compare equal: ties in anchor order, whatever the sign."""
    shapes = [(1, 6, 4, 4)]  # 1 anchor, 1 class
    x = np.full(shapes[0], 0.5, dtype)
    x[0, 5] = np.where(np.arange(16).reshape(4, 4) % 2 == 0, -0.0, 0.0)  # class prob -0 / +0
    x[0, 5, 3, 3] = 0.25  # one clear winner, last in anchor order
    ref = _brute_force_rows([x], [8, 8], 8, 1, -1.0, 0, 5)
    assert ref[0][1][-1] == 0.125
    for impl in (decode_numpy, decode_cpu):
        got = impl([x], [8, 8], 8, 1, -1.0, 0, 5)
        _check_rows(got, ref)
        assert list(np.signbit(got[2][0, :4])) == [True, False, True, False]  # anchors 0..3, signs kept
    # between classes: -0 and +0 are equal, the first class wins and its value (sign) is the score's
    y = np.full((1, 7, 2, 2), 0.5, dtype)
    y[0, 5] = [[-0.0, 0.0], [-0.0, 0.0]]
    y[0, 6] = [[0.0, -0.0], [-0.0, 0.0]]
    for impl in (decode_numpy, decode_cpu):
        num, _, scores, classes = impl([y], [8, 8], 8, 2, -1.0)
        assert num[0, 0] == 4 and (classes == 0).all()
        assert list(np.signbit(scores[0])) == [True, False, True, False]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_nan_inputs(dtype):
    """NaN class probabilities never win; a NaN objectness or score is never kept; same everywhere."""
    lv = _levels(3, [(2, 3 * 9, 8, 8), (2, 3 * 9, 4, 4)], dtype, skew=1.0)
    rng = np.random.default_rng(3)
    for x in lv:
        x[rng.random(x.shape) < 0.05] = np.nan
        x[rng.random(x.shape) < 0.02] = np.inf
        x[rng.random(x.shape) < 0.02] = -np.inf
        x[0, 5:9, 0, 0] = np.nan  # every class of anchor 0: class 0, score -inf -> dropped
        x[0, 4, 0, 0] = 0.9
    anchors = [12, 12, 24, 30, 40, 20, 60, 60, 90, 70, 120, 140]
    for thr, max_det in ((0.1, 0), (0.1, 9), (-1.0, 0)):
        a = decode_cpu(lv, anchors, 16, 4, thr, 0, max_det)
        b = decode_numpy(lv, anchors, 16, 4, thr, 0, max_det)
        np.testing.assert_array_equal(a[0], b[0])
        for x, y in zip(a[1:], b[1:]):
            np.testing.assert_array_equal(x, y)  # NaN boxes where a box channel is NaN, on both sides
        assert not np.isnan(a[2]).any()


def test_fp16_inputs_every_bit_pattern():
    """All 65536 half values through the C++ conversion: the x channel of kept anchors."""
    h, w = 256, 256
    x = np.full((1, 6, h, w), 0.5, np.float16)
    x[0, 0] = np.arange(65536, dtype=np.uint16).view(np.float16).reshape(h, w)
    x[0, 4] = 0.9
    a = decode_cpu([x], [8, 8], 8, 1, 0.1)
    b = decode_numpy([x], [8, 8], 8, 1, 0.1)
    assert a[0][0, 0] == h * w
    np.testing.assert_array_equal(a[1], b[1])  # NaN == NaN here
    assert len(np.unique(a[1][0, 1:1024, 0])) == 1023  # the 1023 positive subnormals stay distinct


def test_every_anchor_when_max_detections_is_zero():
    lv = _levels(4, SHAPES_P5)
    total = sum(s[1] // 85 * s[2] * s[3] for s in SHAPES_P5)
    got = decode_cpu(lv, P5, 32, 80, -1.0, 0, 0)
    assert got[1].shape == (3, total, 4) and (got[0] == total).all()
    _assert_same(got, decode_numpy(lv, P5, 32, 80, -1.0))


def test_thread_count_does_not_change_the_bytes():
    """Also planes split into several tasks (level 0 has 100*96 > 8192 cells)."""
    lv = _levels(6, [(3, 3 * 13, 100, 96), (3, 3 * 13, 50, 48)], np.float16)
    anchors = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119]
    for thr, max_det in ((0.0, 0), (0.02, 100), (0.3, 0)):
        ref = decode_cpu(lv, anchors, 16, 8, thr, 0, max_det, threads=1)
        for threads in (2, 3, 8):
            got = decode_cpu(lv, anchors, 16, 8, thr, 0, max_det, threads=threads)
            assert all(np.array_equal(x, y) for x, y in zip(got, ref)), threads
        _assert_same(ref, decode_numpy(lv, anchors, 16, 8, thr, 0, max_det))


def test_cpp_equals_oracle_on_real_head_tensors():
    from trtdeploy import make_dynamic

    patched = patch(make_dynamic(load_fixture("yolov5_p6_op13")))  # batch-dynamic, then patched
    assert patched.graph.output[1].type.tensor_type.shape.dim[0].dim_param == "batch"
    trunk_model, node = trunk(patched)
    x = np.random.default_rng(0).random((2, 3, 256, 256), dtype=np.float32)
    levels = ort_run(trunk_model, {"images": x})
    p = plugin_params(node)
    for thr, max_det in ((-1.0, 0), (0.001, 0), (0.001, 50)):
        a = decode_cpu(levels, p["anchors"], p["max_stride"], p["num_classes"], thr, 0, max_det)
        b = decode_numpy(levels, p["anchors"], p["max_stride"], p["num_classes"], thr, 0, max_det)
        _assert_same(a, b)


def test_decode_rejects_bad_shapes():
    with pytest.raises(TrtDeployError, match="level 1"):
        decode_cpu(_levels(0, [(1, 255, 8, 8), (1, 254, 4, 4)]), P5[:12], 16, 80)
    with pytest.raises(TrtDeployError):
        decode_numpy(_levels(0, [(1, 255, 8, 8)]), P5[:5], 8, 80)


def test_preallocated_cuda_buffers_are_checked():
    """decode_cuda passes raw pointers: outputs and workspace of the wrong size are refused first."""
    from trtdeploy import _C

    if not hasattr(_C, "yolo_decode_cuda"):
        pytest.skip("built without CUDA")
    shapes = [(2, 255, 8, 8), (2, 255, 4, 4)]
    plan = _C.yolo_decode_plan([list(s) for s in shapes], [float(a) for a in P5[:12]], 16, 80, 50)
    assert plan["max_detections"] == 50
    outs = [np.zeros((2, 1), np.int32), np.zeros((2, 50, 4), np.float32), np.zeros((2, 50), np.float32),
            np.zeros((2, 50), np.int32)]
    ws = np.zeros(plan["workspace_bytes"], np.uint8)
    _check_buffers(shapes, P5[:12], 16, 80, 50, outs, ws)
    with pytest.raises(TrtDeployError, match="boxes output"):
        _check_buffers(shapes, P5[:12], 16, 80, 60, outs, ws)
    with pytest.raises(TrtDeployError, match="workspace"):
        _check_buffers(shapes, P5[:12], 16, 80, 50, outs, ws[:-1])
    # the kernel reads and writes boxes and workspace 16 bytes at a time
    for name in ("boxes output", "workspace"):
        raw = np.zeros(plan["workspace_bytes"] + 64, np.uint8)
        off = (4 - raw.ctypes.data) % 16  # an address that is 4 mod 16
        if name == "workspace":
            bufs = outs, raw[off:off + plan["workspace_bytes"]]
        else:
            bufs = outs[:1] + [raw[off:off + 2 * 50 * 16].view(np.float32).reshape(2, 50, 4)] + outs[2:], ws
        with pytest.raises(TrtDeployError, match=f"the {name} starts at an address that is not a multiple of 16"):
            _check_buffers(shapes, P5[:12], 16, 80, 50, *bufs)
    # the workspace for the largest shapes serves every smaller one (same max_detections); with
    # max_detections set it also holds the anchors past the rows, for the top-K selection
    big = [[8, 255, 16, 16], [8, 255, 8, 8]]
    size = {m: _C.yolo_decode_plan(big, [float(a) for a in P5[:12]], 16, 80, m)["workspace_bytes"] for m in (0, 50)}
    assert size[50] >= plan["workspace_bytes"] and size[50] > size[0]


# ---- GPU: the CUDA kernel against the oracle (skipped without a CUDA device) ------------------------

def _torch_cuda():
    try:
        import torch
    except (ImportError, OSError):  # not installed (CI), or a build whose CUDA libraries do not load
        return None
    return torch if torch.cuda.is_available() else None


gpu = pytest.mark.skipif(_torch_cuda() is None, reason="needs torch with a CUDA GPU")


def _cuda(levels, anchors, max_stride, nc, thr, mode, max_det, garbage=True):
    """The kernel on copies of numpy levels, into outputs prefilled with garbage (NaN / 0x7F7F7F7F)."""
    torch = _torch_cuda()
    from trtdeploy.yolo.decode import allocate_cuda, decode_cuda

    dev = [torch.from_numpy(np.ascontiguousarray(x)).cuda() for x in levels]
    outputs, ws = allocate_cuda(dev, anchors, max_stride, nc, max_det)
    if garbage:
        for o in outputs:
            o.view(torch.uint8).fill_(0x7F)
        ws.fill_(0xA5)
    decode_cuda(dev, anchors, max_stride, nc, thr, mode, max_det, outputs=outputs, workspace=ws)
    torch.cuda.synchronize()
    return [o.cpu().numpy() for o in outputs]


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("batch", [1, 8, 128])
def test_cuda_equals_oracle(dtype, batch):
    shapes = [(batch, 255, 80, 80), (batch, 255, 40, 40), (batch, 255, 20, 20)] if batch < 128 else \
        [(batch, 255, 20, 24), (batch, 255, 10, 12), (batch, 255, 5, 6)]
    lv = _levels(4, shapes, getattr(np, dtype))
    for thr, mode, max_det in ((0.25, 0, 0), (0.05, 1, 0), (0.01, 0, 300), (-1.0, 0, 0), (-1.0, 0, 1000),
                               (0.99, 0, 0), (0.0, 0, 7)):
        want = decode_numpy(lv, P5, 32, 80, thr, mode, max_det)
        got = _cuda(lv, P5, 32, 80, thr, mode, max_det)
        _assert_same(got, want)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("nc,na,grids", [(1, 1, [(7, 9)]), (3, 4, [(40, 17), (20, 9), (10, 5), (5, 3)]),
                                         (300, 3, [(24, 24), (12, 12)]), (1000, 2, [(10, 10)])])
def test_cuda_odd_layouts(nc, na, grids):
    """Tiles straddling levels and anchors, 1 to 1000 classes (both class-search paths), clustered and
    scattered candidates."""
    rng = np.random.default_rng(nc)
    shapes = [(3, na * (nc + 5), h, w) for h, w in grids]
    lv = [rng.random(s, dtype=np.float32) ** 4 for s in shapes]
    lv[0][1, :, : grids[0][0] // 2] **= 0.05  # a dense cluster in image 1
    stride = 8 * 2 ** (len(grids) - 1)
    anchors = list(rng.uniform(5, 300, 2 * na * len(grids)))
    for thr, max_det in ((0.3, 0), (0.05, 0), (0.05, 11), (-1.0, 0)):
        _assert_same(_cuda(lv, anchors, stride, nc, thr, 0, max_det),
                     decode_numpy(lv, anchors, stride, nc, thr, 0, max_det))


@pytest.mark.gpu
@gpu
def test_cuda_top_k_ties_and_signed_zeros():
    lv = _saturated_levels([(4, 3 * 7, 40, 40), (4, 3 * 7, 20, 20)])
    anchors = [10, 10, 20, 20, 30, 30, 40, 40, 50, 50, 60, 60]
    for max_det in (5, 300, 1000, 2000, 0):
        _check_rows(_cuda(lv, anchors, 16, 2, 0.25, 0, max_det), _brute_force_rows(lv, anchors, 16, 2, 0.25, 0, max_det))
    x = np.full((2, 6, 64, 64), 0.5, np.float32)
    x[:, 5] = np.where(np.arange(64 * 64).reshape(64, 64) % 2 == 0, -0.0, 0.0)
    _check_rows(_cuda([x], [8, 8], 8, 1, -1.0, 0, 777), _brute_force_rows([x], [8, 8], 8, 1, -1.0, 0, 777))


@pytest.mark.gpu
@gpu
def test_cuda_deterministic_and_in_a_cuda_graph():
    torch = _torch_cuda()
    from trtdeploy.yolo.decode import allocate_cuda, decode_cuda

    shapes = [(16, 255, 80, 80), (16, 255, 40, 40), (16, 255, 20, 20)]
    lv = _levels(8, shapes, np.float16, skew=2.0)
    dev = [torch.from_numpy(x).cuda() for x in lv]
    for max_det in (0, 100):
        outputs, ws = allocate_cuda(dev, P5, 32, 80, max_det)
        runs = []
        for _ in range(20):
            decode_cuda(dev, P5, 32, 80, 0.2, 0, max_det, outputs=outputs, workspace=ws)
            runs.append([o.cpu().numpy() for o in outputs])
        assert all(all(np.array_equal(x, y) for x, y in zip(r, runs[0])) for r in runs[1:])
        _assert_same(runs[0], decode_numpy(lv, P5, 32, 80, 0.2, 0, max_det))

        # captured once, replayed on new input contents: the graph holds no stale state
        stream = torch.cuda.Stream()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.stream(stream):
            decode_cuda(dev, P5, 32, 80, 0.2, 0, max_det, outputs=outputs, workspace=ws)  # warm-up
            torch.cuda.current_stream().synchronize()
            with torch.cuda.graph(graph, stream=stream):
                decode_cuda(dev, P5, 32, 80, 0.2, 0, max_det, outputs=outputs, workspace=ws)
        for seed in (9, 10, 11):
            new = _levels(seed, shapes, np.float16, skew=1.5 + seed % 3)
            for d, x in zip(dev, new):
                d.copy_(torch.from_numpy(x))
            for o in outputs:
                o.view(torch.uint8).fill_(0x7F)
            graph.replay()
            graph.replay()
            torch.cuda.synchronize()
            _assert_same([o.cpu().numpy() for o in outputs], decode_numpy(new, P5, 32, 80, 0.2, 0, max_det))


@pytest.mark.gpu
@gpu
def test_cuda_workspace_sized_for_the_largest_shapes():
    """One workspace sized from the largest batch and grid (as getWorkspaceSize does) serves smaller ones."""
    torch = _torch_cuda()
    from trtdeploy import _C
    from trtdeploy.yolo.decode import decode_cuda

    big = _C.yolo_decode_plan([[32, 255, 80, 80], [32, 255, 40, 40], [32, 255, 20, 20]],
                              [float(a) for a in P5], 32, 80, 300)
    ws = torch.full((big["workspace_bytes"],), 0x5A, dtype=torch.uint8, device="cuda")
    for batch, size in ((32, 640), (1, 640), (7, 320), (32, 96)):
        shapes = [(batch, 255, size // s, size // s) for s in (8, 16, 32)]
        lv = _levels(batch + size, shapes, skew=1.2)
        dev = [torch.from_numpy(x).cuda() for x in lv]
        n = min(300, sum(3 * (size // s) ** 2 for s in (8, 16, 32)))
        outputs = (torch.empty((batch, 1), dtype=torch.int32, device="cuda"),
                   torch.empty((batch, n, 4), device="cuda"), torch.empty((batch, n), device="cuda"),
                   torch.empty((batch, n), dtype=torch.int32, device="cuda"))
        decode_cuda(dev, P5, 32, 80, 0.1, 0, 300, outputs=outputs, workspace=ws)
        _assert_same([o.cpu().numpy() for o in outputs], decode_numpy(lv, P5, 32, 80, 0.1, 0, 300))


@pytest.mark.gpu
@gpu
def test_cuda_runs_on_the_levels_device():
    """Levels on the second GPU while the first is current: outputs, workspace, stream and launch on the
    levels' device; arrays on another device are refused."""
    torch = _torch_cuda()
    from trtdeploy.yolo.decode import allocate_cuda, decode_cuda

    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    lv = _levels(12, SHAPES_P5, np.float16)
    want = decode_numpy(lv, P5, 32, 80, 0.1, 0, 50)
    torch.cuda.set_device(0)
    dev = [torch.from_numpy(x).to("cuda:1") for x in lv]
    got = decode_cuda(dev, P5, 32, 80, 0.1, 0, 50)
    assert all(o.device == torch.device("cuda:1") for o in got) and torch.cuda.current_device() == 0
    torch.cuda.synchronize(1)
    _assert_same([o.cpu().numpy() for o in got], want)
    outputs, ws = allocate_cuda(dev, P5, 32, 80, 50)
    assert ws.device == torch.device("cuda:1")
    with pytest.raises(TrtDeployError, match="workspace is on CUDA device 0, level 0 on device 1"):
        decode_cuda(dev, P5, 32, 80, 0.1, 0, 50, outputs=outputs, workspace=ws.to("cuda:0"))


@pytest.mark.gpu
@gpu
def test_cuda_on_real_head_tensors():
    torch = _torch_cuda()
    from trtdeploy import make_dynamic
    from trtdeploy.yolo.decode import decode_cuda

    patched = patch(make_dynamic(load_fixture("yolov5_p6_op13")))
    trunk_model, node = trunk(patched)
    x = np.random.default_rng(0).random((4, 3, 256, 256), dtype=np.float32)
    levels = ort_run(trunk_model, {"images": x})
    p = plugin_params(node)
    for max_det in (0, 40):
        got = decode_cuda([torch.from_numpy(v).cuda() for v in levels], p["anchors"], p["max_stride"],
                          p["num_classes"], 0.0005, 0, max_det)
        want = decode_numpy(levels, p["anchors"], p["max_stride"], p["num_classes"], 0.0005, 0, max_det)
        _assert_same([t.cpu().numpy() for t in got], want)
