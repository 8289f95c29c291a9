"""simplify does not fold from a wrong declared output shape (issue 8, case 2: ddddocr's [T, 1, C] output
declared [1, seqlen] was folded into [1, T*C])."""

from __future__ import annotations

import numpy as np
import onnx
from conftest import fixture_path, load_fixture, ort_run, run_cli

from trtdeploy import simplify


def test_wrong_declared_output_shape_is_dropped_not_folded():
    m = load_fixture("declared_shape_wrong")
    s = simplify(m)
    assert len(s.graph.node) < len(m.graph.node)
    x = np.random.default_rng(0).random((1, 4, 7), dtype=np.float32)
    (want,), (got,) = ort_run(m, {"x": x}), ort_run(s, {"x": x})
    assert want.shape == got.shape == (7, 1, 5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    notes: list[str] = []
    simplify(m, notes=notes)
    assert len(notes) == 1 and notes[0].startswith("output 'y': the model declared [1, seqlen], but the graph "
                                                   "computes [width, 1, 5]")


def test_declared_output_dims_that_agree_are_kept(tmp_path):
    dyn = tmp_path / "d.onnx"
    assert run_cli("dynamic", fixture_path("yolov5_p5_op13"), "-o", dyn).returncode == 0
    s = simplify(onnx.load(str(dyn)))
    assert s.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_cli_simplify_checks_and_says_what_it_dropped(tmp_path):
    out = tmp_path / "s.onnx"
    proc = run_cli("simplify", fixture_path("declared_shape_wrong"), "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "simplify dropped the declared shape" in proc.stderr
    assert "checked: same outputs at x:1x4x64 (random)" in proc.stderr and "x:1x4x192" in proc.stderr
    dims = [d.dim_param or d.dim_value for d in onnx.load(str(out)).graph.output[0].type.tensor_type.shape.dim]
    assert len(dims) == 3 and dims[1:] == [1, 5]
