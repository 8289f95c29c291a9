#include "bindings.h"

namespace trtdeploy {
std::vector<const char*> compiled_parts() {
  std::vector<const char*> parts{"rename"};
  return parts;
}
}  // namespace trtdeploy
