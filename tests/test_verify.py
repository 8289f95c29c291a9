"""The one check every model-writing command runs (verify.py + cli/_common.write_checked): real models,
real onnxruntime runs; a failed check writes nothing at the final path."""

from __future__ import annotations

import argparse
import textwrap

import numpy as np
import onnx
import pytest
from conftest import fixture_path, load_fixture, run_cli
from onnx import numpy_helper

from trtdeploy import TrtDeployError
from trtdeploy.cli._common import write_checked
from trtdeploy.surgery.fp16 import to_fp16
from trtdeploy.verify import Probe, fp16_outputs, same_outputs


def _args(model, out, **kw):
    ns = argparse.Namespace(model=str(model), output=str(out), inplace=False, verify=True, shapes=None, inputs=None)
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def _perturbed(model, name, scale):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    t = next(t for t in m.graph.initializer if t.name == name)
    t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * scale, name))
    return m


def test_wrong_model_is_refused_and_nothing_written(tmp_path):
    src = fixture_path("view_cnn")
    m = load_fixture("view_cnn")
    out = tmp_path / "o.onnx"
    bad = _perturbed(m, "conv2.weight", 1.01)
    with pytest.raises(TrtDeployError, match=r"output 'logits' differs from the original's: max abs diff \d"):
        write_checked(_args(src, out), m, bad, same_outputs)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no final file, no temp folder
    write_checked(_args(src, out), m, m, same_outputs)
    assert out.exists()


def test_any_check_function_plugs_in(tmp_path):
    """A check is any (original, new, probe) -> report that raises TrtDeployError (yolo patch's)."""
    m = load_fixture("view_cnn")
    seen = {}

    def check(original, new, probe):
        seen["feeds"] = {k: v.shape for k, v in probe.feeds().items()}
        raise TrtDeployError("boxes differ by 3 px")

    with pytest.raises(TrtDeployError, match="boxes differ"):
        write_checked(_args(fixture_path("view_cnn"), tmp_path / "o.onnx"), m, m, check)
    assert seen["feeds"] == {"input": (1, 3, 32, 32)} and not (tmp_path / "o.onnx").exists()


def test_checker_failure_refused_unless_the_input_fails_too(tmp_path):
    m = load_fixture("view_cnn")
    broken = onnx.ModelProto()
    broken.CopyFrom(m)
    reshape = next(n for n in broken.graph.node if n.op_type == "Reshape")
    gemm = next(n for n in broken.graph.node if n.op_type == "Gemm")
    gemm.input[0] = reshape.input[0]  # Gemm on a 4-D tensor: strict shape inference rejects it
    with pytest.raises(TrtDeployError, match=r"fails onnx.checker \(full\): .*Gemm"):
        write_checked(_args(fixture_path("view_cnn"), tmp_path / "o.onnx"), m, broken, None)
    assert not (tmp_path / "o.onnx").exists()
    src = tmp_path / "broken.onnx"
    onnx.save(broken, str(src))  # the input fails already: not held against the output (ort refuses it)
    write_checked(_args(src, tmp_path / "o.onnx"), broken, broken, None)
    assert (tmp_path / "o.onnx").exists()
    # any failure of the input excused every failure of the output: only the very same one is
    worse = onnx.ModelProto()
    worse.CopyFrom(broken)
    worse.graph.node[-1].input[0] = "nowhere"  # a tensor nothing produces: the plain checker fails
    with pytest.raises(TrtDeployError, match=r"fails onnx.checker \(full\): .*nowhere"):
        write_checked(_args(src, tmp_path / "w.onnx"), broken, worse, None)
    other = onnx.ModelProto()
    other.CopyFrom(broken)
    relu = next(n for n in other.graph.node if n.op_type == "Relu")
    relu.op_type = "Softmax"
    relu.attribute.append(onnx.helper.make_attribute("axis", 7))  # another shape inference failure, first
    with pytest.raises(TrtDeployError, match=r"fails onnx.checker \(full\): .*axis"):
        write_checked(_args(src, tmp_path / "w.onnx"), broken, other, None)
    assert not (tmp_path / "w.onnx").exists()


def test_no_verify_says_so_and_no_onnxruntime_says_only_the_checker_ran(tmp_path):
    proc = run_cli("remove-node", fixture_path("flatten"), "-o", tmp_path / "a.onnx", "--node", "/Relu", "--no-verify")
    assert proc.returncode == 0, proc.stderr
    assert "without checking it (--no-verify)" in proc.stderr and "checked" not in proc.stderr
    stub = tmp_path / "stub" / "onnxruntime"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('onnxruntime is not installed here')\n")
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=f"{stub.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run([sys.executable, "-m", "trtdeploy.cli", "remove-node", str(fixture_path("flatten")), "-o",
                           str(tmp_path / "b.onnx"), "--node", "/Relu"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "only onnx.checker ran" in line]
    assert len(lines) == 1 and "onnxruntime is not installed" in lines[0]
    assert "onnx.checker (full): ok" in proc.stderr


