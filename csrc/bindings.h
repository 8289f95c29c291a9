// Each csrc/*.cpp that exposes functions adds a register_* call here, so module.cpp stays small.
#pragma once
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <vector>

#ifdef TRTDEPLOY_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace trtdeploy {
void register_rename(pybind11::module_& m);
void register_decode(pybind11::module_& m);
void register_nms(pybind11::module_& m);

inline void register_all(pybind11::module_& m) {
  register_rename(m);
  register_decode(m);
  register_nms(m);
}
// Names of the compiled parts, reported by build_info() and `trtdeploy doctor`.
std::vector<const char*> compiled_parts();

#ifdef TRTDEPLOY_WITH_CUDA
// A kernel entry point's cudaError_t value (0: launched) as a Python RuntimeError naming `what`.
inline void check_launch(int err, const char* what) {
  if (err == 0) return;
  const auto e = static_cast<cudaError_t>(err);
  throw std::runtime_error(std::string(what) + " kernel launch failed: " + cudaGetErrorName(e) + " (" +
                           cudaGetErrorString(e) + ")");
}
#endif
}  // namespace trtdeploy
