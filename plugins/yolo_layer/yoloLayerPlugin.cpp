// YoloLayer_TRT IPluginV3 + creator. Thin: shapes, types, fields and the kernel call; the decode
// semantics live in yoloDecode.h and are tested without TensorRT.
#include "yoloLayerPlugin.h"

#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "yoloLayerAttrs.h"

using namespace nvinfer1;

namespace trtdeploy {
namespace yolo {
namespace {

std::mutex gLoggerMutex;
ILoggerFinder* gLoggerFinder = nullptr;

void logError(char const* where, char const* what) noexcept {
  try {
    std::lock_guard<std::mutex> lock(gLoggerMutex);
    ILogger* logger = gLoggerFinder ? gLoggerFinder->findLogger() : nullptr;
    std::string msg = std::string(kPluginName) + " " + where + ": " + what;
    if (logger) logger->log(ILogger::Severity::kERROR, msg.c_str());
  } catch (...) {
  }
}

AttrSpec const* findSpec(char const* name) {
  for (auto const& s : kAttributes)
    if (std::strcmp(s.name, name) == 0) return &s;
  return nullptr;
}

bool isParserAttribute(char const* name) {
  for (char const* p : kParserAttributes)
    if (std::strcmp(p, name) == 0) return true;
  return false;
}

}  // namespace

PluginConfig parseFields(PluginFieldCollection const& fc) {
  PluginConfig c;
  c.score_threshold = static_cast<float>(findSpec("prenms_score_threshold")->default_value);
  c.score_mode = static_cast<int32_t>(findSpec("score_mode")->default_value);
  c.max_detections = static_cast<int32_t>(findSpec("max_detections")->default_value);
  bool seen[kNumAttributes] = {};
  for (int32_t i = 0; i < fc.nbFields; ++i) {
    PluginField const& f = fc.fields[i];
    if (f.name == nullptr) throw std::invalid_argument("a field has no name");
    if (isParserAttribute(f.name)) continue;
    AttrSpec const* spec = findSpec(f.name);
    if (spec == nullptr) throw std::invalid_argument(std::string("unknown field '") + f.name + "'");
    seen[spec - kAttributes] = true;
    auto wrong = [&](char const* want) {
      return std::invalid_argument(std::string("field '") + f.name + "' must be " + want);
    };
    if (f.data == nullptr || f.length < 1) throw wrong("non-empty");
    switch (spec->type) {
      case AttrType::kInt: {
        int64_t v;
        if (f.type == PluginFieldType::kINT32 && f.length == 1)
          v = *static_cast<int32_t const*>(f.data);
        else if (f.type == PluginFieldType::kINT64 && f.length == 1)
          v = *static_cast<int64_t const*>(f.data);
        else
          throw wrong("one int32");
        int32_t iv = static_cast<int32_t>(v);
        if (std::strcmp(f.name, "max_stride") == 0) c.max_stride = iv;
        else if (std::strcmp(f.name, "num_classes") == 0) c.num_classes = iv;
        else if (std::strcmp(f.name, "score_mode") == 0) c.score_mode = iv;
        else if (std::strcmp(f.name, "max_detections") == 0) c.max_detections = iv;
        break;
      }
      case AttrType::kFloat: {
        if (f.length != 1) throw wrong("one float32");
        float v;
        if (f.type == PluginFieldType::kFLOAT32) v = *static_cast<float const*>(f.data);
        else if (f.type == PluginFieldType::kFLOAT64) v = static_cast<float>(*static_cast<double const*>(f.data));
        else throw wrong("one float32");
        if (std::strcmp(f.name, "prenms_score_threshold") == 0) c.score_threshold = v;
        break;
      }
      case AttrType::kFloats: {
        if (f.type != PluginFieldType::kFLOAT32) throw wrong("float32 values");
        auto const* v = static_cast<float const*>(f.data);
        if (std::strcmp(f.name, "anchors") == 0) c.anchors.assign(v, v + f.length);
        break;
      }
    }
  }
  for (int i = 0; i < kNumAttributes; ++i)
    if (kAttributes[i].required && !seen[i])
      throw std::invalid_argument(std::string("missing required field '") + kAttributes[i].name + "'");
  if (c.max_stride < 1 || c.num_classes < 1) throw std::invalid_argument("max_stride and num_classes must be >= 1");
  if (c.anchors.empty() || c.anchors.size() % 2) throw std::invalid_argument("anchors must hold (w, h) pairs");
  if (c.score_mode != 0 && c.score_mode != 1) throw std::invalid_argument("score_mode must be 0 or 1");
  if (c.max_detections < 0) throw std::invalid_argument("max_detections must be >= 0");
  return c;
}

// ---- plugin ---------------------------------------------------------------------------------------

YoloLayerPlugin::YoloLayerPlugin(PluginConfig config) : mConfig(std::move(config)) { initFieldsToSerialize(); }

YoloLayerPlugin::YoloLayerPlugin(YoloLayerPlugin const& other) : mConfig(other.mConfig), mNbInputs(other.mNbInputs) {
  initFieldsToSerialize();
}

void YoloLayerPlugin::initFieldsToSerialize() {
  mFields.clear();
  mFields.emplace_back("max_stride", &mConfig.max_stride, PluginFieldType::kINT32, 1);
  mFields.emplace_back("num_classes", &mConfig.num_classes, PluginFieldType::kINT32, 1);
  mFields.emplace_back("anchors", mConfig.anchors.data(), PluginFieldType::kFLOAT32,
                       static_cast<int32_t>(mConfig.anchors.size()));
  mFields.emplace_back("prenms_score_threshold", &mConfig.score_threshold, PluginFieldType::kFLOAT32, 1);
  mFields.emplace_back("score_mode", &mConfig.score_mode, PluginFieldType::kINT32, 1);
  mFields.emplace_back("max_detections", &mConfig.max_detections, PluginFieldType::kINT32, 1);
  mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
  mFieldCollection.fields = mFields.data();
}

IPluginCapability* YoloLayerPlugin::getCapabilityInterface(PluginCapabilityType type) noexcept {
  switch (type) {
    case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
    case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
    case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
  }
  return nullptr;
}

IPluginV3* YoloLayerPlugin::clone() noexcept {
  try {
    return new YoloLayerPlugin(*this);
  } catch (std::exception const& e) {
    logError("clone", e.what());
  }
  return nullptr;
}

char const* YoloLayerPlugin::getPluginName() const noexcept { return kPluginName; }
char const* YoloLayerPlugin::getPluginVersion() const noexcept { return kPluginVersion; }
char const* YoloLayerPlugin::getPluginNamespace() const noexcept { return ""; }

int32_t YoloLayerPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                         DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept {
  try {
    if (nbInputs < 1 || nbInputs > kMaxLevels || nbOutputs != 4) throw std::invalid_argument("1-8 inputs, 4 outputs");
    if (mConfig.anchors.size() % (2 * nbInputs)) throw std::invalid_argument("anchors do not split over the inputs");
    int64_t const na = static_cast<int64_t>(mConfig.anchors.size() / (2 * nbInputs));
    if (na > kMaxAnchors) throw std::invalid_argument("at most 16 anchors per level");
    for (int32_t l = 0; l < nbInputs; ++l) {
      Dims const& d = in[l].desc.dims;
      if (d.nbDims != 4) throw std::invalid_argument("inputs must be [B, na*(nc+5), H, W]");
      if (d.d[1] != -1 && d.d[1] != na * (mConfig.num_classes + 5))
        throw std::invalid_argument("input channels != num_anchors * (num_classes + 5)");
    }
    mNbInputs = nbInputs;
    return 0;
  } catch (std::exception const& e) {
    logError("configurePlugin", e.what());
  }
  return -1;
}

bool YoloLayerPlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                                int32_t nbOutputs) noexcept {
  PluginTensorDesc const& d = inOut[pos].desc;
  if (d.format != TensorFormat::kLINEAR) return false;
  if (pos < nbInputs) {
    bool const ok = d.type == DataType::kFLOAT || d.type == DataType::kHALF;
    return ok && (pos == 0 || d.type == inOut[0].desc.type);  // all levels share one type
  }
  int32_t const o = pos - nbInputs;
  return d.type == ((o == 0 || o == 3) ? DataType::kINT32 : DataType::kFLOAT);
}

int32_t YoloLayerPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                            int32_t nbInputs) const noexcept {
  if (nbOutputs != 4) return -1;
  outputTypes[0] = DataType::kINT32;
  outputTypes[1] = DataType::kFLOAT;
  outputTypes[2] = DataType::kFLOAT;
  outputTypes[3] = DataType::kINT32;
  return 0;
}

