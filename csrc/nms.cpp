// pybind11 bindings of the NMS (plugins/nms/nms.h): the attribute table and the C++ CPU NMS on numpy
// arrays, the semantics the TRTDeploy_NMS plugin's kernel has.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "nms.h"
#include "nmsAttrs.h"

namespace py = pybind11;

namespace trtdeploy {
namespace {

py::list attributes() {
  py::list out;
  for (const auto& a : nms::kAttributes) {
    py::dict d;
    d["name"] = a.name;
    d["type"] = a.type == nms::AttrType::kInt ? "int" : "float";
    d["required"] = a.required;
    if (a.required)
      d["default"] = py::none();
    else if (a.type == nms::AttrType::kInt)
      d["default"] = static_cast<long>(a.default_value);
    else
      d["default"] = a.default_value;
    d["doc"] = a.doc;
    out.append(d);
  }
  return out;
}

py::tuple nms_cpu(py::array boxes, py::array scores, py::array classes, float iou_threshold, float score_threshold,
                  int max_detections, bool class_agnostic) {
  const bool fp16 = boxes.dtype().is(py::dtype("float16"));
  if (!fp16 && !boxes.dtype().is(py::dtype::of<float>())) throw py::value_error("boxes must be float32 or float16");
  if (!scores.dtype().is(boxes.dtype())) throw py::value_error("scores must have the dtype of boxes");
  if (!classes.dtype().is(py::dtype::of<int32_t>())) throw py::value_error("classes must be int32");
  auto b = py::array::ensure(boxes, py::array::c_style), s = py::array::ensure(scores, py::array::c_style),
       c = py::array::ensure(classes, py::array::c_style);
  if (b.ndim() != 3 || b.shape(2) != 4) throw py::value_error("boxes must be [B, K, 4]");
  if (s.ndim() != 2 || s.shape(0) != b.shape(0) || s.shape(1) != b.shape(1))
    throw py::value_error("scores must be [B, K] with the B and K of boxes");
  if (c.ndim() != 2 || c.shape(0) != b.shape(0) || c.shape(1) != b.shape(1))
    throw py::value_error("classes must be [B, K] with the B and K of boxes");
  nms::NmsParams p;
  p.batch = static_cast<int>(b.shape(0));
  p.num_candidates = static_cast<int>(b.shape(1));
  p.max_detections = max_detections;
  p.iou_threshold = iou_threshold;
  p.score_threshold = score_threshold;
  p.class_agnostic = class_agnostic;
  p.fp16 = fp16;
  p.boxes = b.data();
  p.scores = s.data();
  p.classes = static_cast<const int32_t*>(c.data());
  if (const char* err = nms::check_params(p)) throw py::value_error(err);
  const py::ssize_t B = p.batch, D = max_detections;
  py::array_t<int32_t> num({B, py::ssize_t(1)});
  py::array out_boxes(b.dtype(), {B, D, py::ssize_t(4)});
  py::array out_scores(b.dtype(), {B, D});
  py::array_t<int32_t> out_classes({B, D});
  const char* err;
  {
    py::gil_scoped_release nogil;
    err = nms::nms_cpu(p, num.mutable_data(), out_boxes.mutable_data(), out_scores.mutable_data(),
                       out_classes.mutable_data());
  }
  if (err) throw py::value_error(err);
  return py::make_tuple(num, out_boxes, out_scores, out_classes);
}

#ifdef TRTDEPLOY_WITH_CUDA
// The kernel on device pointers, as TRTDeploy_NMS's enqueue calls it (outputs and workspace preallocated:
// nms_workspace_bytes), asynchronous on `stream`.
void nms_cuda(uintptr_t boxes, uintptr_t scores, uintptr_t classes, int batch, int num_candidates, bool fp16,
              float iou_threshold, float score_threshold, int max_detections, bool class_agnostic, uintptr_t num,
              uintptr_t out_boxes, uintptr_t out_scores, uintptr_t out_classes, uintptr_t workspace, uintptr_t stream) {
  nms::NmsParams p;
  p.batch = batch;
  p.num_candidates = num_candidates;
  p.max_detections = max_detections;
  p.iou_threshold = iou_threshold;
  p.score_threshold = score_threshold;
  p.class_agnostic = class_agnostic;
  p.fp16 = fp16;
  p.boxes = reinterpret_cast<const void*>(boxes);
  p.scores = reinterpret_cast<const void*>(scores);
  p.classes = reinterpret_cast<const int32_t*>(classes);
  if (const char* err = nms::check_params(p)) throw py::value_error(err);
  int err;
  {
    py::gil_scoped_release nogil;
    err = nms::nms_cuda(p, reinterpret_cast<int32_t*>(num), reinterpret_cast<void*>(out_boxes),
                        reinterpret_cast<void*>(out_scores), reinterpret_cast<int32_t*>(out_classes),
                        reinterpret_cast<void*>(workspace), reinterpret_cast<cudaStream_t>(stream));
  }
  check_launch(err, "NMS");
}
#endif

}  // namespace

void register_nms(py::module_& m) {
  m.attr("NMS_PLUGIN_NAME") = nms::kPluginName;
  m.attr("NMS_PLUGIN_VERSION") = nms::kPluginVersion;
  m.def("nms_attributes", &attributes, "The TRTDeploy_NMS attributes: name, type, required, default, doc.");
  m.def("nms_cpu", &nms_cpu, py::arg("boxes"), py::arg("scores"), py::arg("classes"), py::arg("iou_threshold"),
        py::arg("score_threshold"), py::arg("max_detections"), py::arg("class_agnostic") = false,
        "C++ CPU NMS as the TRTDeploy_NMS plugin computes it: boxes [B,K,4] x1y1x2y2, scores [B,K] (float32 or "
        "float16), classes [B,K] int32 -> (num_detections [B,1] int32, boxes [B,D,4], scores [B,D], classes [B,D]).");
  m.def("nms_workspace_bytes", &nms::nms_workspace_size, py::arg("batch"), py::arg("num_candidates"),
        "Bytes of workspace the CUDA NMS needs for B images of K candidates (256-byte aligned).");
#ifdef TRTDEPLOY_WITH_CUDA
  m.def("nms_cuda", &nms_cuda, py::arg("boxes"), py::arg("scores"), py::arg("classes"), py::arg("batch"),
        py::arg("num_candidates"), py::arg("fp16"), py::arg("iou_threshold"), py::arg("score_threshold"),
        py::arg("max_detections"), py::arg("class_agnostic"), py::arg("num_detections"), py::arg("out_boxes"),
        py::arg("out_scores"), py::arg("out_classes"), py::arg("workspace"), py::arg("stream"),
        "The TRTDeploy_NMS kernel on device pointers (outputs and workspace preallocated; nms_workspace_bytes).");
#endif
}

}  // namespace trtdeploy
