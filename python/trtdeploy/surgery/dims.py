"""Make static input dims dynamic, so that the model really runs at other sizes.

Changing an input's dim_param is the easy part; exporters also bake the static sizes into the
graph (Reshape targets like ``x.view(1, -1)``, Expand shapes, Resize sizes, constants concatenated
with data, Slice ends). The pass finds those by inferring shapes twice: at the original sizes (O)
and at a probe size (P, each dynamic dim doubled). An axis whose size differs between O and P
depends on a dynamic input dim. Walking the nodes in order, a node whose constant shape operand
contradicts a dynamic axis is rewritten into a shape-derived value (``Shape(x)[axis]``, or 0 in a
Reshape target) that equals the constant at the original sizes, so results at the original shape
never change. A node that cannot be rewritten soundly is refused with a reason naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .._graph import NameGen, constant_value, copy_model, data_inputs, dims_of, fold_constant, node_label, producers
from .._shapes import Propagator, propagate as infer, set_dims
from ..errors import TrtDeployError

log = logging.getLogger("trtdeploy.dynamic")

DimSpec = Mapping[str, Mapping[int, str]]

_INT64_MAX = np.iinfo(np.int64).max
# inputs at these positions are shapes/sizes/indices, not data
_SHAPE_OPERANDS = {
    "Reshape": {1}, "Expand": {1}, "Tile": {1}, "ConstantOfShape": {0}, "Resize": {1, 2, 3},
    "Upsample": {1}, "Slice": {1, 2, 3, 4}, "Pad": {1, 2, 3}, "TopK": {1}, "Range": {0, 1, 2},
    "Squeeze": {1}, "Unsqueeze": {1}, "Split": {1}, "OneHot": {1}, "ReduceSum": {1},
    "ReduceMean": {1}, "ReduceMax": {1}, "ReduceMin": {1}, "ReduceProd": {1}, "CenterCropPad": {1},
    "NonMaxSuppression": {2, 3, 4}, "RoiAlign": {2}, "Trilu": {1}, "CumSum": {1},
}
_BROADCAST = {
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "And", "Or", "Xor", "Equal", "Greater", "Less",
    "GreaterOrEqual", "LessOrEqual", "Where", "Max", "Min", "Sum", "Mean", "PRelu", "BitShift",
    "BitwiseAnd", "BitwiseOr", "BitwiseXor",
}


def is_shape_input(model: onnx.ModelProto, name: str) -> bool:
    """An int 0-D/1-D input consumed only as a shape/size/index operand (e.g. Resize ``sizes``)."""
    vi = next((i for i in model.graph.input if i.name == name), None)
    if vi is None:
        return False
    t = vi.type.tensor_type
    dims = dims_of(vi)
    if t.elem_type not in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) or dims is None or len(dims) > 1:
        return False
    uses = [(n.op_type, k) for n in model.graph.node for k, x in enumerate(n.input) if x == name]
    return bool(uses) and all(k in _SHAPE_OPERANDS.get(op, ()) for op, k in uses)


def default_dims(model: onnx.ModelProto, symbol: str = "batch") -> dict[str, dict[int, str]]:
    """Axis 0 of every data input whose axis 0 has the same size as the first one's."""
    spec: dict[str, dict[int, str]] = {}
    first = None
    for vi in data_inputs(model.graph):
        dims = dims_of(vi)
        if not dims or is_shape_input(model, vi.name):
            continue
        d0 = dims[0]
        if isinstance(d0, str):
            spec[vi.name] = {0: d0}
            continue
        if not isinstance(d0, int):
            continue
        if first is None:
            first = d0
        if d0 == first:
            spec[vi.name] = {0: symbol}
        else:
            log.info("input '%s': axis 0 is %d, not the batch size %d; left static", vi.name, d0, first)
    return spec


