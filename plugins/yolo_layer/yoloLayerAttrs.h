// The YoloLayer_TRT attribute list, declared once: the plugin creator, trtdeploy._C (and through it
// the Python node inserter) all read this table. No TensorRT or CUDA types here.
#pragma once

namespace trtdeploy {
namespace yolo {

enum class AttrType { kInt, kFloat, kFloats };

struct AttrSpec {
  const char* name;
  AttrType type;
  bool required;
  double default_value;  // for optional scalars
  const char* doc;
};

constexpr const char* kPluginName = "YoloLayer_TRT";
constexpr const char* kPluginVersion = "1";

constexpr AttrSpec kAttributes[] = {
    {"max_stride", AttrType::kInt, true, 0,
     "stride of the coarsest level (the last input); level strides = max_stride * H_last / H_level"},
    {"num_classes", AttrType::kInt, true, 0, "classes per anchor (nc); each level has na*(nc+5) channels"},
    {"anchors", AttrType::kFloats, true, 0,
     "anchor (w, h) pairs in input pixels, level by level: 2 * na * num_levels values"},
    {"prenms_score_threshold", AttrType::kFloat, false, 0.25, "keep detections with score > threshold"},
    {"score_mode", AttrType::kInt, false, 0, "0: score = obj * max class prob; 1: score = obj (legacy)"},
    {"max_detections", AttrType::kInt, false, 0,
     "rows per image: the N highest-scoring detections (ties by anchor order), in anchor order; 0 = every anchor"},
};
constexpr int kNumAttributes = sizeof(kAttributes) / sizeof(kAttributes[0]);

// Attributes the ONNX parser consumes itself; the creator ignores them.
constexpr const char* kParserAttributes[] = {"plugin_version", "plugin_namespace"};

}  // namespace yolo
}  // namespace trtdeploy
