"""remove-node and insert-cast on real models, checked with onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import load_fixture, ort_run
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from trtdeploy import TrtDeployError, insert_cast, remove_nodes


def chain_model():
    """x -> Relu(r1) -> Identity(idn) -> Sigmoid(sig) -> y; plus a Cast to int64 output."""
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r1"),
             helper.make_node("Identity", ["a"], ["b"], name="idn"),
             helper.make_node("Sigmoid", ["b"], ["y"], name="sig"),
             helper.make_node("Mul", ["a", "b"], ["prod"], name="mul"),
             helper.make_node("Identity", ["prod"], ["z"], name="last")]
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TP.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [2, 3]),
                           helper.make_tensor_value_info("z", TP.FLOAT, [2, 3])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


X = np.array([[-1, 0.5, 2], [3, -4, 0.25]], np.float32)


def test_remove_middle_node_reconnects():
    m = chain_model()
    r = remove_nodes(m, ["idn"])
    assert [n.name for n in r.graph.node] == ["r1", "sig", "mul", "last"]
    onnx.checker.check_model(r)
    for got, want in zip(ort_run(r, {"x": X}), ort_run(m, {"x": X})):
        np.testing.assert_allclose(got, want)


def test_remove_node_feeding_graph_output_keeps_name():
    m = chain_model()
    r = remove_nodes(m, ["last"])
    assert [o.name for o in r.graph.output] == ["y", "z"]
    assert "z" in r.graph.node[-1].output  # mul now writes z
    np.testing.assert_allclose(ort_run(r, {"x": X})[1], ort_run(m, {"x": X})[1])


def test_remove_drops_dangling_weights():
    m = load_fixture("flatten")
    conv = next(n for n in m.graph.node if n.op_type == "Relu")
    r = remove_nodes(m, [conv.name])
    assert len(r.graph.node) == len(m.graph.node) - 1
    x = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    assert ort_run(r, {"input": x})[0].shape == (1, 5)


def test_remove_ambiguous_and_unknown():
    m = chain_model()
    with pytest.raises(TrtDeployError, match="'mul' .*2 data inputs"):
        remove_nodes(m, ["mul"])
    with pytest.raises(TrtDeployError, match="no node named 'sigg'.*'sig'"):
        remove_nodes(m, ["sigg"])


def test_insert_cast_on_output():
    m = load_fixture("view_cnn")
    r = insert_cast(m, "logits", "float16")
    assert r.graph.output[0].name == "logits"
    assert r.graph.output[0].type.tensor_type.elem_type == TP.FLOAT16
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    (got,), (want,) = ort_run(r, {"input": x}), ort_run(m, {"input": x})
    assert got.dtype == np.float16
    np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-2)


def test_insert_cast_intermediate_and_type_error():
    m = chain_model()
    r = insert_cast(m, "a", "float64")  # everything downstream runs in float64 now
    assert [o.type.tensor_type.elem_type for o in r.graph.output] == [TP.DOUBLE, TP.DOUBLE]
    for got, want in zip(ort_run(r, {"x": X}), ort_run(m, {"x": X})):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-6)
    with pytest.raises(TrtDeployError, match="Sigmoid"):
        insert_cast(m, "b", "int64")  # Sigmoid has no int64 kernel/type
    r2 = insert_cast(m, "y", "float64")
    assert ort_run(r2, {"x": X})[0].dtype == np.float64
    with pytest.raises(TrtDeployError, match="unknown dtype"):
        insert_cast(m, "y", "float128")
    with pytest.raises(TrtDeployError, match="no tensor named 'nope'"):
        insert_cast(m, "nope", "int64")


@pytest.mark.parametrize("node", ["/Reshape", "/conv1/Conv"])
def test_remove_refuses_a_node_that_changes_shape(node, tmp_path):
    """Issue 8, case 6: bypassing a Reshape or a Conv hands readers a tensor of another shape; the
    command wrote a model that failed the checker/onnxruntime and exited 0."""
    from conftest import fixture_path, run_cli

    proc = run_cli("remove-node", fixture_path("view_cnn"), "-o", tmp_path / "r.onnx", "--node", node)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "r.onnx").exists()
    with pytest.raises(TrtDeployError, match=r"cannot remove node .*its input '.*' is float \[1, .*\] but its "
                                             r"output '.*' is float \[1, .*\]; what reads"):
        remove_nodes(load_fixture("view_cnn"), [node])


def test_remove_refuses_a_node_that_changes_type():
    nodes = [helper.make_node("Cast", ["x"], ["xi"], name="to_int", to=TP.INT64),
             helper.make_node("Identity", ["xi"], ["y"], name="out")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TP.INT64, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(TrtDeployError, match=r"input 'x' is float \[2\] but its output 'xi' is int64 \[2\]; .*type"):
        remove_nodes(m, ["to_int"])


def gather_model():
    """An int64 index input (a token id) read by Gather: TensorRT wants int32 inputs."""
    emb = numpy_helper.from_array(np.arange(40, dtype=np.float32).reshape(10, 4), "emb")
    nodes = [helper.make_node("Gather", ["emb", "ids"], ["vec"], name="lookup", axis=0),
             helper.make_node("Relu", ["vec"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("ids", TP.INT64, [2, 3])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [2, 3, 4])], initializer=[emb])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_insert_cast_on_a_graph_input_changes_its_dtype(tmp_path):
    from conftest import run_cli

    m = gather_model()
    r = insert_cast(m, "ids", "int32")
    assert r.graph.input[0].name == "ids" and r.graph.input[0].type.tensor_type.elem_type == TP.INT32
    cast = r.graph.node[0]
    assert cast.op_type == "Cast" and list(cast.input) == ["ids"] and cast.attribute[0].i == TP.INT64
    onnx.checker.check_model(r, full_check=True)
    ids = np.array([[0, 3, 9], [1, 1, 2]], np.int64)
    np.testing.assert_array_equal(ort_run(r, {"ids": ids.astype(np.int32)})[0], ort_run(m, {"ids": ids})[0])
    src = tmp_path / "g.onnx"
    onnx.save(m, str(src))
    proc = run_cli("insert-cast", src, "-o", tmp_path / "c.onnx", "--tensor", "ids", "--to", "int32")
    assert proc.returncode == 0, proc.stderr
    assert "checked: same outputs at ids:2x3" in proc.stderr


def test_remove_node_before_an_output_keeps_its_declared_type_when_inference_cannot_size_it(tmp_path):
    """PP-OCR's cls model ends in Identity -> output after a computed Reshape: removing the Identity
    cleared the output's type (the checker then refuses the model)."""
    from conftest import run_cli

    nodes = [helper.make_node("Gelu", ["x"], ["a"], name="gelu", domain="com.microsoft"),
             helper.make_node("Identity", ["a"], ["y"], name="idn")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [2, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    r = remove_nodes(m, ["idn"])
    assert r.graph.output[0].type == m.graph.output[0].type
    src = tmp_path / "m.onnx"
    onnx.save(m, str(src))
    proc = run_cli("remove-node", src, "-o", tmp_path / "r.onnx", "--node", "idn")
    assert proc.returncode == 0, proc.stderr
    assert "checked: same outputs at x:2x3" in proc.stderr


def test_bfloat16_cast_is_checked_by_the_checker_only(tmp_path):
    """onnxruntime's Python API cannot return or feed bfloat16: `insert-cast --to bf16` was a RuntimeError
    traceback on an output and 'Unexpected input data type' on an input. Now: the checker ran, and a note
    says why onnxruntime did not."""
    from conftest import fixture_path, run_cli

    for tensor, what in (("out", "the new model's output 'out' is bfloat16, which onnxruntime's Python API cannot return"),
                         ("input", "the new model's input 'input' is bfloat16, which onnxruntime's Python API cannot feed")):
        out = tmp_path / f"{tensor}.onnx"
        proc = run_cli("insert-cast", fixture_path("flatten"), "-o", out, "--tensor", tensor, "--to", "bf16")
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert "onnx.checker (full): ok" in proc.stderr and f"note: only onnx.checker ran: {what}" in proc.stderr
    proc = run_cli("dynamic", tmp_path / "input.onnx", "-o", tmp_path / "d.onnx")
    assert proc.returncode == 0 and "the input model's input 'input' is bfloat16" in proc.stderr, proc.stderr
    proc = run_cli("expose", tmp_path / "out.onnx", "--all")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot run the model: its output 'out' is bfloat16" in proc.stderr


def test_insert_cast_reaches_readers_inside_bodies(tmp_path):
    """A tensor of the main graph read inside an If branch: the branch kept reading the uncast tensor
    (only a graph input's cast reached bodies)."""
    import onnx
    from onnx import TensorProto as TP
    from onnx import helper

    from trtdeploy.surgery.nodes import insert_cast

    then_g = helper.make_graph([helper.make_node("Identity", ["a"], ["t"], name="then_id")], "then", [],
                               [helper.make_tensor_value_info("t", TP.FLOAT, [2])])
    else_g = helper.make_graph([helper.make_node("Neg", ["a"], ["e"], name="else_neg")], "else", [],
                               [helper.make_tensor_value_info("e", TP.FLOAT, [2])])
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then_g, else_branch=else_g)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [2]),
                                       helper.make_tensor_value_info("c", TP.BOOL, [])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    casts: dict = {}
    out = insert_cast(m, "a", "float16", casts)
    branch = next(n for n in out.graph.node if n.op_type == "If")
    assert [n.input[0] for a in branch.attribute for n in a.g.node] == ["a_float16", "a_float16"]
    assert casts == {"y": TP.FLOAT16} and out.graph.output[0].type.tensor_type.elem_type == TP.FLOAT16
    onnx.checker.check_model(out, full_check=True)
    x = np.array([1.5, -2.0], np.float32)
    for c in (True, False):
        (got,) = ort_run(out, {"x": x, "c": np.array(c)})
        assert got.dtype == np.float16 and np.array_equal(got, (np.maximum(x, 0) * (1 if c else -1)).astype(np.float16))


