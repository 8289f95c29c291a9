// A test host for TensorRT plugin libraries: it dlopens a library, calls setLoggerFinder and
// getCreators, and plays TensorRT's part of the IPluginV3 contract, one command per stdin line,
// one JSON object per stdout line (with the log lines the plugin wrote while the command ran).
// Built by CMake once per TensorRT major whose headers were found; driven by tests/test_plugin_host.py.
//
// Commands (dims are x-separated; TYPE is float32, float16, int32, bfloat16, ...):
//   info                                    the TensorRT version of the headers the host was built with
//   devices                                 how many CUDA devices the host sees (and why none)
//   load LIBRARY                            dlopen + setLoggerFinder + getCreators: creator identity, fields
//   creator NAME                            the loaded creator createPlugin uses (default: the first)
//   field NAME FTYPE [V...]                 add a plugin field (FTYPE: int32 int64 float32 float64 char ...)
//   fields_clear
//   create build|runtime [LAYER]            createPlugin with the fields -> the current plugin
//   capabilities                            getCapabilityInterface(kCORE/kBUILD/kRUNTIME) kinds
//   datatypes TYPE...                       getOutputDataTypes for these input types
//   shapes [outputs=N] DIMS... [-- BIND...] getOutputShapes; DIMS like B,255,H0,W0 (ints or symbols),
//                                           BIND like B=1,H0=80,W0=80: each output dim evaluated there
//   formats NIN TYPE:FORMAT...              supportsFormatCombination at every position
//   configure [outputs=N] IN...             configurePlugin; IN = TYPE:DIMS:MIN:MAX (-1 = dynamic)
//   workspace IN...                         getWorkspaceSize
//   shapechange IN...                       onShapeChange; IN = TYPE:DIMS
//   serialize                               getFieldsToSerialize; the fields become the pending fields
//   clone | attach                          clone() / attachToContext() -> the current plugin
//   enqueue IN... -- INPUT_FILE OUT_PREFIX [noworkspace]
//                                           enqueue on a GPU (inputs read from a file, outputs pre-filled
//                                           with garbage, written to OUT_PREFIX.{0,1,2,3}.bin); without one
//                                           the same call with host pointers: the error path;
//                                           noworkspace: workspace = nullptr
//   decode [max_detections=N] [batch=N] [ws_offset=K] [fp16] [stale]
//                                           the kernel's C entry, decode_cuda (linked in, not through the
//                                           plugin), on one 4x4 level of 1 anchor, 1 class: its return
//                                           value, and the error pending afterwards (stale: one left
//                                           pending before the call, by cudaSetDevice(-1)); device
//                                           buffers on a GPU, else host ones
//   prepare fp32|fp16                       decode_cuda_prepare
#include <NvInferRuntime.h>
#include <NvInferVersion.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "host_exprs.h"
#include "yoloDecode.h"

using namespace nvinfer1;

namespace {

#define STR2(x) #x
#define STR(x) STR2(x)

// ---- JSON out ---------------------------------------------------------------------------------------
std::string quote(std::string const& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

struct Json {  // a JSON object built field by field (values already encoded)
  std::vector<std::pair<std::string, std::string>> items;
  Json& raw(std::string const& k, std::string const& v) {
    items.emplace_back(k, v);
    return *this;
  }
  Json& str(std::string const& k, std::string const& v) { return raw(k, quote(v)); }
  Json& num(std::string const& k, double v) {
    std::ostringstream os;
    os.precision(9);
    os << v;
    return raw(k, os.str());
  }
  Json& boolean(std::string const& k, bool v) { return raw(k, v ? "true" : "false"); }
  std::string dump() const {
    std::string out = "{";
    for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + quote(items[i].first) + ": " + items[i].second;
    return out + "}";
  }
};

template <typename T, typename F>
std::string list(std::vector<T> const& v, F f) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + f(v[i]);
  return out + "]";
}

// ---- TensorRT's side: logger, resource context ---------------------------------------------------
char const* severityName(ILogger::Severity s) {
  switch (s) {
    case ILogger::Severity::kINTERNAL_ERROR: return "INTERNAL_ERROR";
    case ILogger::Severity::kERROR: return "ERROR";
    case ILogger::Severity::kWARNING: return "WARNING";
    case ILogger::Severity::kINFO: return "INFO";
    case ILogger::Severity::kVERBOSE: return "VERBOSE";
  }
  return "?";
}

class HostLogger final : public ILogger {
 public:
  void log(Severity severity, AsciiChar const* msg) noexcept override {
    lines.push_back(std::string(severityName(severity)) + ": " + (msg ? msg : "(null)"));
  }
  std::vector<std::string> lines;
};

class HostLoggerFinder final : public ILoggerFinder {
 public:
  explicit HostLoggerFinder(ILogger* logger) : mLogger(logger) {}
  ~HostLoggerFinder() override = default;
  ILogger* findLogger() override { return mLogger; }

