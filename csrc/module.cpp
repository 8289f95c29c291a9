// trtdeploy._C: the private compiled module. Public behaviour is reached through python/trtdeploy.
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "build_config.h"

namespace py = pybind11;

#ifndef TRTDEPLOY_VERSION
#define TRTDEPLOY_VERSION "unknown"
#endif

static py::dict build_info() {
  using trtdeploy::PluginLibraryInfo;
  using trtdeploy::kPluginLibraries;
  py::dict d;
  d["version"] = TRTDEPLOY_VERSION;
  d["compiler"] =
#if defined(__clang__)
      std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
      std::string("gcc ") + __VERSION__;
#else
      std::string("unknown");
#endif
  d["cxx_standard"] = static_cast<long>(__cplusplus);
#ifdef TRTDEPLOY_WITH_CUDA
  d["cuda"] = true;
  d["cuda_version"] = TRTDEPLOY_CUDA_VERSION;
  d["cuda_architectures"] = TRTDEPLOY_CUDA_ARCHS;
#else
  d["cuda"] = false;
  d["cuda_version"] = py::none();
  d["cuda_architectures"] = py::none();
#endif
  // One entry per TensorRT plugin library built (one per TensorRT major whose headers were found).
  py::list plugins;
  for (const PluginLibraryInfo* p = kPluginLibraries; p->library != nullptr; ++p) {
    py::dict row;
    row["library"] = p->library;
    row["tensorrt_major"] = p->tensorrt_major;
    row["tensorrt_version"] = p->tensorrt_version;
    row["tensorrt_headers"] = p->tensorrt_headers;
    row["host"] = *p->host ? py::object(py::str(p->host)) : py::object(py::none());
    plugins.append(row);
  }
  d["tensorrt_plugins"] = plugins;
  py::list parts;
  parts.append("build_info");
  for (const char* p : trtdeploy::compiled_parts()) parts.append(p);
  d["parts"] = parts;
  return d;
}

PYBIND11_MODULE(_C, m) {
  m.doc() = "trtdeploy compiled parts (private; use the trtdeploy package API)";
  m.def("build_info", &build_info, "What this module was compiled with and which parts it has.");
#ifdef TRTDEPLOY_WITH_CUDA
  m.attr("has_cuda") = true;
#else
  m.attr("has_cuda") = false;
#endif
  trtdeploy::register_all(m);
}
