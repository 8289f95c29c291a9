"""Append ONNX nodes to a model in the form of the model's own opset.

Several ops moved attributes to inputs over the opset versions (Unsqueeze/Squeeze/ReduceSum at 13,
Slice at 10, Pad at 11, TopK's k at 10, the other reductions at 18); a subgraph written in one form
fails onnx.checker and onnxruntime in a model of the other. Every subgraph trtdeploy appends
(NMS after the YOLOv5 plugin, the post-processing of anchor-free and end-to-end heads) is emitted
through this one class, so it always matches the model it lands in.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .._graph import NameGen
from ..errors import TrtDeployError


def default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


class Emitter:
    """Collects new nodes and initializers with fresh names; ``commit()`` adds them to the graph."""

    def __init__(self, model: onnx.ModelProto, prefix: str = "", min_opset: int = 0, why: str = ""):
        self.model = model
        self.opset = default_opset(model)
        if self.opset < min_opset:
            raise TrtDeployError(f"the model's opset is {self.opset}; {why or 'this'} needs opset >= {min_opset} "
                                 "(re-export with a newer opset)")
        self.fresh = NameGen(model)
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._ints: dict[tuple, str] = {}

    def name(self, base: str) -> str:
        return self.fresh(f"{self.prefix}{base}")

    def const(self, base: str, value) -> str:
        arr = np.asarray(value)
        t = numpy_helper.from_array(arr, self.name(base))
        self.inits.append(t)
        return t.name

    def ints(self, base: str, values) -> str:
        """An int64 constant; equal ones are shared."""
        arr = np.asarray(values, np.int64)
        key = (arr.shape, tuple(arr.reshape(-1).tolist()))
        if key not in self._ints:
            self._ints[key] = self.const(base, arr)
        return self._ints[key]

    def op(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1, base: str | None = None,
           **attrs) -> str | list[str]:
        """One node; returns its output name (or names when ``outputs`` is a count > 1 or a list)."""
        base = base or op_type.lower()
        names = outputs if isinstance(outputs, list) else [self.name(base) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=self.name(f"{base}_{op_type}"), **attrs))
        return names[0] if len(names) == 1 and not isinstance(outputs, list) else names

    # ---- ops whose form depends on the opset ------------------------------------------------------
    def _axes_op(self, op_type: str, x: str, axes, since: int, base: str, **attrs) -> str:
        if self.opset >= since:
            return self.op(op_type, [x, self.ints(f"{base}_axes", axes)], base=base, **attrs)
        return self.op(op_type, [x], base=base, axes=[int(a) for a in axes], **attrs)

    def unsqueeze(self, x: str, axes, base: str = "unsqueeze") -> str:
        return self._axes_op("Unsqueeze", x, axes, 13, base)

    def squeeze(self, x: str, axes, base: str = "squeeze") -> str:
        return self._axes_op("Squeeze", x, axes, 13, base)

    def reduce(self, op_type: str, x: str, axes, keepdims: int = 1, base: str | None = None) -> str:
        since = 13 if op_type == "ReduceSum" else 18
        return self._axes_op(op_type, x, axes, since, base or op_type.lower(), keepdims=keepdims)

    def slice(self, x: str, starts, ends, axes, base: str = "slice") -> str:
        if self.opset >= 10:
            return self.op("Slice", [x, self.ints(f"{base}_starts", starts), self.ints(f"{base}_ends", ends),
                                     self.ints(f"{base}_axes", axes)], base=base)
        return self.op("Slice", [x], base=base, starts=list(starts), ends=list(ends), axes=list(axes))

    def pad(self, x: str, pads, value: float | None = None, base: str = "pad") -> str:
        if self.opset >= 11:
            ins = [x, self.ints(f"{base}_pads", pads)]
            if value is not None:
                ins.append(self.const(f"{base}_value", np.array(value, np.float32)))
            return self.op("Pad", ins, base=base)
        return self.op("Pad", [x], base=base, pads=list(pads), value=float(value or 0.0))

    def topk(self, x: str, k: int, axis: int, base: str = "topk") -> list[str]:
        """Largest k, sorted (ties: the lower index first, as ONNX specifies)."""
        if self.opset >= 10:
            return self.op("TopK", [x, self.ints(f"{base}_k", [k])], 2, base=base, axis=axis)
        return self.op("TopK", [x], 2, base=base, axis=axis, k=k)

    def commit(self) -> None:
        g = self.model.graph
        g.node.extend(self.nodes)
        g.initializer.extend(self.inits)
        self.nodes, self.inits = [], []