 private:
  ILogger* mLogger;
};

class HostResourceContext final : public IPluginResourceContext {
 public:
  IGpuAllocator* getGpuAllocator() const noexcept override { return nullptr; }
  IErrorRecorder* getErrorRecorder() const noexcept override { return nullptr; }
  ~HostResourceContext() noexcept override = default;
};

// ---- parsing ------------------------------------------------------------------------------------
[[noreturn]] void bad(std::string const& what) { throw std::invalid_argument(what); }

int64_t toInt(std::string const& s) {
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end) bad("not an integer: '" + s + "'");
  return v;
}

double toFloat(std::string const& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end) bad("not a number: '" + s + "'");
  return v;
}

std::vector<std::string> split(std::string const& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream is(s);
  while (std::getline(is, cur, sep)) out.push_back(cur);
  return out;
}

char const* const kTypeNames[] = {"float32", "float16", "int8",  "int32", "bool", "uint8",
                                  "fp8",     "bfloat16", "int64", "int4",  "fp4",  "e8m0"};
constexpr int kNbTypeNames = sizeof(kTypeNames) / sizeof(kTypeNames[0]);

DataType toType(std::string const& s) {
  for (int i = 0; i < kNbTypeNames; ++i)
    if (s == kTypeNames[i]) return static_cast<DataType>(i);
  bad("unknown data type '" + s + "'");
}

std::string typeName(DataType t) {
  auto const i = static_cast<int>(t);
  return i >= 0 && i < kNbTypeNames ? kTypeNames[i] : "type" + std::to_string(i);
}

Dims toDims(std::string const& s) {
  Dims d{};
  auto parts = split(s, 'x');
  if (parts.size() > static_cast<size_t>(Dims::MAX_DIMS)) bad("too many dims: " + s);
  d.nbDims = static_cast<int32_t>(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) d.d[i] = toInt(parts[i]);
  return d;
}

std::string dimsJson(Dims const& d) {
  std::vector<int64_t> v(d.d, d.d + (d.nbDims > 0 ? d.nbDims : 0));
  return list(v, [](int64_t x) { return std::to_string(x); });
}

struct FieldType {
  char const* name;
  PluginFieldType type;
  size_t size;
};
FieldType const kFieldTypes[] = {{"float16", PluginFieldType::kFLOAT16, 2}, {"float32", PluginFieldType::kFLOAT32, 4},
                                 {"float64", PluginFieldType::kFLOAT64, 8}, {"int8", PluginFieldType::kINT8, 1},
                                 {"int16", PluginFieldType::kINT16, 2},     {"int32", PluginFieldType::kINT32, 4},
                                 {"char", PluginFieldType::kCHAR, 1},       {"int64", PluginFieldType::kINT64, 8}};

FieldType const& fieldType(std::string const& s) {
  for (auto const& f : kFieldTypes)
    if (s == f.name) return f;
  bad("unknown field type '" + s + "'");
}

char const* fieldTypeName(PluginFieldType t) {
  for (auto const& f : kFieldTypes)
    if (f.type == t) return f.name;
  return "other";
}

// A field that owns its name and bytes (PluginField only points).
struct OwnedField {
  std::string name;
  PluginFieldType type;
  int32_t length;
  std::vector<unsigned char> bytes;
};

std::string fieldValues(PluginField const& f) {
  std::vector<std::string> v;
  for (int32_t i = 0; f.data && i < f.length; ++i) {
    std::ostringstream os;
    os.precision(9);
    switch (f.type) {
      case PluginFieldType::kINT32: os << static_cast<int32_t const*>(f.data)[i]; break;
      case PluginFieldType::kINT64: os << static_cast<int64_t const*>(f.data)[i]; break;
      case PluginFieldType::kFLOAT32: os << static_cast<float const*>(f.data)[i]; break;
      case PluginFieldType::kFLOAT64: os << static_cast<double const*>(f.data)[i]; break;
      case PluginFieldType::kINT8: os << int(static_cast<int8_t const*>(f.data)[i]); break;
      case PluginFieldType::kINT16: os << static_cast<int16_t const*>(f.data)[i]; break;
      default: os << "null";
    }
    v.push_back(os.str());
  }
  return list(v, [](std::string const& s) { return s; });
}