int32_t YoloLayerPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* shapeInputs,
                                         int32_t nbShapeInputs, DimsExprs* outputs, int32_t nbOutputs,
                                         IExprBuilder& exprBuilder) noexcept {
  try {
    if (nbInputs < 1 || nbOutputs != 4 || mConfig.anchors.size() % (2 * nbInputs)) return -1;
    int64_t const na = static_cast<int64_t>(mConfig.anchors.size() / (2 * nbInputs));
    IDimensionExpr const* total = nullptr;  // sum over levels of na * H * W
    for (int32_t l = 0; l < nbInputs; ++l) {
      if (inputs[l].nbDims != 4) return -1;
      auto const* cells = exprBuilder.operation(DimensionOperation::kPROD, *inputs[l].d[2], *inputs[l].d[3]);
      auto const* n = exprBuilder.operation(DimensionOperation::kPROD, *cells, *exprBuilder.constant(na));
      total = total ? exprBuilder.operation(DimensionOperation::kSUM, *total, *n) : n;
    }
    IDimensionExpr const* rows = total;
    if (mConfig.max_detections > 0)
      rows = exprBuilder.operation(DimensionOperation::kMIN, *total, *exprBuilder.constant(mConfig.max_detections));
    IDimensionExpr const* batch = inputs[0].d[0];
    outputs[0].nbDims = 2;
    outputs[0].d[0] = batch;
    outputs[0].d[1] = exprBuilder.constant(1);
    outputs[1].nbDims = 3;
    outputs[1].d[0] = batch;
    outputs[1].d[1] = rows;
    outputs[1].d[2] = exprBuilder.constant(4);
    for (int o = 2; o < 4; ++o) {
      outputs[o].nbDims = 2;
      outputs[o].d[0] = batch;
      outputs[o].d[1] = rows;
    }
    return 0;
  } catch (std::exception const& e) {
    logError("getOutputShapes", e.what());
  }
  return -1;
}

