// TRTDeploy_NMS IPluginV3 + creator. Thin: shapes, types, fields and the kernel call; the semantics
// live in nms.h and are tested without TensorRT. Every entry point is noexcept and says why it fails
// through TensorRT's logger ("TRTDeploy_NMS (layer) where: what").
#include "nmsPlugin.h"

#include <cuda_runtime_api.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

#include "nms.h"
#include "nmsAttrs.h"
#include "pluginLog.h"

using namespace nvinfer1;

namespace trtdeploy {
namespace nms {
namespace {

void logCaught(std::string const& name, char const* where) noexcept { plugin::logCaught(kPluginName, name, where); }
using plugin::typeName;

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

std::string str(int64_t v) { return std::to_string(v); }

void expectCounts(int32_t nbInputs, int32_t nbOutputs) {
  if (nbInputs != 3) throw std::invalid_argument("takes 3 inputs (boxes, scores, classes), not " + str(nbInputs));
  if (nbOutputs != 4) throw std::invalid_argument("has 4 outputs, not " + str(nbOutputs));
}

// Ranks, types and matching B/K of boxes [B,K,4], scores [B,K], classes [B,K] (dims may be -1).
void checkInputs(Dims const& boxes, DataType tb, Dims const& scores, DataType ts, Dims const& classes, DataType tc) {
  if (boxes.nbDims != 3 || (boxes.d[2] >= 0 && boxes.d[2] != 4))
    throw std::invalid_argument("input 0 (boxes) must be [B, K, 4]");
  if (scores.nbDims != 2) throw std::invalid_argument("input 1 (scores) must be [B, K]");
  if (classes.nbDims != 2) throw std::invalid_argument("input 2 (classes) must be [B, K]");
  if (tb != DataType::kFLOAT && tb != DataType::kHALF)
    throw std::invalid_argument(std::string("input 0 (boxes) is ") + typeName(tb) + "; float32 or float16");
  if (ts != tb)
    throw std::invalid_argument(std::string("input 1 (scores) is ") + typeName(ts) + ", boxes are " + typeName(tb) +
                                "; they must share one type");
  if (tc != DataType::kINT32)
    throw std::invalid_argument(std::string("input 2 (classes) is ") + typeName(tc) + "; it must be int32");
  for (int a = 0; a < 2; ++a) {
    int64_t const v = boxes.d[a];
    for (Dims const* o : {&scores, &classes})
      if (v >= 0 && o->d[a] >= 0 && o->d[a] != v)
        throw std::invalid_argument(std::string("inputs disagree on ") + (a ? "K" : "B") + ": " + str(v) + " vs " +
                                    str(o->d[a]));
  }
  if (boxes.d[1] > kMaxCandidates)
    throw std::invalid_argument(str(boxes.d[1]) + " candidates per image; at most " + str(kMaxCandidates));
}

}  // namespace

PluginConfig parseFields(PluginFieldCollection const& fc) {
  PluginConfig c;
  c.iou_threshold = static_cast<float>(findSpec("iou_threshold")->default_value);
  c.score_threshold = static_cast<float>(findSpec("score_threshold")->default_value);
  c.class_agnostic = static_cast<int32_t>(findSpec("class_agnostic")->default_value);
  bool seen[kNumAttributes] = {};
  if (fc.nbFields > 0 && fc.fields == nullptr) throw std::invalid_argument("the field collection has no fields");
  for (int32_t i = 0; i < fc.nbFields; ++i) {
    PluginField const& f = fc.fields[i];
    if (f.name == nullptr) throw std::invalid_argument("a field has no name");
    if (isParserAttribute(f.name)) continue;
    AttrSpec const* spec = findSpec(f.name);
    if (spec == nullptr) throw std::invalid_argument(std::string("unknown field '") + f.name + "'");
    if (seen[spec - kAttributes]) throw std::invalid_argument(std::string("field '") + f.name + "' given twice");
    seen[spec - kAttributes] = true;
    auto wrong = [&](char const* want) {
      return std::invalid_argument(std::string("field '") + f.name + "' must be " + want);
    };
    if (f.data == nullptr || f.length != 1) throw wrong(spec->type == AttrType::kInt ? "one int32" : "one float32");
    if (spec->type == AttrType::kInt) {
      int64_t v;
      if (f.type == PluginFieldType::kINT32)
        v = *static_cast<int32_t const*>(f.data);
      else if (f.type == PluginFieldType::kINT64)
        v = *static_cast<int64_t const*>(f.data);
      else
        throw wrong("one int32");
      if (v < INT32_MIN || v > INT32_MAX) throw wrong("an int32");
      (std::strcmp(f.name, "max_detections") == 0 ? c.max_detections : c.class_agnostic) = static_cast<int32_t>(v);
    } else {
      float v;
      if (f.type == PluginFieldType::kFLOAT32)
        v = *static_cast<float const*>(f.data);
      else if (f.type == PluginFieldType::kFLOAT64)
        v = static_cast<float>(*static_cast<double const*>(f.data));
      else
        throw wrong("one float32");
      if (!std::isfinite(v)) throw wrong("a finite number");
      (std::strcmp(f.name, "iou_threshold") == 0 ? c.iou_threshold : c.score_threshold) = v;
    }
  }
  for (int i = 0; i < kNumAttributes; ++i)
    if (kAttributes[i].required && !seen[i])
      throw std::invalid_argument(std::string("missing required field '") + kAttributes[i].name + "'");
  if (c.max_detections < 1 || c.max_detections > kMaxDetections)
    throw std::invalid_argument("max_detections must be 1 to " + str(kMaxDetections));
  if (!(c.iou_threshold >= 0.f && c.iou_threshold <= 1.f)) throw std::invalid_argument("iou_threshold must be in [0, 1]");
  if (c.class_agnostic != 0 && c.class_agnostic != 1) throw std::invalid_argument("class_agnostic must be 0 or 1");
  return c;
}

NmsPlugin::NmsPlugin(PluginConfig config, std::string name) : mConfig(config), mName(std::move(name)) {
  initFieldsToSerialize();
}

NmsPlugin::NmsPlugin(NmsPlugin const& other)
    : IPluginV3(other),
      IPluginV3OneCore(other),
      IPluginV3OneBuild(other),
      IPluginV3OneRuntime(other),
      mConfig(other.mConfig),
      mName(other.mName) {
  initFieldsToSerialize();
}

void NmsPlugin::initFieldsToSerialize() {
  mFields.clear();
  mFields.emplace_back("iou_threshold", &mConfig.iou_threshold, PluginFieldType::kFLOAT32, 1);
  mFields.emplace_back("score_threshold", &mConfig.score_threshold, PluginFieldType::kFLOAT32, 1);
  mFields.emplace_back("max_detections", &mConfig.max_detections, PluginFieldType::kINT32, 1);
  mFields.emplace_back("class_agnostic", &mConfig.class_agnostic, PluginFieldType::kINT32, 1);
  mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
  mFieldCollection.fields = mFields.data();
}

IPluginCapability* NmsPlugin::getCapabilityInterface(PluginCapabilityType type) noexcept {
  switch (type) {
    case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
    case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
    case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
  }
  return nullptr;
}

IPluginV3* NmsPlugin::clone() noexcept {
  try {
    return new NmsPlugin(*this);
  } catch (...) {
    logCaught(mName, "clone");
  }
  return nullptr;
}

char const* NmsPlugin::getPluginName() const noexcept { return kPluginName; }
char const* NmsPlugin::getPluginVersion() const noexcept { return kPluginVersion; }
char const* NmsPlugin::getPluginNamespace() const noexcept { return ""; }

int32_t NmsPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                   DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  try {
    expectCounts(nbInputs, nbOutputs);
    checkInputs(in[0].desc.dims, in[0].desc.type, in[1].desc.dims, in[1].desc.type, in[2].desc.dims, in[2].desc.type);
    if (in[0].max.nbDims != 3 || in[0].max.d[1] < 0 || in[0].max.d[1] > kMaxCandidates || in[0].max.d[0] < 0 ||
        in[0].max.d[0] > 65535)
      throw std::invalid_argument("the profile's max boxes shape must be [B <= 65535, K <= " + str(kMaxCandidates) +
                                  ", 4]");
    return 0;
  } catch (...) {
    logCaught(mName, "configurePlugin");
  }
  return -1;
}

bool NmsPlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                          int32_t nbOutputs) noexcept {
  if (inOut == nullptr || nbInputs != 3 || nbOutputs != 4 || pos < 0 || pos >= 7) return false;
  PluginTensorDesc const& d = inOut[pos].desc;
  if (d.format != TensorFormat::kLINEAR) return false;
  switch (pos) {
    case 0: return d.type == DataType::kFLOAT || d.type == DataType::kHALF;
    case 1: case 4: case 5: return d.type == inOut[0].desc.type;  // scores, out boxes, out scores
    default: return d.type == DataType::kINT32;                    // classes, num, out classes
  }
}

