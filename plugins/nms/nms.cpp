// The C++ CPU NMS (host memory) and what the CPU and CUDA paths share: parameter checks and the
// workspace size. Compiled with -ffp-contract=off (CMakeLists.txt): nms_suppresses gives the
// kernel's bits.
#include "nms.h"

#include <algorithm>
#include <vector>

namespace trtdeploy {
namespace nms {
namespace {

float half_to_float(uint16_t h) {  // exact for every bit pattern
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1Fu) {
    bits = sign | 0x7F800000u | (man << 13);
  } else if (exp == 0) {
    float f = static_cast<float>(man) * 5.9604644775390625e-8f;  // man * 2^-24, exact
    std::memcpy(&bits, &f, sizeof(bits));
    bits |= sign;
  } else {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

template <typename T>
float value(const T* p, size_t i) {
  if constexpr (sizeof(T) == 2)
    return half_to_float(p[i]);
  else
    return p[i];
}

template <typename T>
void run(const NmsParams& p, int32_t* num, T* out_boxes, T* out_scores, int32_t* out_classes) {
  const auto* boxes = static_cast<const T*>(p.boxes);
  const auto* scores = static_cast<const T*>(p.scores);
  const size_t k = static_cast<size_t>(p.num_candidates), d = static_cast<size_t>(p.max_detections);
  std::vector<uint64_t> keys;
  std::vector<NmsBox> kept_boxes;
  std::vector<int32_t> kept_classes;
  keys.reserve(k);
  for (int b = 0; b < p.batch; ++b) {
    const size_t base = static_cast<size_t>(b) * k;
    keys.clear();
    for (size_t i = 0; i < k; ++i) {
      const float s = value(scores, base + i);
      if (s > p.score_threshold) keys.push_back(nms_sort_key(s, static_cast<int>(i)));
    }
    std::sort(keys.begin(), keys.end());
    kept_boxes.clear();
    kept_classes.clear();
    size_t n = 0;
    for (uint64_t key : keys) {
      if (n == d) break;
      const size_t i = base + static_cast<uint32_t>(key);
      const T* c = boxes + 4 * i;
      const NmsBox box = nms_box(value(c, 0), value(c, 1), value(c, 2), value(c, 3));
      const int32_t cls = p.classes[i];
      bool suppressed = false;
      for (size_t j = 0; j < kept_boxes.size() && !suppressed; ++j)
        suppressed = (p.class_agnostic || kept_classes[j] == cls) && nms_suppresses(kept_boxes[j], box,
                                                                                     p.iou_threshold);
      if (suppressed) continue;
      kept_boxes.push_back(box);
      kept_classes.push_back(cls);
      const size_t row = static_cast<size_t>(b) * d + n;
      std::memcpy(out_boxes + 4 * row, c, 4 * sizeof(T));  // bit for bit
      out_scores[row] = scores[i];
      out_classes[row] = cls;
      ++n;
    }
    num[b] = static_cast<int32_t>(n);
    const size_t row = static_cast<size_t>(b) * d + n, rest = d - n;
    std::memset(out_boxes + 4 * row, 0, 4 * rest * sizeof(T));
    std::memset(out_scores + row, 0, rest * sizeof(T));
    std::memset(out_classes + row, 0, rest * sizeof(int32_t));
  }
}

}  // namespace

const char* check_params(const NmsParams& p) {
  if (p.batch < 0) return "the batch must be >= 0";
  if (p.num_candidates < 0 || p.num_candidates > kMaxCandidates)
    return "the candidates per image (K) must be 0 to 4096";
  if (p.max_detections < 1 || p.max_detections > kMaxDetections) return "max_detections must be 1 to 4096";
  if (!(p.iou_threshold >= 0.f && p.iou_threshold <= 1.f)) return "iou_threshold must be in [0, 1]";
  if (std::isnan(p.score_threshold) || std::isinf(p.score_threshold)) return "score_threshold must be finite";
  if (p.batch > 0 && p.num_candidates > 0 && (!p.boxes || !p.scores || !p.classes)) return "an input is null";
  return nullptr;
}

static size_t align256(size_t n) { return (n + 255) / 256 * 256; }

size_t nms_workspace_size(int batch, int num_candidates) {
  if (batch <= 0) return 0;
  const size_t b = static_cast<size_t>(batch), k = static_cast<size_t>(num_candidates < 1 ? 1 : num_candidates);
  const size_t words = (k + 63) / 64;
  // sorted indices, counts, sorted boxes (float4), sorted classes, the IoU bitmask
  return align256(b * k * 4) + align256(b * 4) + align256(b * k * 16) + align256(b * k * 4) +
         align256(b * k * words * 8);
}

const char* nms_cpu(const NmsParams& p, int32_t* num, void* boxes, void* scores, int32_t* classes) {
  if (const char* err = check_params(p)) return err;
  if (p.fp16)
    run(p, num, static_cast<uint16_t*>(boxes), static_cast<uint16_t*>(scores), classes);
  else
    run(p, num, static_cast<float*>(boxes), static_cast<float*>(scores), classes);
  return nullptr;
}

}  // namespace nms
}  // namespace trtdeploy
