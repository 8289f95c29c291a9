"""The command line as users run it: exit codes, no tracebacks, never overwriting the input."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import fixture_path, load_fixture, ort_run, run_cli

from trtdeploy.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("cmd", [None] + [c.replace("_", "-") for c in COMMANDS])
def test_every_help(cmd):
    proc = run_cli(*([cmd] if cmd else []), "-h")
    assert proc.returncode == 0 and "usage:" in proc.stdout


def test_help_imports_nothing_heavy():
    import subprocess
    import sys

    code = "import sys, trtdeploy.cli as c; c.build_parser(); print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'onnxruntime', 'onnxslim', 'tensorrt', 'numpy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _no_traceback(proc):
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) >= 1


def test_user_errors_exit_1_without_traceback(tmp_path):
    m = fixture_path("yolov5_p5_op13")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all")
    cases = [
        ("dynamic", tmp_path / "missing.onnx", "-o", tmp_path / "o.onnx"),
        ("dynamic", junk, "-o", tmp_path / "o.onnx"),
        ("dynamic", m, "-o", tmp_path / "o.onnx", "--dims", "images:0=batch,2=h,3=w"),
        ("dynamic", m, "-o", tmp_path / "o.onnx", "--dims", "image:0=batch"),
        ("dynamic", m),
        ("rename", m, "-o", tmp_path / "o.onnx", "--tensor", "nope=x"),
        ("rename", m, "-o", tmp_path / "o.onnx", "--input", "output0=x"),
        ("rename", junk, "-o", tmp_path / "o.onnx", "--tensor", "a=b"),
        ("remove-node", m, "-o", tmp_path / "o.onnx", "--node", "nope"),
        ("insert-cast", m, "-o", tmp_path / "o.onnx", "--tensor", "output0", "--to", "int77"),
        ("expose", m, "--tensors", "nope"),
        ("inspect", tmp_path / "missing.onnx"),
    ]
    for args in cases:
        proc = run_cli(*args)
        _no_traceback(proc)
        assert not (tmp_path / "o.onnx").exists()
    proc = run_cli("rename", m, "-o", tmp_path / "o.onnx", "--tensor", "nope=x")
    assert "nope" in proc.stderr


def test_never_overwrites_input(tmp_path):
    src = tmp_path / "m.onnx"
    src.write_bytes(fixture_path("view_cnn").read_bytes())
    before = src.read_bytes()
    proc = run_cli("dynamic", src, "-o", src)
    _no_traceback(proc)
    assert "--inplace" in proc.stderr and src.read_bytes() == before
    proc = run_cli("dynamic", src, "--inplace")
    assert proc.returncode == 0, proc.stderr
    assert onnx.load(str(src)).graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temp files left behind


def test_rename_cli_map_file_and_io(tmp_path):
    mp = tmp_path / "map.json"
    mp.write_text(json.dumps({"/conv1/Conv_output_0": "conv1_out"}))
    out = tmp_path / "r.onnx"
    proc = run_cli("rename", fixture_path("view_cnn"), "-o", out, "--input", "input=images",
                   "--output", "logits=scores", "--map-file", mp)
    assert proc.returncode == 0, proc.stderr
    r = onnx.load(str(out))
    assert r.graph.input[0].name == "images" and r.graph.output[0].name == "scores"
    assert any("conv1_out" in n.output for n in r.graph.node)
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    np.testing.assert_array_equal(ort_run(r, {"images": x})[0], ort_run(load_fixture("view_cnn"), {"input": x})[0])


def test_inspect_json_and_nodes():
    proc = run_cli("inspect", fixture_path("retina_head"), "--json", "--nodes")
    info = json.loads(proc.stdout)
    assert info["inputs"][0]["shape"] == [1, 3, 64, 64]
    assert [o["name"] for o in info["outputs"]] == ["boxes", "scores", "landmarks"]
    assert info["op_types"]["Conv"] == 12
    assert all(n["outputs"][0]["shape"] for n in info["nodes"] if n["op_type"] == "Conv")
    text = run_cli("inspect", fixture_path("retina_head")).stdout
    assert "dynamic dims: none" in text


def test_expose_dump(tmp_path):
    dump, out = tmp_path / "t.npz", tmp_path / "exposed.onnx"
    proc = run_cli("expose", fixture_path("view_cnn"), "--nodes", "/conv1/Conv", "--tensors", "/Relu_output_0",
                   "--dump", dump, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "/conv1/Conv_output_0" in proc.stdout and "min" in proc.stdout
    with np.load(dump) as d:
        assert d["/conv1/Conv_output_0"].shape == (1, 8, 16, 16)
        relu = d["/Relu_output_0"]
    assert (relu >= 0).all()
    assert [o.name for o in onnx.load(str(out)).graph.output][-2:] == ["/conv1/Conv_output_0", "/Relu_output_0"]


def test_expose_all_with_inputs_file(tmp_path):
    x = np.random.default_rng(1).random((1, 3, 16, 16), dtype=np.float32)
    np.savez(tmp_path / "in.npz", input=x)
    proc = run_cli("expose", fixture_path("flatten"), "--all", "--inputs", tmp_path / "in.npz", "--dump", tmp_path / "d.npz")
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "d.npz") as d:
        np.testing.assert_allclose(d["out"], ort_run(load_fixture("flatten"), {"input": x})[0], rtol=1e-6)


def test_simplify_keeps_dynamic_dims(tmp_path):
    dyn = tmp_path / "dyn.onnx"
    assert run_cli("dynamic", fixture_path("yolov5_p5_op13"), "-o", dyn).returncode == 0
    out = tmp_path / "slim.onnx"
    proc = run_cli("simplify", dyn, "-o", out)
    assert proc.returncode == 0, proc.stderr
    slim, before = onnx.load(str(out)), onnx.load(str(dyn))
    assert slim.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert len(slim.graph.node) < len(before.graph.node)
    x = np.random.default_rng(0).random((2, 3, 128, 128), dtype=np.float32)
    np.testing.assert_allclose(ort_run(slim, {"images": x})[0], ort_run(before, {"images": x})[0], rtol=1e-4, atol=1e-3)


def test_simplify_tolerates_plugin_ops(tmp_path):
    from onnx import TensorProto as TP
    from onnx import helper

    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("Identity", ["a"], ["b"], name="idn"),
             helper.make_node("YoloLayer_TRT", ["b"], ["y"], name="plugin", domain="trt.plugins", num_classes=80)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, ["batch", 255, 20, 20])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("trt.plugins", 1)])
    src = tmp_path / "p.onnx"
    onnx.save(m, str(src))
    proc = run_cli("simplify", src, "-o", tmp_path / "s.onnx")
    assert proc.returncode == 0, proc.stderr
    s = onnx.load(str(tmp_path / "s.onnx"))
    assert [n.op_type for n in s.graph.node][-1] == "YoloLayer_TRT"
    assert s.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_readme_example_commands(tmp_path):
    """The README's 'run the main job' command (minus its pip install) and the YOLOv5 command after it,
    run for real. The main job needs no TensorRT headers; the YOLOv5 plan needs the plugin library."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("<!-- example-command -->"):text.index("## Run the tests")]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    from trtdeploy._info import plugin_libraries

    for i, block in enumerate(blocks):
        command = " ".join(line.rstrip("\\").strip() for line in block.strip().splitlines())
        steps = [s.strip() for s in command.split("&&")]
        if i == 0:
            assert steps.pop(0).startswith("pip install")
        for step in steps:
            argv = shlex.split(step)
            assert argv[0] == "trtdeploy"
            proc = run_cli(*[a if not a.startswith("tests/") else str(ROOT / a) for a in argv[1:]], cwd=tmp_path)
            if i == 1 and argv[1] == "build" and not plugin_libraries():  # installed without TensorRT headers:
                assert proc.returncode == 1 and "installed without it" in proc.stderr  # the plan cannot build
                continue
            assert proc.returncode == 0, proc.stderr


