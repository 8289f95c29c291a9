#include "onnx_wire.h"

#include <algorithm>
#include <cstring>

namespace trtdeploy {
namespace {

// Message kinds whose fields we look into. Field numbers are those of onnx/onnx.proto3 (onnx >= 1.15).
// kMainGraph/kMainInput/kMainOutput are the model's own graph and its inputs/outputs: the same
// rules as kGraph/kValueInfo, visited apart so that the scan can list the graph's inputs/outputs.
enum Kind : int {
  kModel, kGraph, kNode, kAttribute, kValueInfo, kTensor, kSparseTensor, kAnnotation,
  kQuantEntry, kTrainingInfo, kBinding, kExternalEntry, kMainGraph, kMainInput, kMainOutput, kNone
};
const char* const kKindNames[] = {"ModelProto", "GraphProto", "NodeProto", "AttributeProto",
                                  "ValueInfoProto", "TensorProto", "SparseTensorProto",
                                  "TensorAnnotation", "StringStringEntryProto",
                                  "TrainingInfoProto", "StringStringEntryProto",
                                  "StringStringEntryProto", "GraphProto", "ValueInfoProto",
                                  "ValueInfoProto"};

enum class Act { Copy, Name, Sub, External };
struct Rule {
  Act act;
  int sub;
};

constexpr int kMaxDepth = 200;  // nesting of visited messages (If inside Loop inside ... )

Rule rule_for(int kind, uint32_t field) {
  switch (kind) {
    case kModel:
      if (field == 7) return {Act::Sub, kMainGraph};      // graph
      if (field == 20) return {Act::Sub, kTrainingInfo};  // training_info
      break;                                              // functions (25) have their own scope
    case kGraph:
      if (field == 1) return {Act::Sub, kNode};
      if (field == 5) return {Act::Sub, kTensor};         // initializer
      if (field == 15) return {Act::Sub, kSparseTensor};  // sparse_initializer
      if (field == 11 || field == 12 || field == 13) return {Act::Sub, kValueInfo};
      if (field == 14) return {Act::Sub, kAnnotation};    // quantization_annotation
      break;
    case kNode:
      if (field == 1 || field == 2) return {Act::Name, kNone};  // input, output
      if (field == 5) return {Act::Sub, kAttribute};
      break;
    case kAttribute:
      if (field == 6 || field == 11) return {Act::Sub, kGraph};  // g, graphs
      break;
    case kValueInfo:
      if (field == 1) return {Act::Name, kNone};
      break;
    case kTensor:
      if (field == 8) return {Act::Name, kNone};
      if (field == 13) return {Act::External, kExternalEntry};  // copied; "location" recorded
      break;
    case kSparseTensor:
      if (field == 1 || field == 2) return {Act::Sub, kTensor};  // values, indices
      break;
    case kAnnotation:
      if (field == 1) return {Act::Name, kNone};          // tensor_name
      if (field == 2) return {Act::Sub, kQuantEntry};     // quant_parameter_tensor_names
      break;
    case kQuantEntry:
      if (field == 2) return {Act::Name, kNone};          // value = a tensor name
      break;
    case kTrainingInfo:
      if (field == 1 || field == 2) return {Act::Sub, kGraph};
      if (field == 3 || field == 4) return {Act::Sub, kBinding};
      break;
    case kBinding:
      if (field == 1 || field == 2) return {Act::Name, kNone};
      break;
    case kMainGraph:
      if (field == 11) return {Act::Sub, kMainInput};
      if (field == 12) return {Act::Sub, kMainOutput};
      return rule_for(kGraph, field);
    case kMainInput:
    case kMainOutput:
      return rule_for(kValueInfo, field);
    default:
      break;
  }
  return {Act::Copy, kNone};
}

size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

size_t put_varint(uint8_t* out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  out[n++] = static_cast<uint8_t>(v);
  return n;
}

struct Field {
  const uint8_t* start;    // first byte of the key
  const uint8_t* payload;  // for length-delimited fields: first byte of the payload
  const uint8_t* end;      // one past the field
  uint32_t number;
  uint32_t wire_type;
};

class Reader {
 public:
  Reader(const uint8_t* base, const uint8_t* b, const uint8_t* e) : base_(base), p_(b), end_(e) {}
  bool done() const { return p_ >= end_; }

