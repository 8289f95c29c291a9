"""fp16: constants float16 cannot hold keep their node in float32 (issue 8, case 1: PP-OCRv4 det's
BatchNormalization variance up to 9.8e7 became inf and the output collapsed); --keep-op typos."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import fixture_path, load_fixture, ort_run, run_cli
from onnx import TensorProto as TP

from trtdeploy import TrtDeployError
from trtdeploy.surgery.fp16 import to_fp16


def test_out_of_range_constant_keeps_its_node_in_float32():
    m = load_fixture("bn_wide_range")
    h = to_fp16(m)
    x = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    (want,), (got,) = ort_run(m, {"x": x}), ort_run(h, {"x": x})
    assert np.isfinite(got).all() and np.ptp(got) > 0.1  # not collapsed
    np.testing.assert_allclose(got, want, atol=5e-3 * np.abs(want).max())
    inits = {t.name: t for t in h.graph.initializer}
    assert inits["bn.var"].data_type == TP.FLOAT and inits["conv1.w"].data_type == TP.FLOAT16
    producers = {o: n for n in h.graph.node for o in n.output}
    bn = next(n for n in h.graph.node if n.op_type == "BatchNormalization")
    assert producers[bn.input[0]].op_type == "Cast"  # float16 conv output cast up to the float32 BN


def test_what_was_kept_is_said():
    kept: list[str] = []
    to_fp16(load_fixture("bn_wide_range"), kept=kept)
    assert kept == ["'bn' (BatchNormalization): its constant 'bn.var' has values up to 9.8e+07, over float16's 65504"]


def test_cli_fp16_says_what_it_kept_and_checks(tmp_path):
    proc = run_cli("fp16", fixture_path("bn_wide_range"), "-o", tmp_path / "h.onnx")
    assert proc.returncode == 0, proc.stderr
    assert "kept in float32: 'bn' (BatchNormalization)" in proc.stderr
    assert "checked: float16 output 'y': " in proc.stderr and "x the error of float16 rounding alone" in proc.stderr


def test_keep_op_unknown_is_an_error(tmp_path):
    proc = run_cli("fp16", fixture_path("retina_head"), "-o", tmp_path / "h.onnx", "--keep-op", "Sigmoidd")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "--keep-op Sigmoidd: not an ONNX op" in proc.stderr and "did you mean 'Sigmoid'" in proc.stderr
    assert not (tmp_path / "h.onnx").exists()
    from trtdeploy.surgery.fp16 import check_keep_ops

    m = load_fixture("retina_head")
    assert check_keep_ops(m, ["Softmax"]) == [] and check_keep_ops(m, ["Gelu"]) == ["--keep-op Gelu: the model has no Gelu node"]
    with pytest.raises(TrtDeployError, match="not an ONNX op"):
        check_keep_ops(m, ["MyPlugin"])


def test_unrepresentable_values():
    from trtdeploy.surgery.fp16 import _unrepresentable

    assert _unrepresentable(np.array([1.0, 7e4], np.float32)).startswith("values up to 7e+04")
    assert "rounds to 0" in _unrepresentable(np.array([1e-12], np.float32))  # an epsilon
    assert _unrepresentable(np.array([0.5, 1e-12, 0.0], np.float32)) is None  # one tiny weight among others
    assert _unrepresentable(np.array([65504.0, -3.0], np.float32)) is None


def test_fp16_value_float_constant_does_not_crash():
    """A Constant with value_float (not a tensor) read as float16 data is left float32 behind a Cast."""
    from onnx import helper

    nodes = [helper.make_node("Constant", [], ["c"], name="c", value_float=2.0),
             helper.make_node("Mul", ["x", "c"], ["y"], name="mul")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    h = to_fp16(m)
    onnx.checker.check_model(h, full_check=True)
    x = np.array([1.5, -2.0], np.float32)
    np.testing.assert_allclose(ort_run(h, {"x": x})[0], [3.0, -4.0])


def test_nodes_reading_unknown_types_stay_as_they_are():
    """After an op shape inference does not know (an onnxruntime contrib op, as in ddddocr's quantized
    common_old.onnx) the types are unknown: converting a reader's constant operand to float16 made the
    model fail to type-check."""
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("Gelu", ["x"], ["a"], name="gelu", domain="com.microsoft"),
             helper.make_node("Mul", ["a", "scale"], ["b"], name="mul"),
             helper.make_node("Relu", ["b"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [2, 3])],
                          initializer=[numpy_helper.from_array(np.full(3, 0.5, np.float32), "scale")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    kept: list[str] = []
    h = to_fp16(m, kept=kept)
    assert kept and "unknown type" in kept[0] and "'mul' (Mul)" in kept[0]
    x = np.array([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], np.float32)
    np.testing.assert_allclose(ort_run(h, {"x": x})[0], ort_run(m, {"x": x})[0], rtol=1e-6)


def test_error_ratio_slices_catch_a_dead_class_and_ignore_small_slices():
    """A class row lost by float16 shows in its own slice even when box coordinates in pixels dominate the
    tensor; the mean over a slice of a few dozen elements is noise and is not judged on its own."""
    from trtdeploy.verify.fp16 import FP16_SPREAD_FACTOR, _error_ratio

    rng = np.random.default_rng(0)
    ref = np.concatenate([rng.uniform(0, 640, (1, 4, 8400)), rng.uniform(0, 1, (1, 80, 8400))], 1)
    noise = lambda: ref * (1 + rng.normal(0, 5e-4, ref.shape))  # noqa: E731 - float16-like relative error
    yard, got = noise(), noise()
    assert _error_ratio(got, yard, ref)[0] < 2
    dead = got.copy()
    dead[0, 4 + 17] = 0.0  # class 17 collapsed
    ratio, _, _, where = _error_ratio(dead, yard, ref)
    assert ratio > 10 * FP16_SPREAD_FACTOR and where == " in axis 1 index 21"
    small = rng.normal(0, 1, (3150, 64))  # 3150 rows of 64: some row's mean error is 3-6x by chance
    yard_s = small + rng.normal(0, 1e-3, small.shape)
    got_s = small + rng.normal(0, 1.6e-3, small.shape)
    assert _error_ratio(got_s, yard_s, small)[0] < FP16_SPREAD_FACTOR


def test_error_ratio_judges_no_error_below_float16s_smallest_subnormal():
    """PP-OCRv4 det on a plain page: probabilities of ~1e-6, where a slice the yardstick rounds without
    error saw 1e-10 from the float16 model and was refused at '9.31e+19x'. Below 2**-24 per element
    there is no float16 error to judge; a collapsed output of that scale still is one."""
    from trtdeploy.verify.fp16 import FP16_SPREAD_FACTOR, _error_ratio

    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 3e-6, (1, 1, 320, 320))
    ref[..., 60, :] = 1e-15  # a row of sigmoid(-35): its own scale gave a floor of 1e-19
    yard = ref.copy()  # rounding activations to float16 changed nothing here
    got = ref + np.abs(rng.normal(0, 1e-10, ref.shape))
    assert _error_ratio(got, yard, ref)[0] < 1
    big = ref * 1e5  # the same model's output at a scale float16 resolves: a collapse is caught
    assert _error_ratio(np.zeros_like(big), big * (1 + rng.normal(0, 5e-4, big.shape)), big)[0] \
        > 10 * FP16_SPREAD_FACTOR


def test_fp16_of_detectors_compares_what_their_selections_read(tmp_path):
    """TopK/NMS rows reorder under float16 and onnxruntime cannot run a plugin: the check compares the
    tensors flowing into those (and, for a `yolo patch` model, its post-processing against the
    reference on the float16 head); a collapsed class branch is still caught there."""
    from onnx import numpy_helper

    from trtdeploy.verify import Probe
    from trtdeploy.verify.fp16 import compared_tensors
    from trtdeploy.yolo.families import detect
    from trtdeploy.yolo.postprocess import patch_detections
    from trtdeploy.yolo.verify import fp16_detections

    v8 = tmp_path / "v8.onnx"
    assert run_cli("yolo", "patch", fixture_path("yolov8n_640"), "-o", v8).returncode == 0
    proc = run_cli("fp16", v8, "-o", tmp_path / "v8h.onnx")
    assert proc.returncode == 0, proc.stderr
    assert "follow 'det_best_class_TopK' (TopK)" in proc.stderr and "checked: float16 tensor 'det_cls'" in proc.stderr
    assert "checked: float16 post-processing, batch 3" in proc.stderr
    v5 = tmp_path / "v5.onnx"
    assert run_cli("yolo", "patch", fixture_path("yolov5_p5_op13"), "-o", v5, "--nms").returncode == 0
    proc = run_cli("fp16", v5, "-o", tmp_path / "v5h.onnx")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("(what 'YoloLayer_TRT' (YoloLayer_TRT) reads)") == 3
    assert "only onnx.checker ran" not in proc.stderr
    proc = run_cli("fp16", fixture_path("yolo26n_end2end"), "-o", tmp_path / "e2e.onnx")
    assert proc.returncode == 0 and "'output0' follow '/model.23/TopK' (TopK)" in proc.stderr, proc.stderr

    model = load_fixture("yolov8n_640")
    patched, _ = patch_detections(model, detect(model))
    compared, followers = compared_tensors(patched)
    assert {"det_cls", "det_box_cxcywh"} <= set(compared) and not set(compared) & {o.name for o in patched.graph.output}
    half = to_fp16(patched)
    for t in half.graph.initializer:
        if t.name.startswith("model.22.cv3."):  # the class branch outputs nothing
            t.CopyFrom(numpy_helper.from_array(np.zeros(tuple(t.dims), numpy_helper.to_array(t).dtype), t.name))
    with pytest.raises(TrtDeployError, match=r"float16 tensor 'det_cls' .* is off by"):
        fp16_detections(patched, half, Probe(patched))


def _reduce_model(w_scale: float = 1.0) -> onnx.ModelProto:
    """y = (ReduceSumSquare(x * 1000) / 1e6) * w: the sum of squares (up to 8.5e7) is over float16's range,
    the fp16 pass keeps it float32 (ReduceSumSquare is a kept op) and the Div after it too (--keep-node div)."""
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("Mul", ["x", "k"], ["a"], name="scale"),
             helper.make_node("ReduceSumSquare", ["a"], ["s"], name="sumsq", axes=[1], keepdims=1),
             helper.make_node("Div", ["s", "d"], ["q"], name="div"),
             helper.make_node("Mul", ["q", "w"], ["y"], name="out")]
    inits = [numpy_helper.from_array(np.array(1000.0, np.float32), "k"),
             numpy_helper.from_array(np.array(1e6, np.float32), "d"),
             numpy_helper.from_array(np.linspace(0.5, 1.5, 8, dtype=np.float32).reshape(1, 8) * w_scale, "w")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [1, 256])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [1, 8])], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_yardstick_keeps_float32_what_the_pass_keeps_float32():
    """The yardstick rounded every activation, also the float32 sum of squares the pass keeps: it became inf,
    the yardstick's error inf, and a float16 model twice too large passed ('0.00x')."""
    from onnx import numpy_helper

    from trtdeploy.verify import Probe, fp16_outputs
    from trtdeploy.verify.fp16 import held_in_fp16

    m = _reduce_model()
    half = to_fp16(m, keep_nodes={"div"})
    assert {"a", "q", "y"} <= held_in_fp16(half) and "s" not in held_in_fp16(half)  # q: cast for the float16 Mul
    (check,) = fp16_outputs(m, half, Probe(m))["checks"]
    assert 0 < check["max_abs_diff"] <= 5
    wrong = onnx.ModelProto()
    wrong.CopyFrom(half)
    w = next(t for t in wrong.graph.initializer if t.name == "w")
    w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w) * 2, "w"))
    with pytest.raises(TrtDeployError, match=r"float16 output 'y' is off by [0-9.e+]+x what rounding"):
        fp16_outputs(m, wrong, Probe(m))


