// YoloLayer_TRT IPluginV3 + creator. Thin: shapes, types, fields and the kernel call; the decode
// semantics live in yoloDecode.h and are tested without TensorRT. Every entry point is noexcept and
// says why it fails through TensorRT's logger ("YoloLayer_TRT (layer) where: what").
#include "yoloLayerPlugin.h"

#include <cuda_runtime_api.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>

#include "pluginLog.h"
#include "yoloLayerAttrs.h"

using namespace nvinfer1;

namespace trtdeploy {
namespace yolo {
namespace {

void logError(std::string const& name, char const* where, char const* what) noexcept {
  plugin::logError(kPluginName, name, where, what);
}
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

// The checks shared by build (dims may be -1) and runtime (all dims known): one level's rank,
// type, channels and batch against level 0. Returns "" or what is wrong.
std::string checkLevel(int32_t l, Dims const& d, DataType type, Dims const& d0, DataType type0, int64_t na,
                       int32_t nc) {
  std::string const in = "input " + str(l);
  if (d.nbDims != 4)
    return in + " has " + str(d.nbDims) + " dims; each level must be [B, na*(nc+5), H, W]";
  if (type != DataType::kFLOAT && type != DataType::kHALF)
    return in + " is " + typeName(type) + "; the levels must be float32 or float16";
  if (type != type0)
    return in + " is " + typeName(type) + " but input 0 is " + typeName(type0) + "; all levels must share one type";
  int64_t const channels = na * (nc + 5);
  if (d.d[1] >= 0 && d.d[1] != channels)
    return in + " has " + str(d.d[1]) + " channels; num_anchors * (num_classes + 5) = " + str(na) + " * (" + str(nc) +
           " + 5) = " + str(channels);
  if (d.d[0] >= 0 && d0.d[0] >= 0 && d.d[0] != d0.d[0])
    return in + " has batch " + str(d.d[0]) + " but input 0 has batch " + str(d0.d[0]);
  return "";
}

// Anchors per image at the profile's max shapes (what getWorkspaceSize sizes for); throws when the
// profile admits shapes the decode refuses, so that no engine is built around a workspace of 0 bytes.
int64_t maxAnchorsPerImage(DynamicPluginTensorDesc const* in, int32_t nbInputs, int64_t na) {
  auto const tooMany = [] {
    return std::invalid_argument("the profile's max shapes give more than 2^30 anchors per image (the sum over the "
                                 "levels of num_anchors * H * W); lower the profile's max H and W");
  };
  int64_t total = 0;
  for (int32_t l = 0; l < nbInputs; ++l) {
    Dims const& m = in[l].max;
    if (m.nbDims != 4 || m.d[0] < 0 || m.d[2] < 0 || m.d[3] < 0)
      throw std::invalid_argument("input " + str(l) + " has no max shape [B, C, H, W] in the profile");
    if (m.d[0] > INT_MAX) throw std::invalid_argument("the profile's max batch " + str(m.d[0]) + " is above 2^31 - 1");
    int64_t const h = m.d[2], w = m.d[3];  // each <= 2^30 before multiplying (na <= 16): no overflow
    if (h > kMaxAnchorsPerImage || w > kMaxAnchorsPerImage || h * w > kMaxAnchorsPerImage) throw tooMany();
    total += na * h * w;
    if (total > kMaxAnchorsPerImage) throw tooMany();
  }
  return total;
}

}  // namespace

PluginConfig parseFields(PluginFieldCollection const& fc) {
  PluginConfig c;
  c.score_threshold = static_cast<float>(findSpec("prenms_score_threshold")->default_value);
  c.score_mode = static_cast<int32_t>(findSpec("score_mode")->default_value);
  c.max_detections = static_cast<int32_t>(findSpec("max_detections")->default_value);
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
        if (v < INT32_MIN || v > INT32_MAX) throw wrong("an int32");
        auto const iv = static_cast<int32_t>(v);
        if (std::strcmp(f.name, "max_stride") == 0) c.max_stride = iv;
        else if (std::strcmp(f.name, "num_classes") == 0) c.num_classes = iv;
        else if (std::strcmp(f.name, "score_mode") == 0) c.score_mode = iv;
        else if (std::strcmp(f.name, "max_detections") == 0) c.max_detections = iv;
        break;
      }
      case AttrType::kFloat: {
        float v;
        if (f.type == PluginFieldType::kFLOAT32 && f.length == 1)
          v = *static_cast<float const*>(f.data);
        else if (f.type == PluginFieldType::kFLOAT64 && f.length == 1)
          v = static_cast<float>(*static_cast<double const*>(f.data));
        else
          throw wrong("one float32");
        if (!std::isfinite(v)) throw wrong("a finite number");
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
  if (c.max_stride < 1) throw std::invalid_argument("max_stride must be >= 1");
  if (c.num_classes < 1) throw std::invalid_argument("num_classes must be >= 1");
  if (c.anchors.size() % 2) throw std::invalid_argument("anchors must hold (w, h) pairs");
  for (float a : c.anchors)
    if (!(a > 0.f) || !std::isfinite(a)) throw std::invalid_argument("anchors must be positive sizes in pixels");
  if (c.score_mode != 0 && c.score_mode != 1) throw std::invalid_argument("score_mode must be 0 or 1");
  if (c.max_detections < 0) throw std::invalid_argument("max_detections must be >= 0");
  return c;
}

// ---- plugin ---------------------------------------------------------------------------------------

YoloLayerPlugin::YoloLayerPlugin(PluginConfig config, std::string name)
    : mConfig(std::move(config)), mName(std::move(name)) {
  initFieldsToSerialize();
}

YoloLayerPlugin::YoloLayerPlugin(YoloLayerPlugin const& other)
    : IPluginV3(other),
      IPluginV3OneCore(other),
      IPluginV3OneBuild(other),
      IPluginV3OneRuntime(other),
      mConfig(other.mConfig),
      mName(other.mName),
      mNbInputs(other.mNbInputs) {
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

void YoloLayerPlugin::fail(char const* where, char const* what) const noexcept { logError(mName, where, what); }

int64_t YoloLayerPlugin::anchorsPerLevel(int32_t nbInputs) const {
  if (nbInputs < 1 || nbInputs > kMaxLevels)
    throw std::invalid_argument("takes 1 to " + str(kMaxLevels) + " inputs (one per level), not " + str(nbInputs));
  auto const values = static_cast<int64_t>(mConfig.anchors.size());
  if (values % (2 * nbInputs))
    throw std::invalid_argument(str(values) + " anchor values do not split into " + str(nbInputs) +
                                " levels of (w, h) pairs");
  int64_t const na = values / (2 * nbInputs);
  if (na < 1 || na > kMaxAnchors)
    throw std::invalid_argument(str(na) + " anchors per level; 1 to " + str(kMaxAnchors) + " are supported");
  return na;
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
  } catch (...) {
    logCaught(mName, "clone");
  }
  return nullptr;
}

char const* YoloLayerPlugin::getPluginName() const noexcept { return kPluginName; }
char const* YoloLayerPlugin::getPluginVersion() const noexcept { return kPluginVersion; }
char const* YoloLayerPlugin::getPluginNamespace() const noexcept { return ""; }

int32_t YoloLayerPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                         DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  try {
    if (nbOutputs != 4) throw std::invalid_argument("has 4 outputs, not " + str(nbOutputs));
    int64_t const na = anchorsPerLevel(nbInputs);
    for (int32_t l = 0; l < nbInputs; ++l) {
      std::string const why = checkLevel(l, in[l].desc.dims, in[l].desc.type, in[0].desc.dims, in[0].desc.type, na,
                                         mConfig.num_classes);
      if (!why.empty()) throw std::invalid_argument(why);
    }
    maxAnchorsPerImage(in, nbInputs, na);
    mNbInputs = nbInputs;
    return 0;
  } catch (...) {
    logCaught(mName, "configurePlugin");
  }
  return -1;
}

bool YoloLayerPlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                                int32_t nbOutputs) noexcept {
  if (inOut == nullptr || pos < 0 || pos >= nbInputs + nbOutputs) return false;
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
  try {
    if (nbOutputs != 4) throw std::invalid_argument("has 4 outputs, not " + str(nbOutputs));
    if (outputTypes == nullptr || (nbInputs > 0 && inputTypes == nullptr)) throw std::invalid_argument("no types");
    for (int32_t l = 0; l < nbInputs; ++l) {
      if (inputTypes[l] != DataType::kFLOAT && inputTypes[l] != DataType::kHALF)
        throw std::invalid_argument("input " + str(l) + " is " + typeName(inputTypes[l]) +
                                    "; the levels must be float32 or float16");
    }
    outputTypes[0] = DataType::kINT32;
    outputTypes[1] = DataType::kFLOAT;
    outputTypes[2] = DataType::kFLOAT;
    outputTypes[3] = DataType::kINT32;
    return 0;
  } catch (...) {
    logCaught(mName, "getOutputDataTypes");
  }
  return -1;
}

