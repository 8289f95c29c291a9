// YoloLayer_TRT as a TensorRT 10/11 IPluginV3 (OneCore/OneBuild/OneRuntime) around the decode kernel
// in yoloDecodeKernel.cu. Needs TensorRT's public headers only: CMake builds one library per
// TensorRT major version found (libtrtdeploy_plugins_trt10.so, ..._trt11.so), because ILogger and
// ILoggerFinder differ between 10 and 11.
#pragma once

#include <NvInferRuntime.h>

#include <string>
#include <vector>

#include "yoloDecode.h"

namespace trtdeploy {
namespace yolo {

struct PluginConfig {
  int32_t max_stride = 0;
  int32_t num_classes = 0;
  std::vector<float> anchors;  // pixels, (w, h) pairs, level by level
  float score_threshold = 0.25f;
  int32_t score_mode = 0;
  int32_t max_detections = 0;  // 0 = every anchor
};

class YoloLayerPlugin : public nvinfer1::IPluginV3,
                        public nvinfer1::IPluginV3OneCore,
                        public nvinfer1::IPluginV3OneBuild,
                        public nvinfer1::IPluginV3OneRuntime {
 public:
  YoloLayerPlugin(PluginConfig config, std::string name);
  YoloLayerPlugin(YoloLayerPlugin const& other);
  // mFields points into mConfig: an assigned copy would point into the other plugin.
  YoloLayerPlugin& operator=(YoloLayerPlugin const&) = delete;
  YoloLayerPlugin(YoloLayerPlugin&&) = delete;
  YoloLayerPlugin& operator=(YoloLayerPlugin&&) = delete;
  ~YoloLayerPlugin() override = default;

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
  nvinfer1::IPluginV3* clone() noexcept override;

  // IPluginV3OneCore
  char const* getPluginName() const noexcept override;
  char const* getPluginVersion() const noexcept override;
  char const* getPluginNamespace() const noexcept override;

  // IPluginV3OneBuild
  int32_t getNbOutputs() const noexcept override { return 4; }
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override;
  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
                             nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
                          int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                          nvinfer1::IExprBuilder& exprBuilder) noexcept override;
  size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

  // IPluginV3OneRuntime
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
                        int32_t nbOutputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                  void const* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override;
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

 private:
  PluginConfig mConfig;
  std::string mName;      // the layer name TensorRT gave createPlugin, for messages
  int32_t mNbInputs = 0;  // levels, known from configurePlugin/onShapeChange (enqueue does not say)
  std::vector<nvinfer1::PluginField> mFields;
  nvinfer1::PluginFieldCollection mFieldCollection{};

  void initFieldsToSerialize();
  void fail(char const* where, char const* what) const noexcept;
  // Anchors per level for nbInputs levels; throws std::invalid_argument when they do not split.
  int64_t anchorsPerLevel(int32_t nbInputs) const;
  // Runtime level shapes/types -> decode params, every consistency check included.
  // Returns nullptr or what is wrong.
  char const* makeParams(nvinfer1::PluginTensorDesc const* inputDesc, int32_t nbInputs, DecodeParams& p,
                         std::string& why) const;
};

class YoloLayerPluginCreator : public nvinfer1::IPluginCreatorV3One {
 public:
  YoloLayerPluginCreator();
  char const* getPluginName() const noexcept override;
  char const* getPluginVersion() const noexcept override;
  char const* getPluginNamespace() const noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
  // The one path from fields to a plugin: build (ONNX attributes) and deserialize share it.
  nvinfer1::IPluginV3* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase phase) noexcept override;

 private:
  std::vector<nvinfer1::PluginField> mFieldNames;
  nvinfer1::PluginFieldCollection mFieldCollection{};
};

// Parse and validate plugin fields against kAttributes; throws std::invalid_argument naming the field.
PluginConfig parseFields(nvinfer1::PluginFieldCollection const& fc);

}  // namespace yolo
}  // namespace trtdeploy