def test_a_tensor_float16_cannot_hold_is_named_with_the_flags_that_keep_it():
    """Where what the float16 model holds in float16 overflows (an int32 accumulator cast to float, as in
    ddddocr's quantized common_old.onnx), the yardstick is inf: the check refuses, naming the tensor and the
    --keep-node flags, instead of passing or printing 'nanx'."""
    from onnx import helper, numpy_helper

    from trtdeploy.verify import Probe, fp16_outputs

    nodes = [helper.make_node("MatMulInteger", ["xi8", "wq"], ["acc"], name="mm"),
             helper.make_node("Cast", ["acc"], ["accf"], name="acc_cast", to=TP.FLOAT),
             helper.make_node("Mul", ["accf", "scale"], ["y"], name="dequant")]
    inits = [numpy_helper.from_array(np.full((64, 4), 127, np.int8), "wq"),
             numpy_helper.from_array(np.array(1e-4, np.float32), "scale")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("xi8", TP.INT8, [2, 64])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [2, 4])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    x = np.full((2, 64), 100, np.int8)  # accumulates 64 * 100 * 127 = 812800
    with pytest.raises(TrtDeployError, match=r"float16 cannot hold 'accf' \(8.13e\+05 on the check inputs, read by "
                                             r"'dequant' \(Mul\)\), which the float16 model holds .* --keep-node dequant$"):
        fp16_outputs(m, to_fp16(m), Probe(m, values={"xi8": x}))
    assert fp16_outputs(m, to_fp16(m, keep_nodes={"dequant"}), Probe(m, values={"xi8": x}))["checks"]


