"""fp16_outputs: a float16 conversion against the float32 model, with float16 rounding as the yardstick."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import TrtDeployError
from . import Probe, _sessions, _run_original, _cast_feeds, _constant_outputs, _report

if TYPE_CHECKING:
    import numpy as np  # noqa: F401
    import onnx  # noqa: F401


FP16_SPREAD_FACTOR = 5.0    # measured: the float16 model's error is 0.1-2.4x the yardstick's (see fp16_outputs)
FP16_FLOOR = 1e-4           # of the output's range: errors below it per element pass
FP16_TINY = 2.0 ** -24      # float16's smallest subnormal: an absolute error below it per element is not float16's
FP16_SLICE = 256            # elements a slice needs for its mean error to be compared (smaller ones are noise:
#                             the per-anchor rows [64] of an RT-DETR encoder reach 5.7x on 1 of 3150 by chance)


def held_in_fp16(fp16: onnx.ModelProto) -> set[str]:
    """The tensors whose values the float16 model holds in float16: those of float16 type there, those
    it reads through a Cast to float16 (a float32 tensor cast for a float16 reader), and float32 outputs
    cast up from float16. What the fp16 pass kept float32 (--keep-op/--keep-node, nodes reading a
    constant float16 cannot hold, plugin and unknown ops, what follows them) is not among them."""
    from onnx import TensorProto as TP

    from .._graph import producers
    from .._shapes import propagate

    types = {k: v[0] for k, v in propagate(fp16).items()}
    held = {t for t, e in types.items() if e == TP.FLOAT16}
    for n in fp16.graph.node:
        to = next((a.i for a in n.attribute if a.name == "to"), None)
        if n.op_type == "Cast" and to == TP.FLOAT16 and n.input[0]:
            held.add(n.input[0])
    prod = producers(fp16.graph)
    for o in fp16.graph.output:
        p = prod.get(o.name)
        if p is not None and p.op_type == "Cast" and p.input[0] in held:
            held.add(o.name)
    return held


def round_to_fp16(model: onnx.ModelProto, fp16: onnx.ModelProto) -> onnx.ModelProto:
    """The float32 model computing as the float16 model ``fp16`` stores: every float32 tensor that
    ``fp16`` holds in float16 (held_in_fp16) rounded to float16 -- initializers in place, graph inputs
    and node outputs through a Cast pair --, every other one left float32 as the fp16 pass left it (a
    ReduceSum kept float32 may exceed float16's range: rounding it there made the yardstick inf). The
    float16 model's error against the float32 model is measured against this one's."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    from .._graph import NameGen, copy_model, data_inputs, rename_in_graph, subgraphs
    from .._shapes import propagate
    from ..surgery.fp16 import _unrepresentable

    held = held_in_fp16(fp16)
    m = copy_model(model)
    g = m.graph
    for t in g.initializer:
        if t.data_type != onnx.TensorProto.FLOAT or t.data_location == onnx.TensorProto.EXTERNAL or t.name not in held:
            continue
        arr = numpy_helper.to_array(t)
        if not _unrepresentable(arr):
            t.CopyFrom(numpy_helper.from_array(arr.astype(np.float16).astype(np.float32), t.name))
    types = propagate(m)
    fresh = NameGen(m)

    def round_pair(src: str, dst: str) -> list[onnx.NodeProto]:
        half = fresh(f"{dst}_f16")
        return [helper.make_node("Cast", [src], [half], name=fresh(f"{dst}_round"), to=onnx.TensorProto.FLOAT16),
                helper.make_node("Cast", [half], [dst], name=fresh(f"{dst}_back"), to=onnx.TensorProto.FLOAT)]

    nodes = []
    renamed = {}
    for vi in data_inputs(g):
        if vi.name in held and vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            renamed[vi.name] = fresh(f"{vi.name}_rounded")
            nodes += round_pair(vi.name, renamed[vi.name])
    for n in g.node:
        if renamed:
            n.input[:] = [renamed.get(x, x) for x in n.input]
            for body in subgraphs(n):  # what a body reads from the main graph
                rename_in_graph(body, renamed)
        nodes.append(n)
        for k, o in enumerate(n.output):
            if not o or o not in held or types.get(o, (0, None))[0] != onnx.TensorProto.FLOAT:
                continue
            raw = fresh(f"{o}_f32")
            n.output[k] = raw
            nodes += round_pair(raw, o)
    g.ClearField("node")
    g.node.extend(nodes)
    g.ClearField("value_info")
    return m


def fp16_outputs(original: onnx.ModelProto, new: onnx.ModelProto, probe: Probe) -> dict:
    """The float16 model against the float32 one, with what float16 itself explains as the yardstick:
    the float32 model run with its weights, inputs and activations rounded to float16 wherever the
    float16 model holds them in float16 (round_to_fp16), on the same inputs. For each float output, the
    mean abs error of the float16 model may be at most FP16_SPREAD_FACTOR times the yardstick's, over the whole tensor and over every
    slice along every axis (a dead channel or class shows in its own slice, even when box coordinates
    in pixels dominate the tensor), with a floor of FP16_FLOOR of the output's range per element.
    Non-float outputs (argmax, indices) may have as many mismatches as the yardstick's, times the same
    factor, or 1%. Measured: on PP-OCRv4 det (a text image)/rec/cls, ddddocr and the test fixtures the
    ratio is 0.1-2.4; a collapsed output (PP-OCRv4 det all zeros, a BatchNorm overflowing) is 100-600.

    Outputs that follow a selection (TopK, NonMaxSuppression, a plugin op such as YoloLayer_TRT) are
    compared at what the selection reads instead (compared_tensors): float16 moves scores, so the rows
    a TopK keeps and their order may legitimately change, and onnxruntime cannot run a plugin."""
    import numpy as np

    from ..ort import run, session

    compared, followers = compared_tensors(original)
    notes = []
    if followers:
        original, new = _with_outputs(original, compared), _with_outputs(new, compared)
        notes += [f"{outs} follow {', '.join(labels)}, whose choice and order of rows float16 may change: "
                  "compared at the float tensors flowing into them (what is computed after the selection is not compared "
                  "with the float32 model)" for outs, labels in followers.items()]
    sess_o, sess_n = _sessions(original, new, probe)
    feeds = probe.feeds(0)
    want = _run_original(sess_o, feeds, probe, 0)
    got = run(sess_n, _cast_feeds(new, feeds), list(want))
    spread = run(session(round_to_fp16(original, new)), feeds)
    notes += [n for n in [_constant_outputs(want)] if n]
    checks = []
    for key, ref in want.items():
        out, yard = got[key], spread[key]
        name = compared.get(key, key)
        where = probe.where(0)
        if out.shape != ref.shape:
            raise TrtDeployError(f"float16 {name} has shape {list(out.shape)}, the float32 model's is "
                                 f"{list(ref.shape)} ({where})")
        if ref.dtype.kind not in "fc":
            bad, base = int((out != ref).sum()), int((yard != ref).sum())
            allowed = max(FP16_SPREAD_FACTOR * base, 0.01 * ref.size)
            if bad > allowed:
                raise TrtDeployError(f"float16 {name} differs from the float32 model in {bad} of {ref.size} "
                                     f"elements (rounding weights and activations to float16 changes {base}) {where}")
            if bad or name.startswith("output"):  # equal index/shape tensors before a selection: not worth a line
                checks.append({"check": f"float16 {name}: {bad} of {ref.size} differ (rounding alone: {base})",
                               "max_abs_diff": float(bad)})
            continue
        r64 = ref.astype(np.float64)
        finite = np.isfinite(r64)
        o64 = out.astype(np.float64)
        if (~np.isfinite(o64) & finite).any():
            raise TrtDeployError(f"float16 {name} has inf/NaN where the float32 model has finite values "
                                 f"(an overflow: keep that part in float32 with --keep-node/--keep-op) {where}")
        if (~np.isfinite(yard) & finite).any():  # no yardstick to judge by: refuse rather than pass on inf
            raise TrtDeployError(_overflow_message(original, new, feeds, name, where))
        ratio, err, yard_err, slice_ = _error_ratio(o64, yard.astype(np.float64), r64)
        scale = float(np.abs(r64[finite]).max(initial=0.0)) or 1.0
        if yard_err > 0.1 * float(np.abs(r64[finite]).mean()) and yard_err > FP16_FLOOR * scale:
            notes.append(f"on the check inputs, float16 rounding alone moves {name} by {yard_err:.3g} on "
                         "average, over a tenth of its mean magnitude: the check can tell little there; pass real "
                         "inputs with --inputs FILE.npz")
        if not ratio <= FP16_SPREAD_FACTOR:
            raise TrtDeployError(f"float16 {name} is off by {ratio:.3g}x what rounding weights and activations "
                                 f"to float16 explains (mean abs error {err:.3g} vs {yard_err:.3g}{slice_}; allowed "
                                 f"{FP16_SPREAD_FACTOR:g}x); keep the sensitive nodes in float32 with "
                                 f"--keep-node/--keep-op {where}")
        with np.errstate(invalid="ignore", over="ignore"):
            range_err = float(np.abs(o64 - r64)[finite].max(initial=0.0)) / scale
        checks.append({"check": f"float16 {name}: {ratio:.2f}x the error of float16 rounding alone (allowed "
                                f"{FP16_SPREAD_FACTOR:g}x; max abs error {range_err:.3g} of the range)",
                       "max_abs_diff": ratio, "output": key, "range_error": range_err})
    return _report(checks, notes, probe)


def _overflow_message(original, new, feeds, name: str, where: str) -> str:
    """Why the yardstick is not finite: the tensors over float16's range that the float16 model holds in
    float16 (an int32 accumulator cast to float, say), with the --keep-node flags that keep their readers
    float32; onnxruntime's CPU run may not show the overflow (it computes many float16 nodes in float32 and
    drops the Casts between them), a float16 engine would."""
    import numpy as np
    import onnx

    from .._graph import consumers, node_label
    from .._shapes import propagate
    from ..ort import run, session

    held = held_in_fp16(new)
    types = propagate(original)
    order = [x for n in original.graph.node for x in n.output if x in held]
    floats = [t for t in order if types.get(t, (0, None))[0] == onnx.TensorProto.FLOAT]
    over = []
    if floats:
        try:
            values = run(session(_with_outputs(original, floats)), feeds)
        except TrtDeployError:
            values = {}
        over = [(t, float(np.abs(v[np.isfinite(v)]).max(initial=0.0))) for t, v in values.items()
                if float(np.abs(v[np.isfinite(v)]).max(initial=0.0)) > 65504]
    base = (f"cannot judge float16 {name}: the float32 model with what the float16 model holds in float16 rounded to "
            f"it (the yardstick) gives inf/NaN where the float32 model has finite values {where}")
    if not over:
        return base + "; pass other inputs with --inputs FILE.npz, or skip the check with --no-verify"
    cons = consumers(original.graph)
    readers = list(dict.fromkeys(n.name for t, _ in over for n, _ in cons.get(t, []) if n.name))
    (first, top), more = over[0], len(over) - 1
    others = f" and {more} more tensor(s)" if more else ""
    label = node_label(next(n for n, _ in cons[first])) if cons.get(first) else "its readers"
    flags = " ".join(f"--keep-node {r}" for r in readers[:8]) + (" ..." if len(readers) > 8 else "")
    return (f"float16 cannot hold '{first}' ({top:.3g} on the check inputs, read by {label}){others}, which the "
            f"float16 model holds in float16: a float16 engine overflows there (onnxruntime on the CPU may not show "
            f"it: it computes many float16 nodes in float32) {where}; keep the readers in float32: {flags}")


def _error_ratio(got, yard, ref) -> tuple[float, float, float, str]:
    """max over the whole tensor and over each slice (one index along one axis, of FP16_SLICE+ elements) of
    mean|got - ref| / (mean|yard - ref| + FP16_FLOOR * max|ref| + FP16_TINY), over ref's finite elements,
    the floor taken over the same elements (a class row of probabilities is judged on its own scale, not on that
    of box coordinates in pixels); with the two means and where ('' or ' in axis A index I') of the worst."""
    import numpy as np

    finite = np.isfinite(ref)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf where the model itself has inf
        d = np.where(finite, np.abs(got - ref), 0.0)
        y = np.where(finite, np.abs(yard - ref), 0.0)
    a = np.abs(np.where(finite, ref, 0.0))
    floor = FP16_FLOOR * a.max(initial=0.0) + FP16_TINY
    worst = (d.mean() / (y.mean() + floor), float(d.mean()), float(y.mean()), "")
    for axis in range(d.ndim):
        if d.size // max(d.shape[axis], 1) < FP16_SLICE or d.shape[axis] < 2:
            continue
        rest = tuple(x for x in range(d.ndim) if x != axis)
        dm, ym = d.mean(rest), y.mean(rest)
        ratio = dm / (ym + FP16_FLOOR * a.max(rest) + FP16_TINY)
        k = int(np.argmax(ratio))
        if ratio[k] > worst[0]:
            worst = (ratio[k], float(dm[k]), float(ym[k]), f" in axis {axis} index {k}")
    return float(worst[0]), worst[1], worst[2], worst[3]


def verify_fp16(fp32: onnx.ModelProto, fp16: onnx.ModelProto, shapes=None, seed: int = 0, feeds=None) -> dict:
    """fp16_outputs on two models (raises when it fails); returns {output: max abs error / the output's
    range} for float outputs."""
    report = fp16_outputs(fp32, fp16, Probe(fp32, shapes, feeds, seed))
    return {c["output"]: c["range_error"] for c in report["checks"] if "output" in c}


SELECTIONS = {"TopK", "NonMaxSuppression"}  # ONNX ops whose outputs are rows chosen (and ordered) by value


def compared_tensors(model: onnx.ModelProto) -> tuple[dict[str, str], dict[str, list[str]]]:
    """What the float16 check compares: ({tensor: how messages name it}, {outputs: the selections
    they follow}). Graph outputs, except those downstream of a selection (SELECTIONS, or an op of another
    domain, a plugin): for those, every tensor that flows into the selected region from outside it
    (what a TopK ranks, the boxes a Gather picks rows of; constants aside)."""
    from .._graph import constant_value, node_label, producers

    g = model.graph
    prod = producers(g)
    downstream: set[str] = set()
    region: list[onnx.NodeProto] = []
    selections: dict[str, set[str]] = {}  # label -> tensors downstream of it
    for n in g.node:
        reads = [label for label, ts in selections.items() if any(x in ts for x in n.input)]
        if n.op_type in SELECTIONS or n.domain not in ("", "ai.onnx"):
            reads.append(node_label(n))
            selections.setdefault(reads[-1], set())
        if reads:
            region.append(n)
            outs = {o for o in n.output if o}
            downstream |= outs
            for label in reads:
                selections[label] |= outs
    compared = {o.name: f"output '{o.name}'" for o in g.output if o.name not in downstream}
    inputs = {i.name for i in g.input}  # fed alike to both models: nothing to compare
    for n in region:
        for x in n.input:
            if x and x not in downstream and x not in compared and x not in inputs and constant_value(x, g, prod) is None:
                if n.op_type in SELECTIONS and n.domain in ("", "ai.onnx"):
                    how = f"what {node_label(n)} selects from"
                elif n.domain not in ("", "ai.onnx"):
                    how = f"what {node_label(n)} reads"
                else:
                    how = f"read by {node_label(n)} after a selection"
                compared[x] = f"tensor '{x}' ({how})"
    followers: dict[str, list[str]] = {}  # outputs -> the selections they follow
    for label, ts in selections.items():
        outs = ", ".join(repr(o.name) for o in g.output if o.name in ts)
        if outs:
            followers.setdefault(outs, []).append(label)
    return compared, followers


def _with_outputs(model: onnx.ModelProto, names) -> onnx.ModelProto:
    """The model computing only ``names`` (as graph outputs; what only other outputs needed is pruned)."""
    import onnx

    from .._graph import copy_model, prune

    m = copy_model(model)
    declared = {o.name: o for o in m.graph.output}
    outputs = [declared.get(n) or onnx.ValueInfoProto(name=n) for n in names]
    m.graph.ClearField("output")
    m.graph.output.extend(outputs)
    prune(m.graph)
    return m