int32_t YoloLayerPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
                                         int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
                                         IExprBuilder& exprBuilder) noexcept {
  try {
    if (nbOutputs != 4) throw std::invalid_argument("has 4 outputs, not " + str(nbOutputs));
    int64_t const na = anchorsPerLevel(nbInputs);
    int64_t const channels = na * (mConfig.num_classes + 5);
    IDimensionExpr const* total = nullptr;  // sum over levels of na * H * W
    for (int32_t l = 0; l < nbInputs; ++l) {
      DimsExprs const& d = inputs[l];
      if (d.nbDims != 4)
        throw std::invalid_argument("input " + str(l) + " has " + str(d.nbDims) +
                                    " dims; each level must be [B, na*(nc+5), H, W]");
      if (d.d[1]->isConstant() && d.d[1]->getConstantValue() != channels)
        throw std::invalid_argument("input " + str(l) + " has " + str(d.d[1]->getConstantValue()) +
                                    " channels; num_anchors * (num_classes + 5) = " + str(channels));
      if (d.d[0]->isConstant() && inputs[0].d[0]->isConstant() &&
          d.d[0]->getConstantValue() != inputs[0].d[0]->getConstantValue())
        throw std::invalid_argument("input " + str(l) + " has batch " + str(d.d[0]->getConstantValue()) +
                                    " but input 0 has batch " + str(inputs[0].d[0]->getConstantValue()));
      auto const* cells = exprBuilder.operation(DimensionOperation::kPROD, *d.d[2], *d.d[3]);
      auto const* n = exprBuilder.operation(DimensionOperation::kPROD, *cells, *exprBuilder.constant(na));
      total = total ? exprBuilder.operation(DimensionOperation::kSUM, *total, *n) : n;
      if (total == nullptr) throw std::runtime_error("the expression builder returned no expression");
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
  } catch (...) {
    logCaught(mName, "getOutputShapes");
  }
  return -1;
}

size_t YoloLayerPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                                         DynamicPluginTensorDesc const* /*outputs*/,
                                         int32_t /*nbOutputs*/) const noexcept {
  try {
    // at the profile's max shapes: sized once for every shape the engine accepts
    int64_t const total = maxAnchorsPerImage(inputs, nbInputs, anchorsPerLevel(nbInputs));
    return decode_workspace_size(static_cast<int>(inputs[0].max.d[0]), static_cast<int>(total),
                                 mConfig.max_detections);
  } catch (...) {
    logCaught(mName, "getWorkspaceSize");
  }
  return 0;
}

