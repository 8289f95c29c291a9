// The library's entry points (trtexec --dynamicPlugins, IPluginRegistry::loadLibrary): one logger
// finder for every plugin, and every creator. Exported by exports.map; TensorRT calls them across the
// library boundary, so nothing may escape.
#include <exception>
#include <mutex>
#include <string>

#include "nmsPlugin.h"
#include "pluginLog.h"
#include "yoloLayerPlugin.h"

namespace trtdeploy {
namespace plugin {
namespace {
std::mutex gLoggerMutex;
nvinfer1::ILoggerFinder* gLoggerFinder = nullptr;
}  // namespace

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept {
  try {
    std::lock_guard<std::mutex> lock(gLoggerMutex);
    gLoggerFinder = finder;
  } catch (...) {
  }
}

void logMessage(nvinfer1::ILogger::Severity severity, std::string const& msg) noexcept {
  try {
    std::lock_guard<std::mutex> lock(gLoggerMutex);
    nvinfer1::ILogger* logger = gLoggerFinder ? gLoggerFinder->findLogger() : nullptr;
    if (logger) logger->log(severity, msg.c_str());
  } catch (...) {
  }
}

void logError(char const* plugin, std::string const& layer, char const* where, char const* what) noexcept {
  try {
    std::string msg = plugin;
    if (!layer.empty()) msg += " (" + layer + ")";
    logMessage(nvinfer1::ILogger::Severity::kERROR, msg + " " + where + ": " + what);
  } catch (...) {
  }
}

void logCaught(char const* plugin, std::string const& layer, char const* where) noexcept {
  try {
    throw;
  } catch (std::exception const& e) {
    logError(plugin, layer, where, e.what());
  } catch (...) {
    logError(plugin, layer, where, "unknown exception");
  }
}

char const* typeName(nvinfer1::DataType t) noexcept {
  static char const* const kNames[] = {"float32", "float16", "int8",  "int32", "bool", "uint8",
                                       "fp8",     "bfloat16", "int64", "int4",  "fp4",  "e8m0"};
  auto const i = static_cast<int32_t>(t);
  return i >= 0 && i < static_cast<int32_t>(sizeof(kNames) / sizeof(kNames[0])) ? kNames[i] : "an unknown type";
}

}  // namespace plugin
}  // namespace trtdeploy

extern "C" __attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept {
  trtdeploy::plugin::setLoggerFinder(finder);
}

extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(
    int32_t& nbCreators) noexcept {
  try {
    static trtdeploy::yolo::YoloLayerPluginCreator sYolo;
    static trtdeploy::nms::NmsPluginCreator sNms;
    static nvinfer1::IPluginCreatorInterface* const kCreators[] = {&sYolo, &sNms};
    nbCreators = 2;
    return kCreators;
  } catch (...) {  // a creator's field table could not be allocated
    nbCreators = 0;
  }
  return nullptr;
}