def test_external_data_models_round_trip(tmp_path):
    """A model saved with external data goes through `dynamic` (the weights are found next to it,
    the output is written with its own weights)."""
    src = tmp_path / "in" / "m.onnx"
    src.parent.mkdir()
    onnx.save_model(load_fixture("view_cnn"), str(src), save_as_external_data=True, location="m.onnx.data",
                    size_threshold=0)
    out = tmp_path / "out" / "d.onnx"
    proc = run_cli("dynamic", src, "-o", out)
    assert proc.returncode == 0, proc.stderr
    from trtdeploy.io import save

    big = tmp_path / "ext" / "e.onnx"
    save(onnx.load(str(out)), big, external_data=True)
    assert (big.parent / "e.onnx.data").stat().st_size > 40_000
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    got = ort_run(onnx.load(str(big)), {"input": x})[0]
    for i in range(2):
        np.testing.assert_allclose(got[i:i + 1], ort_run(load_fixture("view_cnn"), {"input": x[i:i + 1]})[0],
                                   rtol=1e-5, atol=1e-5)


def test_doctor_names_cuda_and_tensorrt():
    proc = run_cli("doctor")
    assert proc.returncode == 0, proc.stderr
    assert "CUDA" in proc.stdout and "TensorRT" in proc.stdout and "rename" in proc.stdout
    info = json.loads(run_cli("doctor", "--json").stdout)
    assert "rename" in info["compiled"]["parts"] and "decode_cpu" in info["compiled"]["parts"]
    import trtdeploy._C as c

    assert info["compiled"]["cuda"] == c.has_cuda