int32_t NmsPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                      int32_t nbInputs) const noexcept {
  try {
    expectCounts(nbInputs, nbOutputs);
    if (outputTypes == nullptr || inputTypes == nullptr) throw std::invalid_argument("no types");
    if (inputTypes[0] != DataType::kFLOAT && inputTypes[0] != DataType::kHALF)
      throw std::invalid_argument(std::string("input 0 (boxes) is ") + typeName(inputTypes[0]) +
                                  "; float32 or float16");
    outputTypes[0] = DataType::kINT32;
    outputTypes[1] = inputTypes[0];
    outputTypes[2] = inputTypes[0];
    outputTypes[3] = DataType::kINT32;
    return 0;
  } catch (...) {
    logCaught(mName, "getOutputDataTypes");
  }
  return -1;
}

int32_t NmsPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
                                   int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
                                   IExprBuilder& exprBuilder) noexcept {
  try {
    expectCounts(nbInputs, nbOutputs);
    if (inputs[0].nbDims != 3) throw std::invalid_argument("input 0 (boxes) must be [B, K, 4]");
    if (inputs[1].nbDims != 2 || inputs[2].nbDims != 2)
      throw std::invalid_argument("inputs 1 and 2 (scores, classes) must be [B, K]");
    IDimensionExpr const* batch = inputs[0].d[0];
    IDimensionExpr const* d = exprBuilder.constant(mConfig.max_detections);
    outputs[0].nbDims = 2;
    outputs[0].d[0] = batch;
    outputs[0].d[1] = exprBuilder.constant(1);
    outputs[1].nbDims = 3;
    outputs[1].d[0] = batch;
    outputs[1].d[1] = d;
    outputs[1].d[2] = exprBuilder.constant(4);
    for (int o = 2; o < 4; ++o) {
      outputs[o].nbDims = 2;
      outputs[o].d[0] = batch;
      outputs[o].d[1] = d;
    }
    return 0;
  } catch (...) {
    logCaught(mName, "getOutputShapes");
  }
  return -1;
}

