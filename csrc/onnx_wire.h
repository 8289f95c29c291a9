// Streaming rename of tensor names in a serialized onnx.ModelProto.
//
// The model is never parsed into objects: two passes walk the protobuf wire format over the input
// bytes. Pass 1 visits only the messages that can hold tensor names (graphs, nodes, attributes with
// subgraphs, value infos, tensors, sparse tensors, quantization annotations, training bindings),
// collects every name and computes the new length of each such message. Pass 2 writes the output:
// renamed strings re-encoded, length prefixes updated, every other byte (weights included) copied
// verbatim. Input is bounds-checked everywhere; malformed input raises ParseError.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace trtdeploy {

// The bytes are not a well-formed ModelProto (truncated, wrong wire type, overflowing varint, ...).
struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The mapping does not fit the model (unknown name, collision, empty name).
struct RenameError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

using NameMap = std::unordered_map<std::string, std::string>;

// Where output bytes go. write() may be called with pointers into the input.
struct Sink {
  virtual ~Sink() = default;
  virtual void write(const uint8_t* data, size_t n) = 0;
};

// Called with the input position already consumed, so a file-backed input can drop pages behind it.
using ProgressFn = std::function<void(const uint8_t*)>;

struct ScanResult {
  std::vector<std::string_view> names;        // every tensor name, in first-seen order (views into input)
  std::vector<std::string_view> graph_inputs;   // the main graph's inputs, in order
  std::vector<std::string_view> graph_outputs;  // the main graph's outputs, in order
  bool has_graph = false;                       // the ModelProto has a graph (an empty file has none)
  std::set<std::string> external_locations;   // TensorProto.external_data "location" values (before renaming)
  uint64_t output_size = 0;                   // size of the renamed model
  size_t renamed_fields = 0;                  // how many name fields the mapping changes
};

class WireRenamer {
 public:
  // locations (optional): external data "location" values to rewrite (old -> new), so that a copy of
  // the model can point at data files named after it.
  WireRenamer(const uint8_t* data, size_t size, const NameMap& mapping, const NameMap* locations = nullptr);
  // Pass 1: walk, collect names, compute sizes. Throws ParseError.
  const ScanResult& scan(const ProgressFn& progress = nullptr);
  // Check the mapping against the collected names. Throws RenameError.
  void validate() const;
  // Pass 2: write the renamed model. scan() (and normally validate()) must have run.
  void write(Sink& sink, const ProgressFn& progress = nullptr);

 private:
  const uint8_t* data_;
  size_t size_;
  const NameMap& mapping_;
  const NameMap* locations_;
  std::unordered_map<std::string_view, std::string_view> lookup_;
  std::unordered_set<std::string_view> seen_;
  std::vector<uint64_t> sizes_;  // new content size of every visited submessage, in pre-order
  size_t next_size_ = 0;
  ScanResult result_;
  bool scanned_ = false;

  uint64_t size_message(int type, const uint8_t* b, const uint8_t* e, int depth, const ProgressFn& progress);
  void write_message(int type, const uint8_t* b, const uint8_t* e, Sink& sink, const ProgressFn& progress);
  std::string_view mapped(std::string_view name) const;
  // An external_data entry: its (key, value), and the value it is written with.
  std::string_view location_of(const uint8_t* b, const uint8_t* e, std::string_view* key) const;
  const std::string* new_location(const uint8_t* b, const uint8_t* e) const;
  const std::string* relocated(std::string_view key, std::string_view value) const;
};

}  // namespace trtdeploy