def test_inspect_lists_body_nodes_dynamic_minus_one_and_skips_external_weights(tmp_path):
    text = run_cli("inspect", fixture_path("if_model"), "--nodes").stdout
    assert "nodes: 3 (+2 in If/Loop/Scan bodies)" in text
    assert "in branch/then_branch:" in text and "then_mul [Mul]" in text and "else_sub [Sub]" in text
    info = json.loads(run_cli("inspect", fixture_path("loop_model"), "--nodes", "--json").stdout)
    assert {n["name"]: n["graph"] for n in info["nodes"]}["body_mul"] == "loop/body"
    m = load_fixture("view_cnn")  # an exporter that writes -1 for a dynamic dim
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1
    src = tmp_path / "minus1.onnx"
    onnx.save(m, str(src))
    text = run_cli("inspect", src, "--nodes").stdout
    assert "input: float [?, 3, 32, 32]" in text and "dynamic dims: input[0]=?" in text and "-1" not in text
    ext = tmp_path / "ext" / "m.onnx"
    ext.parent.mkdir()
    onnx.save_model(load_fixture("view_cnn"), str(ext), save_as_external_data=True, location="w.bin",
                    size_threshold=0)
    (ext.parent / "w.bin").unlink()  # inspect never reads the weights: it works without them
    proc = run_cli("inspect", ext, "--nodes")
    assert proc.returncode == 0, proc.stderr
    assert "initializers: 6 (45." in proc.stdout and "/fc/Gemm [Gemm]" in proc.stdout