size_t NmsPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                                   DynamicPluginTensorDesc const* /*outputs*/, int32_t nbOutputs) const noexcept {
  try {
    expectCounts(nbInputs, nbOutputs);
    Dims const& m = inputs[0].max;  // sized once, for every shape the profile admits
    if (m.nbDims != 3 || m.d[0] < 0 || m.d[1] < 0 || m.d[0] > 65535 || m.d[1] > kMaxCandidates)
      throw std::invalid_argument("the profile's max boxes shape must be [B <= 65535, K <= 4096, 4]");
    return nms_workspace_size(static_cast<int>(m.d[0]), static_cast<int>(m.d[1]));
  } catch (...) {
    logCaught(mName, "getWorkspaceSize");
  }
  return 0;
}

int32_t NmsPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/,
                                 int32_t nbOutputs) noexcept {
  try {
    expectCounts(nbInputs, nbOutputs);
    checkInputs(in[0].dims, in[0].type, in[1].dims, in[1].type, in[2].dims, in[2].type);
    // Load the kernels now (CUDA lazy loading), not in an enqueue that may be captured into a graph.
    (void)nms_cuda_prepare();
    return 0;
  } catch (...) {
    logCaught(mName, "onShapeChange");
  }
  return -1;
}

int32_t NmsPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc,
                           void const* const* inputs, void* const* outputs, void* workspace,
                           cudaStream_t stream) noexcept {
  try {
    Dims const& bd = inputDesc[0].dims;
    checkInputs(bd, inputDesc[0].type, inputDesc[1].dims, inputDesc[1].type, inputDesc[2].dims, inputDesc[2].type);
    if (bd.d[0] < 0 || bd.d[1] < 0) throw std::invalid_argument("an input has an unknown dim at run time");
    if (outputDesc[1].dims.nbDims != 3 || outputDesc[1].dims.d[1] != mConfig.max_detections)
      throw std::invalid_argument("output rows differ from max_detections (" + str(mConfig.max_detections) + ")");
    NmsParams p;  // passed by value to the kernels: no allocation, no copy
    p.batch = static_cast<int>(bd.d[0]);
    p.num_candidates = static_cast<int>(bd.d[1]);
    p.max_detections = mConfig.max_detections;
    p.iou_threshold = mConfig.iou_threshold;
    p.score_threshold = mConfig.score_threshold;
    p.class_agnostic = mConfig.class_agnostic != 0;
    p.fp16 = inputDesc[0].type == DataType::kHALF;
    p.boxes = inputs[0];
    p.scores = inputs[1];
    p.classes = static_cast<int32_t const*>(inputs[2]);
    if (char const* err = check_params(p)) throw std::invalid_argument(err);
    if (workspace == nullptr && p.batch > 0 && p.num_candidates > 0)
      throw std::invalid_argument("no workspace; these shapes need " +
                                  str(static_cast<int64_t>(nms_workspace_size(p.batch, p.num_candidates))) +
                                  " bytes (getWorkspaceSize)");
    int const err = nms_cuda(p, static_cast<int32_t*>(outputs[0]), outputs[1], outputs[2],
                             static_cast<int32_t*>(outputs[3]), workspace, stream);
    if (err != 0) {
      auto const e = static_cast<cudaError_t>(err);
      throw std::runtime_error(std::string("the NMS kernels did not launch: ") + cudaGetErrorName(e) + " (" +
                               cudaGetErrorString(e) + ")");
    }
    return 0;
  } catch (...) {
    logCaught(mName, "enqueue");
  }
  return -1;
}

