"""Pure graph-surgery passes: each takes an onnx.ModelProto and returns a new one."""