// IN = TYPE:DIMS[:MIN:MAX]
struct TensorSpec {
  DataType type;
  Dims dims, min, max;
};

TensorSpec toTensor(std::string const& s) {
  auto p = split(s, ':');
  if (p.size() != 2 && p.size() != 4) bad("tensor '" + s + "': expected TYPE:DIMS or TYPE:DIMS:MIN:MAX");
  TensorSpec t{toType(p[0]), toDims(p[1]), {}, {}};
  t.min = p.size() == 4 ? toDims(p[2]) : t.dims;
  t.max = p.size() == 4 ? toDims(p[3]) : t.dims;
  return t;
}

PluginTensorDesc desc(DataType type, Dims const& dims) {
  PluginTensorDesc d{};
  d.dims = dims;
  d.type = type;
  d.format = TensorFormat::kLINEAR;
  d.scale = 1.f;
  return d;
}

DynamicPluginTensorDesc dynDesc(TensorSpec const& t) {
  DynamicPluginTensorDesc d{};
  d.desc = desc(t.type, t.dims);
  d.min = t.min;
  d.max = t.max;
  d.opt = t.max;
  return d;
}

// ---- the host -----------------------------------------------------------------------------------
class Host {
 public:
  Host() : mFinder(&mLogger) {}
  ~Host() {
    mPlugins.clear();  // before the library goes away
    if (mLib) dlclose(mLib);
  }

