// Host side of the decode: parameter checks and the C++ CPU implementation.
#include <cmath>
#include <cstring>

#include "yoloDecode.h"

namespace trtdeploy {
namespace yolo {

const char* finalize(DecodeParams& p, int max_stride) {
  if (p.num_levels < 1 || p.num_levels > kMaxLevels) return "YoloLayer_TRT: 1 to 8 input levels are supported";
  if (p.num_anchors < 1 || p.num_anchors > kMaxAnchors) return "YoloLayer_TRT: 1 to 16 anchors per level are supported";
  if (p.num_classes < 1) return "YoloLayer_TRT: num_classes must be >= 1";
  if (max_stride < 1) return "YoloLayer_TRT: max_stride must be >= 1";
  if (p.score_mode != 0 && p.score_mode != 1) return "YoloLayer_TRT: score_mode must be 0 or 1";
  const int last_h = p.grid_h[p.num_levels - 1];
  int offset = 0;
  for (int l = 0; l < p.num_levels; ++l) {
    if (p.grid_h[l] < 1 || p.grid_w[l] < 1) return "YoloLayer_TRT: empty input level";
    if ((static_cast<long long>(max_stride) * last_h) % p.grid_h[l] != 0)
      return "YoloLayer_TRT: level grid sizes are not max_stride-compatible (inputs must go from the finest "
             "to the coarsest level)";
    p.stride[l] = static_cast<float>(static_cast<long long>(max_stride) * last_h / p.grid_h[l]);
    p.cell_offset[l] = offset;
    offset += p.num_anchors * p.grid_h[l] * p.grid_w[l];
  }
  p.cell_offset[p.num_levels] = offset;
  if (p.max_detections <= 0 || p.max_detections > offset) p.max_detections = offset;
  return nullptr;
}

namespace {
float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FFu, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal
      exp = 127 - 15 + 1;
      while (!(man & 0x400u)) {
        man <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((man & 0x3FFu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}
}  // namespace

void decode_cpu(const DecodeParams& p, int32_t* num_detections, float* boxes, float* scores, int32_t* classes) {
  const int total = p.total_anchors();
  const int no = p.num_classes + 5;
  auto read = [&](int l, int b, int channel, int cell) -> float {
    const size_t hw = static_cast<size_t>(p.grid_h[l]) * p.grid_w[l];
    const size_t idx = (static_cast<size_t>(b) * p.num_anchors * no + channel) * hw + cell;
    return p.fp16 ? half_to_float(static_cast<const uint16_t*>(p.inputs[l])[idx])
                  : static_cast<const float*>(p.inputs[l])[idx];
  };
  for (int b = 0; b < p.batch; ++b) {
    int n = 0;
    float* bx = boxes + static_cast<size_t>(b) * p.max_detections * 4;
    float* sc = scores + static_cast<size_t>(b) * p.max_detections;
    int32_t* cl = classes + static_cast<size_t>(b) * p.max_detections;
    for (int t = 0; t < total && n < p.max_detections; ++t) {
      Detection d;
      if (!decode_anchor(p, b, t, read, &d)) continue;
      bx[n * 4 + 0] = d.x1;
      bx[n * 4 + 1] = d.y1;
      bx[n * 4 + 2] = d.x2;
      bx[n * 4 + 3] = d.y2;
      sc[n] = d.score;
      cl[n] = d.cls;
      ++n;
    }
    num_detections[b] = n;
    std::memset(bx + n * 4, 0, sizeof(float) * 4 * (p.max_detections - n));
    std::memset(sc + n, 0, sizeof(float) * (p.max_detections - n));
    std::memset(cl + n, 0, sizeof(int32_t) * (p.max_detections - n));
  }
}

}  // namespace yolo
}  // namespace trtdeploy
