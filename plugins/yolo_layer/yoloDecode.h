// YOLOv5-style decode: one semantics for the C++ CPU path, the CUDA kernel and (mirrored in
// python/trtdeploy/yolo/decode.py) the NumPy oracle. Plain params struct + stream; no TensorRT.
//
// Inputs: one tensor per level, sigmoid-activated, [B, na*(nc+5), H, W], channel = a*(nc+5)+k with
// k = x, y, w, h, obj, cls0, cls1, ... (fp32 or fp16; fp16 is converted to float exactly).
// For anchor a at cell (y, x) of level l:
//   best, class = max and first argmax over c of cls_c, starting from -inf (NaN class values never win;
//                 all-NaN/-inf classes give best = -inf, class 0)
//   score = obj * best (score_mode 0) or obj (score_mode 1), one float32 multiply
//   kept when obj > threshold and score > threshold (NaN fails both tests)
//   cx = (2*sx - 0.5 + x) * stride_l      cy = (2*sy - 0.5 + y) * stride_l
//   w  = (2*sw)^2 * anchor_w[l][a]        h  = (2*sh)^2 * anchor_h[l][a]
//   box = (cx - w/2, cy - h/2, cx + w/2, cy + h/2) in input pixels.
// Anchor order is (level, anchor, y, x). With N = max_detections rows per image and more kept anchors
// than N, the N best are kept: highest score first, ties (equal float32 scores, -0 == +0) broken by
// anchor order. The kept rows are written in anchor order (not score order): num_detections rows,
// then zero rows up to N. Deterministic: the same inputs give the same bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define YOLO_HD __host__ __device__ __forceinline__
#include <cuda_runtime_api.h>
#else
#define YOLO_HD inline
typedef struct CUstream_st* cudaStream_t;
#endif

namespace trtdeploy {
namespace yolo {

constexpr int kMaxLevels = 8;
constexpr int kMaxAnchors = 16;
// Most anchors per image (sum over levels of na*H*W) that finalize accepts; the plugin refuses
// optimization profiles whose max shapes exceed it.
constexpr int kMaxAnchorsPerImage = 1 << 30;

struct DecodeParams {
  int batch = 0;
  int num_levels = 0;
  int num_anchors = 0;   // per level
  int num_classes = 0;
  int grid_h[kMaxLevels] = {};
  int grid_w[kMaxLevels] = {};
  float stride[kMaxLevels] = {};
  float anchors[kMaxLevels * kMaxAnchors * 2] = {};  // pixels, (w, h), level-major
  int cell_offset[kMaxLevels + 1] = {};               // first anchor index of each level, per image
  float score_threshold = 0.25f;
  int score_mode = 0;
  int max_detections = 0;  // rows per image in the outputs (1 <= rows <= total anchors after finalize)
  const void* inputs[kMaxLevels] = {};
  bool fp16 = false;

  YOLO_HD int total_anchors() const { return cell_offset[num_levels]; }
};

// Fill the derived fields (cell offsets, strides, max_detections) and validate. Returns nullptr on
// success, else a message. grid sizes, anchors, max_stride and counts must be set by the caller.
const char* finalize(DecodeParams& p, int max_stride);

// Float32 operations rounded one at a time, so that no compiler fuses a multiply and an add into
// one FMA (rounded once, a different box): the device path says so with intrinsics; the host path
// (yoloDecode.cpp) is compiled with -ffp-contract=off. Host and device give the same bits.
YOLO_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
YOLO_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
YOLO_HD float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

// Box of anchor a at cell (x, y) of level l from its four sigmoid outputs; the float operations are
// written once, here, for the CPU and the kernel (the NumPy oracle does the same ones in this order).
YOLO_HD void make_box(const DecodeParams& p, int l, int a, int x, int y, float sx, float sy, float sw, float sh,
                      float box[4]) {
  const float s = p.stride[l];
  const float cx = mul_rn(add_rn(sub_rn(mul_rn(sx, 2.0f), 0.5f), static_cast<float>(x)), s);
  const float cy = mul_rn(add_rn(sub_rn(mul_rn(sy, 2.0f), 0.5f), static_cast<float>(y)), s);
  const float w2 = mul_rn(sw, 2.0f), h2 = mul_rn(sh, 2.0f);
  const float w = mul_rn(mul_rn(w2, w2), p.anchors[(l * kMaxAnchors + a) * 2 + 0]);
  const float h = mul_rn(mul_rn(h2, h2), p.anchors[(l * kMaxAnchors + a) * 2 + 1]);
  const float half_w = mul_rn(w, 0.5f), half_h = mul_rn(h, 0.5f);
  box[0] = sub_rn(cx, half_w);
  box[1] = sub_rn(cy, half_h);
  box[2] = add_rn(cx, half_w);
  box[3] = add_rn(cy, half_h);
}

// Order-preserving map of a non-NaN float to uint32 (a > b  <=>  key(a) > key(b); -0 and +0 map to
// the same key, as they compare equal). The top-K selection of the kernel works on these keys.
YOLO_HD uint32_t score_key(float s) {
  uint32_t u;
#if defined(__CUDA_ARCH__)
  u = __float_as_uint(s);
#else
  std::memcpy(&u, &s, sizeof(u));
#endif
  if (u == 0x80000000u) u = 0;  // -0 -> +0
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// CPU decode in C++ (host memory, float32 or IEEE half stored as uint16). threads: 0 = one per
// available core (sched_getaffinity), 1 = the calling thread only. Work is split into (image, level,
// anchor, cell range) tasks; results do not depend on the thread count. outputs_zeroed: the caller
// passes zero-filled outputs (calloc'ed pages), so rows past num_detections are left untouched.
void decode_cpu(const DecodeParams& p, int32_t* num_detections, float* boxes, float* scores, int32_t* classes,
                int threads = 0, bool outputs_zeroed = false);

// CUDA: bytes of workspace for decode_cuda at these sizes (use the largest batch and anchor count the
// caller will run, with its max_detections attribute; 0 = every anchor). Monotone in batch and anchors.
size_t decode_workspace_size(int batch, int total_anchors, int max_detections);
// Two stream operations (a memset of the workspace's counters, then one kernel) on `stream`, on the
// current device; no allocation, no host synchronization: safe to capture in a CUDA graph.
// `p` must be finalized (max_detections in [1, total anchors], else cudaErrorInvalidValue). `boxes`
// and `workspace` must be 16-byte aligned (else cudaErrorMisalignedAddress; cudaMalloc'ed memory is).
// A workspace serves one call at a time: calls that may overlap (other streams, other threads, a
// graph replayed concurrently) need one workspace each, because the memset that starts a call resets
// the counters an earlier call still running on the GPU spins on, and that call then never finishes.
// (TensorRT gives each enqueue its own workspace, so the plugin is fine.)
// Returns 0 or the cudaError_t value of this call's own failing operation (errors left pending by
// earlier, unrelated calls are neither returned nor cleared).
int decode_cuda(const DecodeParams& p, int32_t* num_detections, float* boxes, float* scores, int32_t* classes,
                void* workspace, cudaStream_t stream);
// Optional, outside stream capture: loads the kernel for fp32 or fp16 inputs on the current device
// (CUDA lazy loading) and caches its occupancy, so that the next decode_cuda does neither. Returns 0
// or a cudaError_t value (decode_cuda would fail the same way).
int decode_cuda_prepare(bool fp16);

}  // namespace yolo
}  // namespace trtdeploy