def test_plugin_models_are_checked_by_the_checker_only(tmp_path):
    from onnx import TensorProto as TP
    from onnx import helper

    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("Identity", ["a"], ["b"], name="idn"),
             helper.make_node("YoloLayer_TRT", ["b"], ["y"], name="plugin", domain="trt.plugins", num_classes=80)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, ["batch", 255, 20, 20])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [1])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("trt.plugins", 1)])
    src = tmp_path / "p.onnx"
    onnx.save(m, str(src))
    proc = run_cli("remove-node", src, "-o", tmp_path / "s.onnx", "--node", "idn")
    assert proc.returncode == 0, proc.stderr
    assert "onnx.checker (plugin ops: without shape inference): ok" in proc.stderr
    assert "only onnx.checker ran: onnxruntime cannot run the input model either" in proc.stderr


def test_probe_guesses_are_named_and_shapes_inputs_are_used():
    m = onnx.load(str(fixture_path("declared_shape_wrong")))
    p = Probe(m)
    assert p.shapes == {"x": [1, 4, 64]} and p.guesses == ["x[2]=64"]
    assert "x[2]=64" in p.note()
    assert p.shapes_at(1) == {"x": [1, 4, 128]} and p.shapes_at(2) == {"x": [1, 4, 192]}
    x = np.ones((1, 4, 24), np.float32)
    p = Probe(m, values={"x": x})
    assert p.guesses == [] and p.feeds()["x"] is x and p.shapes_at(1) == {"x": [1, 4, 32]}
    with pytest.raises(TrtDeployError, match="contradicts --inputs"):
        Probe(m, shapes={"x": [1, 4, 8]}, values={"x": x})
    with pytest.raises(TrtDeployError, match=r"input 'x' is \[1, 4, width\] in the model; the given shape 1x5x8"):
        Probe(m, shapes={"x": [1, 5, 8]})


def test_inputs_and_shapes_flags(tmp_path):
    x = np.random.default_rng(0).random((1, 4, 24), dtype=np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    src = fixture_path("declared_shape_wrong")
    proc = run_cli("simplify", src, "-o", tmp_path / "a.onnx", "--inputs", tmp_path / "in.npz")
    assert proc.returncode == 0, proc.stderr
    assert "same outputs at x:1x4x24 (max" in proc.stderr and "guessed" not in proc.stderr
    proc = run_cli("simplify", src, "-o", tmp_path / "b.onnx", "--shapes", "x:1x4x40")
    assert proc.returncode == 0, proc.stderr
    assert "same outputs at x:1x4x40 (random)" in proc.stderr and "x:1x4x48 (random)" in proc.stderr
    np.savez(tmp_path / "bad.npz", x=x.astype(np.float64))
    proc = run_cli("simplify", src, "-o", tmp_path / "c.onnx", "--inputs", tmp_path / "bad.npz")
    assert proc.returncode == 1 and "'x' is float64, the model takes float32" in proc.stderr
    assert not (tmp_path / "c.onnx").exists()


def test_fp16_tolerance_comes_from_fp16_itself():
    """A good conversion passes with an error near what rounding explains; a collapsed one fails."""
    m = load_fixture("yolov5_p5_op13")
    half = to_fp16(m)
    report = fp16_outputs(m, half, Probe(m))
    (c,) = report["checks"]
    assert 0 < c["max_abs_diff"] <= 5 and 0 < c["range_error"] < 1e-2
    dead = onnx.ModelProto()  # the detection convs output nothing: every sigmoid is 0.5
    dead.CopyFrom(half)
    for t in dead.graph.initializer:
        if t.name.startswith("detect.m."):
            t.CopyFrom(numpy_helper.from_array(np.zeros(tuple(t.dims), np.float16), t.name))
    with pytest.raises(TrtDeployError, match=r"float16 output .output0. is off by [0-9.e+]+x what rounding weights and act"):
        fp16_outputs(m, dead, Probe(m))


def test_onnxruntime_log_lines_never_reach_the_user(tmp_path):
    """A run that fails inside onnxruntime (and a model whose declared output shape is wrong, which
    onnxruntime warns about) prints trtdeploy's one line, not onnxruntime's colored log."""
    proc = run_cli("dynamic", fixture_path("lstm_state"), "-o", tmp_path / "o.onnx")
    assert proc.returncode == 1
    assert "\x1b[" not in proc.stderr and "onnxruntime:" not in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("simplify", fixture_path("declared_shape_wrong"), "-o", tmp_path / "s.onnx")
    assert proc.returncode == 0 and "\x1b[" not in proc.stderr and "VerifyOutputSizes" not in proc.stderr


def test_verify_command_takes_shapes(tmp_path):
    hw = tmp_path / "hw.onnx"
    assert run_cli("dynamic", fixture_path("fpn_interp"), "-o", hw, "--dims", "input:2=height,3=width").returncode == 0
    bhw = tmp_path / "bhw.onnx"
    proc = run_cli("dynamic", hw, "-o", bhw, "--shapes", "input:1x3x96x64")
    assert proc.returncode == 0, proc.stderr
    assert "batch=3 vs original" in proc.stderr
    proc = run_cli("verify", hw, bhw, "--shapes", "input:1x3x48x32")
    assert proc.returncode == 0, proc.stderr
    assert textwrap.dedent("ok  batch=2 vs original") in proc.stdout


def _affine(scale: float, shift: float) -> onnx.ModelProto:
    from onnx import TensorProto as TP
    from onnx import helper

    g = helper.make_graph([helper.make_node("Mul", ["x", "s"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TP.FLOAT, [4, 64])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [4, 64])],
                          initializer=[numpy_helper.from_array(np.array(scale, np.float32), "s"),
                                       numpy_helper.from_array(np.array(shift, np.float32), "b")])
    return onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 17)])


