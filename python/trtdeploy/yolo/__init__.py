"""YOLO-family detectors for TensorRT.

* ``families``: which head an export ends in (yolov5, yolov8, yolo-end2end, rtdetr), from its graph;
* ``head``, ``patch``, ``decode``: YOLOv5 -> the YoloLayer_TRT plugin, its decode in NumPy (the
  oracle), C++ and CUDA (plugins/yolo_layer/README.md);
* ``postprocess``: anchor-free and end-to-end heads -> TopK/NonMaxSuppression and fixed-size outputs;
* ``reference``: a NumPy version of ultralytics' post-processing, the oracle of ``verify``;
* ``verify``: a patched model against the original export;
* ``_ops``: appending nodes in the form of the model's opset.
"""
