// Greedy NMS with fixed-size outputs: the semantics, written once for the C++ CPU implementation
// (nms.cpp) and the CUDA kernels (nmsKernel.cu). No TensorRT types: a params struct and a stream.
//
// Per image, over K candidates (boxes x1, y1, x2, y2; scores; int32 classes):
//  1. candidates with score > score_threshold (NaN never) take part;
//  2. in order of score, highest first, equal scores by lower candidate index (-0 == +0);
//  3. greedy: a candidate is kept unless a kept box of the same class (any class with
//     class_agnostic) has IoU > iou_threshold with it; the first max_detections kept are output.
// IoU (nms_suppresses) in float32, each operation rounded once (no FMA contraction), on corners put
// in order (min/max, as ONNX NonMaxSuppression reads them); no overlap, a box without area, or a
// union that is not > 0 gives IoU 0 (never suppresses). Class-aware NMS compares the classes
// themselves (no coordinate offsets, so no float rounding from large offsets).
// Outputs: num_detections [B, 1] int32; boxes [B, D, 4], scores [B, D] copied bit for bit from the
// inputs (their type), classes [B, D] int32; rows past the count are zero.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_runtime_api.h>
#define NMS_HD __host__ __device__ __forceinline__
#else
#include <cmath>
#define NMS_HD inline
typedef struct CUstream_st* cudaStream_t;
#endif

namespace trtdeploy {
namespace nms {

constexpr int kMaxCandidates = 4096;  // K per image (TensorRT's TopK gives at most 3840)
constexpr int kMaxDetections = 4096;  // D per image

struct NmsParams {
  int batch = 0;           // B
  int num_candidates = 0;  // K
  int max_detections = 0;  // D
  float iou_threshold = 0.45f;
  float score_threshold = 0.25f;
  bool class_agnostic = false;
  bool fp16 = false;             // boxes and scores are IEEE half (uint16 on the host), else float32
  const void* boxes = nullptr;   // [B, K, 4]
  const void* scores = nullptr;  // [B, K]
  const int32_t* classes = nullptr;  // [B, K]
};

// nullptr when the params are valid, else what is wrong.
const char* check_params(const NmsParams& p);

// Bytes of workspace nms_cuda needs for batch B and K candidates (0 for an empty batch).
size_t nms_workspace_size(int batch, int num_candidates);

// C++ CPU NMS on host memory. Outputs are written in full (rows past the count zeroed).
// Returns check_params' message or nullptr.
const char* nms_cpu(const NmsParams& p, int32_t* num_detections, void* boxes, void* scores, int32_t* classes);

// CUDA NMS on device memory, asynchronous on `stream`: no allocation, no host synchronization (CUDA
// graph safe). workspace: nms_workspace_size(p.batch, p.num_candidates) bytes, 256-byte aligned.
// Returns a cudaError_t value (0 = launched); invalid params give cudaErrorInvalidValue.
int nms_cuda(const NmsParams& p, int32_t* num_detections, void* boxes, void* scores, int32_t* classes,
             void* workspace, cudaStream_t stream);
// Load the kernels now (CUDA lazy loading), outside any stream capture. Returns a cudaError_t value.
int nms_cuda_prepare();

// ---- the shared arithmetic -------------------------------------------------------------------------
NMS_HD float nms_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
NMS_HD float nms_add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
NMS_HD float nms_sub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
NMS_HD float nms_div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
NMS_HD float nms_min(float a, float b) { return fminf(a, b); }
NMS_HD float nms_max(float a, float b) { return fmaxf(a, b); }

struct NmsBox {
  float x1, y1, x2, y2;  // x1 <= x2, y1 <= y2 (or NaN)
};

NMS_HD NmsBox nms_box(float a, float b, float c, float d) {
  return NmsBox{nms_min(a, c), nms_min(b, d), nms_max(a, c), nms_max(b, d)};
}

// Whether kept box a suppresses candidate b: IoU(a, b) > thr. Symmetric in a and b, bit for bit.
NMS_HD bool nms_suppresses(const NmsBox& a, const NmsBox& b, float thr) {
  const float w = nms_sub(nms_min(a.x2, b.x2), nms_max(a.x1, b.x1));
  const float h = nms_sub(nms_min(a.y2, b.y2), nms_max(a.y1, b.y1));
  if (!(w > 0.f) || !(h > 0.f)) return false;
  const float area_a = nms_mul(nms_sub(a.x2, a.x1), nms_sub(a.y2, a.y1));
  const float area_b = nms_mul(nms_sub(b.x2, b.x1), nms_sub(b.y2, b.y1));
  if (!(area_a > 0.f) || !(area_b > 0.f)) return false;
  const float inter = nms_mul(w, h);
  const float uni = nms_sub(nms_add(area_a, area_b), inter);
  if (!(inter > 0.f) || !(uni > 0.f)) return false;
  return nms_div(inter, uni) > thr;
}

// Sort key: ascending key = descending score, then ascending index; -0 and +0 alike.
NMS_HD uint64_t nms_sort_key(float s, int index) {
  uint32_t u;
#if defined(__CUDA_ARCH__)
  u = __float_as_uint(s);
#else
  std::memcpy(&u, &s, sizeof(u));
#endif
  if (u == 0x80000000u) u = 0;
  u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // ascending with the score
  return (static_cast<uint64_t>(~u) << 32) | static_cast<uint32_t>(index);
}

}  // namespace nms
}  // namespace trtdeploy