  void run(std::istream& in, std::ostream& out) {
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      std::istringstream is(line);
      std::vector<std::string> args;
      for (std::string a; is >> a;) args.push_back(a);
      Json j;
      j.str("cmd", args[0]);
      mLogger.lines.clear();
      try {
        dispatch(args, j);
      } catch (std::exception const& e) {
        j.str("host_error", e.what());
      }
      j.raw("logs", list(mLogger.lines, quote));
      out << j.dump() << std::endl;
    }
  }

 private:
  HostLogger mLogger;
  HostLoggerFinder mFinder;
  HostResourceContext mResources;
  void* mLib = nullptr;
  IPluginCreatorV3One* mCreator = nullptr;
  std::vector<OwnedField> mPending;
  std::vector<std::unique_ptr<IPluginV3>> mPlugins;  // the last one is current

  IPluginV3* plugin() {
    if (mPlugins.empty() || !mPlugins.back()) bad("no current plugin");
    return mPlugins.back().get();
  }
  template <typename T>
  T* capability(PluginCapabilityType t) {
    auto* c = plugin()->getCapabilityInterface(t);
    if (!c) bad("the plugin has no such capability interface");
    return static_cast<T*>(c);
  }
  IPluginV3OneBuild* build() { return capability<IPluginV3OneBuild>(PluginCapabilityType::kBUILD); }
  IPluginV3OneRuntime* runtime() { return capability<IPluginV3OneRuntime>(PluginCapabilityType::kRUNTIME); }
  void adopt(IPluginV3* p, Json& j) {
    j.boolean("ok", p != nullptr);
    if (p) mPlugins.emplace_back(p);
  }

  void dispatch(std::vector<std::string> const& a, Json& j) {
    std::string const& c = a[0];
    if (c == "info") {
      j.num("tensorrt_major", NV_TENSORRT_MAJOR)
          .str("tensorrt_version", STR(NV_TENSORRT_MAJOR) "." STR(NV_TENSORRT_MINOR) "." STR(NV_TENSORRT_PATCH));
    } else if (c == "devices") {
      int n = 0;
      cudaError_t e = cudaGetDeviceCount(&n);
      j.num("count", e == cudaSuccess ? n : 0).str("error", e == cudaSuccess ? "" : cudaGetErrorName(e));
    } else if (c == "load") {
      load(a.at(1), j);
    } else if (c == "creator") {
      select(a.at(1), j);
    } else if (c == "field") {
      addField(a);
    } else if (c == "fields_clear") {
      mPending.clear();
    } else if (c == "create") {
      create(a, j);
    } else if (c == "capabilities") {
      capabilities(j);
    } else if (c == "datatypes") {
      std::vector<DataType> in;
      for (size_t i = 1; i < a.size(); ++i) in.push_back(toType(a[i]));
      std::vector<DataType> out(4, DataType::kBOOL);
      int32_t rc = build()->getOutputDataTypes(out.data(), 4, in.data(), static_cast<int32_t>(in.size()));
      j.num("rc", rc).raw("types", list(out, [](DataType t) { return quote(typeName(t)); }));
    } else if (c == "shapes") {
      shapes(a, j);
    } else if (c == "formats") {
      formats(a, j);
    } else if (c == "configure") {
      size_t first = 1;
      int32_t nbOut = outputsOption(a, first);
      std::vector<DynamicPluginTensorDesc> in, out(4);
      for (size_t i = first; i < a.size(); ++i) in.push_back(dynDesc(toTensor(a[i])));
      j.num("rc", build()->configurePlugin(in.data(), static_cast<int32_t>(in.size()), out.data(), nbOut));
    } else if (c == "workspace") {
      std::vector<DynamicPluginTensorDesc> in, out(4);
      for (size_t i = 1; i < a.size(); ++i) in.push_back(dynDesc(toTensor(a[i])));
      j.num("bytes", static_cast<double>(
                         build()->getWorkspaceSize(in.data(), static_cast<int32_t>(in.size()), out.data(), 4)));
    } else if (c == "shapechange") {
      size_t first = 1;
      int32_t nbOut = outputsOption(a, first);
      std::vector<PluginTensorDesc> in, out(4);
      for (size_t i = first; i < a.size(); ++i) {
        TensorSpec t = toTensor(a[i]);
        in.push_back(desc(t.type, t.dims));
      }
      j.num("rc", runtime()->onShapeChange(in.data(), static_cast<int32_t>(in.size()), out.data(), nbOut));
    } else if (c == "serialize") {
      serialize(j);
    } else if (c == "clone") {
      adopt(plugin()->clone(), j);
    } else if (c == "attach") {
      adopt(runtime()->attachToContext(&mResources), j);
    } else if (c == "enqueue") {
      enqueue(a, j);
    } else if (c == "decode") {
      decode(a, j);
    } else if (c == "prepare") {
      if (a.size() != 2 || (a[1] != "fp32" && a[1] != "fp16")) bad("prepare fp32|fp16");
      j.str("rc", cudaGetErrorName(static_cast<cudaError_t>(trtdeploy::yolo::decode_cuda_prepare(a[1] == "fp16"))));
    } else {
      bad("unknown command '" + c + "'");
    }
  }

  static int32_t outputsOption(std::vector<std::string> const& a, size_t& first) {
    if (a.size() > first && a[first].rfind("outputs=", 0) == 0) return static_cast<int32_t>(toInt(a[first++].substr(8)));
    return 4;
  }

  void load(std::string const& path, Json& j) {
    mLib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!mLib) bad(std::string("dlopen: ") + dlerror());
    using SetLoggerFinder = void (*)(ILoggerFinder*);
    using GetCreators = IPluginCreatorInterface* const* (*)(int32_t&);
    auto setFinder = reinterpret_cast<SetLoggerFinder>(dlsym(mLib, "setLoggerFinder"));
    auto getCreators = reinterpret_cast<GetCreators>(dlsym(mLib, "getCreators"));
    if (!setFinder || !getCreators) bad("the library does not export setLoggerFinder and getCreators");
    setFinder(&mFinder);
    int32_t n = -1;
    IPluginCreatorInterface* const* creators = getCreators(n);
    std::vector<std::string> rows;
    for (int32_t i = 0; creators && i < n; ++i) {
      IPluginCreatorInterface* ci = creators[i];
      InterfaceInfo info = ci->getInterfaceInfo();
      Json r;
      r.str("kind", info.kind).num("major", info.major).num("minor", info.minor);
      if (std::string(info.kind) == "PLUGIN CREATOR_V3ONE") {
        auto* cr = static_cast<IPluginCreatorV3One*>(ci);
        if (!mCreator) mCreator = cr;
        mCreators.push_back(cr);
        r.str("name", cr->getPluginName()).str("version", cr->getPluginVersion())
            .str("namespace", cr->getPluginNamespace());
        PluginFieldCollection const* fc = cr->getFieldNames();
        std::vector<std::string> fields;
        for (int32_t k = 0; fc && k < fc->nbFields; ++k) {
          Json f;
          f.str("name", fc->fields[k].name).str("type", fieldTypeName(fc->fields[k].type))
              .num("length", fc->fields[k].length);
          fields.push_back(f.dump());
        }
        r.raw("fields", list(fields, [](std::string const& s) { return s; }));
      }
      rows.push_back(r.dump());
    }
    j.num("count", n).raw("creators", list(rows, [](std::string const& s) { return s; }));
  }

  std::vector<IPluginCreatorV3One*> mCreators;

  void select(std::string const& name, Json& j) {
    for (auto* cr : mCreators)
      if (name == cr->getPluginName()) {
        mCreator = cr;
        j.boolean("ok", true);
        return;
      }
    bad("no loaded creator named '" + name + "'");
  }

  void addField(std::vector<std::string> const& a) {
    if (a.size() < 3) bad("field NAME FTYPE [VALUES...]");
    FieldType const& t = fieldType(a[2]);
    OwnedField f{a[1], t.type, 0, {}};
    for (size_t i = 3; i < a.size(); ++i) {
      unsigned char buf[8] = {};
      switch (t.type) {
        case PluginFieldType::kINT32: { auto v = static_cast<int32_t>(toInt(a[i])); std::memcpy(buf, &v, 4); break; }
        case PluginFieldType::kINT64: { int64_t v = toInt(a[i]); std::memcpy(buf, &v, 8); break; }
        case PluginFieldType::kINT16: { auto v = static_cast<int16_t>(toInt(a[i])); std::memcpy(buf, &v, 2); break; }
        case PluginFieldType::kINT8:
        case PluginFieldType::kCHAR: { auto v = static_cast<int8_t>(toInt(a[i])); std::memcpy(buf, &v, 1); break; }
        case PluginFieldType::kFLOAT32: { auto v = static_cast<float>(toFloat(a[i])); std::memcpy(buf, &v, 4); break; }
        case PluginFieldType::kFLOAT64: { double v = toFloat(a[i]); std::memcpy(buf, &v, 8); break; }
        default: bad("values of this field type are not supported by the host");
      }
      f.bytes.insert(f.bytes.end(), buf, buf + t.size);
      ++f.length;
    }
    mPending.push_back(std::move(f));
  }

  void create(std::vector<std::string> const& a, Json& j) {
    if (!mCreator) bad("no IPluginCreatorV3One loaded");
    if (a.size() < 2 || (a[1] != "build" && a[1] != "runtime")) bad("create build|runtime [LAYER]");
    std::vector<PluginField> fields;
    for (auto const& f : mPending)
      fields.emplace_back(f.name.c_str(), f.bytes.empty() ? nullptr : f.bytes.data(), f.type, f.length);
    PluginFieldCollection fc{static_cast<int32_t>(fields.size()), fields.data()};
    std::string const layer = a.size() > 2 ? a[2] : "yolo_layer";
    auto phase = a[1] == "build" ? TensorRTPhase::kBUILD : TensorRTPhase::kRUNTIME;
    adopt(mCreator->createPlugin(layer.c_str(), &fc, phase), j);
  }

  void capabilities(Json& j) {
    IPluginV3* p = plugin();
    j.str("plugin_kind", p->getInterfaceInfo().kind);
    char const* names[] = {"core", "build", "runtime"};
    PluginCapabilityType const types[] = {PluginCapabilityType::kCORE, PluginCapabilityType::kBUILD,
                                          PluginCapabilityType::kRUNTIME};
    for (int i = 0; i < 3; ++i) {
      IPluginCapability* c = p->getCapabilityInterface(types[i]);
      Json r;
      if (c) {
        InterfaceInfo info = c->getInterfaceInfo();
        r.str("kind", info.kind).num("major", info.major).num("minor", info.minor);
      }
      j.raw(names[i], c ? r.dump() : "null");
    }
    auto* core = capability<IPluginV3OneCore>(PluginCapabilityType::kCORE);
    j.str("name", core->getPluginName()).str("version", core->getPluginVersion())
        .str("namespace", core->getPluginNamespace());
    j.num("nb_outputs", build()->getNbOutputs());
  }

  void shapes(std::vector<std::string> const& a, Json& j) {
    host::ExprBuilder builder;
    size_t i = 1;
    int32_t nbOut = outputsOption(a, i);
    std::vector<DimsExprs> in;
    for (; i < a.size() && a[i] != "--"; ++i) {
      DimsExprs d{};
      auto parts = split(a[i], ',');
      d.nbDims = static_cast<int32_t>(parts.size());
      for (size_t k = 0; k < parts.size(); ++k) {
        bool const number = !parts[k].empty() && (std::isdigit(static_cast<unsigned char>(parts[k][0])) || parts[k][0] == '-');
        d.d[k] = number ? builder.impl.constant(toInt(parts[k])) : builder.impl.symbol(parts[k]);
      }
      in.push_back(d);
    }
    std::vector<std::map<std::string, int64_t>> bindings;
    for (++i; i < a.size(); ++i) {
      std::map<std::string, int64_t> b;
      for (auto const& kv : split(a[i], ',')) {
        auto eq = kv.find('=');
        if (eq == std::string::npos) bad("binding '" + kv + "': expected SYMBOL=VALUE");
        b[kv.substr(0, eq)] = toInt(kv.substr(eq + 1));
      }
      bindings.push_back(b);
    }
    std::vector<DimsExprs> out(static_cast<size_t>(nbOut > 0 ? nbOut : 1));
    int32_t rc = build()->getOutputShapes(in.data(), static_cast<int32_t>(in.size()), nullptr, 0, out.data(), nbOut,
                                          builder);
    j.num("rc", rc).num("size_tensors", builder.impl.sizeTensors);
    if (rc != 0) return;
    std::vector<std::string> outs;
    for (auto const& o : out) {
      std::vector<std::string> dims;
      for (int32_t k = 0; k < o.nbDims; ++k) {
        if (!o.d[k]) bad("output dim " + std::to_string(k) + " is null");
        host::ExprNode const& n = host::nodeOf(*o.d[k]);
        std::vector<int64_t> values;
        for (auto const& b : bindings) values.push_back(n.eval(b));
        Json d;
        d.boolean("constant", o.d[k]->isConstant()).str("expr", n.str())
            .raw("values", list(values, [](int64_t v) { return std::to_string(v); }));
        dims.push_back(d.dump());
      }
      outs.push_back(list(dims, [](std::string const& s) { return s; }));
    }
    j.raw("outputs", list(outs, [](std::string const& s) { return s; }));
  }

  void formats(std::vector<std::string> const& a, Json& j) {
    if (a.size() < 3) bad("formats NIN TYPE:FORMAT...");
    auto const nbIn = static_cast<int32_t>(toInt(a[1]));
    std::vector<DynamicPluginTensorDesc> io;
    for (size_t i = 2; i < a.size(); ++i) {
      auto p = split(a[i], ':');
      if (p.size() != 2) bad("'" + a[i] + "': expected TYPE:FORMAT");
      DynamicPluginTensorDesc d{};
      d.desc = desc(toType(p[0]), Dims{});
      d.desc.format = static_cast<TensorFormat>(toInt(p[1]));
      io.push_back(d);
    }
    auto const nbOut = static_cast<int32_t>(io.size()) - nbIn;
    std::vector<bool> ok;
    for (int32_t pos = 0; pos < nbIn + nbOut; ++pos)
      ok.push_back(build()->supportsFormatCombination(pos, io.data(), nbIn, nbOut));
    j.raw("supported", list(ok, [](bool b) { return std::string(b ? "true" : "false"); }));
  }

  void serialize(Json& j) {
    PluginFieldCollection const* fc = runtime()->getFieldsToSerialize();
    if (!fc) bad("getFieldsToSerialize returned null");
    std::vector<std::string> rows;
    mPending.clear();
    for (int32_t i = 0; i < fc->nbFields; ++i) {
      PluginField const& f = fc->fields[i];
      Json r;
      r.str("name", f.name).str("type", fieldTypeName(f.type)).num("length", f.length).raw("values", fieldValues(f));
      rows.push_back(r.dump());
      size_t size = 0;
      for (auto const& t : kFieldTypes)
        if (t.type == f.type) size = t.size;
      auto const* bytes = static_cast<unsigned char const*>(f.data);
      mPending.push_back({f.name, f.type, f.length,
                          bytes ? std::vector<unsigned char>(bytes, bytes + size * static_cast<size_t>(f.length))
                                : std::vector<unsigned char>{}});
    }
    j.raw("fields", list(rows, [](std::string const& s) { return s; }));
  }

  void enqueue(std::vector<std::string> const& a, Json& j);
  void decode(std::vector<std::string> const& a, Json& j);
};

