"""make_dynamic on real exports: the result runs at other sizes and matches the original per sample."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
from conftest import load_fixture, ort_run

from trtdeploy import TrtDeployError, make_dynamic, parse_dims
from trtdeploy._graph import dims_of
from trtdeploy._shapes import set_dims
from trtdeploy.surgery.dims import _factorize, default_dims, is_shape_input

BATCH_CASES = ["view_cnn", "const_reshape", "flatten", "retina_head", "cls_token", "fpn_interp",
               "yolov5_p5_op11", "yolov5_p5_op13", "yolov5_p5_op17", "yolov5_p5_dynamo", "yolov5_p5_b2_rect",
               "yolov5_p6_op13"]


def per_sample_check(orig: onnx.ModelProto, dyn: onnx.ModelProto, batch: int):
    inp = orig.graph.input[0]
    shape = dims_of(inp)
    n = shape[0]
    x = np.random.default_rng(batch).random([batch * n] + shape[1:], dtype=np.float32)
    got = ort_run(dyn, {inp.name: x})
    for i in range(batch):
        want = ort_run(orig, {inp.name: x[i * n:(i + 1) * n]})
        for g, w in zip(got, want):
            assert g.shape[0] == batch * n
            np.testing.assert_allclose(g[i * n:(i + 1) * n], w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", BATCH_CASES)
def test_batch_dynamic_runs_and_matches(name):
    orig = load_fixture(name)
    dyn = make_dynamic(orig)
    assert dims_of(dyn.graph.input[0])[0] == "batch"
    for out in dyn.graph.output:
        assert dims_of(out)[0] == "batch", out.name
    assert not dyn.graph.value_info
    onnx.checker.check_model(dyn)
    per_sample_check(orig, dyn, 3)
    # the original model is untouched (pure function)
    assert dims_of(orig.graph.input[0])[0] != "batch"


def test_view_one_minus_one_becomes_copy_dim():
    dyn = make_dynamic(load_fixture("view_cnn"))
    reshapes = [n for n in dyn.graph.node if n.op_type == "Reshape"]
    assert reshapes
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in dyn.graph.initializer}
    target = inits[reshapes[0].input[1]]
    assert list(target) == [0, -1]  # x.view(1, -1) -> copy the batch dim


@pytest.mark.parametrize("name", ["retina_head", "fpn_interp", "view_cnn"])
def test_height_width_dynamic(name):
    orig = load_fixture(name)
    inp = orig.graph.input[0].name
    spec = {inp: {0: "batch", 2: "height", 3: "width"}} if name != "view_cnn" else {inp: {0: "batch"}}
    dyn = make_dynamic(orig, spec)
    per_sample_check(orig, dyn, 2)
    if name == "view_cnn":
        return
    h, w = dims_of(orig.graph.input[0])[2:]
    x = np.random.default_rng(0).random([2, 3, 2 * h, h + 32], dtype=np.float32)
    outs = ort_run(dyn, {inp: x})
    single = [ort_run(dyn, {inp: x[i:i + 1]}) for i in range(2)]
    for k, o in enumerate(outs):
        for i in range(2):
            np.testing.assert_allclose(o[i:i + 1], single[i][k], rtol=1e-5, atol=1e-5)
    if name == "retina_head":  # anchors scale with the area
        assert outs[0].shape[1] == 168 * (2 * h * (h + 32)) // (h * w)


@pytest.mark.parametrize("name", ["yolov5_p5_op13", "yolov5_p5_dynamo", "yolov5_p6_op13"])
def test_yolo_grid_refuses_hw(name):
    m = load_fixture(name)
    with pytest.raises(TrtDeployError, match=r"node .*Add.*grid|different values"):
        make_dynamic(m, {"images": {0: "batch", 2: "height", 3: "width"}})


def test_gather_fixed_sample_refused():
    with pytest.raises(TrtDeployError, match="take_first"):
        make_dynamic(load_fixture("gather_first"))


def test_shape_input_untouched():
    m = load_fixture("resize_sizes_input")
    assert is_shape_input(m, "sizes")
    assert set(default_dims(m)) == {"image"}
    dyn = make_dynamic(m)
    sizes = next(i for i in dyn.graph.input if i.name == "sizes")
    assert dims_of(sizes) == [4]
    x = np.random.default_rng(0).random((3, 2, 8, 8), dtype=np.float32)
    (out,) = ort_run(dyn, {"image": x, "sizes": np.array([3, 2, 12, 12], np.int64)})
    assert out.shape == (3, 2, 12, 12)


def test_errors_name_the_input_and_axis():
    m = load_fixture("view_cnn")
    with pytest.raises(TrtDeployError, match="no graph input named 'images'"):
        make_dynamic(m, {"images": {0: "batch"}})
    with pytest.raises(TrtDeployError, match="rank 4; axis 7"):
        make_dynamic(m, {"input": {7: "x"}})
    with pytest.raises(TrtDeployError, match="AXIS=SYMBOL"):
        parse_dims("input:batch")
    assert parse_dims("images:0=batch,2=height;mask:0=batch") == {"images": {0: "batch", 2: "height"},
                                                                  "mask": {0: "batch"}}


def test_static_batch_two_keeps_results():
    m = load_fixture("yolov5_p5_b2_rect")
    dyn = make_dynamic(m)
    per_sample_check(m, dyn, 2)  # batch 4 run = two runs of the original batch-2 model


def test_factorize_blocks():
    assert _factorize([1, 255, 80, 80], [1, 3, 85, 80, 80]) == [([0], [0]), ([1], [1, 2]), ([2], [3]), ([3], [4])]
    assert _factorize([1, 3, 4], [3, 4]) == [([0, 1], [0]), ([2], [1])]
    assert _factorize([2, 3], [7]) is None


def test_attention_batch_and_sequence_dynamic():
    """view(b, n, 3, h, d) / reshape(b, n, d) with b and n baked, and a class-token read-out x[:, 0]
    (a fixed index along the sequence, which stays valid at any length)."""
    from trtdeploy import verify_dynamic

    m = load_fixture("token_encoder")
    dyn = make_dynamic(m, {"input": {0: "batch", 1: "seq"}})
    report = verify_dynamic(m, dyn)
    assert [c["check"] for c in report["checks"]][-1].startswith("seq=32")
    x = np.random.default_rng(0).random((2, 40, 32), dtype=np.float32)
    (out,) = ort_run(dyn, {"input": x})
    assert out.shape == (2, 5)


def test_batch_folded_into_heads():
    """nn.MultiheadAttention's static export folds the batch into the heads ([S, B, 32] -> [S, B*4, 8])
    and back ([S*B, 32] -> [S, B, 32]); the layout of each merged axis tells which target dim owns
    the batch. At batch 1 (size-1 axes fit anywhere) and with seq dynamic too (two dynamic factors
    in one axis) it is ambiguous: refused, naming the node."""
    from trtdeploy import verify_dynamic

    m = load_fixture("torch_mha_b2")
    report = verify_dynamic(m, make_dynamic(m))
    assert [c["check"] for c in report["checks"]] == ["batch=2 vs original", "batch=4 vs original",
                                                      "batch=6 vs original"]
    with pytest.raises(TrtDeployError, match=r"node '.*Reshape.*' \(Reshape\) splits dynamic axis"):
        make_dynamic(m, {"input": {0: "batch", 1: "seq"}})
    with pytest.raises(TrtDeployError, match=r"Reshape.*dynamic axis of size 1"):
        make_dynamic(load_fixture("torch_mha_b1"))


def test_fixed_size_resize_is_listed_as_a_guess_not_verified(tmp_path):
    """Issue 8, case 5: a Resize to a fixed 16x16 whose sizes equal the input's half was rewritten to
    follow the input and the H/W result called "verified". Now every such node is listed with the flag
    that keeps it fixed, and the H/W line says what it shows."""
    from conftest import fixture_path, run_cli

    out = tmp_path / "d.onnx"
    proc = run_cli("dynamic", fixture_path("fixed_resize"), "-o", out, "--dims", "x:0=batch,2=height,3=width")
    assert proc.returncode == 0, proc.stderr
    guesses = [line for line in proc.stderr.splitlines() if line.startswith("guessed:")]
    assert len(guesses) == 1 and "'resize' (Resize)" in guesses[0] and "--keep-fixed resize" in guesses[0]
    hw = [line for line in proc.stderr.splitlines() if "height=" in line]
    assert len(hw) == 1 and "no original at that size to compare with" in hw[0] and "verified" not in proc.stderr
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    assert ort_run(onnx.load(str(out)), {"x": x})[0].shape == (2, 4, 32, 32)  # follows the input
    kept = tmp_path / "k.onnx"
    proc = run_cli("dynamic", fixture_path("fixed_resize"), "-o", kept, "--dims", "x:0=batch,2=height,3=width",
                   "--keep-fixed", "resize")
    assert proc.returncode == 0, proc.stderr
    assert "guessed:" not in proc.stderr
    assert ort_run(onnx.load(str(kept)), {"x": x})[0].shape == (2, 4, 16, 16)  # interpolate(size=16)
    guesses = []
    make_dynamic(load_fixture("fixed_resize"), {"x": {0: "batch"}}, guesses=guesses)
    assert guesses == []  # the batch axis of a Resize is no guess
    with pytest.raises(TrtDeployError, match="--keep-fixed: no node named 'nope'"):
        make_dynamic(load_fixture("fixed_resize"), keep_fixed={"nope"})


def test_dims_for_several_inputs_in_one_flag():
    assert parse_dims("input:0=batch,state:1=batch") == {"input": {0: "batch"}, "state": {1: "batch"}}
    assert parse_dims("images:0=batch,2=height,3=width;mask:0=batch") == {
        "images": {0: "batch", 2: "height", 3: "width"}, "mask": {0: "batch"}}
    assert parse_dims("input:0:0=b,1=s") == {"input:0": {0: "b", 1: "s"}}  # TF-style names keep their ':'
    with pytest.raises(TrtDeployError, match="expected NAME:AXIS=SYMBOL"):
        parse_dims("0=batch")


def test_default_batch_axis_that_does_not_fit_is_explained(tmp_path):
    """silero-vad's static export: input [1, n] and state [2, 1, 128]. The default leaves the state
    static and onnxruntime fails inside the LSTM; the message says which input looks wrong and the
    --dims that names it, which then works."""
    from conftest import fixture_path, run_cli

    proc = run_cli("dynamic", fixture_path("lstm_state"), "-o", tmp_path / "d.onnx")
    assert proc.returncode == 1 and not (tmp_path / "d.onnx").exists()
    err = proc.stderr.strip().splitlines()[-1]
    assert "'state' was left static, but its axis 1 has the batch size 1" in err
    assert "--dims input:0=batch,state:1=batch" in err and "Non-zero status code" not in err
    proc = run_cli("dynamic", fixture_path("lstm_state"), "-o", tmp_path / "d.onnx", "--dims", "input:0=batch,state:1=batch")
    assert proc.returncode == 0, proc.stderr
    assert "batch=3 vs original" in proc.stderr


def test_errors_that_are_not_the_default_axes_pass_unchanged(tmp_path):
    """Every error of `dynamic` with the default axes was reworded as 'the default batch axes do not fit
    this model', suggesting exactly the default: a typo in --keep-fixed, a Reshape the rewrite refuses. Only
    an input that looks wrong earns a hint, after the error as it is."""
    from conftest import fixture_path, run_cli

    def error(*args):
        proc = run_cli("dynamic", *args, "-o", tmp_path / "d.onnx")
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        return proc.stderr.strip().splitlines()[-1].removeprefix("trtdeploy dynamic: error: ")

    assert error(fixture_path("flatten"), "--keep-fixed", "nope") == "--keep-fixed: no node named 'nope'"
    mha = error(fixture_path("torch_mha_b1"))
    assert mha.startswith("cannot make the model dynamic: node ") and "default batch axes" not in mha and "--dims" not in mha
    gather = error(fixture_path("gather_first"))
    assert gather.startswith("cannot make the model dynamic: node 'take_first' (Gather)") and "default batch axes" not in gather
    assert gather.endswith("'x' (taken as batched on axis 0) is read by the failing node 'take_first' (Gather): if its "
                           "batch is on another axis, or it has none, name the axes with --dims NAME:AXIS=SYMBOL")


def test_recurrent_initial_state_batch_is_axis_1():
    from onnx import TensorProto as TP
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((1, 16, 3)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal((1, 16, 4)).astype(np.float32), "R")]
    node = helper.make_node("LSTM", ["x", "W", "R", "", "", "h0", "c0"], ["y", "hn"], name="lstm", hidden_size=4)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TP.FLOAT, [5, 1, 3]),
                                        helper.make_tensor_value_info("h0", TP.FLOAT, [1, 1, 4]),
                                        helper.make_tensor_value_info("c0", TP.FLOAT, [1, 1, 4])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [5, 1, 1, 4]),
                           helper.make_tensor_value_info("hn", TP.FLOAT, [1, 1, 4])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    assert default_dims(m) == {"x": {1: "batch"}, "h0": {1: "batch"}, "c0": {1: "batch"}}  # [seq, batch, ...]
    from trtdeploy import verify_dynamic

    report = verify_dynamic(m, make_dynamic(m))
    assert [c["check"] for c in report["checks"]] == ["batch=1 vs original", "batch=2 vs original",
                                                      "batch=3 vs original"]


def test_already_dynamic_says_so(tmp_path):
    from conftest import fixture_path, run_cli

    proc = run_cli("dynamic", fixture_path("yolov5_p5_dynamic_op12"), "-o", tmp_path / "d.onnx")
    assert proc.returncode == 1
    assert "nothing to do: 'images' axis 0 is dynamic already" in proc.stderr
    assert "no dim that is static" not in proc.stderr and not (tmp_path / "d.onnx").exists()


def _tiny(nodes, x_dims, outputs, inits=()):
    from onnx import TensorProto as TP
    from onnx import helper

    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, x_dims)],
                          [helper.make_tensor_value_info(n, TP.FLOAT, d) for n, d in outputs], initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_check_splits_a_batch_folded_into_another_axis_and_outputs_without_a_batch():
    """[1, 3, 8] -> Reshape(-1, 8) -> [3, 8]: at batch 2 the output is [6, 8] and sample 1 is rows 3..5 (the
    check took rows 1..3 and refused a correct model). An output that does not follow the batch (a
    constant) was an IndexError."""
    from onnx import helper, numpy_helper

    from trtdeploy import verify_dynamic

    fold = _tiny([helper.make_node("Reshape", ["x", "sh"], ["r"]), helper.make_node("Relu", ["r"], ["y"])],
                 [1, 3, 8], [("y", [3, 8])], [numpy_helper.from_array(np.array([-1, 8], np.int64), "sh")])
    report = verify_dynamic(fold, make_dynamic(fold))
    assert [c["check"] for c in report["checks"]] == ["batch=1 vs original", "batch=2 vs original", "batch=3 vs original"]
    const = _tiny([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["w"], ["c"])],
                  [1, 8], [("y", [1, 8]), ("c", [4])], [numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")])
    assert verify_dynamic(const, make_dynamic(const))["checks"][-1]["check"] == "batch=3 vs original"
    interleaved = _tiny([helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
                         helper.make_node("Reshape", ["t", "sh"], ["r"]), helper.make_node("Relu", ["r"], ["y"])],
                        ["batch", 3, 8], [("y", [None, 8])], [numpy_helper.from_array(np.array([-1, 8], np.int64), "sh")])
    # the same at batch 1, the samples' rows interleaved at 2: a batch-1 original cannot tell that layout from
    # the outer one, so it is accepted and the report says which it took
    notes = verify_dynamic(fold, interleaved)["notes"]
    assert any("'y': the batch is the inner index" in n and "batch-1 original cannot tell" in n for n in notes), notes


def _fold_model(perm, centre=False):
    """x [2, 5, 4] -> Relu -> Transpose(perm) -> Reshape [10, 4]: perm (0, 1, 2) folds the batch as the outer
    index of axis 0 ([B*S, D]), (1, 0, 2) as the inner one ([S*B, D]). centre: x minus its mean over the
    batch first, which mixes samples (made dynamic, the mean spans the whole batch: truly wrong)."""
    from onnx import TensorProto as TP
    from onnx import helper

    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Transpose", ["r"], ["t"], name="tr", perm=list(perm)),
             helper.make_node("Reshape", ["t", "shape"], ["y"], name="rs")]
    if centre:
        nodes[:0] = [helper.make_node("ReduceMean", ["x0"], ["m"], name="mean", axes=[0], keepdims=1),
                     helper.make_node("Sub", ["x0", "m"], ["x"], name="centre")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x0" if centre else "x", TP.FLOAT, [2, 5, 4])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [10, 4])],
                          [helper.make_tensor("shape", TP.INT64, [2], [10, 4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_batch_folded_as_the_inner_index_is_checked_so(tmp_path):
    """Review: Relu -> Transpose(1, 0, 2) -> Reshape [S*B, D] folds the batch as the inner index: the check
    took blocks of S rows per sample and refused make_dynamic's correct result ("the dynamic model is
    wrong"). Both layouts are tried; the one that matches is held for every block and batch size, and a
    model that mixes samples is still refused, saying both were tried."""
    from conftest import ort_run, run_cli

    x = np.random.default_rng(0).standard_normal((4, 5, 4)).astype(np.float32)
    for name, perm in (("inner", (1, 0, 2)), ("outer", (0, 1, 2))):
        src, out = tmp_path / f"{name}.onnx", tmp_path / f"{name}_dyn.onnx"
        onnx.save(_fold_model(perm), src)
        proc = run_cli("dynamic", src, "-o", out)
        assert proc.returncode == 0, proc.stderr
        assert "checked: batch=6 vs original" in proc.stderr
        assert ("'y': the batch is the inner index" in proc.stderr) == (name == "inner"), proc.stderr
        assert "batch-1 original" not in proc.stderr
        (y,) = ort_run(onnx.load(out), {"x": x})
        np.testing.assert_array_equal(y, np.maximum(x, 0).transpose(perm).reshape(-1, 4))
    for name, perm in (("mixed_inner", (1, 0, 2)), ("mixed_outer", (0, 1, 2))):
        src, out = tmp_path / f"{name}.onnx", tmp_path / f"{name}_dyn.onnx"
        onnx.save(_fold_model(perm, centre=True), src)
        proc = run_cli("dynamic", src, "-o", out)
        assert proc.returncode == 1 and not out.exists()
        assert "at batch=4, samples 0..1: the dynamic model is wrong" in proc.stderr, proc.stderr
        assert "the batch was taken both as the outer and as the inner index of axis 0" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_given_values_are_used_where_they_fit(tmp_path):
    """--inputs of the original's shape, with height/width made dynamic: at the other height/width they do not
    fit (a ValueError traceback); the check uses random values there and says so."""
    from conftest import fixture_path, run_cli

    x = np.random.default_rng(3).random((1, 3, 32, 32), dtype=np.float32)
    np.savez(tmp_path / "x.npz", input=x)
    out = tmp_path / "hw.onnx"
    proc = run_cli("dynamic", fixture_path("fpn_interp"), "-o", out, "--dims", "input:0=batch,2=h,3=w",
                   "--inputs", tmp_path / "x.npz")
    assert proc.returncode == 0, proc.stderr
    assert "the --inputs values do not fit the other sizes checked, where the inputs are random: 'input' at 2x3x64x64" in proc.stderr
    proc = run_cli("verify", fixture_path("fpn_interp"), out, "--inputs", tmp_path / "x.npz")
    assert proc.returncode == 0 and "'input' at 2x3x64x64" in proc.stdout, proc.stderr
    proc = run_cli("dynamic", fixture_path("view_cnn"), "-o", tmp_path / "v.onnx", "--dims", "input:0=batch,2=h,3=w",
                   "--inputs", tmp_path / "x.npz")  # its Gemm needs 32x32: refused in one line
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "the dynamic model does not run at h=64, w=64, batch=2 (onnxruntime failed: node '/fc/Gemm'" in proc.stderr


def test_body_shapes_follow_the_new_batch():
    """If/Loop bodies declared their outputs at the old batch ([1, 4]): onnxruntime refused the made-dynamic
    if_model at batch 2 (and --no-verify wrote it so). Their static sizes are dropped, their ranks kept."""
    from trtdeploy import verify_dynamic
    from trtdeploy._graph import iter_graphs

    for name in ("if_model", "loop_model"):
        m = load_fixture(name)
        if name == "if_model":
            m = _if_decided_by(m, "constant")  # its own condition reads x's values: refused (test below)
        dyn = make_dynamic(m)
        assert dims_of(dyn.graph.output[0])[0] != 1  # was declared [1, 4] (inferred from the old bodies)
        stale = copy.deepcopy(dyn)
        set_dims(stale.graph.output[0], dims_of(m.graph.output[0]))
        with pytest.raises(TrtDeployError, match=r"output '\w+' is declared \[1, \d\] but has shape \[2, \d\] at "
                                                 r"batch=2"):  # the check sees it
            verify_dynamic(m, stale)
        bodies = list(iter_graphs(dyn.graph))[1:]
        assert bodies and all(dims_of(vi) == [None] * len(dims_of(vi)) for b in bodies for vi in list(b.input) + list(b.output)
                              if dims_of(vi) is not None)
        assert [c["check"] for c in verify_dynamic(m, dyn)["checks"]] == [f"batch={b} vs original" for b in (1, 2, 3)]
        x = np.random.default_rng(0).random((2, dims_of(m.graph.input[0])[1]), dtype=np.float32)
        assert ort_run(dyn, {"x": x})[0].shape[0] == 2


def _if_decided_by(m: onnx.ModelProto, how: str) -> onnx.ModelProto:
    """if_model with its condition from a constant, from x's shape, from x's values (as shipped), or from
    the shape of NonZero(x) (sized by the values)."""
    from onnx import helper, numpy_helper

    m = copy.deepcopy(m)
    g = m.graph
    keep = [n for n in g.node if n.op_type == "If"]
    extra = {
        "constant": [],
        "shape": [helper.make_node("Size", ["x"], ["n"], name="size"),
                  helper.make_node("Greater", ["n", "zero_i"], ["cond"], name="gt")],
        "values": [n for n in g.node if n.op_type != "If"],
        "nonzero": [helper.make_node("NonZero", ["x"], ["nz"], name="nonzero"),
                    helper.make_node("Size", ["nz"], ["n"], name="size"),
                    helper.make_node("Greater", ["n", "zero_i"], ["cond"], name="gt")],
    }[how]
    del g.node[:]
    g.node.extend(extra + keep)
    g.initializer.append(numpy_helper.from_array(np.array(0, np.int64), "zero_i"))
    if how == "constant":
        g.initializer.append(numpy_helper.from_array(np.array(True), "cond"))
    return m


def test_a_condition_from_the_batch_values_is_refused():
    """if_model decides its branch from sum(x) > 0: made batch-dynamic, a batch [[1,1,1,1], [-3,-3,-3,-3]]
    gave sample 0 the else branch ([0, 0, 0, 0] where the original gives [1, 2, 3, 4]); random inputs in
    [0, 1) never showed it. A condition from x's shape is the same for every sample and is kept."""
    m = load_fixture("if_model")
    for how in ("values", "nonzero"):
        with pytest.raises(TrtDeployError, match=r"cannot make 'x' batch-dynamic: 'branch' \(If\) decides from 'cond', "
                                                 r"which is computed from the input's values"):
            make_dynamic(_if_decided_by(m, how))
    dyn = make_dynamic(_if_decided_by(m, "shape"))
    x = np.array([[1, 1, 1, 1], [-3, -3, -3, -3]], np.float32)
    assert np.allclose(ort_run(dyn, {"x": x})[0], x * np.arange(1, 5, dtype=np.float32))
    assert make_dynamic(m, {"x": {1: "n"}})  # another axis than the batch: one sample, one decision