size_t YoloLayerPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                                         DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept {
  if (nbInputs < 1 || mConfig.anchors.size() % (2 * nbInputs)) return 0;
  int64_t const na = static_cast<int64_t>(mConfig.anchors.size() / (2 * nbInputs));
  int64_t total = 0;
  for (int32_t l = 0; l < nbInputs; ++l) total += na * inputs[l].max.d[2] * inputs[l].max.d[3];
  return decode_workspace_size(static_cast<int>(inputs[0].max.d[0]), static_cast<int>(total),  // max profile shape
                               mConfig.max_detections);
}

char const* YoloLayerPlugin::makeParams(PluginTensorDesc const* inputDesc, int32_t nbInputs, DecodeParams& p) const {
  if (nbInputs < 1 || nbInputs > kMaxLevels) return "1 to 8 inputs";
  p.num_levels = nbInputs;
  p.num_anchors = static_cast<int>(mConfig.anchors.size() / (2 * nbInputs));
  p.num_classes = mConfig.num_classes;
  p.batch = static_cast<int>(inputDesc[0].dims.d[0]);
  for (int32_t l = 0; l < nbInputs; ++l) {
    p.grid_h[l] = static_cast<int>(inputDesc[l].dims.d[2]);
    p.grid_w[l] = static_cast<int>(inputDesc[l].dims.d[3]);
    for (int a = 0; a < p.num_anchors; ++a) {
      p.anchors[(l * kMaxAnchors + a) * 2 + 0] = mConfig.anchors[(l * p.num_anchors + a) * 2 + 0];
      p.anchors[(l * kMaxAnchors + a) * 2 + 1] = mConfig.anchors[(l * p.num_anchors + a) * 2 + 1];
    }
  }
  p.score_threshold = mConfig.score_threshold;
  p.score_mode = mConfig.score_mode;
  p.max_detections = mConfig.max_detections;
  p.fp16 = inputDesc[0].type == DataType::kHALF;
  return finalize(p, mConfig.max_stride);
}