def parse_dims(text: str) -> dict[str, dict[int, str]]:
    """``images:0=batch,2=height,3=width;mask:0=batch`` (also several --dims flags)."""
    spec: dict[str, dict[int, str]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, axes = part.rpartition(":")
        if not sep or not name:
            raise TrtDeployError(f"--dims '{part}': expected NAME:AXIS=SYMBOL[,AXIS=SYMBOL...]")
        for item in axes.split(","):
            axis, eq, sym = item.partition("=")
            try:
                ax = int(axis)
            except ValueError:
                ax = None
            if not eq or ax is None or not sym.strip():
                raise TrtDeployError(f"--dims '{part}': '{item}' should be AXIS=SYMBOL, e.g. 0=batch")
            spec.setdefault(name, {})[ax] = sym.strip()
    return spec


def make_dynamic(model: onnx.ModelProto, dims: DimSpec | None = None, *,
                 symbol: str = "batch") -> onnx.ModelProto:
    """Return a copy of ``model`` whose chosen input axes are symbolic and that runs at other sizes.

    dims: {input name: {axis: symbol}}; default: axis 0 of the data inputs, named ``symbol``.
    Raises TrtDeployError naming the input/node when it cannot be done soundly.
    """
    m = copy_model(model)
    spec = {k: dict(v) for k, v in (dims or default_dims(m, symbol)).items()}
    if not spec:
        raise TrtDeployError("the model has no data input with a static axis 0 to make dynamic; "
                             "name the axes with --dims NAME:AXIS=SYMBOL")
    orig, probe, final = _plan(m, spec)
    _Rewriter(m, orig, probe).run()
    for vi in m.graph.input:
        if vi.name in final:
            set_dims(vi, final[vi.name])
    _update_outputs(m, orig, probe)
    m.graph.ClearField("value_info")  # stale: re-infer with onnx.shape_inference if needed
    return m


def _plan(m: onnx.ModelProto, spec: dict[str, dict[int, str]]):
    """Original and probe sizes of every input, and the final dims with symbols."""
    inputs = {vi.name: vi for vi in data_inputs(m.graph)}
    sizes: dict[str, int] = {}
    orig, probe, final = {}, {}, {}
    for name, axes in spec.items():
        if name not in inputs:
            listed = ", ".join(f"'{n}'" for n in inputs) or "none"
            raise TrtDeployError(f"no graph input named '{name}' (data inputs: {listed})")
        dims = dims_of(inputs[name])
        if dims is None:
            raise TrtDeployError(f"input '{name}' has no shape in the model; cannot choose its axes")
        o, p, f = list(dims), list(dims), list(dims)
        for axis, sym in axes.items():
            ax = axis + len(dims) if axis < 0 else axis
            if not 0 <= ax < len(dims):
                raise TrtDeployError(f"input '{name}' has rank {len(dims)}; axis {axis} does not exist")
            d = dims[ax]
            f[ax] = sym
            if isinstance(d, int):
                if d <= 0:
                    raise TrtDeployError(f"input '{name}' axis {ax} has size {d}; cannot make it dynamic")
                if sizes.setdefault(sym, d) != d:
                    raise TrtDeployError(f"symbol '{sym}' is {sizes[sym]} on one input but {d} on input "
                                         f"'{name}' axis {ax}; use different symbols")
                p[ax] = 2 * d
        orig[name], probe[name], final[name] = o, p, f
    for name, vi in inputs.items():  # symbols already in the model stay as they are
        if name not in orig and dims_of(vi) is not None:
            orig[name] = probe[name] = dims_of(vi)
    return orig, probe, final


def _update_outputs(m: onnx.ModelProto, orig: dict, probe: dict) -> None:
    """Output dims from the rewritten graph: dims that follow an input dim become symbolic."""
    o_shapes, p_shapes = infer(m, orig), infer(m, probe)
    syms = {}  # (orig size, probe size) -> symbol, from the inputs
    for vi in m.graph.input:
        for o, p, d in zip(orig.get(vi.name, []), probe.get(vi.name, []), dims_of(vi) or []):
            if isinstance(d, str) and isinstance(o, int) and o != p:
                syms.setdefault((o, p), d)
    for out in m.graph.output:
        od = o_shapes.get(out.name, (0, None))[1]
        pd = p_shapes.get(out.name, (0, None))[1]
        if od is None or pd is None or len(od) != len(pd):
            declared = dims_of(out)
            if declared is not None:  # unknown after the change: keep the rank, drop stale sizes
                set_dims(out, [d if isinstance(d, str) else None for d in declared])
            continue
        new = []
        for o, p in zip(od, pd):
            if isinstance(o, int) and isinstance(p, int):
                new.append(o if o == p else syms.get((o, p)))
            else:
                new.append(o if isinstance(o, str) and o == p else None)
        set_dims(out, new)


class _Rewriter:
    """Walks the main graph in order and rewrites baked shapes, re-inferring after each change."""

    def __init__(self, m: onnx.ModelProto, orig: dict, probe: dict):
        self.m, self.g = m, m.graph
        self.orig, self.probe = orig, probe
        self.fresh = NameGen(m)
        self.shape_of: dict[str, str] = {}
        self.orphans: set[str] = set()
        self.symbols = {d for dims in orig.values() for d in dims if isinstance(d, str)}
        self.opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 13)

    # ---- driver ----------------------------------------------------------------------------
    def run(self) -> None:
        """One pass in graph order: shapes are propagated node by node at both sizes, and a node is
        checked (and rewritten) once its inputs are known; nodes a rewrite inserts ahead of it are
        propagated before it, so the pass stays linear in the graph size."""
        g = self.g
        self.PO, self.PP = Propagator(self.m, self.orig), Propagator(self.m, self.probe)
        self.prod = producers(g)
        self.inputs = {i.name for i in data_inputs(g)}
        self.dep = self._data_dependent()
        self.folded: dict[str, np.ndarray | None] = {}
        i = 0
        while i < len(g.node):
            node = g.node[i]
            check = None
            if node.domain in ("", "ai.onnx"):
                check = getattr(self, f"_check_{node.op_type}", None)
                if check is None and node.op_type in _BROADCAST:
                    check = self._check_broadcast
            for _ in range(16):  # a node may need several rewrites (e.g. two constant operands)
                before = len(g.node)
                if check is None or not check(node, i):
                    break
                for j in range(i, i + len(g.node) - before):
                    self._step(g.node[j])
                i += len(g.node) - before
            self._step(node)
            i += 1
        self._drop_orphans()

    def _step(self, node: onnx.NodeProto) -> None:
        self.PO.step(node)
        self.PP.step(node)

    def _data_dependent(self) -> set[str]:
        dep = set(self.inputs)
        for n in self.g.node:
            if any(x in dep for x in n.input) or n.op_type in ("If", "Loop", "Scan"):
                dep.update(n.output)
        return dep

    # ---- shape facts ------------------------------------------------------------------------
    def dims(self, name: str):
        """Sizes at the original and the probe shapes; symbols not from the inputs (inference's
        unk__N) count as unknown (None)."""
        o = self.PO.get(name)[1]
        p = self.PP.get(name)[1]
        if o is None or p is None or len(o) != len(p):
            return None, None
        keep = self.symbols
        o = [d if not isinstance(d, str) or d in keep else None for d in o]
        p = [d if not isinstance(d, str) or d in keep else None for d in p]
        if None in o and name not in self.dep:  # a constant inference could not size: fold it
            v = self.const_input(name)
            if v is not None and np.ndim(v) == len(o):
                o = p = list(np.shape(v))
        return o, p

    def dynamic_axes(self, name: str) -> set[int] | None:
        o, p = self.dims(name)
        if o is None:
            return None
        return {a for a, (x, y) in enumerate(zip(o, p))
                if (isinstance(x, int) and isinstance(y, int) and x != y) or (isinstance(x, str) and x == y)}

    def static_axes(self, name: str) -> set[int]:
        o, p = self.dims(name)
        if o is None:
            return set()
        return {a for a, (x, y) in enumerate(zip(o, p)) if isinstance(x, int) and x == y}

    # ---- graph edits -------------------------------------------------------------------------
    def const(self, value, base: str) -> str:
        name = self.fresh(base)
        t = numpy_helper.from_array(np.asarray(value), name)
        self.g.initializer.append(t)
        self.PO.add_initializer(t)
        self.PP.add_initializer(t)
        return name

    def add_node(self, idx: int, op: str, inputs: list[str], base: str, **attrs) -> str:
        out = self.fresh(base)
        node = helper.make_node(op, inputs, [out], name=self.fresh(f"{base}_{op}"), **attrs)
        self.g.node.insert(idx, node)
        self.prod[out] = self.g.node[idx]
        if any(x in self.dep for x in inputs):
            self.dep.add(out)
        return out

    def dim_piece(self, idx: int, tensor: str, axis: int) -> tuple[int, str]:
        """Insert nodes computing [Shape(tensor)[axis]] before node idx (int64, 1-D)."""
        inserted = 0
        if tensor not in self.shape_of:
            self.shape_of[tensor] = self.add_node(idx, "Shape", [tensor], f"{tensor}_shape")
            inserted += 1
        out = self.add_node(idx + inserted, "Gather", [self.shape_of[tensor], self.const(np.array([axis], np.int64), f"{tensor}_axis{axis}")],
                            f"{tensor}_dim{axis}", axis=0)
        return inserted + 1, out

    def shape_vector(self, node: onnx.NodeProto, idx: int, values, pieces: dict[int, list], base: str) -> str:
        """A 1-D int64 tensor: values, with positions in pieces computed as a product of
        (tensor, axis) dims times a constant. Inserted before node idx; returns its name."""
        if not pieces:
            return self.const(np.asarray(values, np.int64), base)
        parts: list[str] = []
        run: list[int] = []
        for p, v in enumerate(values):
            if p not in pieces:
                run.append(int(v))
                continue
            if run:
                parts.append(self.const(np.array(run, np.int64), base))
                run = []
            factors, k, div = pieces[p]
            acc = None
            for tensor, axis in factors:
                n, t = self.dim_piece(idx, tensor, axis)
                idx += n
                if acc is not None:
                    t = self.add_node(idx, "Mul", [acc, t], base)
                    idx += 1
                acc = t
            for op, c in (("Mul", k), ("Div", div)):
                if c != 1:
                    acc = self.add_node(idx, op, [acc, self.const(np.array([c], np.int64), base)], base)
                    idx += 1
            parts.append(acc)
        if run:
            parts.append(self.const(np.array(run, np.int64), base))
        return self.add_node(idx, "Concat", parts, base, axis=0) if len(parts) > 1 else parts[0]

    def replace_input(self, node: onnx.NodeProto, k: int, new: str) -> None:
        self.orphans.add(node.input[k])
        node.input[k] = new

    def _drop_orphans(self) -> None:
        """Initializers/Constant nodes that only fed rewritten operands."""
        used = {x for n in self.g.node for x in n.input} | {o.name for o in self.g.output}
        from .._graph import outer_references, subgraphs
        for n in self.g.node:
            for sub in subgraphs(n):
                used |= outer_references(sub)
        dead = self.orphans - used
        keep = [t for t in self.g.initializer if t.name not in dead]
        if len(keep) != len(self.g.initializer):
            self.g.ClearField("initializer")
            self.g.initializer.extend(keep)
        for i in reversed(range(len(self.g.node))):
            n = self.g.node[i]
            if n.op_type == "Constant" and n.output[0] in dead:
                del self.g.node[i]

    def refuse(self, node: onnx.NodeProto, why: str) -> None:
        raise TrtDeployError(f"cannot make the model dynamic: node {node_label(node)} {why}")

    def const_input(self, name: str):
        """Value of a tensor that depends on no graph input (folded with the reference evaluator)."""
        if name in self.folded:
            return self.folded[name]
        v = constant_value(name, self.g, self.prod)
        if v is None and name and name not in self.dep:
            v = fold_constant(self.m, name)
        self.folded[name] = v
        return v

    # ---- per-op checks: return True when the graph changed -----------------------------------------
    def vector(self, name: str):
        """A shape operand's value at the original and probe sizes (None when unknown)."""
        if not name:
            return None, None
        if name not in self.dep:
            v = self.const_input(name)
            v = None if v is None else [int(x) for x in np.asarray(v).reshape(-1)]
            return v, v
        o, p = self.PO.values.get(name), self.PP.values.get(name)
        if o is None or p is None or np.shape(o) != np.shape(p):
            return None, None
        return [int(x) for x in np.asarray(o).reshape(-1)], [int(x) for x in np.asarray(p).reshape(-1)]

    def rebuild(self, node, idx: int, k: int, values: list[int], fixed: dict[int, int], pieces: dict, base: str) -> str:
        """Replace operand k (a shape vector) of node: positions in fixed get a new constant, in
        pieces a shape-derived expression, the rest keep their current (possibly computed) value."""
        name = node.input[k]
        before = len(self.g.node)
        if name not in self.dep:
            new = [fixed.get(p, v) for p, v in enumerate(values)]
            out = self.shape_vector(node, idx, new, pieces, base)
        else:
            parts, keep, run = [], [], []

            def flush():
                if keep:
                    parts.append(self.add_node(idx + len(self.g.node) - before, "Gather",
                                               [name, self.const(np.array(keep, np.int64), base)], base, axis=0))
                    keep.clear()
                if run:
                    parts.append(self.const(np.array(run, np.int64), base))
                    run.clear()

            for p in range(len(values)):
                if p in pieces:
                    flush()
                    parts.append(self.shape_vector(node, idx + len(self.g.node) - before, [0], {0: pieces[p]}, base))
                elif p in fixed:
                    if keep:
                        flush()
                    run.append(fixed[p])
                else:
                    if run:
                        flush()
                    keep.append(p)
            flush()
            out = self.add_node(idx + len(self.g.node) - before, "Concat", parts, base, axis=0)
        self.replace_input(node, k, out)
        return out

    def _check_Reshape(self, node, idx) -> bool:
        if len(node.input) < 2:
            return False
        data, shape_name = node.input[0], node.input[1]
        dyn = self.dynamic_axes(data)
        od, _ = self.dims(data)
        if not dyn or od is None or not all(isinstance(d, int) for d in od):
            return False
        target, target_p = self.vector(shape_name)
        if target is None:
            return False
        allowzero = any(a.name == "allowzero" and a.i for a in node.attribute)
        resolved = _resolve_reshape(od, target, allowzero)
        blocks = _factorize(od, resolved) if resolved else None
        if blocks is None:
            return False  # the original shapes do not reshape either: not ours to judge
        fixed, pieces = {}, {}
        for ia, ta in blocks:
            dyn_in = [a for a in ia if a in dyn]
            if not dyn_in or any(target[p] == -1 or target[p] != target_p[p] for p in ta):
                continue  # static block, a -1 absorbs it, or the target is computed already
            if len(ta) == 1:
                p = ta[0]
                if len(ia) == 1 and ia[0] == p and not allowzero:
                    if target[p] != 0:
                        fixed[p] = 0  # Reshape's 0 copies the input's (dynamic) dim
                    continue
                static = int(np.prod([od[a] for a in ia if a not in dyn], dtype=np.int64))
                pieces[p] = ([(data, a) for a in dyn_in], static, 1)
                continue
            what = "splits" if len(ia) == 1 else "regroups"
            self.refuse(node, f"{what} dynamic axis {dyn_in[0]} of '{data}' into the fixed sizes "
                              f"{[target[p] for p in ta]}; a -1 there would keep it dynamic, but "
                              "which output dim owns the dynamic size is ambiguous")
        if not fixed and not pieces:
            return False
        self.rebuild(node, idx, 1, target, fixed, pieces, f"{node.name or 'reshape'}_shape")
        return True

    def _check_Expand(self, node, idx) -> bool:
        data, shape_name = node.input[0], node.input[1]
        dyn = self.dynamic_axes(data)
        if not dyn or shape_name in self.dep:
            return False
        shape = self.const_input(shape_name)
        od, _ = self.dims(data)
        if shape is None:
            return False
        shape = [int(s) for s in np.asarray(shape).reshape(-1)]
        new = list(shape)
        off = len(shape) - len(od)
        for a in dyn:
            p = a + off
            if p >= 0 and shape[p] != 1 and isinstance(od[a], int) and shape[p] == od[a]:
                new[p] = 1  # broadcasting 1 against the data keeps the data's (dynamic) size
        if new == shape:
            return False
        self.replace_input(node, 1, self.const(np.array(new, np.int64), f"{node.name or 'expand'}_shape"))
        return True

    def _check_Resize(self, node, idx) -> bool:
        if len(node.input) < 4 or not node.input[3]:
            return False
        data = node.input[0]
        dyn = self.dynamic_axes(data)
        sizes, sizes_p = self.vector(node.input[3])
        od, _ = self.dims(data)
        if not dyn or sizes is None or od is None:
            return False
        axes_attr = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
        axes = [a + len(od) if a < 0 else a for a in axes_attr] if axes_attr else list(range(len(sizes)))
        pieces = {}
        for p, a in enumerate(axes):
            if a not in dyn or not isinstance(od[a], int) or sizes[p] != sizes_p[p]:
                continue
            s, d = sizes[p], od[a]
            if s % d == 0:
                pieces[p] = ([(data, a)], s // d, 1)
            elif d % s == 0:
                pieces[p] = ([(data, a)], 1, d // s)
            else:
                self.refuse(node, f"resizes dynamic axis {a} of '{data}' from {d} to a fixed {s}, "
                                  "which is not an integer ratio; export with scale_factor instead")
        if not pieces:
            return False
        self.rebuild(node, idx, 3, sizes, {}, pieces, f"{node.name or 'resize'}_sizes")
        return True

    def _check_Slice(self, node, idx) -> bool:
        if len(node.input) < 3 or self.opset < 10:
            return False
        data = node.input[0]
        dyn = self.dynamic_axes(data)
        od, _ = self.dims(data)
        if not dyn or any(x in self.dep for x in node.input[1:] if x):
            return False
        vals = [self.const_input(x) if x else None for x in list(node.input[1:5]) + [""] * (4 - len(node.input[1:5]))]
        starts, ends, axes, steps = vals
        if starts is None or ends is None:
            return False
        starts, ends = np.asarray(starts).reshape(-1), np.asarray(ends).reshape(-1).copy()
        axes = np.arange(len(starts)) if axes is None else np.asarray(axes).reshape(-1)
        steps = np.ones(len(starts), np.int64) if steps is None else np.asarray(steps).reshape(-1)
        changed = False
        for i, a in enumerate(axes):
            a = int(a) + len(od) if a < 0 else int(a)
            if a in dyn and isinstance(od[a], int) and starts[i] == 0 and steps[i] == 1 and ends[i] == od[a]:
                ends[i] = _INT64_MAX  # "up to the end", not "up to the old size"
                changed = True
        if changed:
            self.replace_input(node, 2, self.const(ends.astype(np.int64), f"{node.name or 'slice'}_ends"))
        return changed

    def _check_Concat(self, node, idx) -> bool:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        return self._align(node, idx, concat_axis=axis)

    def _check_broadcast(self, node, idx) -> bool:
        return self._align(node, idx, concat_axis=None)

    def _align(self, node, idx, concat_axis) -> bool:
        """A dynamic axis meeting a fixed-size axis of another operand (right-aligned)."""
        ins = [x for x in node.input if x]
        info = {x: (self.dims(x)[0], self.dynamic_axes(x), self.static_axes(x)) for x in ins}
        ins = [x for x in ins if info[x][0] is not None]
        if len(ins) < 2:
            return False
        rank = max(len(info[x][0]) for x in ins)
        ax_c = None if concat_axis is None else (concat_axis + rank if concat_axis < 0 else concat_axis)
        for x in ins:
            od, dyn, _ = info[x]
            for a in dyn:
                pos = a + rank - len(od)
                if pos == ax_c:
                    continue
                for y in ins:
                    oy, _, static_y = info[y]
                    b = pos - (rank - len(oy))
                    if y == x or b < 0 or b not in static_y:
                        continue
                    size = oy[b]
                    if concat_axis is None and size == 1:
                        continue  # broadcasts
                    return self._broadcast_const(node, idx, y, b, x, a, size, concat=ax_c is not None)
        return False

    def _broadcast_const(self, node, idx, y, b, x, a, size, concat: bool) -> bool:
        val = self.const_input(y) if y not in self.dep else None
        if val is None:
            self.refuse(node, f"combines '{x}' (axis {a} dynamic) with '{y}', whose matching axis is fixed "
                              f"at {size} and computed from the data; that computation lost the dynamic size")
        val = np.asarray(val)
        first = np.take(val, [0], axis=b)
        if size != 1 and not np.array_equal(np.broadcast_to(first, val.shape), val):
            self.refuse(node, f"combines '{x}' (axis {a} dynamic) with the constant '{y}', which holds "
                              f"different values for each of its {size} entries along that axis (e.g. a YOLO grid "
                              "baked for one input size): keep that axis static, or re-export with dynamic axes")
        ks = [k for k, t in enumerate(node.input) if t == y]
        new = self.const(first, f"{y}_one")
        if concat:
            ones = [1] * val.ndim
            pieces = {b: ([(x, a)], 1, 1)}
            before = len(self.g.node)
            target = self.shape_vector(node, idx, ones, pieces, f"{y}_bshape")
            new = self.add_node(idx + len(self.g.node) - before, "Expand", [new, target], f"{y}_expanded")
        for k in ks:
            self.replace_input(node, k, new)
        return True

    def _check_Squeeze(self, node, idx) -> bool:
        return self._refuse_axes(node, "squeezes")

    def _check_Split(self, node, idx) -> bool:
        split = next((list(a.ints) for a in node.attribute if a.name == "split"), None)
        if split is None and len(node.input) > 1 and node.input[1]:
            split = self.const_input(node.input[1])
        if split is None:
            return False
        return self._refuse_axes(node, "splits with fixed sizes")

    def _check_Gather(self, node, idx) -> bool:
        if node.input[1] in self.dep:
            return False
        return self._refuse_axes(node, "picks fixed indices along")

    def _refuse_axes(self, node, verb: str) -> bool:
        data = node.input[0]
        dyn = self.dynamic_axes(data)
        od, _ = self.dims(data)
        if not dyn or od is None:
            return False
        if node.op_type == "Squeeze":
            axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
            if axes is None and len(node.input) > 1 and node.input[1]:
                axes = self.const_input(node.input[1])
            axes = [i for i, d in enumerate(od) if d == 1] if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]
        else:
            axes = [next((a.i for a in node.attribute if a.name == "axis"), 0)]
        for ax in axes:
            ax = ax + len(od) if ax < 0 else ax
            if ax in dyn:
                self.refuse(node, f"{verb} dynamic axis {ax} of '{data}', which only works at its "
                                  f"original size {od[ax]}; make another axis dynamic or change the export")
        return False


def _resolve_reshape(od: list[int], target: list[int], allowzero: bool) -> list[int] | None:
    out = list(target)
    for p, t in enumerate(target):
        if t == 0 and not allowzero:
            if p >= len(od):
                return None
            out[p] = od[p]
    if out.count(-1) == 1:
        known = int(np.prod([t for t in out if t != -1], dtype=np.int64))
        total = int(np.prod(od, dtype=np.int64))
        if known == 0 or total % known:
            return None
        out[out.index(-1)] = total // known
    if any(t < 0 for t in out):
        return None
    return out


def _factorize(a: list[int], b: list[int]) -> list[tuple[list[int], list[int]]] | None:
    """Split two shapes with equal element counts into blocks of consecutive axes with equal
    products (row-major reshape keeps these blocks together). None if they do not match."""
    if 0 in a or 0 in b or int(np.prod(a, dtype=np.int64)) != int(np.prod(b, dtype=np.int64)):
        return None
    i = j = 0
    blocks = []
    while i < len(a) or j < len(b):
        ia, ta, pa, pb = [], [], 1, 1
        if i < len(a):
            ia.append(i)
            pa *= a[i]
            i += 1
        if j < len(b):
            ta.append(j)
            pb *= b[j]
            j += 1
        while pa != pb:
            if pa < pb and i < len(a):
                ia.append(i)
                pa *= a[i]
                i += 1
            elif pb < pa and j < len(b):
                ta.append(j)
                pb *= b[j]
                j += 1
            else:
                return None
        blocks.append((ia, ta))
    return blocks
