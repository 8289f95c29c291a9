"""TRTDeploy_NMS's semantics (plugins/nms/README.md) outside TensorRT, two ways with one semantics:

* ``nms_cpu``: the C++ CPU implementation in trtdeploy._C (what `yolo patch --nms plugin` checks with);
* ``nms_cuda``: the plugin's CUDA kernel on torch or cupy GPU arrays (``__cuda_array_interface__``).

Both take boxes [B, K, 4] x1, y1, x2, y2, scores [B, K] (float32 or float16, the same) and classes [B, K]
int32, and return (num_detections [B, 1] int32, boxes [B, D, 4], scores [B, D], classes [B, D] int32),
rows past the count zero. ``reference.nms`` is the NumPy oracle they are tested against.
"""

from __future__ import annotations

from ..errors import TrtDeployError
from .decode import _address, _array_lib, _contiguous, _device_index, _on_device, _ptr, allocator, dtype_name


def nms_cpu(boxes, scores, classes, iou_threshold: float = 0.45, score_threshold: float = 0.25,
            max_detections: int = 300, class_agnostic: bool = False):
    from .. import _C

    try:
        return tuple(_C.nms_cpu(boxes, scores, classes, float(iou_threshold), float(score_threshold),
                                int(max_detections), bool(class_agnostic)))
    except ValueError as exc:
        raise TrtDeployError(str(exc)) from None


MAX_CANDIDATES = MAX_DETECTIONS = 4096  # plugins/nms/nms.h
MAX_BATCH = 65535


def allocate_cuda(boxes, max_detections: int):
    """Outputs and workspace for nms_cuda, on the boxes' device, in its library (torch or cupy)."""
    from .. import _C

    _check_sizes(boxes, max_detections)
    b, k, d = int(boxes.shape[0]), int(boxes.shape[1]), int(max_detections)
    dtype, mk = dtype_name(boxes), allocator(boxes)
    outputs = (mk((b, 1), "int32"), mk((b, d, 4), dtype), mk((b, d), dtype), mk((b, d), "int32"))
    return outputs, mk((max(int(_C.nms_workspace_bytes(b, k)), 4),), "uint8")


def _check_sizes(boxes, max_detections) -> None:
    b, k = (int(d) for d in boxes.shape[:2])
    if not 1 <= int(max_detections) <= MAX_DETECTIONS:
        raise TrtDeployError(f"max_detections {max_detections}: must be in 1..{MAX_DETECTIONS}")
    if k > MAX_CANDIDATES or b > MAX_BATCH:
        raise TrtDeployError(f"boxes are [{b}, {k}, 4]: at most {MAX_BATCH} images of {MAX_CANDIDATES} candidates")


def nms_cuda(boxes, scores, classes, iou_threshold: float = 0.45, score_threshold: float = 0.25,
             max_detections: int = 300, class_agnostic: bool = False, outputs=None, workspace=None, stream=None):
    """The TRTDeploy_NMS kernel on GPU arrays (C-contiguous, one device), asynchronous on ``stream`` (a raw
    cudaStream_t as int; default torch's / cupy's current stream). Preallocate ``outputs`` and ``workspace``
    once with ``allocate_cuda`` to keep allocation out of a loop; a workspace serves one call at a time."""
    from .. import _C

    if not hasattr(_C, "nms_cuda"):
        raise TrtDeployError("trtdeploy was built without CUDA: reinstall where nvcc is on PATH")
    lib = _array_lib(boxes)
    device = _device_index(boxes, "boxes")
    dtype = dtype_name(boxes)
    if dtype not in ("float32", "float16") or dtype_name(scores) != dtype:
        raise TrtDeployError(f"boxes and scores must both be float32 or both float16, got {dtype} and {scores.dtype}")
    if dtype_name(classes) != "int32":
        raise TrtDeployError(f"classes must be int32, got {classes.dtype}")
    if boxes.ndim != 3:
        raise TrtDeployError(f"boxes must be [B, K, 4], got {list(boxes.shape)}")
    b, k = int(boxes.shape[0]), int(boxes.shape[1])
    _check_sizes(boxes, max_detections)
    want = {"boxes": (b, k, 4), "scores": (b, k), "classes": (b, k)}
    for name, x in (("boxes", boxes), ("scores", scores), ("classes", classes)):
        if tuple(int(d) for d in x.shape) != want[name] or not _contiguous(x):
            raise TrtDeployError(f"{name} must be a contiguous {list(want[name])} array, got {list(x.shape)}")
        if _device_index(x, name) != device:
            raise TrtDeployError(f"{name} is on CUDA device {_device_index(x, name)}, boxes on {device}: put every "
                                 "array on one device")
        if getattr(x, "requires_grad", False):
            raise TrtDeployError(f"{name} requires grad; pass {name}.detach()")
    with _on_device(lib, device):
        if outputs is None or workspace is None:  # only what was not given
            new_outputs, new_workspace = allocate_cuda(boxes, max_detections)
            outputs = new_outputs if outputs is None else outputs
            workspace = new_workspace if workspace is None else workspace
        d = int(max_detections)
        shapes = [((b, 1), "int32"), ((b, d, 4), dtype), ((b, d), dtype), ((b, d), "int32")]
        for name, x, (shape, dt) in zip(("num_detections", "boxes", "scores", "classes"), outputs, shapes):
            if (tuple(int(v) for v in x.shape), dtype_name(x)) != (shape, dt) \
                    or not _contiguous(x) or _device_index(x, name) != device:
                raise TrtDeployError(f"output {name} must be a contiguous {dt} {list(shape)} on device {device}; "
                                     "allocate with allocate_cuda()")
        if int(workspace.nbytes) < _C.nms_workspace_bytes(b, k) or _device_index(workspace, "workspace") != device:
            raise TrtDeployError(f"the workspace must hold {_C.nms_workspace_bytes(b, k)} bytes on device {device}; "
                                 "allocate with allocate_cuda()")
        if _address(workspace) % 256:
            raise TrtDeployError("the workspace must start at a multiple of 256 bytes; allocate with allocate_cuda()")
        if stream is None:
            stream = lib.cuda.current_stream(device).cuda_stream if lib.__name__ == "torch" else \
                lib.cuda.get_current_stream().ptr
        try:
            _C.nms_cuda(_ptr(boxes), _ptr(scores), _ptr(classes), b, k, dtype == "float16", float(iou_threshold),
                        float(score_threshold), d, bool(class_agnostic), *(_ptr(x) for x in outputs), _ptr(workspace),
                        int(stream))
        except ValueError as exc:
            raise TrtDeployError(str(exc)) from None
    return outputs
