"""The ONNX backend test corpus: every case that passes in onnxruntime must still pass after
renaming every tensor (both implementations, byte-identical) and after make_dynamic (or be refused
with an error naming a node). Node cases come from onnx's own generators
(onnx.backend.test.case, present in every onnx release; newer wheels no longer ship their data),
the model cases from the data folders the installed wheel ships."""

from __future__ import annotations

import glob
import os

import numpy as np
import onnx
import pytest

from trtdeploy import TrtDeployError, make_dynamic, rename
from trtdeploy.surgery.names import tensor_names

ROOT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
pytestmark = pytest.mark.slow


def _generated():
    """name -> (model, inputs, outputs) from onnx's node test-case generators."""
    import warnings

    from onnx.backend.test.case.node import collect_testcases

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    for c in cases:
        if not c.data_sets or c.model is None:
            continue
        ins, outs = c.data_sets[0]
        if all(isinstance(v, (np.ndarray, np.generic)) for v in list(ins) + list(outs)):
            out[c.name] = (c.model, [np.asarray(v) for v in ins], [np.asarray(v) for v in outs])
    return out


GENERATED = _generated()
ON_DISK = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(ROOT, "*", "*", "model.onnx"))
                 if os.sep + "node" + os.sep not in p)
CASES = sorted(GENERATED) + ON_DISK


def _load_set(case):
    sets = sorted(glob.glob(os.path.join(case, "test_data_set_*")))
    if not sets:
        return None
    inputs, outputs = [], []
    for kind, acc in (("input", inputs), ("output", outputs)):
        for f in sorted(glob.glob(os.path.join(sets[0], f"{kind}_*.pb")), key=lambda p: int(p.rsplit("_", 1)[1][:-3])):
            t = onnx.TensorProto()
            with open(f, "rb") as fh:
                t.ParseFromString(fh.read())
            if not t.name and not t.dims and not t.raw_data and t.data_type == 0:
                return None  # a sequence/optional value: not a plain tensor
            try:
                acc.append(onnx.numpy_helper.to_array(t))
            except Exception:  # noqa: BLE001 - a sequence/optional parsed as a tensor
                return None
    return inputs, outputs


def _run(model, inputs):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    return sess.run(None, dict(zip(names, inputs)))


def _same(got, want):
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape:
            return False
        if w.dtype.kind in "fc":
            if not np.allclose(g, w, rtol=1e-3, atol=1e-5, equal_nan=True):
                return False
        elif not np.array_equal(g, w):
            return False
    return True


_baseline: dict[str, tuple] = {}


def baseline(case):
    """(model, inputs, outputs) if the case passes in onnxruntime as shipped, else None."""
    if case not in _baseline:
        result = None
        if case in GENERATED:
            model, *data = GENERATED[case]
        else:
            data = _load_set(case)
            model = onnx.load(os.path.join(case, "model.onnx")) if data is not None else None
        if data is not None:
            try:
                if _same(_run(model, data[0]), data[1]):
                    result = (model, *data)
            except Exception:  # noqa: BLE001 - unsupported in this onnxruntime: not a passing case
                result = None
        _baseline[case] = result
    return _baseline[case]


def passing(case):
    """(model, inputs, outputs) of a case that passes in onnxruntime as shipped; skips the others."""
    base = baseline(case)
    if base is None:
        pytest.skip("does not pass in onnxruntime as shipped")
    return base


def test_corpus_is_there():
    assert len(GENERATED) > 1000


@pytest.mark.parametrize("case", CASES, ids=lambda c: os.path.basename(c))
def test_rename_every_tensor(case):
    model, inputs, outputs = passing(case)
    names = tensor_names(model)
    mapping = {n: f"renamed_{i}" for i, n in enumerate(names)}
    py = rename(model, mapping, backend="python")
    try:
        from trtdeploy import _C  # noqa: F401

        native = rename(model, mapping, backend="native")
        assert native.SerializeToString() == py.SerializeToString()
    except ImportError:
        pass
    assert not set(names) & set(tensor_names(py))
    assert _same(_run(py, inputs), outputs)


@pytest.mark.parametrize("case", CASES, ids=lambda c: os.path.basename(c))
def test_make_dynamic_keeps_passing(case):
    model, inputs, outputs = passing(case)
    try:
        dyn = make_dynamic(model)
    except TrtDeployError as exc:
        msg = str(exc)
        # refusals must say why: a node, or that there is nothing to make dynamic
        assert "node" in msg or "no data input" in msg or "input '" in msg or "nothing to do" in msg, msg
        return
    assert _same(_run(dyn, inputs), outputs)
