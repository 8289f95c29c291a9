"""The YOLO decode, three ways with one semantics (plugins/yolo_layer/README.md):

* ``decode_numpy``: the NumPy oracle every other implementation is tested against;
* ``decode_cpu``: the C++ version in trtdeploy._C;
* ``decode_cuda``: the CUDA kernel, on torch or cupy GPU arrays (``__cuda_array_interface__``).

All take the sigmoid-activated levels [B, na*(nc+5), H, W] (finest first), anchors in pixels
(level by level, (w, h) pairs), ``max_stride`` and return
(num_detections [B,1] int32, boxes [B,N,4] float32 x1y1x2y2, scores [B,N] float32, classes [B,N] int32),
rows in anchor order (level, anchor, y, x), rows past num_detections zero. With max_detections = N
and more kept anchors than N, the N highest-scoring rows are kept (ties in anchor order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import TrtDeployError


def _layout(shapes, anchors, max_stride, num_classes):
    levels = len(shapes)
    anchors = np.asarray(anchors, np.float32).reshape(-1)
    if levels == 0 or anchors.size % (2 * levels):
        raise TrtDeployError(f"{anchors.size} anchor values do not split into {levels} levels of (w, h) pairs")
    na = anchors.size // (2 * levels)
    no = num_classes + 5
    last_h = shapes[-1][2]
    strides = []
    for i, s in enumerate(shapes):
        if len(s) != 4 or s[1] != na * no:
            raise TrtDeployError(f"level {i}: shape {list(s)} is not [B, {na}*({num_classes}+5), H, W]")
        if (max_stride * last_h) % s[2]:
            raise TrtDeployError(f"level {i}: grid {s[2]} does not divide the input size {max_stride * last_h}")
        strides.append(np.float32(max_stride * last_h // s[2]))
    return anchors.reshape(levels, na, 2), na, strides


def decode_numpy(levels: Sequence[np.ndarray], anchors, max_stride: int, num_classes: int,
                 score_threshold: float = 0.25, score_mode: int = 0, max_detections: int = 0):
    """The oracle: plain NumPy, float32 arithmetic in the kernel's order (plugins/yolo_layer/README.md)."""
    shapes = [lv.shape for lv in levels]
    anchor_px, na, strides = _layout(shapes, anchors, max_stride, num_classes)
    b = shapes[0][0]
    no = num_classes + 5
    thr = np.float32(score_threshold)
    per_level = []
    for lv, (_, _, h, w), stride, anc in zip(levels, shapes, strides, anchor_px):
        with np.errstate(all="ignore"):  # NaN/inf inputs decode to NaN/inf boxes, silently
            per_level.append(_decode_level(lv, b, na, no, h, w, stride, anc, thr, score_mode))
    boxes = np.concatenate([x[0] for x in per_level], 1)
    scores = np.concatenate([x[1] for x in per_level], 1)
    classes = np.concatenate([x[2] for x in per_level], 1)
    keep = np.concatenate([x[3] for x in per_level], 1)
    total = keep.shape[1]
    n_rows = total if max_detections <= 0 or max_detections > total else max_detections
    num = np.zeros((b, 1), np.int32)
    out_boxes = np.zeros((b, n_rows, 4), np.float32)
    out_scores = np.zeros((b, n_rows), np.float32)
    out_classes = np.zeros((b, n_rows), np.int32)
    for i in range(b):
        idx = top_k(np.flatnonzero(keep[i]), scores[i], n_rows)
        num[i, 0] = idx.size
        out_boxes[i, : idx.size] = boxes[i, idx]
        out_scores[i, : idx.size] = scores[i, idx]
        out_classes[i, : idx.size] = classes[i, idx]
    return num, out_boxes, out_scores, out_classes


def _decode_level(lv, b, na, no, h, w, stride, anc, thr, score_mode):
    """Every anchor of one level: boxes [B, n, 4], scores, classes, kept flags [B, n] (n = na*H*W)."""
    p = lv.astype(np.float32).reshape(b, na, no, h, w).transpose(0, 1, 3, 4, 2)  # [B, na, H, W, no]
    gy, gx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    cx = (p[..., 0] * np.float32(2) - np.float32(0.5) + gx) * stride
    cy = (p[..., 1] * np.float32(2) - np.float32(0.5) + gy) * stride
    w2, h2 = p[..., 2] * np.float32(2), p[..., 3] * np.float32(2)
    bw = w2 * w2 * anc[None, :, 0, None, None]
    bh = h2 * h2 * anc[None, :, 1, None, None]
    obj = p[..., 4]
    cls = p[..., 5:]
    cls = np.where(np.isnan(cls), np.float32(-np.inf), cls)  # NaN never wins; all -inf -> class 0
    cid = cls.argmax(-1)  # the first maximum
    best = np.take_along_axis(cls, cid[..., None], -1)[..., 0]  # its value (max() may return a later -0/+0)
    cid = cid.astype(np.int32)
    score = obj * best if score_mode == 0 else obj
    keep = (obj > thr) & (score > thr)
    half_w, half_h = bw * np.float32(0.5), bh * np.float32(0.5)
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], -1)
    return boxes.reshape(b, -1, 4), score.reshape(b, -1), cid.reshape(b, -1), keep.reshape(b, -1)


