// pybind11 bindings of the YOLO decode (plugins/yolo_layer/yoloDecode.h): the attribute table, the
// C++ CPU decode on numpy arrays, and the CUDA decode on device pointers (when built with CUDA).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#endif
#ifdef TRTDEPLOY_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include "bindings.h"
#include "yoloDecode.h"
#include "yoloLayerAttrs.h"

namespace py = pybind11;

namespace trtdeploy {
namespace {

using yolo::DecodeParams;

py::list attributes() {
  py::list out;
  for (const auto& a : yolo::kAttributes) {
    py::dict d;
    d["name"] = a.name;
    d["type"] = a.type == yolo::AttrType::kInt ? "int" : a.type == yolo::AttrType::kFloat ? "float" : "floats";
    d["required"] = a.required;
    if (a.required)
      d["default"] = py::none();
    else if (a.type == yolo::AttrType::kInt)
      d["default"] = static_cast<long>(a.default_value);
    else
      d["default"] = a.default_value;
    d["doc"] = a.doc;
    out.append(d);
  }
  return out;
}

// Level shapes [B, C, H, W] -> params (validated; messages name the level).
DecodeParams make_params(const std::vector<std::vector<int64_t>>& shapes, const std::vector<float>& anchors,
                         int max_stride, int num_classes, float threshold, int score_mode, int max_detections) {
  DecodeParams p;
  const int levels = static_cast<int>(shapes.size());
  if (levels < 1 || levels > yolo::kMaxLevels) throw py::value_error("1 to 8 levels are supported");
  if (anchors.size() % (2 * levels) != 0)
    throw py::value_error("anchors must hold 2 * num_anchors values per level (" + std::to_string(anchors.size()) +
                          " values for " + std::to_string(levels) + " levels)");
  p.num_levels = levels;
  p.num_anchors = static_cast<int>(anchors.size() / (2 * levels));
  p.num_classes = num_classes;
  if (p.num_anchors > yolo::kMaxAnchors) throw py::value_error("at most 16 anchors per level");
  for (int l = 0; l < levels; ++l) {
    const auto& s = shapes[l];
    if (s.size() != 4) throw py::value_error("level " + std::to_string(l) + ": expected [B, C, H, W]");
    if (l == 0) p.batch = static_cast<int>(s[0]);
    if (s[0] != p.batch) throw py::value_error("level " + std::to_string(l) + ": batch differs from level 0");
    if (s[1] != static_cast<int64_t>(p.num_anchors) * (num_classes + 5))
      throw py::value_error("level " + std::to_string(l) + ": " + std::to_string(s[1]) + " channels, expected " +
                            std::to_string(p.num_anchors) + " anchors * (" + std::to_string(num_classes) + " + 5)");
    p.grid_h[l] = static_cast<int>(s[2]);
    p.grid_w[l] = static_cast<int>(s[3]);
    for (int a = 0; a < p.num_anchors; ++a) {
      p.anchors[(l * yolo::kMaxAnchors + a) * 2 + 0] = anchors[(l * p.num_anchors + a) * 2 + 0];
      p.anchors[(l * yolo::kMaxAnchors + a) * 2 + 1] = anchors[(l * p.num_anchors + a) * 2 + 1];
    }
  }
  p.score_threshold = threshold;
  p.score_mode = score_mode;
  p.max_detections = max_detections;
  if (const char* err = yolo::finalize(p, max_stride)) throw py::value_error(err);
  return p;
}

// A zero-filled array whose pages are only materialized where something is written: a fresh
// anonymous mapping for outputs from 128 KiB (numpy.zeros' calloc memsets memory the heap recycles,
// ~0.7 ms for the 19 MB of rows of a B=32 640x640 decode), numpy.zeros for small ones.
template <typename T>
py::array_t<T> zeroed(std::vector<py::ssize_t> shape) {
  size_t bytes = sizeof(T);
  for (py::ssize_t d : shape) bytes *= static_cast<size_t>(d);
#if defined(__unix__) || defined(__APPLE__)
  if (bytes >= (size_t{128} << 10)) {
    void* ptr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ptr == MAP_FAILED) throw std::bad_alloc();
    struct Mapping {
      void* ptr;
      size_t bytes;
    };
    py::capsule owner(new Mapping{ptr, bytes}, [](void* m) {
      munmap(static_cast<Mapping*>(m)->ptr, static_cast<Mapping*>(m)->bytes);
      delete static_cast<Mapping*>(m);
    });
    return py::array_t<T>(shape, static_cast<T*>(ptr), owner);
  }
#endif
  return py::module_::import("numpy").attr("zeros")(shape, py::dtype::of<T>()).template cast<py::array_t<T>>();
}

py::tuple decode_cpu(const std::vector<py::array>& levels, const std::vector<float>& anchors, int max_stride,
                     int num_classes, float threshold, int score_mode, int max_detections, int threads) {
  std::vector<std::vector<int64_t>> shapes;
  std::vector<py::array> keep;
  bool fp16 = false;
  for (size_t l = 0; l < levels.size(); ++l) {
    const py::array& a = levels[l];
    const bool is16 = a.dtype().is(py::dtype("float16"));
    if (!is16 && !a.dtype().is(py::dtype::of<float>()))
      throw py::value_error("level " + std::to_string(l) + ": dtype must be float32 or float16");
    if (l == 0) fp16 = is16;
    if (is16 != fp16) throw py::value_error("all levels must have the same dtype");
    keep.push_back(py::array::ensure(a, py::array::c_style));
    shapes.emplace_back(keep.back().shape(), keep.back().shape() + keep.back().ndim());
  }
  DecodeParams p = make_params(shapes, anchors, max_stride, num_classes, threshold, score_mode, max_detections);
  p.fp16 = fp16;
  for (int l = 0; l < p.num_levels; ++l) p.inputs[l] = keep[l].data();
  auto num = zeroed<int32_t>({p.batch, 1});
  auto boxes = zeroed<float>({p.batch, p.max_detections, 4});
  auto scores = zeroed<float>({p.batch, p.max_detections});
  auto classes = zeroed<int32_t>({p.batch, p.max_detections});
  {
    py::gil_scoped_release nogil;
    yolo::decode_cpu(p, num.mutable_data(), boxes.mutable_data(), scores.mutable_data(), classes.mutable_data(),
                     threads, /*outputs_zeroed=*/true);
  }
  return py::make_tuple(num, boxes, scores, classes);
}

py::dict plan(const std::vector<std::vector<int64_t>>& shapes, const std::vector<float>& anchors, int max_stride,
              int num_classes, int max_detections) {
  DecodeParams p = make_params(shapes, anchors, max_stride, num_classes, 0.f, 0, max_detections);
  py::dict d;
  d["batch"] = p.batch;
  d["total_anchors"] = p.total_anchors();
  d["max_detections"] = p.max_detections;
  std::vector<float> strides(p.stride, p.stride + p.num_levels);
  d["strides"] = strides;
#ifdef TRTDEPLOY_WITH_CUDA
  d["workspace_bytes"] = yolo::decode_workspace_size(p.batch, p.total_anchors(), max_detections);
#endif
  return d;
}

#ifdef TRTDEPLOY_WITH_CUDA
void decode_cuda(const std::vector<uintptr_t>& level_ptrs, const std::vector<std::vector<int64_t>>& shapes,
                 bool fp16, const std::vector<float>& anchors, int max_stride, int num_classes, float threshold,
                 int score_mode, int max_detections, uintptr_t num, uintptr_t boxes, uintptr_t scores,
                 uintptr_t classes, uintptr_t workspace, uintptr_t stream) {
  if (level_ptrs.size() != shapes.size()) throw py::value_error("one pointer per level");
  DecodeParams p = make_params(shapes, anchors, max_stride, num_classes, threshold, score_mode, max_detections);
  p.fp16 = fp16;
  for (int l = 0; l < p.num_levels; ++l) p.inputs[l] = reinterpret_cast<const void*>(level_ptrs[l]);
  int err;
  {
    py::gil_scoped_release nogil;
    err = yolo::decode_cuda(p, reinterpret_cast<int32_t*>(num), reinterpret_cast<float*>(boxes),
                            reinterpret_cast<float*>(scores), reinterpret_cast<int32_t*>(classes),
                            reinterpret_cast<void*>(workspace), reinterpret_cast<cudaStream_t>(stream));
  }
  check_launch(err, "YOLO decode");
}
#endif

}  // namespace