// ---- enqueue: on a GPU for real, else the error path ---------------------------------------------
size_t elementSize(DataType t) { return t == DataType::kHALF ? 2 : 4; }

int64_t volume(Dims const& d) {
  int64_t v = 1;
  for (int32_t i = 0; i < d.nbDims; ++i) v *= d.d[i];
  return v;
}

void check(cudaError_t e, char const* what) {
  if (e != cudaSuccess) bad(std::string(what) + ": " + cudaGetErrorString(e));
}

void Host::enqueue(std::vector<std::string> const& a, Json& j) {
  std::vector<TensorSpec> in;
  size_t i = 1;
  for (; i < a.size() && a[i] != "--"; ++i) in.push_back(toTensor(a[i]));
  if (a.size() < i + 3 || a.size() > i + 4 || (a.size() == i + 4 && a[i + 3] != "noworkspace"))
    bad("enqueue IN... -- INPUT_FILE OUT_PREFIX [noworkspace]");
  std::string const inputFile = a.at(i + 1), outPrefix = a.at(i + 2);
  bool const noWorkspace = a.size() == i + 4;

  // Output shapes as TensorRT computes them: getOutputShapes on constant dims.
  host::ExprBuilder builder;
  std::vector<DimsExprs> inExprs;
  std::vector<DynamicPluginTensorDesc> dyn;
  std::vector<PluginTensorDesc> inDesc;
  for (auto const& t : in) {
    DimsExprs d{};
    d.nbDims = t.dims.nbDims;
    for (int32_t k = 0; k < d.nbDims; ++k) d.d[k] = builder.impl.constant(t.dims.d[k]);
    inExprs.push_back(d);
    dyn.push_back(dynDesc(t));
    inDesc.push_back(desc(t.type, t.dims));
  }
  std::vector<DimsExprs> outExprs(4);
  auto const nbIn = static_cast<int32_t>(in.size());
  if (build()->getOutputShapes(inExprs.data(), nbIn, nullptr, 0, outExprs.data(), 4, builder) != 0)
    bad("getOutputShapes failed");
  DataType const outTypes[] = {DataType::kINT32, DataType::kFLOAT, DataType::kFLOAT, DataType::kINT32};
  std::vector<PluginTensorDesc> outDesc;
  std::vector<DynamicPluginTensorDesc> outDyn(4);
  for (int o = 0; o < 4; ++o) {
    Dims d{};
    d.nbDims = outExprs[o].nbDims;
    for (int32_t k = 0; k < d.nbDims; ++k) d.d[k] = outExprs[o].d[k]->getConstantValue();
    outDesc.push_back(desc(outTypes[o], d));
  }
  j.raw("output_shapes", list(outDesc, [](PluginTensorDesc const& d) { return dimsJson(d.dims); }));
  size_t const wsBytes = build()->getWorkspaceSize(dyn.data(), nbIn, outDyn.data(), 4);
  j.num("workspace_bytes", static_cast<double>(wsBytes));

  int devices = 0;
  bool const gpu = cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0;
  cudaGetLastError();  // clear what the query left
  j.boolean("device", gpu);
  if (!gpu) {
    // TensorRT would never get here without a GPU; the plugin must still fail cleanly, not crash.
    std::vector<float> dummy(16);
    std::vector<void const*> ins(in.size(), dummy.data());
    std::vector<void*> outs(4, dummy.data());
    j.num("rc", runtime()->enqueue(inDesc.data(), outDesc.data(), ins.data(), outs.data(),
                                   noWorkspace ? nullptr : dummy.data(), nullptr));
    return;
  }

  std::ifstream f(inputFile, std::ios::binary);
  if (!f) bad("cannot read " + inputFile);
  std::vector<char> host((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<void*> dIn, dOut;
  size_t offset = 0;
  auto cleanup = [&]() {
    for (void* p : dIn) cudaFree(p);
    for (void* p : dOut) cudaFree(p);
  };
  try {
    for (auto const& t : in) {
      size_t bytes = static_cast<size_t>(volume(t.dims)) * elementSize(t.type);
      if (offset + bytes > host.size()) bad("the input file is too short for the inputs");
      void* p = nullptr;
      check(cudaMalloc(&p, bytes), "cudaMalloc");
      dIn.push_back(p);
      check(cudaMemcpy(p, host.data() + offset, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
      offset += bytes;
    }
    if (offset != host.size()) bad("the input file is longer than the inputs");
    std::vector<size_t> outBytes;
    for (auto const& d : outDesc) {
      outBytes.push_back(static_cast<size_t>(volume(d.dims)) * 4);
      void* p = nullptr;
      check(cudaMalloc(&p, outBytes.back() + 1), "cudaMalloc");
      check(cudaMemset(p, 0xA5, outBytes.back() + 1), "cudaMemset");  // garbage the plugin must overwrite
      dOut.push_back(p);
    }
    void* ws = nullptr;
    check(cudaMalloc(&ws, wsBytes + 1), "cudaMalloc");
    dOut.push_back(ws);
    check(cudaMemset(ws, 0xA5, wsBytes + 1), "cudaMemset");
    cudaStream_t stream = nullptr;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    std::vector<void const*> ins(dIn.begin(), dIn.end());
    int32_t rc = runtime()->enqueue(inDesc.data(), outDesc.data(), ins.data(), dOut.data(),
                                    noWorkspace ? nullptr : ws, stream);
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    cudaStreamDestroy(stream);
    j.num("rc", rc);
    for (int o = 0; o < 4; ++o) {
      std::vector<char> buf(outBytes[o]);
      check(cudaMemcpy(buf.data(), dOut[o], buf.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
      std::ofstream of(outPrefix + "." + std::to_string(o) + ".bin", std::ios::binary);
      of.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    }
  } catch (...) {
    cleanup();
    throw;
  }
  cleanup();
}

// decode_cuda called directly, as a C++ user of the kernel would: 1 level of 4x4 cells, 1 anchor,
// 1 class, every anchor kept (inputs 0.5, threshold 0.1).
void Host::decode(std::vector<std::string> const& a, Json& j) {
  namespace y = trtdeploy::yolo;
  y::DecodeParams p;
  p.batch = 2;
  p.num_levels = 1;
  p.num_anchors = 1;
  p.num_classes = 1;
  p.grid_h[0] = p.grid_w[0] = 4;
  p.anchors[0] = p.anchors[1] = 8.f;
  p.score_threshold = 0.1f;
  size_t wsOffset = 0;
  bool stale = false;
  for (size_t i = 1; i < a.size(); ++i) {
    if (a[i] == "fp16") p.fp16 = true;
    else if (a[i] == "stale") stale = true;
    else if (a[i].rfind("batch=", 0) == 0) p.batch = static_cast<int>(toInt(a[i].substr(6)));
    else if (a[i].rfind("ws_offset=", 0) == 0) wsOffset = static_cast<size_t>(toInt(a[i].substr(10)));
    else if (a[i].rfind("max_detections=", 0) != 0) bad("decode [max_detections=N] [batch=N] [ws_offset=K] [fp16] [stale]");
  }
  if (char const* err = y::finalize(p, 8)) bad(err);
  for (size_t i = 1; i < a.size(); ++i)  // after finalize: the unchecked value reaches decode_cuda
    if (a[i].rfind("max_detections=", 0) == 0) p.max_detections = static_cast<int>(toInt(a[i].substr(15)));
  int const rows = std::max(1, std::min(p.max_detections, p.total_anchors()));
  size_t const cells = static_cast<size_t>(std::max(p.batch, 1)) * 6 * 16;
  size_t const sizes[] = {cells * 4, static_cast<size_t>(std::max(p.batch, 1)) * sizeof(int32_t),
                          static_cast<size_t>(std::max(p.batch, 1)) * rows * 16,
                          static_cast<size_t>(std::max(p.batch, 1)) * rows * 4,
                          static_cast<size_t>(std::max(p.batch, 1)) * rows * 4,
                          y::decode_workspace_size(std::max(p.batch, 1), p.total_anchors(), rows) + wsOffset};
  int devices = 0;
  bool const gpu = cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0;
  cudaGetLastError();  // the host's own query: not the state under test
  j.boolean("device", gpu);
  struct Buffers {  // device buffers, freed on every way out
    std::vector<void*> device;
    ~Buffers() {
      for (void* ptr : device) cudaFree(ptr);
    }
  } owned;
  std::vector<void*> bufs;
  std::vector<std::vector<float>> host;
  for (size_t b : sizes) {
    if (gpu) {
      void* ptr = nullptr;
      check(cudaMalloc(&ptr, b), "cudaMalloc");
      owned.device.push_back(ptr);
      bufs.push_back(ptr);
    } else {
      host.emplace_back((b + 15) / 4 + 4);
      bufs.push_back(reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(host.back().data()) + 15) / 16 * 16));
    }
  }
  if (gpu) {
    std::vector<float> in(cells, 0.5f);
    std::vector<uint16_t> in16(cells, 0x3800);  // 0.5 in IEEE half
    check(cudaMemcpy(bufs[0], p.fp16 ? static_cast<void const*>(in16.data()) : in.data(), p.fp16 ? cells * 2 : cells * 4,
                     cudaMemcpyHostToDevice),
          "cudaMemcpy");
  }
  p.inputs[0] = bufs[0];
  if (stale) j.str("stale", cudaGetErrorName(cudaSetDevice(-1)));
  cudaError_t const rc = static_cast<cudaError_t>(
      y::decode_cuda(p, static_cast<int32_t*>(bufs[1]), static_cast<float*>(bufs[2]), static_cast<float*>(bufs[3]),
                     static_cast<int32_t*>(bufs[4]), static_cast<char*>(bufs[5]) + wsOffset, nullptr));
  j.str("rc", cudaGetErrorName(rc)).str("pending", cudaGetErrorName(cudaPeekAtLastError()));
  cudaGetLastError();
  if (gpu && rc == cudaSuccess) {
    std::vector<int32_t> num(static_cast<size_t>(p.batch));
    check(cudaMemcpy(num.data(), bufs[1], num.size() * 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
    j.raw("num_detections", list(num, [](int32_t v) { return std::to_string(v); }));
  }
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  Host host;
  host.run(std::cin, std::cout);
  return 0;
}
