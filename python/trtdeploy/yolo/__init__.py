"""YOLOv5-style deployment: head matcher, YoloLayer_TRT insertion (+ NMS), and one decode in
NumPy (the oracle), C++ (CPU) and CUDA. Semantics: plugins/yolo_layer/README.md."""
