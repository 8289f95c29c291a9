"""YOLO-family detectors for TensorRT.

* ``families``: which head an export ends in (yolov5, yolov8, yolo-end2end, rtdetr), from its graph;
* ``head``, ``patch``, ``decode``: YOLOv5 -> the YoloLayer_TRT plugin, its decode in NumPy (the
  oracle), C++ and CUDA (plugins/yolo_layer/README.md);
* ``postprocess``: anchor-free and end-to-end heads -> TopK/NonMaxSuppression and fixed-size outputs;
* ``nms_plugin``, ``nms``: ``--nms plugin`` (the TRTDeploy_NMS node; plugins run on the CPU for the check)
  and the plugin's NMS in C++ and CUDA outside TensorRT (plugins/nms/README.md);
* ``reference``: a NumPy version of ultralytics' post-processing, the oracle of ``verify``;
* ``verify`` (+ ``verify_v5``, ``head_check``): a patched model against the original export;
* ``_ops``: appending nodes in the form of the model's opset.
"""
