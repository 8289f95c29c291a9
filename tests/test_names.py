"""Rename: reference and compiled fast path, on control flow, annotations, and random models."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import fixture_path, load_fixture, ort_run, run_cli
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

import trtdeploy
from trtdeploy import TrtDeployError, rename
from trtdeploy.surgery.names import build_mapping, tensor_names

BACKENDS = ["python", "native"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_if_outer_scope_capture(backend):
    m = load_fixture("if_model")
    r = rename(m, {"w": "weight", "x": "data", "y": "result", "then_out": "t"}, backend=backend)
    onnx.checker.check_model(r)
    then_g = r.graph.node[2].attribute[0].g if r.graph.node[2].attribute[0].name == "then_branch" else r.graph.node[2].attribute[1].g
    assert list(then_g.node[0].input) == ["data", "weight"]
    assert then_g.output[0].name == "t"
    x = np.array([[1, 2, 3, 4]], np.float32)
    np.testing.assert_array_equal(ort_run(r, {"data": x})[0], ort_run(m, {"x": x})[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_loop_body(backend):
    m = load_fixture("loop_model")
    names = tensor_names(m)
    assert {"acc_in", "step", "iter"} <= set(names)
    r = rename(m, {n: f"t{i}" for i, n in enumerate(names)}, backend=backend)
    x = np.array([[1, -2, 3]], np.float32)
    feed = {r.graph.input[0].name: x}
    np.testing.assert_allclose(ort_run(r, feed)[0], ort_run(m, {"x": x})[0])
    assert not set(names) & set(tensor_names(r))


@pytest.mark.parametrize("backend", BACKENDS)
def test_quantization_annotation_and_sparse(backend):
    m = load_fixture("qdq_sparse")
    r = rename(m, {"x_scale": "s", "x_zero_point": "zp", "xq": "q", "bias_sparse": "b", "bias_sparse_indices": "bi"},
               backend=backend)
    ann = r.graph.quantization_annotation[0]
    assert ann.tensor_name == "q"
    assert {e.value for e in ann.quant_parameter_tensor_names} == {"s", "zp"}
    assert r.graph.sparse_initializer[0].values.name == "b"
    x = np.random.default_rng(0).random((2, 4), dtype=np.float32)
    np.testing.assert_array_equal(ort_run(r, {"x": x})[0], ort_run(m, {"x": x})[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_errors_name_the_tensor(backend):
    m = load_fixture("view_cnn")
    with pytest.raises(TrtDeployError, match="no tensor named 'nope'"):
        rename(m, {"nope": "x"}, backend=backend)
    with pytest.raises(TrtDeployError, match="already a tensor name"):
        rename(m, {"input": "logits"}, backend=backend)
    with pytest.raises(TrtDeployError, match="both -> 'z'"):
        rename(m, {"input": "z", "logits": "z"}, backend=backend)
    with pytest.raises(TrtDeployError, match="empty"):
        rename(m, {"input": ""}, backend=backend)
    swapped = rename(m, {"input": "logits", "logits": "input"}, backend=backend)  # a swap is fine
    assert swapped.graph.input[0].name == "logits"


def test_native_parse_errors_are_clean():
    native = pytest.importorskip("trtdeploy._C")
    data = load_fixture("view_cnn").SerializeToString()
    for bad in (data[:-7], data[:100], b"\xff" * 20, b"\x3a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"):
        with pytest.raises(ValueError):
            native.rename_bytes(bad, {"input": "x"})


@pytest.mark.parametrize("backend", BACKENDS)
def test_prefix_and_sanitize(backend):
    m = load_fixture("yolov5_p5_op13")
    r = rename(m, prefix="net.", sanitize=True, backend=backend)
    names = tensor_names(r)
    assert all(n.replace("_", "a").isalnum() and not n[0].isdigit() for n in names)
    assert len(names) == len(tensor_names(m))
    assert r.graph.input[0].name == "net_images"
    x = np.random.default_rng(0).random((1, 3, 128, 128), dtype=np.float32)
    np.testing.assert_array_equal(ort_run(r, {"net_images": x})[0], ort_run(m, {"images": x})[0])


def test_build_mapping_unique():
    mp = build_mapping(["a.b", "a_b", "a:b"], sanitize=True)
    assert mp == {"a.b": "a_b_1", "a:b": "a_b_2"}  # the clean name keeps its name


def random_model(seed: int) -> onnx.ModelProto:
    """A random chain/DAG of elementwise and matmul ops with random names."""
    rng = np.random.default_rng(seed)
    names = iter(f"{p}{rng.integers(1e6)}_{i}" for i, p in enumerate(rng.choice(["t", "onnx::Add_", "x.y/z:"], 200)))
    width = 4
    avail = [next(names)]
    inputs = [helper.make_tensor_value_info(avail[0], TP.FLOAT, [2, width])]
    nodes, inits = [], []
    for _ in range(rng.integers(3, 25)):
        op = rng.choice(["Add", "Mul", "Relu", "MatMul", "Sigmoid", "Sub"])
        a = avail[rng.integers(len(avail))]
        out = next(names)
        if op in ("Relu", "Sigmoid"):
            ins = [a]
        elif rng.random() < 0.5:
            w = next(names)
            shape = (width, width) if op == "MatMul" else (width,)
            inits.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.5, w))
            ins = [a, w]
        else:
            ins = [a, avail[rng.integers(len(avail))]] if op != "MatMul" else [a, a[:0] or a]
            if op == "MatMul":
                w = next(names)
                inits.append(numpy_helper.from_array(np.eye(width, dtype=np.float32), w))
                ins = [a, w]
        nodes.append(helper.make_node(op, ins, [out], name=f"n_{out}"))
        avail.append(out)
    outputs = [helper.make_tensor_value_info(avail[-1], TP.FLOAT, [2, width])]
    g = helper.make_graph(nodes, "random", inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)  # adds value_info to rename too


@pytest.mark.parametrize("seed", range(40))
def test_random_models_python_equals_native(seed):
    pytest.importorskip("trtdeploy._C")
    m = random_model(seed)
    names = tensor_names(m)
    rng = np.random.default_rng(seed)
    mapping = {n: f"r{i}" for i, n in enumerate(names) if rng.random() < 0.7}
    a = rename(m, mapping, backend="python")
    b = rename(m, mapping, backend="native")
    assert a.SerializeToString() == b.SerializeToString()
    x = rng.random((2, 4), dtype=np.float32)
    np.testing.assert_array_equal(ort_run(a, {a.graph.input[0].name: x})[0], ort_run(m, {m.graph.input[0].name: x})[0])


def test_rename_file_external_data(tmp_path):
    """The output gets its own data file, named after it, beside it; the input's is untouched."""
    pytest.importorskip("trtdeploy._C")
    m = load_fixture("view_cnn")
    src_dir, dst_dir = tmp_path / "src", tmp_path / "dst"
    src_dir.mkdir()
    onnx.save_model(load_fixture("view_cnn"), str(src_dir / "m.onnx"), save_as_external_data=True,
                    location="m.weights", size_threshold=0)
    before = (src_dir / "m.weights").read_bytes()
    for dst in (src_dir / "renamed.onnx", dst_dir / "renamed.onnx"):
        info = trtdeploy.rename_file(src_dir / "m.onnx", dst, {"input": "images", "logits": "scores"})
        assert info["backend"] == "native" and info["external_locations"] == ["m.weights"]
        assert info["data_files"] == [str(dst.parent / "renamed.onnx.data")]
        assert "2 name(s) renamed everywhere" in info["check"]["checks"][0]["check"]
        r = onnx.load(str(dst))
        x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
        np.testing.assert_array_equal(ort_run(r, {"images": x})[0], ort_run(m, {"input": x})[0])
        assert (dst.parent / "renamed.onnx.data").read_bytes() == before
    assert (src_dir / "m.weights").read_bytes() == before and not (dst_dir / "m.weights").exists()


