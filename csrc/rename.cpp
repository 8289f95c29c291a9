// pybind11 bindings of the streaming rename (onnx_wire.h): bytes -> bytes and path -> path.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "onnx_wire.h"

namespace py = pybind11;

namespace trtdeploy {
namespace {

std::string os_error(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

// A Python signal handler raised (Ctrl-C, or the CLI's SIGTERM handler): unwind, then re-raise it.
struct Interrupted {};

// Run pending Python signal handlers from inside a GIL-released loop, so that a long rename can be
// stopped (and its temporary files removed by the caller) instead of finishing first.
void check_signals() {
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) throw Interrupted{};
}

// Read-only mapping of a whole file. Pages behind the cursor are dropped as the passes advance,
// so resident memory stays a few chunks, whatever the file size.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error(os_error("cannot open", path));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw std::runtime_error(os_error("cannot stat", path));
    size_ = static_cast<size_t>(st.st_size);
    if (size_ == 0) return;
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) throw std::runtime_error(os_error("cannot map", path));
    data_ = static_cast<const uint8_t*>(p);
    ::madvise(p, size_, MADV_SEQUENTIAL);
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_ ? data_ : reinterpret_cast<const uint8_t*>(""); }
  size_t size() const { return size_; }
  bool contains(const uint8_t* p) const { return data_ && p >= data_ && p < data_ + size_; }

  // Drop resident pages wholly inside [b, e).
  void release(const uint8_t* b, const uint8_t* e) {
    if (!data_) return;
    static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    uintptr_t lo = (reinterpret_cast<uintptr_t>(b) + page - 1) & ~(page - 1);
    uintptr_t hi = reinterpret_cast<uintptr_t>(e) & ~(page - 1);
    if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
  }
  // Progress callback: release everything before `upto` once enough has accumulated (and let
  // Python's signal handlers run at that pace).
  void advance(const uint8_t* upto) {
    if (upto - released_ > kChunk) {
      release(data_, upto);
      released_ = upto;
      check_signals();
    }
  }
  void reset() { released_ = data_; }

  static constexpr ptrdiff_t kChunk = 32 << 20;

 private:
  std::string path_;
  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  const uint8_t* released_ = nullptr;
};

class FileSink : public Sink {
 public:
  FileSink(const std::string& path, MappedFile& src) : path_(path), src_(src) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(os_error("cannot create", path));
    buf_.reserve(kBuf);
  }
  ~FileSink() override {
    if (fd_ >= 0) ::close(fd_);
  }
  void write(const uint8_t* p, size_t n) override {
    if (n < kBuf / 4) {
      if (buf_.size() + n > kBuf) flush();
      buf_.insert(buf_.end(), p, p + n);
      return;
    }
    flush();
    while (n > 0) {  // large blobs (weights) go straight from the mapping to the file, chunk by chunk
      size_t k = std::min<size_t>(n, MappedFile::kChunk);
      raw_write(p, k);
      if (src_.contains(p)) src_.release(p, p + k);
      check_signals();
      p += k;
      n -= k;
    }
  }
  void close() {
    flush();
    if (::close(fd_) != 0) {
      fd_ = -1;
      throw std::runtime_error(os_error("cannot write", path_));
    }
    fd_ = -1;
  }

 private:
  static constexpr size_t kBuf = 1 << 20;
  std::string path_;
  MappedFile& src_;
  int fd_ = -1;
  std::vector<uint8_t> buf_;

  void flush() {
    if (!buf_.empty()) raw_write(buf_.data(), buf_.size());
    buf_.clear();
  }
  void raw_write(const uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(os_error("cannot write", path_));
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
};

class BufferSink : public Sink {
 public:
  BufferSink(char* out, size_t cap) : out_(out), cap_(cap) {}
  void write(const uint8_t* p, size_t n) override {
    if (n > cap_ - used_) throw std::logic_error("rename: output larger than computed");
    std::memcpy(out_ + used_, p, n);
    used_ += n;
  }
  size_t used() const { return used_; }

 private:
  char* out_;
  size_t cap_;
  size_t used_ = 0;
};

NameMap to_map(const py::dict& mapping) {
  NameMap m;
  for (auto item : mapping) m.emplace(py::cast<std::string>(item.first), py::cast<std::string>(item.second));
  return m;
}

py::list str_list(const std::vector<std::string_view>& v) {
  py::list out;
  for (auto n : v) out.append(py::str(n.data(), n.size()));
  return out;
}