  Field next(int kind) {
    Field f{};
    f.start = p_;
    uint64_t key = varint();
    if ((key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) fail("invalid field number", kind);
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire_type = static_cast<uint32_t>(key & 7);
    switch (f.wire_type) {
      case 0: varint(); break;
      case 1: skip(8, kind); break;
      case 5: skip(4, kind); break;
      case 2: {
        uint64_t len = varint();
        if (len > static_cast<uint64_t>(end_ - p_)) fail("length runs past the end of the enclosing message", kind);
        f.payload = p_;
        p_ += len;
        break;
      }
      case 3:
      case 4: fail("group wire types are not used by ONNX", kind);
      default: fail("invalid wire type " + std::to_string(f.wire_type), kind);
    }
    f.end = p_;
    return f;
  }

  [[noreturn]] void fail(const std::string& what, int kind) const {
    throw ParseError("malformed ONNX protobuf at byte " + std::to_string(p_ - base_) + " in " +
                     (kind < kNone ? kKindNames[kind] : "message") + ": " + what);
  }

 private:
  const uint8_t* base_;
  const uint8_t* p_;
  const uint8_t* end_;

  uint64_t varint() {
    uint64_t v = 0;
    for (int i = 0; i < 10; ++i) {
      if (p_ >= end_) fail("truncated varint", kNone);
      uint8_t byte = *p_++;
      if (i == 9 && byte > 1) fail("varint overflows 64 bits", kNone);
      v |= static_cast<uint64_t>(byte & 0x7F) << (7 * i);
      if (!(byte & 0x80)) return v;
    }
    fail("varint longer than 10 bytes", kNone);
  }
  void skip(size_t n, int kind) {
    if (static_cast<size_t>(end_ - p_) < n) fail("truncated fixed-width field", kind);
    p_ += n;
  }
};

}  // namespace

WireRenamer::WireRenamer(const uint8_t* data, size_t size, const NameMap& mapping, const NameMap* locations)
    : data_(data), size_(size), mapping_(mapping), locations_(locations && !locations->empty() ? locations : nullptr) {
  for (const auto& kv : mapping_) lookup_.emplace(kv.first, kv.second);
}

std::string_view WireRenamer::location_of(const uint8_t* b, const uint8_t* e, std::string_view* key) const {
  std::string_view value;
  Reader entry(data_, b, e);
  while (!entry.done()) {
    Field f = entry.next(kExternalEntry);
    if (f.wire_type != 2) continue;
    std::string_view text(reinterpret_cast<const char*>(f.payload), f.end - f.payload);
    if (f.number == 1) *key = text;
    if (f.number == 2) value = text;
  }
  return value;
}

const std::string* WireRenamer::new_location(const uint8_t* b, const uint8_t* e) const {
  if (!locations_) return nullptr;
  std::string_view key;
  std::string_view value = location_of(b, e, &key);
  return relocated(key, value);
}

const std::string* WireRenamer::relocated(std::string_view key, std::string_view value) const {
  if (!locations_ || key != "location") return nullptr;
  auto it = locations_->find(std::string(value));
  return it == locations_->end() ? nullptr : &it->second;
}

std::string_view WireRenamer::mapped(std::string_view name) const {
  auto it = lookup_.find(name);
  return it == lookup_.end() ? name : it->second;
}

uint64_t WireRenamer::size_message(int kind, const uint8_t* b, const uint8_t* e, int depth,
                                   const ProgressFn& progress) {
  if (depth > kMaxDepth) throw ParseError("malformed ONNX protobuf: messages nested deeper than " +
                                          std::to_string(kMaxDepth) + " levels");
  Reader r(data_, b, e);
  uint64_t total = 0;
  while (!r.done()) {
    Field f = r.next(kind);
    Rule rule = rule_for(kind, f.number);
    if (rule.act != Act::Copy && f.wire_type != 2)
      r.fail("field " + std::to_string(f.number) + " has wire type " + std::to_string(f.wire_type) +
                 ", expected a length-delimited field",
             kind);
    const size_t key_size = varint_size((uint64_t(f.number) << 3) | 2);
    switch (rule.act) {
      case Act::Copy:
        total += static_cast<uint64_t>(f.end - f.start);
        break;
      case Act::External: {
        std::string_view key;
        std::string_view value = location_of(f.payload, f.end, &key);
        if (key == "location") result_.external_locations.emplace(value);
        const std::string* loc = relocated(key, value);  // the entry parsed once
        if (!loc) {
          total += static_cast<uint64_t>(f.end - f.start);
          break;
        }
        uint64_t entry = 0;  // the entry with its value field re-encoded
        Reader fields(data_, f.payload, f.end);
        while (!fields.done()) {
          Field e = fields.next(kExternalEntry);
          entry += (e.number == 2 && e.wire_type == 2) ? varint_size((2 << 3) | 2) + varint_size(loc->size()) + loc->size()
                                                       : static_cast<uint64_t>(e.end - e.start);
        }
        total += key_size + varint_size(entry) + entry;
        break;
      }
      case Act::Name: {
        std::string_view name(reinterpret_cast<const char*>(f.payload), f.end - f.payload);
        if (kind == kMainInput) result_.graph_inputs.push_back(name);
        if (kind == kMainOutput) result_.graph_outputs.push_back(name);
        if (!name.empty() && seen_.insert(name).second) result_.names.push_back(name);
        std::string_view out = mapped(name);
        if (out.data() != name.data()) ++result_.renamed_fields;
        total += key_size + varint_size(out.size()) + out.size();
        break;
      }
      case Act::Sub: {
        if (kind == kModel) result_.has_graph = true;
        size_t slot = sizes_.size();
        sizes_.push_back(0);
        uint64_t sub = size_message(rule.sub, f.payload, f.end, depth + 1, progress);
        sizes_[slot] = sub;
        total += key_size + varint_size(sub) + sub;
        break;
      }
    }
    if (progress) progress(f.end);
  }
  return total;
}

const ScanResult& WireRenamer::scan(const ProgressFn& progress) {
  sizes_.clear();
  seen_.clear();
  result_ = ScanResult{};
  result_.output_size = size_message(kModel, data_, data_ + size_, 0, progress);
  scanned_ = true;
  return result_;
}

void WireRenamer::validate() const {
  std::vector<std::string> unknown, empty;
  std::unordered_map<std::string_view, std::string_view> target_of;
  for (const auto& kv : mapping_) {
    if (kv.first.empty() || kv.second.empty()) {
      empty.push_back("'" + kv.first + "' -> '" + kv.second + "'");
      continue;
    }
    if (!seen_.count(kv.first)) unknown.push_back(kv.first);
  }
  auto join = [](const std::vector<std::string>& v, bool quote) {  // items already quoted: quote=false
    std::string s, q = quote ? "'" : "";
    for (size_t i = 0; i < v.size() && i < 10; ++i) s += (i ? ", " : "") + q + v[i] + q;
    if (v.size() > 10) s += " and " + std::to_string(v.size() - 10) + " more";
    return s;
  };
  if (!empty.empty()) throw RenameError("empty tensor names cannot be renamed: " + join(empty, false));
  if (!unknown.empty())
    throw RenameError("no tensor named " + join(unknown, true) +
                      " in the model; `trtdeploy inspect --nodes MODEL` lists the names");
  // Collisions: two names mapped to one, or a new name that stays taken by an unrenamed tensor.
  std::vector<std::string> collisions;
  for (const auto& kv : mapping_) {
    if (kv.first == kv.second) continue;
    auto [it, inserted] = target_of.emplace(kv.second, kv.first);
    if (!inserted)
      collisions.push_back("'" + std::string(it->second) + "' and '" + kv.first + "' both -> '" + kv.second + "'");
    else if (seen_.count(kv.second) && mapped(kv.second) == std::string_view(kv.second))
      collisions.push_back("'" + kv.first + "' -> '" + kv.second + "' (already a tensor name)");
  }
  for (const auto& kv : mapping_)  // identity entries keep their name: nobody else may take it
    if (kv.first == kv.second && target_of.count(kv.second))
      collisions.push_back("'" + std::string(target_of[kv.second]) + "' -> '" + kv.second + "' (kept by another entry)");
  if (!collisions.empty()) {
    std::sort(collisions.begin(), collisions.end());
    throw RenameError("rename would merge tensors: " + join(collisions, false));
  }
}

void WireRenamer::write_message(int kind, const uint8_t* b, const uint8_t* e, Sink& sink,
                                const ProgressFn& progress) {
  Reader r(data_, b, e);
  uint8_t head[24];
  while (!r.done()) {
    Field f = r.next(kind);
    Rule rule = rule_for(kind, f.number);
    switch (rule.act) {
      case Act::Copy:
        sink.write(f.start, f.end - f.start);
        break;
      case Act::External: {
        const std::string* loc = new_location(f.payload, f.end);
        if (!loc) {
          sink.write(f.start, f.end - f.start);
          break;
        }
        std::string entry;  // small: a key and a file name
        Reader fields(data_, f.payload, f.end);
        while (!fields.done()) {
          Field e = fields.next(kExternalEntry);
          if (e.number == 2 && e.wire_type == 2) {
            size_t n = put_varint(head, (2 << 3) | 2);
            n += put_varint(head + n, loc->size());
            entry.append(reinterpret_cast<const char*>(head), n).append(*loc);
          } else {
            entry.append(reinterpret_cast<const char*>(e.start), e.end - e.start);
          }
        }
        size_t n = put_varint(head, (uint64_t(f.number) << 3) | 2);
        n += put_varint(head + n, entry.size());
        sink.write(head, n);
        sink.write(reinterpret_cast<const uint8_t*>(entry.data()), entry.size());
        break;
      }
      case Act::Name: {
        std::string_view name(reinterpret_cast<const char*>(f.payload), f.end - f.payload);
        std::string_view out = mapped(name);
        size_t n = put_varint(head, (uint64_t(f.number) << 3) | 2);
        n += put_varint(head + n, out.size());
        sink.write(head, n);
        sink.write(reinterpret_cast<const uint8_t*>(out.data()), out.size());
        break;
      }
      case Act::Sub: {
        if (next_size_ >= sizes_.size()) throw std::logic_error("rename: size table exhausted");
        uint64_t sub = sizes_[next_size_++];
        size_t n = put_varint(head, (uint64_t(f.number) << 3) | 2);
        n += put_varint(head + n, sub);
        sink.write(head, n);
        write_message(rule.sub, f.payload, f.end, sink, progress);
        break;
      }
    }
    if (progress) progress(f.end);
  }
}

void WireRenamer::write(Sink& sink, const ProgressFn& progress) {
  if (!scanned_) scan(progress);
  next_size_ = 0;
  write_message(kModel, data_, data_ + size_, sink, progress);
}

}  // namespace trtdeploy