def _external(path, model, seed):
    """Save a copy of model with other weights, external in <name>.data; returns it (weights inline)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for t in m.graph.initializer:  # other weights for each copy
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * (1 + seed), t.name))
    saved = onnx.ModelProto()
    saved.CopyFrom(m)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(saved, str(path), save_as_external_data=True, location=path.name + ".data", size_threshold=0)
    return m


@pytest.mark.parametrize("python", [False, True])
def test_two_models_renamed_into_one_folder_keep_their_weights(tmp_path, python):
    """Issue 8, case 4: a/model.onnx and b/model.onnx (both with model.onnx.data) renamed into one folder:
    out/a.onnx ran on b's weights, because the second rename overwrote out/model.onnx.data."""
    base = load_fixture("view_cnn")
    a = _external(tmp_path / "a" / "model.onnx", base, 0)
    b = _external(tmp_path / "b" / "model.onnx", base, 1)
    out = tmp_path / "out"
    for name in ("a", "b"):
        args = ["rename", tmp_path / name / "model.onnx", "-o", out / f"{name}.onnx", "--input", "input=images"]
        proc = run_cli(*args, *(["--python"] if python else []))
        assert proc.returncode == 0, proc.stderr
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    for name, m in (("a", a), ("b", b)):
        got = ort_run(onnx.load(str(out / f"{name}.onnx")), {"images": x})[0]  # weights loaded from out/
        np.testing.assert_allclose(got, ort_run(m, {"input": x})[0], rtol=1e-6)
    if not python:  # the compiled path keeps the weights external, in a file named after the output
        assert sorted(p.name for p in out.iterdir()) == ["a.onnx", "a.onnx.data", "b.onnx", "b.onnx.data"]