def test_near_zero_outputs_compare_at_float_resolution():
    """The tolerance was relative to the output's range only: an output of a few 1e-8 (PP-OCRv4 det's text
    map on noise) that a simplified graph computes 1.5 float32 units apart was refused. A floor of a few
    units of float rounding (at 1) lets that pass, says the output is near-constant, and still refuses more."""
    m = _affine(1e-7, 0.0)
    report = same_outputs(m, _affine(1e-7, 1.5e-7), Probe(m))
    assert report["checks"][0]["max_abs_diff"] == pytest.approx(1.5e-7, rel=0.01)
    assert any("output 'y' is constant up to float rounding (spread" in n for n in report["notes"])
    with pytest.raises(TrtDeployError, match=r"output 'y' differs from the original's: max abs diff 2e-06"):
        same_outputs(m, _affine(1e-7, 2e-6), Probe(m))


def test_a_dtype_change_passes_only_when_declared():
    """Any dtype change of an output was taken for a declared cast: a simplify or remove-node that turned
    an output float16 (or an input int32) passed. Only insert-cast declares casts."""
    from onnx import TensorProto as TP
    from onnx import helper

    def model(out_type, in_type=TP.FLOAT):
        nodes = [helper.make_node("Cast", ["x"], ["xf"], to=TP.FLOAT), helper.make_node("Relu", ["xf"], ["r"]),
                 helper.make_node("Cast", ["r"], ["y"], to=out_type)]
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", in_type, [2, 3])],
                              [helper.make_tensor_value_info("y", out_type, [2, 3])])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    m = model(TP.FLOAT)
    with pytest.raises(TrtDeployError, match="output 'y' is float16, the original's is float32, and the command changes no"):
        same_outputs(m, model(TP.FLOAT16), Probe(m))
    assert same_outputs(m, model(TP.FLOAT16), Probe(m), tolerance="float16", casts={"y": TP.FLOAT16})["checks"]
    with pytest.raises(TrtDeployError, match="input 'x' is float16 in the new model, float32 in the original"):
        same_outputs(m, model(TP.FLOAT, TP.FLOAT16), Probe(m))


def test_insert_cast_declares_what_it_casts(tmp_path):
    from onnx import TensorProto as TP

    from trtdeploy.surgery.nodes import insert_cast

    m = load_fixture("flatten")
    casts: dict = {}
    insert_cast(m, "out", "float16", casts)
    assert casts == {"out": TP.FLOAT16}
    casts = {}
    insert_cast(m, "input", "float16", casts)
    assert casts == {"input": TP.FLOAT16}
    proc = run_cli("insert-cast", fixture_path("flatten"), "-o", tmp_path / "o.onnx", "--tensor", "out", "--to", "fp16")
    assert proc.returncode == 0, proc.stderr


