// TRTDeploy_NMS as a TensorRT 10/11 IPluginV3 (OneCore/OneBuild/OneRuntime) around the kernels in
// nmsKernel.cu; semantics in nms.h. TensorRT's public headers only, like YoloLayer_TRT.
#pragma once

#include <NvInferRuntime.h>

#include <string>
#include <vector>

namespace trtdeploy {
namespace nms {

struct PluginConfig {
  float iou_threshold = 0.45f;
  float score_threshold = 0.25f;
  int32_t max_detections = 0;
  int32_t class_agnostic = 0;
};

class NmsPlugin : public nvinfer1::IPluginV3,
                  public nvinfer1::IPluginV3OneCore,
                  public nvinfer1::IPluginV3OneBuild,
                  public nvinfer1::IPluginV3OneRuntime {
 public:
  NmsPlugin(PluginConfig config, std::string name);
  NmsPlugin(NmsPlugin const& other);
  NmsPlugin& operator=(NmsPlugin const&) = delete;  // mFields points into mConfig
  NmsPlugin(NmsPlugin&&) = delete;
  NmsPlugin& operator=(NmsPlugin&&) = delete;
  ~NmsPlugin() override = default;

  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
  nvinfer1::IPluginV3* clone() noexcept override;

  char const* getPluginName() const noexcept override;
  char const* getPluginVersion() const noexcept override;
  char const* getPluginNamespace() const noexcept override;

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

  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
                        int32_t nbOutputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                  void const* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override;
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

 private:
  PluginConfig mConfig;
  std::string mName;
  std::vector<nvinfer1::PluginField> mFields;
  nvinfer1::PluginFieldCollection mFieldCollection{};
  void initFieldsToSerialize();
};

class NmsPluginCreator : public nvinfer1::IPluginCreatorV3One {
 public:
  NmsPluginCreator();
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

}  // namespace nms
}  // namespace trtdeploy
