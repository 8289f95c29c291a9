"""The rewriting half of make_dynamic: a single pass over the main graph that propagates shapes at
the original and the probe sizes and rewrites each node whose constant shape operand contradicts a
dynamic axis (see dims.py for the idea)."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .._graph import NameGen, constant_value, data_inputs, fold_constant, node_label, producers
from .._shapes import Propagator
from ..errors import TrtDeployError

_INT64_MAX = np.iinfo(np.int64).max
_BROADCAST = {
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "And", "Or", "Xor", "Equal", "Greater", "Less",
    "GreaterOrEqual", "LessOrEqual", "Where", "Max", "Min", "Sum", "Mean", "PRelu", "BitShift",
    "BitwiseAnd", "BitwiseOr", "BitwiseXor",
}


class CannotRewrite(TrtDeployError):
    """A node whose baked shape cannot be rewritten soundly (named in the message)."""


class Rewriter:
    """Walks the main graph in order and rewrites baked shapes, re-inferring after each change."""

    def __init__(self, m: onnx.ModelProto, orig: dict, probe: dict, keep_fixed: set[str] | frozenset = frozenset()):
        self.m, self.g = m, m.graph
        # nodes whose fixed size may be meant (a Resize to a fixed size, a crop to a fixed length):
        # keep_fixed leaves them as they are; the others are rewritten and listed in guesses
        self.keep_fixed = set(keep_fixed)
        self.guesses: list[str] = []
        self.orig, self.probe = orig, probe
        self.fresh = NameGen(m)
        self.shape_of: dict[str, str] = {}
        self.orphans: set[str] = set()
        self.symbols = {d for dims in orig.values() for d in dims if isinstance(d, str)}
        # (original, probe) sizes of the input dims made dynamic: an axis with such a pair is plain
        self.sym_pairs = {(o, p) for name in orig for o, p in zip(orig[name], probe[name])
                          if isinstance(o, int) and isinstance(p, int) and o != p}
        self.layout: dict[tuple[str, int], tuple[int, int]] = {}
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
        if self.layout and node.op_type != "Reshape":
            self._carry_layout(node)

    def _carry_layout(self, node: onnx.NodeProto) -> None:
        """Axes that pass through a node unchanged keep their layout (Transpose permutes them)."""
        ins = [x for x in node.input if x]
        if node.op_type == "Transpose" and ins:
            rank = len(self.dims(ins[0])[0] or [])
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), list(range(rank))[::-1])
            for i, src in enumerate(perm):
                if (ins[0], src) in self.layout:
                    self.layout[(node.output[0], i)] = self.layout[(ins[0], src)]
            return
        if node.op_type in ("Shape", "Size", "Flatten", "Squeeze", "Unsqueeze", "Gather", "Slice", "Split",
                            "Expand", "Tile", "Resize", "Pad"):
            return
        for out in node.output:
            od, pd = self.dims(out)
            if od is None:
                continue
            for i, (o, p) in enumerate(zip(od, pd)):
                for x in ins:
                    xo, xp = self.dims(x)
                    if xo is not None and len(xo) == len(od) and (xo[i], xp[i]) == (o, p) and (x, i) in self.layout:
                        self.layout[(out, i)] = self.layout[(x, i)]
                        break

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

    def kept(self, node: onnx.NodeProto) -> bool:
        """--keep-fixed: the node's sizes along non-batch axes are meant to be fixed."""
        return node.name in self.keep_fixed or bool(node.output and node.output[0] in self.keep_fixed)

    def is_batch_axis(self, o, p) -> bool:
        """An axis that follows the batch alone (the probe doubles the batch, triples other dims)."""
        return isinstance(o, int) and isinstance(p, int) and p == 2 * o

    def guess(self, node: onnx.NodeProto, what: str) -> None:
        self.guesses.append(f"{node_label(node)}: {what}; if the size was meant to be fixed, add "
                            f"--keep-fixed {node.name or node.output[0]}")

    def refuse(self, node: onnx.NodeProto, why: str) -> None:
        raise CannotRewrite(f"cannot make the model dynamic: node {node_label(node)} {why}")

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

    def axis_layout(self, tensor: str, axis: int):
        """(outer, inner): the axis holds outer * <dynamic size> * inner elements in row-major order,
        outer/inner static. Plain input-like axes are (1, 1); None when unknown."""
        if (tensor, axis) in self.layout:
            return self.layout[(tensor, axis)]
        o, p = self.dims(tensor)
        if o is not None and isinstance(o[axis], int) and (o[axis], p[axis]) in self.sym_pairs:
            return 1, 1
        return None

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
        for k in range(1, len(blocks)):  # a size-1 dynamic axis merged into a later block could as well
            ia = blocks[k][0]             # belong to the block before it: which one is not knowable
            if len(ia) > 1 and any(a in dyn and od[a] == 1 for a in ia):
                self.refuse(node, f"merges a dynamic axis of size 1 of '{data}' with its neighbours; at size 1 "
                                  "it is ambiguous which neighbour it belongs to (export with a batch of 2, or "
                                  "with dynamic axes)")
        out = node.output[0]
        fixed, pieces = {}, {}
        for ia, ta in blocks:
            dyn_in = [a for a in ia if a in dyn]
            if not dyn_in:
                continue
            a = dyn_in[0]
            lay = self.axis_layout(data, a) if len(dyn_in) == 1 else None
            if lay is not None:  # the block's flat layout: static dims around the dynamic factor
                lay = (lay[0] * int(np.prod([od[x] for x in ia if x < a], dtype=np.int64)),
                       lay[1] * int(np.prod([od[x] for x in ia if x > a], dtype=np.int64)))
            settled = any(target[p] == -1 or target[p] != target_p[p] for p in ta)
            if len(ta) == 1:
                p = ta[0]
                if lay is not None:
                    self.layout[(out, p)] = lay
                if settled:
                    continue  # a -1 absorbs it, or the target is computed already
                if len(ia) == 1 and ia[0] == p and not allowzero:
                    if target[p] != 0:
                        fixed[p] = 0  # Reshape's 0 copies the input's (dynamic) dim
                    continue
                static = int(np.prod([od[x] for x in ia if x not in dyn], dtype=np.int64))
                pieces[p] = ([(data, x) for x in dyn_in], static, 1)
                continue
            # several target dims: the one that owns the dynamic factor follows from the layout
            # (e.g. [B, 32] -> [B*4, 8] folds the batch into heads; [16*B] -> [16, B] unfolds it)
            rule = _place(ta, resolved, lay, int(np.prod([od[x] for x in ia], dtype=np.int64))) if lay else None
            if rule is None:
                if settled:
                    continue
                what = "splits" if len(ia) == 1 else "regroups"
                self.refuse(node, f"{what} dynamic axis {a} of '{data}' into the fixed sizes "
                                  f"{[target[p] for p in ta]}; a -1 there would keep it dynamic, but "
                                  "which output dim owns the dynamic size is ambiguous")
            p, (o_p, i_p) = rule
            self.layout[(out, p)] = (o_p, i_p)
            if not settled:  # target[p] = o_p * S * i_p, with S = Shape(data)[a] / (so * si)
                so, si = self.axis_layout(data, a)
                g = math.gcd(o_p * i_p, so * si)
                pieces[p] = ([(data, a)], o_p * i_p // g, so * si // g)
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
        _, pd = self.dims(data)
        guessed = []
        for p, a in enumerate(axes):
            if a not in dyn or not isinstance(od[a], int) or sizes[p] != sizes_p[p]:
                continue
            if not self.is_batch_axis(od[a], pd[a]):
                if self.kept(node):
                    continue
                guessed.append(a)
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
        if guessed:
            self.guess(node, f"its sizes {sizes} were fixed for axes {guessed} of '{data}', now they follow the "
                             "input (as interpolate(scale_factor=...)); a static export cannot tell that from "
                             "interpolate(size=...)")
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
        _, pd = self.dims(data)
        guessed = []
        for i, a in enumerate(axes):
            a = int(a) + len(od) if a < 0 else int(a)
            if a in dyn and isinstance(od[a], int) and starts[i] == 0 and steps[i] == 1 and ends[i] == od[a]:
                if not self.is_batch_axis(od[a], pd[a]):
                    if self.kept(node):
                        continue
                    guessed.append(a)
                ends[i] = _INT64_MAX  # "up to the end", not "up to the old size"
                changed = True
        if guessed:
            self.guess(node, f"it took the first {[od[a] for a in guessed]} of axes {guessed} of '{data}' (all of "
                             "them at the original size), now it takes all (a static export cannot tell x[:n] "
                             "with a fixed n from x[:])")
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
        """A fixed index along the batch axis (x[0]) drops the other samples; along another dynamic
        axis (a class token x[:, 0], the last step x[:, -1]) it is what the model means."""
        if node.input[1] in self.dep:
            return False
        data = node.input[0]
        od, pd = self.dims(data)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if od is None or not od:
            return False
        axis = axis + len(od) if axis < 0 else axis
        if isinstance(od[axis], int) and isinstance(pd[axis], int) and pd[axis] == 2 * od[axis]:
            return self._refuse_axes(node, "picks fixed indices along")
        return False

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


def _place(ta: list[int], resolved: list[int], lay: tuple[int, int], flat: int):
    """Which target dim of a block owns the dynamic factor, given the block's layout (outer, inner)
    around it: position p with (static dims before p) * o_p = outer and i_p * (after p) = inner.
    Returns (p, (o_p, i_p)); when several fit (sizes of 1), a dim of its own (o_p = i_p = 1) wins;
    None when that still leaves a choice or nothing fits."""
    outer, inner = lay
    dyn = flat // (outer * inner)
    if dyn == 1:
        return None  # a dynamic factor of size 1 fits anywhere: ambiguous
    fits = []
    for k, p in enumerate(ta):
        before = int(np.prod([resolved[q] for q in ta[:k]], dtype=np.int64))
        after = int(np.prod([resolved[q] for q in ta[k + 1:]], dtype=np.int64))
        if outer % before or inner % after:
            continue
        o_p, i_p = outer // before, inner // after
        if resolved[p] == o_p * dyn * i_p:
            fits.append((p, (o_p, i_p)))
    if len(fits) > 1:
        fits = [f for f in fits if f[1] == (1, 1)]
    return fits[0] if len(fits) == 1 else None


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
