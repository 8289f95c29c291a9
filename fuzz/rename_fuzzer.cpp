// libFuzzer harness for the streaming rename (csrc/onnx_wire.cpp). Build and run: fuzz/run.sh.
// Properties: never crash/hang/read out of bounds; malformed input raises ParseError; a renamed model
// has exactly the computed size and parses again with the mapped names.
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "onnx_wire.h"

using namespace trtdeploy;

namespace {
struct StringSink : Sink {
  std::string out;
  void write(const uint8_t* p, size_t n) override { out.append(reinterpret_cast<const char*>(p), n); }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  NameMap none;
  try {
    WireRenamer scanner(data, size, none);
    const ScanResult& found = scanner.scan();
    NameMap mapping;
    for (size_t i = 0; i < found.names.size() && i < 16; ++i)
      mapping.emplace(std::string(found.names[i]), "renamed_" + std::to_string(i));
    WireRenamer renamer(data, size, mapping);
    const uint64_t expect = renamer.scan().output_size;
    try {
      renamer.validate();
    } catch (const RenameError&) {
      return 0;  // e.g. a name "renamed_0" already present
    }
    StringSink sink;
    renamer.write(sink);
    if (sink.out.size() != expect) abort();
    NameMap none2;
    WireRenamer again(reinterpret_cast<const uint8_t*>(sink.out.data()), sink.out.size(), none2);
    const ScanResult& after = again.scan();
    std::set<std::string> want;
    for (const auto& n : found.names) {
      auto it = mapping.find(std::string(n));
      want.insert(it == mapping.end() ? std::string(n) : it->second);
    }
    std::set<std::string> got;
    for (const auto& n : after.names) got.insert(std::string(n));
    if (got != want) abort();
  } catch (const ParseError&) {
  }
  return 0;
}