def top_k(idx: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Of the anchors `idx` (increasing), the k with the highest scores[idx], equal float32 scores
    (-0 == +0) in anchor order; returned in anchor order."""
    if idx.size <= k:
        return idx
    order = np.lexsort((idx, -scores[idx]))  # by score descending, then anchor
    return np.sort(idx[order[:k]])


def decode_cpu(levels: Sequence[np.ndarray], anchors, max_stride: int, num_classes: int,
               score_threshold: float = 0.25, score_mode: int = 0, max_detections: int = 0, threads: int = 0):
    """The C++ CPU decode (trtdeploy._C); threads: 0 = one per available core."""
    from .. import _C

    try:
        return _C.yolo_decode_cpu(list(levels), [float(a) for a in np.asarray(anchors).reshape(-1)], int(max_stride),
                                  int(num_classes), float(score_threshold), int(score_mode), int(max_detections),
                                  int(threads))
    except ValueError as exc:
        raise TrtDeployError(str(exc)) from None


def decode_cuda(levels, anchors, max_stride: int, num_classes: int, score_threshold: float = 0.25,
                score_mode: int = 0, max_detections: int = 0, outputs=None, workspace=None, stream=None):
    """The CUDA kernel on GPU arrays (torch tensors or cupy arrays, float32/float16, C-contiguous), run on
    the levels' device (outputs and workspace must be on it too).

    outputs/workspace: preallocate them once (``allocate_cuda``) to keep allocation out of a loop. A
    workspace serves one call at a time: calls that may overlap (several streams or threads, graphs
    replayed concurrently) need one each, since a call resets the counters a still-running call waits
    on, which then never finishes. ``boxes`` and the workspace must be 16-byte aligned (allocate_cuda's
    are). stream: a raw cudaStream_t as int (default: torch's / cupy's current stream of that device)."""
    from .. import _C

    if not hasattr(_C, "yolo_decode_cuda"):
        raise TrtDeployError("trtdeploy was built without CUDA: reinstall where nvcc is on PATH")
    lib = _array_lib(levels[0])
    device = _device_index(levels[0], "level 0")
    shapes = [tuple(int(d) for d in lv.shape) for lv in levels]
    anchors_list = [float(a) for a in np.asarray(anchors).reshape(-1)]
    dtypes = {dtype_name(lv) for lv in levels}
    if dtypes - {"float32", "float16"} or len(dtypes) != 1:
        raise TrtDeployError(f"levels must all be float32 or all float16, got {sorted(dtypes)}")
    for i, lv in enumerate(levels):
        if not _contiguous(lv):
            raise TrtDeployError(f"level {i} is not contiguous; call .contiguous() first")
    with _on_device(lib, device):
        if outputs is None or workspace is None:
            outputs, workspace = allocate_cuda(levels, anchors_list, max_stride, num_classes, max_detections)
        else:
            _check_buffers(shapes, anchors_list, max_stride, num_classes, max_detections, outputs, workspace)
        named = [(f"level {i}", lv) for i, lv in enumerate(levels)] + \
            list(zip(("num_detections", "boxes", "scores", "classes"), outputs)) + [("workspace", workspace)]
        for name, x in named:
            if _device_index(x, name) != device:
                raise TrtDeployError(f"{name} is on CUDA device {_device_index(x, name)}, level 0 on device "
                                     f"{device}: put every array on one device")
        if stream is None:
            stream = lib.cuda.current_stream(device).cuda_stream if lib.__name__ == "torch" else \
                lib.cuda.get_current_stream().ptr
        num, boxes, scores, classes = outputs
        try:
            _C.yolo_decode_cuda([_ptr(lv) for lv in levels], [list(s) for s in shapes], dtypes == {"float16"},
                                anchors_list, int(max_stride), int(num_classes), float(score_threshold),
                                int(score_mode), int(max_detections), _ptr(num), _ptr(boxes), _ptr(scores),
                                _ptr(classes), _ptr(workspace), int(stream))
        except ValueError as exc:
            raise TrtDeployError(str(exc)) from None
    return outputs


def allocate_cuda(levels, anchors, max_stride, num_classes, max_detections=0):
    """Outputs and workspace for decode_cuda, on the levels' device, with their library."""
    from .. import _C

    plan = _C.yolo_decode_plan([[int(d) for d in lv.shape] for lv in levels],
                               [float(a) for a in np.asarray(anchors).reshape(-1)], int(max_stride), int(num_classes),
                               int(max_detections))
    b, n = plan["batch"], plan["max_detections"]
    mk = allocator(levels[0])
    outputs = (mk((b, 1), "int32"), mk((b, n, 4), "float32"), mk((b, n), "float32"), mk((b, n), "int32"))
    return outputs, mk((max(plan["workspace_bytes"], 4),), "uint8")


def dtype_name(x) -> str:
    """'float32', 'float16', 'int32', ... of a torch tensor or a cupy/NumPy array."""
    return str(x.dtype).replace("torch.", "")


def allocator(like):
    """empty(shape, dtype name) -> a new array on ``like``'s CUDA device, in its library (torch or cupy)."""
    lib = _array_lib(like)
    if lib.__name__ == "torch":
        return lambda shape, dtype: lib.empty(shape, dtype=getattr(lib, dtype), device=like.device)
    device = _device_index(like, "array")

    def empty(shape, dtype: str):  # cupy allocates on its current device
        with _on_device(lib, device):
            return lib.empty(shape, dtype=dtype)

    return empty


def _check_buffers(shapes, anchors, max_stride, num_classes, max_detections, outputs, workspace):
    """Preallocated outputs and workspace must fit these levels (raw pointers cross into the kernel)."""
    from .. import _C

    try:
        plan = _C.yolo_decode_plan([list(s) for s in shapes], anchors, int(max_stride), int(num_classes),
                                   int(max_detections))
    except ValueError as exc:
        raise TrtDeployError(str(exc)) from None
    b, n = plan["batch"], plan["max_detections"]
    want = [("num_detections", (b, 1), "int32"), ("boxes", (b, n, 4), "float32"), ("scores", (b, n), "float32"),
            ("classes", (b, n), "int32")]
    if len(outputs) != 4:
        raise TrtDeployError("outputs must be (num_detections, boxes, scores, classes)")
    for (name, shape, dtype), x in zip(want, outputs):
        got = (tuple(int(d) for d in x.shape), dtype_name(x))
        if got != (shape, dtype) or not _contiguous(x):
            raise TrtDeployError(f"{name} output is {got[1]} {list(got[0])}, expected a contiguous {dtype} "
                                 f"{list(shape)}; allocate with allocate_cuda()")
    if int(workspace.nbytes) < plan["workspace_bytes"]:
        raise TrtDeployError(f"workspace holds {int(workspace.nbytes)} bytes, these levels need "
                             f"{plan['workspace_bytes']}; allocate with allocate_cuda()")
    for name, x in (("boxes output", outputs[1]), ("workspace", workspace)):
        if _address(x) % 16:
            raise TrtDeployError(f"the {name} starts at an address that is not a multiple of 16 (the kernel "
                                 "reads and writes it 16 bytes at a time); allocate with allocate_cuda()")


def _array_lib(x):
    mod = type(x).__module__.split(".")[0]
    if mod == "torch":
        import torch

        return torch
    if mod == "cupy":
        import cupy

        return cupy
    raise TrtDeployError(f"expected torch CUDA tensors or cupy arrays, got {type(x).__name__}")


def _device_index(x, name: str) -> int:
    """The CUDA device ordinal of a torch tensor or cupy array."""
    dev = getattr(x, "device", None)
    if hasattr(dev, "type"):  # torch.device
        if dev.type != "cuda":
            raise TrtDeployError(f"{name} is on {dev}, not on a CUDA device")
        return int(dev.index)
    if hasattr(dev, "id"):  # cupy.cuda.Device
        return int(dev.id)
    raise TrtDeployError(f"{name} is a {type(x).__name__}, not a torch CUDA tensor or cupy array")


def _on_device(lib, index: int):
    """A context in which device `index` is lib's (torch's or cupy's) current CUDA device."""
    return lib.cuda.device(index) if lib.__name__ == "torch" else lib.cuda.Device(index)


def _address(x) -> int:
    """The address of the first byte of a GPU array (or of a NumPy array, for the checks)."""
    for attr in ("__cuda_array_interface__", "__array_interface__"):
        iface = getattr(x, attr, None)
        if iface is not None:
            return int(iface["data"][0])
    raise TrtDeployError(f"{type(x).__name__} exposes no array interface")


def _ptr(x) -> int:
    iface = getattr(x, "__cuda_array_interface__", None)
    if iface is None:
        raise TrtDeployError(f"{type(x).__name__} is not on a CUDA device (no __cuda_array_interface__)")
    return int(iface["data"][0])


def _contiguous(x) -> bool:
    return bool(x.is_contiguous()) if hasattr(x, "is_contiguous") else bool(x.flags.c_contiguous)
