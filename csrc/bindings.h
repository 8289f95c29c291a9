// Each csrc/*.cpp that exposes functions adds a register_* call here, so module.cpp stays small.
#pragma once
#include <pybind11/pybind11.h>
#include <vector>

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
}  // namespace trtdeploy
