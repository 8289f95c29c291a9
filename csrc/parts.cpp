#include "bindings.h"

namespace trtdeploy {
std::vector<const char*> compiled_parts() {
  std::vector<const char*> parts{"rename", "decode_cpu", "nms_cpu"};
#ifdef TRTDEPLOY_WITH_CUDA
  parts.push_back("decode_cuda");
#endif
  return parts;
}
}  // namespace trtdeploy