def test_rename_never_overwrites_the_inputs_data(tmp_path):
    pytest.importorskip("trtdeploy._C")
    src = tmp_path / "m.onnx"
    onnx.save_model(load_fixture("view_cnn"), str(src), save_as_external_data=True, location="w.onnx.data",
                    size_threshold=0)
    before = (tmp_path / "w.onnx.data").read_bytes()
    proc = run_cli("rename", src, "-o", tmp_path / "w.onnx", "--input", "input=images")
    assert proc.returncode == 1 and "refusing to write the weights file of -o" in proc.stderr, proc.stderr
    assert "it is the external data file" in proc.stderr  # found before any work (io.check_outputs)
    assert (tmp_path / "w.onnx.data").read_bytes() == before and not (tmp_path / "w.onnx").exists()


def _big_external_model(path, mib):
    """A Relu model whose weights (an unused initializer in external data) take `mib` MiB."""
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
                          [helper.make_tensor_value_info("x", TP.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path.parent.mkdir(parents=True, exist_ok=True)
    data = path.parent / (path.name + ".data")
    with open(data, "wb") as f:
        f.truncate(mib << 20)  # sparse: cheap to make, still read and written in full by a copy
    t = m.graph.initializer.add()
    t.name, t.data_type, t.data_location = "w", TP.UINT8, onnx.TensorProto.EXTERNAL
    t.dims.append(mib << 20)
    for k, v in (("location", data.name), ("offset", "0"), ("length", str(mib << 20))):
        e = t.external_data.add()
        e.key, e.value = k, v
    onnx.save(m, str(path))


@pytest.mark.parametrize("what", ["data copy", "model write"])
def test_sigterm_during_rename_leaves_nothing(tmp_path, what):
    """A real SIGTERM while the rename is writing: nothing under a final name (no truncated .data), no
    temporary folder left, exit 143. The process is stopped the moment its staged file appears, so
    the signal lands mid-write however fast the disk is."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("trtdeploy._C")
    src = tmp_path / "in" / "m.onnx"
    if what == "data copy":
        _big_external_model(src, 768)
    else:  # 768 MiB inline: the compiled writer runs Python's handler every 32 MiB
        g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
                              [helper.make_tensor_value_info("x", TP.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TP.FLOAT, [4])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        src.parent.mkdir()
        t = m.graph.initializer.add()
        t.name, t.data_type = "w", TP.UINT8
        t.dims.append(768 << 20)
        t.raw_data = bytes(768 << 20)
        onnx.save(m, str(src))
        del m, t
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "trtdeploy.cli", "rename", str(src), "-o", str(out / "r.onnx"),
                             "--tensor", "x=images"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    staged = None
    while staged is None and proc.poll() is None and time.monotonic() < deadline:
        for f in out.rglob("*"):  # the first file being written, wherever it is
            try:
                if f.is_file() and f.stat().st_size > 0:
                    staged = f
            except FileNotFoundError:
                pass
        if staged is None:
            time.sleep(0.001)
    assert staged is not None, "the rename finished before it could be stopped"
    os.kill(proc.pid, signal.SIGSTOP)
    written = staged.stat().st_size
    os.kill(proc.pid, signal.SIGTERM)
    os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert written < (768 << 20), "the signal did not land mid-write"
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert list(out.iterdir()) == []


def test_rename_collision_quotes_once(tmp_path):
    for extra in ([], ["--python"]):
        proc = run_cli("rename", fixture_path("view_cnn"), "-o", tmp_path / "r.onnx", "--tensor", "input=x",
                       "--tensor", "logits=x", *extra)
        assert proc.returncode == 1
        assert ("'input' and 'logits' both -> 'x'" in proc.stderr or "'logits' and 'input' both -> 'x'" in proc.stderr)
        assert "''" not in proc.stderr


def test_rename_io_reads_names_without_loading_weights(tmp_path):
    """--input/--output are checked against the graph's inputs/outputs as the wire reader lists them:
    peak memory stays far below the model's size (it was 2x the model with a full load)."""
    import subprocess
    import sys

    pytest.importorskip("trtdeploy._C")
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
                          [helper.make_tensor_value_info("x", TP.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    t = m.graph.initializer.add()
    t.name, t.data_type = "w", TP.UINT8
    t.dims.append(400 << 20)
    t.raw_data = bytes(400 << 20)
    src = tmp_path / "m.onnx"
    onnx.save(m, str(src))
    del m, t
    code = ("import sys; from trtdeploy.cli import main; rc = main(sys.argv[1:]); "  # VmHWM: this process only
            "print(next(int(v.split()[1]) for v in open('/proc/self/status') if v.startswith('VmHWM')) * 1024); "
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "rename", str(src), "-o", str(tmp_path / "r.onnx"),
                           "--input", "x=images", "--output", "y=scores"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    peak = int(proc.stdout.strip().splitlines()[-1])
    assert peak < 0.4 * src.stat().st_size, f"peak RSS {peak >> 20} MiB for a {src.stat().st_size >> 20} MiB model"
    proc = run_cli("rename", src, "-o", tmp_path / "r.onnx", "--input", "y=images")
    assert proc.returncode == 1 and "--input y: not a graph input (they are: x)" in proc.stderr


def test_rename_file_python_matches_native(tmp_path):
    pytest.importorskip("trtdeploy._C")
    src = fixture_path("retina_head")
    mapping = {"input": "image", "boxes": "loc"}
    trtdeploy.rename_file(src, tmp_path / "a.onnx", mapping, backend="python")
    trtdeploy.rename_file(src, tmp_path / "b.onnx", mapping, backend="native")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_rename_with_several_data_files_rewrites_each_location(tmp_path):
    """One file per tensor (as torch.onnx writes without all_tensors_to_one_file), one entry written
    value-before-key: each location is rewritten to <out>.data.<i>, the model runs on the same weights."""
    pytest.importorskip("trtdeploy._C")
    m = load_fixture("view_cnn")
    src = tmp_path / "src" / "m.onnx"
    src.parent.mkdir()
    saved = onnx.ModelProto()
    saved.CopyFrom(m)
    onnx.save_model(saved, str(src), save_as_external_data=True, all_tensors_to_one_file=False, size_threshold=0)
    ext = onnx.load(str(src), load_external_data=False)
    t = next(t for t in ext.graph.initializer if t.external_data)
    entries = [(e.key, e.value) for e in t.external_data]
    t.ClearField("external_data")
    loc = next(v for k, v in entries if k == "location")
    for k, v in reversed(entries):
        e = t.external_data.add()
        e.value, e.key = v, k
    onnx.save(ext, str(src))
    locations = sorted({e.value for t in ext.graph.initializer for e in t.external_data if e.key == "location"})
    assert len(locations) == 6 and loc in locations
    info = trtdeploy.rename_file(src, tmp_path / "out" / "r.onnx", {"input": "images"})
    assert sorted(info["data_files"]) == sorted(str(tmp_path / "out" / f"r.onnx.data.{i}") for i in range(6))
    r = onnx.load(str(tmp_path / "out" / "r.onnx"))
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    np.testing.assert_array_equal(ort_run(r, {"images": x})[0], ort_run(m, {"input": x})[0])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r.onnx"] + [f"r.onnx.data.{i}" for i in range(6)]