def test_the_batch_is_compared_alone_where_other_dims_cannot_change():
    """same_outputs changed every dynamic dim at once: a model whose width cannot change (PP-OCRv4 rec's
    height, here a constant added along the width) was never compared at another batch."""
    from onnx import helper

    from trtdeploy.verify.__init__ import size_points

    g = helper.make_graph([helper.make_node("Add", ["x", "c"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 8, "w"])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", 8, 64])],
                          initializer=[numpy_helper.from_array(np.ones((1, 1, 64), np.float32), "c")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    p = Probe(m)
    assert size_points(p) == [0, {"n": 2}, {"w": 128}, 2]
    report = same_outputs(m, m, p)
    assert [c["check"] for c in report["checks"]] == ["same outputs at x:1x8x64 (random)",
                                                      "same outputs at x:2x8x64 (random)"]
    assert "not compared at x:1x8x128 (random): the original model does not run there" in report["notes"]


def test_the_check_runs_the_written_file(tmp_path):
    """write_checked ran onnxruntime on the in-memory model serialized again: for a model over 2 GB the
    external data committed was not what ran. The check opens the staged file: a weight changed in it
    after writing (as a faulty writer would) is caught."""
    m = load_fixture("view_cnn")
    w = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "conv2.weight"))

    def tamper_then_check(original, new, probe):
        staged = probe.written[1]
        data = staged.read_bytes()
        assert data.count(w.tobytes()) == 1
        staged.write_bytes(data.replace(w.tobytes(), (w * 1.01).astype(w.dtype).tobytes()))
        return same_outputs(original, new, probe)

    with pytest.raises(TrtDeployError, match=r"output 'logits' differs from the original's"):
        write_checked(_args(fixture_path("view_cnn"), tmp_path / "o.onnx"), m, m, tamper_then_check)
    assert not (tmp_path / "o.onnx").exists()


def test_verify_says_when_the_models_share_no_input_names(tmp_path):
    from onnx import TensorProto, helper

    def relu(name, batch):
        g = helper.make_graph([helper.make_node("Relu", [name], ["y"])], "g",
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])

    onnx.save(relu("a", 1), tmp_path / "a.onnx")
    onnx.save(relu("b", "batch"), tmp_path / "b.onnx")
    proc = run_cli("verify", tmp_path / "a.onnx", tmp_path / "b.onnx")
    assert proc.returncode == 1 and "share no input names (the first has a, the second b)" in proc.stderr, proc.stderr


def test_dynamic_checks_batches_below_a_static_original_batch(tmp_path):
    """A static batch-10 export: batch 1, 2 and 5 are checked, the original run on padded batches."""
    from onnx import TensorProto, helper

    w = numpy_helper.from_array(np.random.default_rng(0).random((4, 3), dtype=np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [10, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [10, 3])], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "b10.onnx")
    proc = run_cli("dynamic", tmp_path / "b10.onnx", "-o", tmp_path / "dyn.onnx", "--batch-sizes", "1,2,5,12")
    assert proc.returncode == 0, proc.stderr
    assert "batch=1 vs original (the original run on it padded to 10" in proc.stderr
    assert "batch=12 vs original (the original run on it padded to 20" in proc.stderr
    proc = run_cli("verify", tmp_path / "b10.onnx", tmp_path / "dyn.onnx", "--batch-sizes", "1,10")
    assert proc.returncode == 0 and "ok  batch=1 vs original (the original" in proc.stdout, proc.stdout + proc.stderr


def test_dynamic_hw_is_checked_at_given_shapes_and_at_the_original_size(tmp_path):
    """H/W made dynamic on a batch-dynamic model: compared with the original at its own size, and
    --shapes for the new dims is accepted (the new model runs there, batched vs one sample at a time)."""
    from onnx import TensorProto, helper

    w = numpy_helper.from_array(np.random.default_rng(0).random((2, 3, 3, 3), dtype=np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2, 16, 16])], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "m.onnx")
    proc = run_cli("dynamic", tmp_path / "m.onnx", "-o", tmp_path / "hw.onnx", "--dims", "x:2=height,3=width",
                   "--shapes", "x:1x3x24x32")
    assert proc.returncode == 0, proc.stderr
    assert "the original's sizes (at x:1x3x16x16 (random)) vs original" in proc.stderr, proc.stderr
    assert "height=24, width=32" in proc.stderr, proc.stderr
    proc = run_cli("verify", tmp_path / "m.onnx", tmp_path / "hw.onnx", "--shapes", "x:2x3x40x48")
    assert proc.returncode == 0 and "ok  the original's sizes" in proc.stdout, proc.stdout + proc.stderr
    assert "height=40, width=48" in proc.stdout