void register_decode(py::module_& m) {
  m.attr("YOLO_PLUGIN_NAME") = yolo::kPluginName;
  m.attr("YOLO_PLUGIN_VERSION") = yolo::kPluginVersion;
  m.def("yolo_layer_attributes", &attributes, "The YoloLayer_TRT attributes: name, type, required, default, doc.");
  m.def("yolo_decode_cpu", &decode_cpu, py::arg("levels"), py::arg("anchors"), py::arg("max_stride"),
        py::arg("num_classes"), py::arg("score_threshold") = 0.25f, py::arg("score_mode") = 0,
        py::arg("max_detections") = 0, py::arg("threads") = 0,
        "C++ CPU decode of sigmoid-activated levels [B, na*(nc+5), H, W] (float32/float16 numpy) -> "
        "(num_detections [B,1] int32, boxes [B,N,4], scores [B,N], classes [B,N] int32); threads 0 = one per core.");
  m.def("yolo_decode_plan", &plan, py::arg("shapes"), py::arg("anchors"), py::arg("max_stride"),
        py::arg("num_classes"), py::arg("max_detections") = 0,
        "Validate level shapes; output rows, strides and the CUDA workspace size.");
#ifdef TRTDEPLOY_WITH_CUDA
  m.def("yolo_decode_cuda", &decode_cuda, py::arg("level_ptrs"), py::arg("shapes"), py::arg("fp16"),
        py::arg("anchors"), py::arg("max_stride"), py::arg("num_classes"), py::arg("score_threshold"),
        py::arg("score_mode"), py::arg("max_detections"), py::arg("num_detections"), py::arg("boxes"),
        py::arg("scores"), py::arg("classes"), py::arg("workspace"), py::arg("stream"),
        "CUDA decode on device pointers (outputs and workspace preallocated; see yolo_decode_plan).");
#endif
}

}  // namespace trtdeploy
