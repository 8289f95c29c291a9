"""Run an engine and time it with CUDA events (buffers, streams and events through torch)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import MissingDependencyError, TrtDeployError
from . import import_runtime, load_plugins

log = logging.getLogger("trtdeploy")

# TensorRT DataType member (the same names in 10 and 11) -> torch dtype attribute; None: no torch
# tensor can hold it (packed sub-byte types).
TORCH_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
                "INT64": "int64", "BOOL": "bool", "UINT8": "uint8", "FP8": "float8_e4m3fn", "INT4": None,
                "FP4": None, "E8M0": None}


def torch_dtype_name(trt_name: str, tensor: str) -> str:
    name = TORCH_DTYPES.get(trt_name)
    if name is None:
        raise TrtDeployError(f"engine tensor '{tensor}' is {trt_name.lower()}, which bench cannot allocate "
                             "(packed sub-byte type)")
    return name


def _torch():
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("benchmarking engines needs torch with CUDA for buffers and CUDA events") from None
    if not torch.cuda.is_available():
        raise TrtDeployError("no CUDA GPU visible to torch")
    return torch


def _output_allocator(trt, torch, device_buffers: dict, shapes: dict):
    """IOutputAllocator for outputs whose shape depends on the data (NonMaxSuppression): TensorRT asks
    for memory once it knows the size; buffers are kept and reused while they are large enough."""

    class Allocator(trt.IOutputAllocator):
        def __init__(self):
            trt.IOutputAllocator.__init__(self)

        def reallocate_output(self, tensor_name, memory, size, alignment):
            buf = device_buffers.get(tensor_name)
            if buf is None or buf.numel() < size:
                buf = torch.empty(max(int(size), 1), dtype=torch.uint8, device="cuda")
                device_buffers[tensor_name] = buf
            return buf.data_ptr()

        def reallocate_output_async(self, tensor_name, memory, size, alignment, stream):
            return self.reallocate_output(tensor_name, memory, size, alignment)

        def notify_shape(self, tensor_name, shape):
            shapes[tensor_name] = list(shape)

    return Allocator()


class EngineRunner:
    def __init__(self, engine_path: str, plugins: list[str] = ()):
        from ..plan import BUNDLED_OPS, engine_plugins
        from .build import read_sidecar

        sidecar = read_sidecar(engine_path)
        trt = import_runtime((sidecar or {}).get("runtime", "tensorrt"))  # the builder that made it runs it
        self.trt, self.torch = trt, _torch()
        self.logger = trt.Logger(trt.Logger.WARNING)
        blob = Path(engine_path).read_bytes()
        from . import is_rtx
        from .rtx import PLUGIN_ABI

        abi = PLUGIN_ABI if is_rtx(trt) else str(trt.__version__)  # the plugin library's TensorRT major
        libs, notes = engine_plugins(sidecar, any(op.encode() in blob for op in BUNDLED_OPS), list(plugins), abi)
        for note in notes:
            log.info("%s", note)
        load_plugins(trt, libs)
        runtime = trt.Runtime(self.logger)
        self.engine = runtime.deserialize_cuda_engine(blob)
        if self.engine is None:
            built = (sidecar or {}).get("tensorrt_version")
            why = f"it was built with TensorRT {built}, this is {trt.__version__}" if built and built != trt.__version__ \
                else "see its messages above"
            raise TrtDeployError(f"{engine_path}: TensorRT cannot load this engine ({why})")
        self.context = self.engine.create_execution_context()
        self.stream = self.torch.cuda.Stream()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.buffers, self.dynamic_outputs = {}, {}
        self.data_dependent: list[str] = []
        self._allocator = None

    @property
    def num_profiles(self) -> int:
        return self.engine.num_optimization_profiles

    def profile_shapes(self, profile: int) -> dict:
        return {n: [list(s) for s in self.engine.get_tensor_profile_shape(n, profile)] for n in self.inputs}

    def _dtype(self, name: str):
        dt = self.engine.get_tensor_dtype(name)
        return getattr(self.torch, torch_dtype_name(getattr(dt, "name", str(dt).split(".")[-1]), name))

    def prepare(self, shapes: dict[str, list[int]], profile: int = 0) -> None:
        torch = self.torch
        try:
            self.context.set_optimization_profile_async(profile, self.stream.cuda_stream)
        except RuntimeError as exc:
            raise TrtDeployError(f"optimization profile {profile}: {exc}") from None
        for name in self.inputs:
            if name not in shapes:
                raise TrtDeployError(f"no shape for engine input '{name}'")
            if not self.context.set_input_shape(name, shapes[name]):
                lo, _, hi = self.profile_shapes(profile)[name]
                raise TrtDeployError(f"input '{name}': shape {'x'.join(map(str, shapes[name]))} is outside profile "
                                     f"{profile} (min {'x'.join(map(str, lo))}, max {'x'.join(map(str, hi))})")
        self.data_dependent = []
        with torch.cuda.stream(self.stream):  # filled on the stream TensorRT reads them on
            for name in self.inputs + self.outputs:
                shape = list(self.context.get_tensor_shape(name))
                dtype = self._dtype(name)
                if name in self.outputs and any(d < 0 for d in shape):
                    self.data_dependent.append(name)  # sized by TensorRT through the output allocator
                    continue
                if name in self.inputs:
                    buf = torch.rand(shape, device="cuda").to(dtype) if dtype.is_floating_point else \
                        torch.randint(0, 2, shape, device="cuda").to(dtype)
                else:
                    buf = torch.empty(shape, dtype=dtype, device="cuda")
                self.buffers[name] = buf
                self.context.set_tensor_address(name, buf.data_ptr())
        if self.data_dependent:
            self._allocator = _output_allocator(self.trt, torch, self.dynamic_outputs, {})
            for name in self.data_dependent:
                self.context.set_output_allocator(name, self._allocator)
        self.stream.synchronize()

    def run(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise TrtDeployError("TensorRT execution failed (see its messages above)")

    def time(self, iters: int, warmup: int, cuda_graph: bool = False) -> list[float]:
        """Per-iteration microseconds, from CUDA events on the engine's stream."""
        torch = self.torch
        launch = self.run
        if cuda_graph:
            if self.data_dependent:
                raise TrtDeployError(f"output {', '.join(self.data_dependent)} has a data-dependent shape (e.g. "
                                     "NonMaxSuppression), which a CUDA graph cannot capture; drop --cuda-graph")
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
