// The TRTDeploy_NMS attribute list, declared once: the plugin creator, trtdeploy._C (and through it
// the Python node inserter) all read this table. No TensorRT or CUDA types here.
#pragma once

namespace trtdeploy {
namespace nms {

enum class AttrType { kInt, kFloat };

struct AttrSpec {
  const char* name;
  AttrType type;
  bool required;
  double default_value;  // for optional attributes
  const char* doc;
};

constexpr const char* kPluginName = "TRTDeploy_NMS";
constexpr const char* kPluginVersion = "1";

constexpr AttrSpec kAttributes[] = {
    {"iou_threshold", AttrType::kFloat, false, 0.45,
     "a candidate is suppressed by a kept box (of its class) whose IoU with it is > iou_threshold (float32 IoU)"},
    {"score_threshold", AttrType::kFloat, false, 0.25, "candidates with score > score_threshold take part"},
    {"max_detections", AttrType::kInt, true, 0, "D: rows per image of the outputs; the first D kept boxes"},
    {"class_agnostic", AttrType::kInt, false, 0, "0: boxes suppress boxes of their own class only; 1: any class"},
};
constexpr int kNumAttributes = sizeof(kAttributes) / sizeof(kAttributes[0]);

// Attributes the ONNX parser consumes itself; the creator ignores them.
constexpr const char* kParserAttributes[] = {"plugin_version", "plugin_namespace"};

}  // namespace nms
}  // namespace trtdeploy
