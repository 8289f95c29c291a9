// YOLOv5-style decode: one semantics for the C++ CPU path, the CUDA kernel and (mirrored in
// python/trtdeploy/yolo/decode.py) the NumPy oracle. Plain params struct + stream; no TensorRT.
//
// Inputs: one tensor per level, sigmoid-activated, [B, na*(nc+5), H, W], channel = a*(nc+5)+k with
// k = x, y, w, h, obj, cls0, cls1, ... (fp32 or fp16).
// For anchor a at cell (y, x) of level l:
//   cx = (2*sx - 0.5 + x) * stride_l      cy = (2*sy - 0.5 + y) * stride_l
//   w  = (2*sw)^2 * anchor_w[l][a]        h  = (2*sh)^2 * anchor_h[l][a]
//   score = obj * max_c cls_c (score_mode 0) or obj (score_mode 1); class = first argmax_c cls_c
//   kept when score > threshold; box = (cx - w/2, cy - h/2, cx + w/2, cy + h/2) in input pixels.
// Kept detections are written in anchor order (level, anchor, y, x): deterministic. Rows past
// num_detections (up to max_detections) are zero.
#pragma once

#include <cstddef>
#include <cstdint>

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
  int max_detections = 0;  // rows per image in the outputs (<= total anchors)
  const void* inputs[kMaxLevels] = {};
  bool fp16 = false;

  YOLO_HD int total_anchors() const { return cell_offset[num_levels]; }
};

// Fill the derived fields (cell offsets, strides, max_detections) and validate. Returns nullptr on
// success, else a message. grid sizes, anchors, max_stride and counts must be set by the caller.
const char* finalize(DecodeParams& p, int max_stride);

struct Detection {
  float x1, y1, x2, y2, score;
  int cls;
};

// Decode anchor t (0 <= t < total_anchors) of image b; read(level, channel, cell) returns the input.
template <typename Read>
YOLO_HD bool decode_anchor(const DecodeParams& p, int b, int t, Read read, Detection* det) {
  int l = 0;
  while (l + 1 < p.num_levels && t >= p.cell_offset[l + 1]) ++l;
  const int hw = p.grid_h[l] * p.grid_w[l];
  const int local = t - p.cell_offset[l];
  const int a = local / hw;
  const int cell = local - a * hw;
  const int y = cell / p.grid_w[l];
  const int x = cell - y * p.grid_w[l];
  const int no = p.num_classes + 5;
  const int base = a * no;
  const float obj = read(l, b, base + 4, cell);
  if (!(obj > p.score_threshold)) return false;  // score <= obj in both modes (probs <= 1)
  float best = -1.0f;
  int best_c = 0;
  for (int c = 0; c < p.num_classes; ++c) {
    float v = read(l, b, base + 5 + c, cell);
    if (v > best) {
      best = v;
      best_c = c;
    }
  }
  const float score = p.score_mode == 0 ? obj * best : obj;
  if (!(score > p.score_threshold)) return false;
  const float s = p.stride[l];
  const float sx = read(l, b, base + 0, cell), sy = read(l, b, base + 1, cell);
  const float sw = read(l, b, base + 2, cell), sh = read(l, b, base + 3, cell);
  const float cx = (sx * 2.0f - 0.5f + static_cast<float>(x)) * s;
  const float cy = (sy * 2.0f - 0.5f + static_cast<float>(y)) * s;
  const float w2 = sw * 2.0f, h2 = sh * 2.0f;
  const float w = w2 * w2 * p.anchors[(l * kMaxAnchors + a) * 2 + 0];
  const float h = h2 * h2 * p.anchors[(l * kMaxAnchors + a) * 2 + 1];
  det->x1 = cx - w * 0.5f;
  det->y1 = cy - h * 0.5f;
  det->x2 = cx + w * 0.5f;
  det->y2 = cy + h * 0.5f;
  det->score = score;
  det->cls = best_c;
  return true;
}

// CPU reference in C++ (host memory, float32 or IEEE half stored as uint16).
void decode_cpu(const DecodeParams& p, int32_t* num_detections, float* boxes, float* scores, int32_t* classes);

// CUDA: bytes of workspace for decode_cuda (size it once, up front).
size_t decode_workspace_size(int batch, int total_anchors);
// Three launches (count, scan, write) on `stream`; no allocation, no host synchronization.
int decode_cuda(const DecodeParams& p, int32_t* num_detections, float* boxes, float* scores, int32_t* classes,
                void* workspace, cudaStream_t stream);

}  // namespace yolo
}  // namespace trtdeploy