IPluginV3* NmsPlugin::attachToContext(IPluginResourceContext* /*context*/) noexcept { return clone(); }

PluginFieldCollection const* NmsPlugin::getFieldsToSerialize() noexcept { return &mFieldCollection; }

NmsPluginCreator::NmsPluginCreator() {
  for (auto const& s : kAttributes)
    mFieldNames.emplace_back(s.name, nullptr,
                             s.type == AttrType::kInt ? PluginFieldType::kINT32 : PluginFieldType::kFLOAT32, 1);
  mFieldCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
  mFieldCollection.fields = mFieldNames.data();
}

char const* NmsPluginCreator::getPluginName() const noexcept { return kPluginName; }
char const* NmsPluginCreator::getPluginVersion() const noexcept { return kPluginVersion; }
char const* NmsPluginCreator::getPluginNamespace() const noexcept { return ""; }
PluginFieldCollection const* NmsPluginCreator::getFieldNames() noexcept { return &mFieldCollection; }

IPluginV3* NmsPluginCreator::createPlugin(char const* name, PluginFieldCollection const* fc,
                                          TensorRTPhase /*phase*/) noexcept {
  std::string layer;
  try {
    layer = name ? name : "";
    if (fc == nullptr) throw std::invalid_argument("no fields");
    return new NmsPlugin(parseFields(*fc), layer);
  } catch (...) {
    logCaught(layer, "createPlugin");
  }
  return nullptr;
}

}  // namespace nms
}  // namespace trtdeploy