def test_remove_node_whose_dims_cannot_be_compared_gives_the_shape_message():
    """A Transpose [1, n, 16] -> [1, 16, n] read by a MatMul with a [4, 8] weight: a symbol against a number
    cannot be compared, so the removal went on and onnx.checker/onnxruntime failed on the result. The
    result's shape inference now decides, and the message is remove-node's own."""
    import numpy as np
    from onnx import TensorProto as TP
    from onnx import helper, numpy_helper

    from trtdeploy import TrtDeployError, remove_nodes

    w = numpy_helper.from_array(np.ones((4, 8), np.float32), "W")
    g = helper.make_graph([helper.make_node("Transpose", ["x"], ["t"], name="tr", perm=[0, 2, 1]),
                           helper.make_node("MatMul", ["t", "W"], ["y"], name="mm")], "g",
                          [helper.make_tensor_value_info("x", TP.FLOAT, [1, "n", 16])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [1, 16, 8])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(TrtDeployError, match=r"^cannot remove node 'tr' \(Transpose\): its input 'x' does not fit "
                                             r"what reads its output 't' \(onnx shape inference of the result: .*MatMul"):
        remove_nodes(m, ["tr"])


def test_unnamed_node_label_reads_as_a_sentence():
    """'cannot remove node Constant node producing ...' was garbled."""
    from onnx import helper

    from trtdeploy._graph import node_label

    assert node_label(helper.make_node("Constant", [], ["c"], value_float=1.0)) == "the Constant node that produces 'c'"