char const* YoloLayerPlugin::makeParams(PluginTensorDesc const* inputDesc, int32_t nbInputs, DecodeParams& p,
                                        std::string& why) const {
  try {
    int64_t const na = anchorsPerLevel(nbInputs);
    int64_t total = 0;
    for (int32_t l = 0; l < nbInputs; ++l) {
      Dims const& d = inputDesc[l].dims;
      why = checkLevel(l, d, inputDesc[l].type, inputDesc[0].dims, inputDesc[0].type, na, mConfig.num_classes);
      if (!why.empty()) return why.c_str();
      if (d.d[0] < 0 || d.d[1] < 0 || d.d[2] < 0 || d.d[3] < 0) {
        why = "input " + str(l) + " has an unknown dim at run time";
        return why.c_str();
      }
      total += na * d.d[2] * d.d[3];
    }
    if (total > INT_MAX || inputDesc[0].dims.d[0] > INT_MAX) {
      why = "more than 2^31 anchors per image or images per batch";
      return why.c_str();
    }
    p.num_levels = nbInputs;
    p.num_anchors = static_cast<int>(na);
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
    if (char const* err = finalize(p, mConfig.max_stride)) {
      why = err;
      return why.c_str();
    }
    return nullptr;
  } catch (std::exception const& e) {
    why = e.what();
  }
  return why.c_str();
}

