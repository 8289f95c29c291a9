"""Run an engine and time it with CUDA events (buffers and events through torch)."""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingDependencyError, TrtDeployError
from . import import_tensorrt


def _torch():
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("benchmarking engines needs torch with CUDA for buffers and CUDA events") from None
    if not torch.cuda.is_available():
        raise TrtDeployError("no CUDA GPU visible to torch")
    return torch


class EngineRunner:
    def __init__(self, engine_path: str, plugins: list[str] = ()):
        trt = import_tensorrt()
        self.trt, self.torch = trt, _torch()
        self.logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(self.logger)
        for lib in plugins:
            runtime.get_plugin_registry().load_library(str(lib))
        self.engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise TrtDeployError(f"{engine_path}: TensorRT cannot load this engine (other TensorRT version or GPU?)")
        self.context = self.engine.create_execution_context()
        self.stream = self.torch.cuda.Stream()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.buffers = {}

    @property
    def num_profiles(self) -> int:
        return self.engine.num_optimization_profiles

    def profile_shapes(self, profile: int) -> dict:
        return {n: [list(s) for s in self.engine.get_tensor_profile_shape(n, profile)] for n in self.inputs}

    def prepare(self, shapes: dict[str, list[int]], profile: int = 0) -> None:
        torch, trt = self.torch, self.trt
        self.context.set_optimization_profile_async(profile, self.stream.cuda_stream)
        for name in self.inputs:
            if name not in shapes:
                raise TrtDeployError(f"no shape for engine input '{name}'")
            self.context.set_input_shape(name, shapes[name])
        for name in self.inputs + self.outputs:
            shape = list(self.context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise TrtDeployError(f"output '{name}' has a data-dependent shape; not supported by bench")
            dtype = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
                     trt.int64: torch.int64, trt.int8: torch.int8, trt.bool: torch.bool,
                     trt.bfloat16: torch.bfloat16}[self.engine.get_tensor_dtype(name)]
            buf = torch.rand(shape, device="cuda").to(dtype) if name in self.inputs else \
                torch.empty(shape, dtype=dtype, device="cuda")
            self.buffers[name] = buf
            self.context.set_tensor_address(name, buf.data_ptr())

    def run(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise TrtDeployError("TensorRT execution failed")

    def time(self, iters: int, warmup: int, cuda_graph: bool = False) -> list[float]:
        """Per-iteration microseconds, from CUDA events on the engine's stream."""
        torch = self.torch
        launch = self.run
        if cuda_graph:
            with torch.cuda.stream(self.stream):
                self.run()  # TensorRT needs one run before capture
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=self.stream):
                    self.run()
            launch = graph.replay
        with torch.cuda.stream(self.stream):
            for _ in range(warmup):
                launch()
            times = []
            for _ in range(iters):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record(self.stream)
                launch()
                end.record(self.stream)
                end.synchronize()
                times.append(start.elapsed_time(end) * 1e3)
        return times