py::dict info_dict(const ScanResult& r, bool with_names) {
  py::dict d;
  d["output_size"] = r.output_size;
  d["renamed_fields"] = r.renamed_fields;
  d["external_locations"] = py::list(py::cast(std::vector<std::string>(r.external_locations.begin(),
                                                                       r.external_locations.end())));
  d["has_graph"] = r.has_graph;
  d["graph_inputs"] = str_list(r.graph_inputs);
  d["graph_outputs"] = str_list(r.graph_outputs);
  if (with_names) d["names"] = str_list(r.names);
  return d;
}

NameMap to_map_opt(const py::object& mapping) {
  return mapping.is_none() ? NameMap{} : to_map(mapping.cast<py::dict>());
}

py::bytes rename_bytes(py::bytes data, py::dict mapping) {
  NameMap m = to_map(mapping);
  char* buf = nullptr;
  Py_ssize_t len = 0;
  PyBytes_AsStringAndSize(data.ptr(), &buf, &len);
  WireRenamer renamer(reinterpret_cast<const uint8_t*>(buf), static_cast<size_t>(len), m);
  uint64_t out_size;
  {
    py::gil_scoped_release nogil;
    out_size = renamer.scan().output_size;
    renamer.validate();
  }
  PyObject* out = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(out_size));
  if (!out) throw py::error_already_set();
  py::bytes result = py::reinterpret_steal<py::bytes>(out);
  {
    py::gil_scoped_release nogil;
    BufferSink sink(PyBytes_AS_STRING(out), out_size);
    renamer.write(sink);
    if (sink.used() != out_size) throw std::logic_error("rename: output size mismatch");
  }
  return result;
}

py::dict scan_bytes(py::bytes data) {
  NameMap empty;
  char* buf = nullptr;
  Py_ssize_t len = 0;
  PyBytes_AsStringAndSize(data.ptr(), &buf, &len);
  WireRenamer renamer(reinterpret_cast<const uint8_t*>(buf), static_cast<size_t>(len), empty);
  {
    py::gil_scoped_release nogil;
    renamer.scan();
  }
  return info_dict(renamer.scan(), true);
}

py::dict scan_file(const std::string& path) {
  NameMap empty;
  MappedFile src(path);
  WireRenamer renamer(src.data(), src.size(), empty);
  src.reset();
  const ScanResult* r;
  try {
    py::gil_scoped_release nogil;
    r = &renamer.scan([&](const uint8_t* p) { src.advance(p); });
  } catch (const Interrupted&) {
    throw py::error_already_set();
  }
  return info_dict(*r, true);
}

py::dict rename_file(const std::string& src_path, const std::string& dst_path, py::dict mapping,
                     py::object locations) {
  NameMap m = to_map(mapping);
  NameMap locs = to_map_opt(locations);
  MappedFile src(src_path);
  WireRenamer renamer(src.data(), src.size(), m, &locs);
  const ScanResult* r;
  try {
    py::gil_scoped_release nogil;
    auto progress = [&](const uint8_t* p) { src.advance(p); };
    src.reset();
    r = &renamer.scan(progress);
    renamer.validate();
    src.reset();
    FileSink sink(dst_path, src);
    renamer.write(sink, progress);
    sink.close();
  } catch (const Interrupted&) {
    throw py::error_already_set();
  }
  return info_dict(*r, true);
}

}  // namespace

void register_rename(py::module_& m) {
  static py::exception<ParseError> parse_error(m, "ParseError", PyExc_ValueError);
  static py::exception<RenameError> rename_error(m, "RenameError", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ParseError& e) {
      py::set_error(parse_error, e.what());
    } catch (const RenameError& e) {
      py::set_error(rename_error, e.what());
    }
  });
  m.def("rename_bytes", &rename_bytes, py::arg("data"), py::arg("mapping"),
        "Rename tensors in a serialized ModelProto; returns the new serialized model.");
  m.def("rename_file", &rename_file, py::arg("src"), py::arg("dst"), py::arg("mapping"),
        py::arg("locations") = py::none(),
        "Rename tensors in the .onnx file src, writing dst (never the same path). Weights are copied "
        "byte for byte; external data files are not touched, but `locations` ({old: new}) rewrites the "
        "external data file names the model refers to. Python signal handlers run every 32 MiB. "
        "Returns scan info of src (names, graph inputs/outputs, external locations, output size).");
  m.def("scan_bytes", &scan_bytes, py::arg("data"),
        "All tensor names (first-seen order) and external data locations of a serialized ModelProto.");
  m.def("scan_file", &scan_file, py::arg("path"),
        "scan_bytes for a file, without reading it into memory (Python signal handlers run every 32 MiB).");
}

}  // namespace trtdeploy
