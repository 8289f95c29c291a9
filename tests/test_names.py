"""Rename: reference and compiled fast path, on control flow, annotations, and random models."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import fixture_path, load_fixture, ort_run
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
        r = onnx.load(str(dst))
        x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
        np.testing.assert_array_equal(ort_run(r, {"images": x})[0], ort_run(m, {"input": x})[0])
    assert (src_dir / "m.weights").read_bytes() == before
    assert (dst_dir / "m.weights").read_bytes() == before


def test_rename_file_python_matches_native(tmp_path):
    pytest.importorskip("trtdeploy._C")
    src = fixture_path("retina_head")
    mapping = {"input": "image", "boxes": "loc"}
    trtdeploy.rename_file(src, tmp_path / "a.onnx", mapping, backend="python")
    trtdeploy.rename_file(src, tmp_path / "b.onnx", mapping, backend="native")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