def test_compared_tensors_say_where_they_are_read():
    """What a TopK ranks is 'what it selects from'; a tensor a later node reads is 'read by it after a
    selection' (both were 'read by ..., after a selection'); a graph input is fed alike to both models."""
    from onnx import helper

    from trtdeploy.verify.fp16 import compared_tensors

    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("Sigmoid", ["x"], ["b"], name="sig"),
             helper.make_node("TopK", ["a", "k"], ["v", "i"], name="topk", axis=1),
             helper.make_node("GatherElements", ["b", "i"], ["picked"], name="pick", axis=1),
             helper.make_node("Add", ["picked", "x"], ["y"], name="add")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [1, 3])],
                          initializer=[onnx.numpy_helper.from_array(np.array([3], np.int64), "k")])
    compared, followers = compared_tensors(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert compared == {"a": "tensor 'a' (what 'topk' (TopK) selects from)",
                        "b": "tensor 'b' (read by 'pick' (GatherElements) after a selection)"}
    assert followers == {"'y'": ["'topk' (TopK)"]}


def _ir4_conv(path):
    """One Conv whose weight and bias initializers are also graph inputs (IR 4, as PyTorch <= 1.2 exported)."""
    import numpy as np
    from onnx import TensorProto as TP
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(np.linspace(-1, 1, 4).astype(np.float32), "B")
    g = helper.make_graph([helper.make_node("Conv", ["x", "W", "B"], ["y"], name="conv", pads=[1, 1, 1, 1])], "g",
                          [helper.make_tensor_value_info("x", TP.FLOAT, [1, 3, 8, 8]),
                           helper.make_tensor_value_info("W", TP.FLOAT, [4, 3, 3, 3]),
                           helper.make_tensor_value_info("B", TP.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [1, 4, 8, 8])], [w, b])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)], ir_version=4), str(path))
    return path