int32_t YoloLayerPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/,
                                       int32_t nbOutputs) noexcept {
  try {
    if (nbOutputs != 4) throw std::invalid_argument("has 4 outputs, not " + str(nbOutputs));
    DecodeParams p;
    std::string why;
    if (char const* err = makeParams(in, nbInputs, p, why)) {
      fail("onShapeChange", err);
      return -1;
    }
    mNbInputs = nbInputs;
    // Load the kernel now (CUDA lazy loading), not in the first enqueue, which may be captured into a
    // CUDA graph. A failure here (no usable device) fails enqueue too, and enqueue reports it.
    (void)decode_cuda_prepare(p.fp16);
    return 0;
  } catch (...) {
    logCaught(mName, "onShapeChange");
  }
  return -1;
}

int32_t YoloLayerPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc,
                                 void const* const* inputs, void* const* outputs, void* workspace,
                                 cudaStream_t stream) noexcept {
  try {
    DecodeParams p;  // host-side struct passed by value to the kernels: no allocation, no copy
    std::string why;
    if (char const* err = makeParams(inputDesc, mNbInputs, p, why)) {
      fail("enqueue", err);
      return -1;
    }
    if (outputDesc[1].dims.nbDims != 3 || outputDesc[1].dims.d[1] != p.max_detections) {
      why = "output rows (" + str(outputDesc[1].dims.nbDims == 3 ? outputDesc[1].dims.d[1] : -1) +
            ") differ from the planned max_detections (" + str(p.max_detections) + ")";
      fail("enqueue", why.c_str());
      return -1;
    }
    if (workspace == nullptr && p.batch > 0) {  // every call with images needs its counters
      why = "no workspace; these shapes need " +
            str(static_cast<int64_t>(decode_workspace_size(p.batch, p.total_anchors(), p.max_detections))) +
            " bytes (getWorkspaceSize)";
      fail("enqueue", why.c_str());
      return -1;
    }
    for (int32_t l = 0; l < mNbInputs; ++l) p.inputs[l] = inputs[l];
    int const err = decode_cuda(p, static_cast<int32_t*>(outputs[0]), static_cast<float*>(outputs[1]),
                                static_cast<float*>(outputs[2]), static_cast<int32_t*>(outputs[3]), workspace, stream);
    if (err != 0) {
      auto const e = static_cast<cudaError_t>(err);
      why = std::string("the decode kernel did not launch: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
            ")";
      fail("enqueue", why.c_str());
      return -1;
    }
    return 0;
  } catch (...) {
    logCaught(mName, "enqueue");
  }
  return -1;
}

IPluginV3* YoloLayerPlugin::attachToContext(IPluginResourceContext* /*context*/) noexcept { return clone(); }

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
                                                TensorRTPhase /*phase*/) noexcept {
  std::string layer;
  try {
    layer = name ? name : "";
    if (fc == nullptr) throw std::invalid_argument("no fields");
    return new YoloLayerPlugin(parseFields(*fc), layer);
  } catch (...) {
    logCaught(layer, "createPlugin");
  }
  return nullptr;
}

}  // namespace yolo
}  // namespace trtdeploy