def test_expose_all_skips_constants_reaches_bodies_and_untyped(tmp_path):
    from onnx import TensorProto as TP
    from onnx import helper

    proc = run_cli("expose", fixture_path("view_cnn"), "--all")
    assert proc.returncode == 0, proc.stderr
    assert "/Constant_output_0" not in proc.stdout and "/conv1/Conv_output_0" in proc.stdout
    assert "depend on no input (constants, shape arithmetic on them) not exposed" in proc.stderr
    assert "/Constant_output_0" in run_cli("expose", fixture_path("view_cnn"), "--all", "--include-constants").stdout
    x = np.full((1, 4), 2.0, np.float32)  # sum > 0: the then-branch runs
    np.savez(tmp_path / "x.npz", x=x)
    dump = tmp_path / "d.npz"
    proc = run_cli("expose", fixture_path("if_model"), "--all", "--inputs", tmp_path / "x.npz", "--dump", dump)
    assert proc.returncode == 0, proc.stderr
    with np.load(dump) as d:
        np.testing.assert_allclose(d["then_out@branch"], x * np.arange(1, 5))
        assert "else_out@branch" not in d  # the branch that did not run: not computed, not dumped
    assert "(without else_out@branch: not computed, their If branch did not run)" in proc.stderr
    assert re.search(r"else_out@branch +float32 +\[0, 0\] +\(branch not taken\)", proc.stdout), proc.stdout
    proc = run_cli("expose", fixture_path("loop_model"), "--tensors", "scaled", "--dump", dump)
    assert proc.returncode == 0, proc.stderr
    with np.load(dump) as d:
        assert d["scaled@loop"].shape == (3, 1, 3)  # one slice per iteration
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("Gelu", ["a"], ["b"], name="gelu", domain="com.microsoft"),
             helper.make_node("Neg", ["b"], ["y"], name="neg")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [2, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    src = tmp_path / "contrib.onnx"
    onnx.save(m, str(src))
    proc = run_cli("expose", src, "--all", "-o", tmp_path / "e.onnx")
    assert proc.returncode == 0, proc.stderr
    assert "1 tensor(s) of unknown type (custom op outputs?) not exposed: b" in proc.stderr
    assert [o.name for o in onnx.load(str(tmp_path / "e.onnx")).graph.output] == ["y", "a"]
    assert "checked: same outputs" in proc.stderr


@pytest.mark.parametrize("value,message", [("0", "0 is not a batch size (1 or more)"),
                                           ("-1", "-1 is not a batch size (1 or more)"),
                                           ("1,x", "'x' is not a whole number"), ("1,,2", "'' is not a whole number")])
def test_batch_sizes_are_one_or_more_in_dynamic_and_verify(tmp_path, value, message):
    """--batch-sizes 0 compared nothing and wrote the model; -1 was a traceback."""
    dyn = tmp_path / "d.onnx"
    proc = run_cli("dynamic", fixture_path("flatten"), "-o", dyn, "--batch-sizes", value)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().endswith(f"--batch-sizes '{value}': {message}" + ("; e.g. --batch-sizes 1,2,4" if "whole" in message else ""))
    assert not dyn.exists()
    assert run_cli("dynamic", fixture_path("flatten"), "-o", dyn).returncode == 0
    proc = run_cli("verify", fixture_path("flatten"), dyn, "--batch-sizes", value)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr


def test_passes_do_not_import_the_checks():
    """surgery/ holds pure passes; the checks (verify/) use them, not the other way round. surgery/fp16.py
    had a verify_fp16 wrapper importing verify; surgery/names.py imported verify.same_names for
    rename_file while verify/fp16.py imported surgery.names._apply_graph (a circle): rename_file is
    now trtdeploy._rename_file, the renaming helper _graph.rename_in_graph."""
    import ast

    import trtdeploy.surgery

    folder = Path(trtdeploy.surgery.__file__).parent
    offenders = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "verify" and node.level == 2:
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def _if_scalar_model():
    """x [1, 4] -> If(sum(x) > 0): then sigmoid(x) * ts with ts = ReduceMax(sigmoid(x)), a scalar of the
    then branch; else -sigmoid(x)."""
    from onnx import TensorProto as TP
    from onnx import helper

    then = helper.make_graph([helper.make_node("ReduceMax", ["r"], ["ts"], name="t_max", keepdims=0),
                              helper.make_node("Mul", ["r", "ts"], ["t_out"], name="t_mul")], "then", [],
                             [helper.make_tensor_value_info("t_out", TP.FLOAT, [1, 4])])
    other = helper.make_graph([helper.make_node("Neg", ["r"], ["e_out"], name="e_neg")], "else", [],
                              [helper.make_tensor_value_info("e_out", TP.FLOAT, [1, 4])])
    nodes = [helper.make_node("Sigmoid", ["x"], ["r"], name="sig"),
             helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["cond"], name="gt"),
             helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then, else_branch=other)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [1, 4])],
                          [helper.make_tensor("zero", TP.FLOAT, [], [0.0])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_expose_scalar_of_a_branch_not_taken_is_not_a_zero(tmp_path):
    """Review: a scalar of an If branch was carried out against a constant 0 from the other branch, so with
    the other branch taken `expose` printed 'min 0 max 0 mean 0' and dumped 0 for a value never computed.
    It is carried as [1] against an empty [0]; empty on every axis reads '(branch not taken)' and stays out
    of --dump (said so); the taken branch gives its value; `-o` passes the full checker."""
    src, out, dump = tmp_path / "if_scalar.onnx", tmp_path / "e.onnx", tmp_path / "d.npz"
    onnx.save(_if_scalar_model(), src)
    x = np.array([[-1.0, -2.0, 0.5, -0.5]], np.float32)  # sum < 0: the else branch runs
    np.savez(tmp_path / "neg.npz", x=x)
    np.savez(tmp_path / "pos.npz", x=-x)
    proc = run_cli("expose", src, "--tensors", "ts", "--inputs", tmp_path / "neg.npz", "--dump", dump, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^ts@branch +float32 +\[0\] +\(branch not taken\)$", proc.stdout, re.M), proc.stdout
    assert "min" not in proc.stdout
    assert "wrote " + str(dump) + " (without ts@branch: not computed, their If branch did not run)" in proc.stderr
    with np.load(dump) as d:
        assert list(d) == []
    assert "onnx.checker (full): ok" in proc.stderr and "checked: same outputs" in proc.stderr
    declared = {o.name: [d.dim_value or None for d in o.type.tensor_type.shape.dim] for o in onnx.load(str(out)).graph.output}
    assert declared == {"y": [1, 4], "ts@branch": [None]}
    proc = run_cli("expose", src, "--tensors", "ts", "--inputs", tmp_path / "pos.npz", "--dump", dump)
    assert proc.returncode == 0, proc.stderr
    want = 1 / (1 + np.exp(-2.0))  # max of sigmoid(-x)
    assert re.search(rf"^ts@branch +float32 +\[1\] +min {want:.6g} ", proc.stdout, re.M), proc.stdout
    with np.load(dump) as d:
        np.testing.assert_allclose(d["ts@branch"], [want], rtol=1e-6)


def test_expose_all_keeps_body_outputs_right_and_gives_lifted_outputs_their_rank(tmp_path):
    """Re-exposing a tensor that is a branch output already (then_out) added a second output of that name:
    onnxruntime returned zeros for the If's own output 'y'. Lifted outputs had no shape, so `-o` failed
    onnx.checker; they get the body tensor's rank (+1 for a Loop's scan output) with unknown sizes."""
    from trtdeploy._graph import dims_of
    from trtdeploy.surgery.expose import expose

    x = np.full((1, 4), 2.0, np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    dump = tmp_path / "d.npz"
    out = tmp_path / "e.onnx"
    proc = run_cli("expose", fixture_path("if_model"), "--all", "--inputs", tmp_path / "x.npz", "--dump", dump, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "onnx.checker (full): ok" in proc.stderr and "checked: same outputs" in proc.stderr
    with np.load(dump) as d:
        np.testing.assert_allclose(d["y"], x * np.arange(1, 5))
        np.testing.assert_allclose(d["then_out@branch"], d["y"])
    declared = {o.name: dims_of(o) for o in onnx.load(str(out)).graph.output}
    assert declared["then_out@branch"] == [None, None] and declared["else_out@branch"] == [None, None]
    loop, names = expose(load_fixture("loop_model"), all_tensors=True)
    onnx.checker.check_model(loop, full_check=True)
    declared = {o.name: dims_of(o) for o in loop.graph.output}
    assert declared["acc_out@loop"] == [None, None, None] and declared["cond_out@loop"] == [None]
    values = dict(zip([o.name for o in loop.graph.output], ort_run(loop, {"x": np.full((1, 3), 0.5, np.float32)})))
    assert values["acc_out@loop"].shape == (3, 1, 3)
    np.testing.assert_allclose(values["acc_out@loop"][-1], values["acc_final"])  # the loop's own output intact


def test_inspect_with_external_data_names_the_detector_and_counts_bytes_alike(tmp_path):
    """With the weights left unread, the detector's shape constants (external too) were missing and the
    'detector:' line was dropped (or, run from another folder, onnx's error was a traceback); inline weights
    were counted with their protobuf framing, external ones by their data: the same model showed two sizes."""
    def external(name):
        ext = tmp_path / f"{name}.onnx"
        onnx.save_model(load_fixture(name), str(ext), save_as_external_data=True, location=f"{name}.bin", size_threshold=0)
        return ext

    src, ext = fixture_path("yolov5_p5_op13"), external("yolov5_p5_op13")
    inline, outside = (json.loads(run_cli("inspect", p, "--json", cwd="/").stdout) for p in (src, ext))
    assert inline["initializer_bytes"] == outside["initializer_bytes"]
    assert inline["initializer_bytes"] == sum(onnx.numpy_helper.to_array(t).nbytes for t in load_fixture("yolov5_p5_op13").graph.initializer)
    assert outside["detector"]["family"] == "yolov5" and outside["detector"] == inline["detector"]
    assert "detector: yolov5 (80 classes) on 'output0'" in run_cli("inspect", ext, cwd="/").stdout
    proc = run_cli("inspect", external("yolov8n_640"), cwd="/")  # its DFL weight [1, 16, 1, 1] is read, no other
    assert proc.returncode == 0 and "detector: yolov8 (80 classes) on 'output0'" in proc.stdout, proc.stderr
    (tmp_path / "yolov5_p5_op13.bin").unlink()
    proc = run_cli("inspect", ext, cwd=tmp_path)
    assert proc.returncode == 0 and "detector: not checked: the external data could not be read" in proc.stdout, proc.stderr