def test_fp16_of_initializers_listed_as_inputs(tmp_path):
    """fp16 refused an IR-4 model whose weights are also graph inputs: "(10) vs (1)". Such a weight is an input
    with a default (a feed may replace it): it stays float32 like the other inputs, its reader gets a Cast, and
    the converted model gives the original's results for the default and for a feed."""
    import numpy as np

    src = _ir4_conv(tmp_path / "ir4.onnx")
    out = tmp_path / "h.onnx"
    proc = run_cli("fp16", src, "-o", out)
    assert proc.returncode == 0, proc.stderr
    half = onnx.load(str(out))
    assert any(n.op_type == "Conv" and n.input[1] == "W_fp16" for n in half.graph.node)
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    w = np.full((4, 3, 3, 3), 0.5, np.float32)
    for feeds in ({"x": x}, {"x": x, "W": w}):
        np.testing.assert_allclose(ort_run(half, feeds)[0], ort_run(onnx.load(str(src)), feeds)[0], atol=2e-2)


def test_type_check_error_names_the_dtypes():
    from trtdeploy.surgery.fp16 import _named_types

    assert _named_types("Inferred elem type differs from existing elem type: (10) vs (1)").endswith(
        "(FLOAT16) vs (FLOAT)")


def test_dry_run_runs_the_builds_fp16_conversion(tmp_path):
    """`build --fp16 --strongly-typed --dry-run` said the model would go through `fp16`, which then refused it:
    the dry run now runs the build's conversion (plan.convert_for_build), so it refuses what the build would."""
    from onnx import TensorProto as TP
    from onnx import helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
                          [helper.make_tensor_value_info("x", TP.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TP.INT32, [1, 4])])  # declared wrong
    bad = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(bad))
    for flags in (["--strongly-typed"], []):  # without TensorRT here, the dry run covers TensorRT 11 too
        proc = run_cli("build", bad, "--fp16", "--dry-run", *flags)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("trtdeploy build: error: the float16 model does not "
                                                               "type-check"), proc.stderr
        assert "(FLOAT16) vs (INT32)" in proc.stderr or "INT32" in proc.stderr, proc.stderr
    proc = run_cli("build", _ir4_conv(tmp_path / "ir4.onnx"), "--fp16", "--strongly-typed", "--dry-run")
    assert proc.returncode == 0, proc.stderr
