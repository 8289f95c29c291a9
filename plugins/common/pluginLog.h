// Logging through TensorRT's logger, shared by every plugin of the library: setLoggerFinder
// (pluginLibrary.cpp) stores the finder, each plugin logs through logMessage.
#pragma once

#include <NvInferRuntime.h>

#include <string>

namespace trtdeploy {
namespace plugin {

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;
void logMessage(nvinfer1::ILogger::Severity severity, std::string const& msg) noexcept;
// "<plugin> (<layer>) <where>: <what>" as an error.
void logError(char const* plugin, std::string const& layer, char const* where, char const* what) noexcept;
// Called from a catch (...) at the ABI boundary: logs the exception in flight as a failure of `where`.
void logCaught(char const* plugin, std::string const& layer, char const* where) noexcept;
// A DataType's name, by value, so that the table compiles against every TensorRT 10/11 header set.
char const* typeName(nvinfer1::DataType t) noexcept;

}  // namespace plugin
}  // namespace trtdeploy
