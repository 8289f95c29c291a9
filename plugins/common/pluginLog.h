// Logging through TensorRT's logger, shared by every plugin of the library: setLoggerFinder
// (pluginLibrary.cpp) stores the finder, each plugin logs through logMessage.
#pragma once

#include <NvInferRuntime.h>

#include <string>

namespace trtdeploy {
namespace plugin {

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;
void logMessage(nvinfer1::ILogger::Severity severity, std::string const& msg) noexcept;

}  // namespace plugin
}  // namespace trtdeploy