int32_t YoloLayerPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out,
                                       int32_t nbOutputs) noexcept {
  try {
    DecodeParams p;
    if (char const* err = makeParams(in, nbInputs, p)) {
      logError("onShapeChange", err);
      return -1;
    }
    mNbInputs = nbInputs;
    return 0;
  } catch (std::exception const& e) {
    logError("onShapeChange", e.what());
  }
  return -1;
}

int32_t YoloLayerPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc,
                                 void const* const* inputs, void* const* outputs, void* workspace,
                                 cudaStream_t stream) noexcept {
  try {
    DecodeParams p;  // host-side struct passed by value to the kernels: no allocation, no copy
    if (char const* err = makeParams(inputDesc, mNbInputs, p)) {
      logError("enqueue", err);
      return -1;
    }
    if (outputDesc[1].dims.d[1] != p.max_detections) {
      logError("enqueue", "output rows differ from the planned max_detections");
      return -1;
    }
    for (int32_t l = 0; l < mNbInputs; ++l) p.inputs[l] = inputs[l];
    int const err = decode_cuda(p, static_cast<int32_t*>(outputs[0]), static_cast<float*>(outputs[1]),
                                static_cast<float*>(outputs[2]), static_cast<int32_t*>(outputs[3]), workspace, stream);
    if (err != 0) {
      logError("enqueue", "kernel launch failed");
      return -1;
    }
    return 0;
  } catch (std::exception const& e) {
    logError("enqueue", e.what());
  }
  return -1;
}

IPluginV3* YoloLayerPlugin::attachToContext(IPluginResourceContext* context) noexcept { return clone(); }

PluginFieldCollection const* YoloLayerPlugin::getFieldsToSerialize() noexcept { return &mFieldCollection; }

// ---- creator --------------------------------------------------------------------------------------

YoloLayerPluginCreator::YoloLayerPluginCreator() {
  for (auto const& s : kAttributes) {
    PluginFieldType t = s.type == AttrType::kInt ? PluginFieldType::kINT32 : PluginFieldType::kFLOAT32;
    mFieldNames.emplace_back(s.name, nullptr, t, s.type == AttrType::kFloats ? 0 : 1);
  }
  mFieldCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
  mFieldCollection.fields = mFieldNames.data();
}

char const* YoloLayerPluginCreator::getPluginName() const noexcept { return kPluginName; }
char const* YoloLayerPluginCreator::getPluginVersion() const noexcept { return kPluginVersion; }
char const* YoloLayerPluginCreator::getPluginNamespace() const noexcept { return ""; }
PluginFieldCollection const* YoloLayerPluginCreator::getFieldNames() noexcept { return &mFieldCollection; }

IPluginV3* YoloLayerPluginCreator::createPlugin(char const* name, PluginFieldCollection const* fc,
                                                TensorRTPhase phase) noexcept {
  try {
    if (fc == nullptr) throw std::invalid_argument("no fields");
    return new YoloLayerPlugin(parseFields(*fc));
  } catch (std::exception const& e) {
    logError("createPlugin", e.what());
  }
  return nullptr;
}

}  // namespace yolo
}  // namespace trtdeploy

// ---- library entry points: trtexec --dynamicPlugins, IPluginRegistry::loadLibrary ------------------

extern "C" __attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
  std::lock_guard<std::mutex> lock(trtdeploy::yolo::gLoggerMutex);
  trtdeploy::yolo::gLoggerFinder = finder;
}

extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(
    int32_t& nbCreators) {
  static trtdeploy::yolo::YoloLayerPluginCreator sCreator;
  static nvinfer1::IPluginCreatorInterface* const kCreators[] = {&sCreator};
  nbCreators = 1;
  return kCreators;
}
