"""Files over 2 GB through the compiled rename (path -> path), built on the wire format directly
(protobuf cannot serialize such a model in one piece)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ld_field, varint
from onnx import TensorProto as TP
from onnx import helper

pytestmark = pytest.mark.slow
_C = pytest.importorskip("trtdeploy._C")

BIG = (2 << 30) + (100 << 20)  # 2.1 GiB of weights
BLOCK = np.random.default_rng(0).integers(0, 256, 16 << 20, dtype=np.uint8).tobytes()




def _model_parts(x: str, big: str):
    """(bytes before the raw data, raw data length): a valid ModelProto whose graph ends with a
    2.1 GiB initializer."""
    g = helper.make_graph([helper.make_node("Relu", [x], ["y"], name="relu")], "big",
                          [helper.make_tensor_value_info(x, TP.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    graph_bytes = g.SerializeToString()
    tensor_head = varint(1 << 3 | 0) + varint(BIG) + varint(2 << 3 | 0) + varint(TP.UINT8) \
        + ld_field(8, len(big)) + big.encode()
    tensor_len = len(tensor_head) + len(ld_field(9, BIG)) + BIG
    graph_len = len(graph_bytes) + len(ld_field(5, tensor_len)) + tensor_len
    m.ClearField("graph")
    head = m.SerializeToString() + ld_field(7, graph_len) + graph_bytes + ld_field(5, tensor_len) + tensor_head \
        + ld_field(9, BIG)
    return head


def _stream_raw(write):
    left = BIG
    while left:
        chunk = BLOCK[: min(left, len(BLOCK))]
        write(chunk)
        left -= len(chunk)


def test_rename_file_over_2gb(tmp_path):
    src, dst = tmp_path / "big.onnx", tmp_path / "renamed.onnx"
    with open(src, "wb") as f:
        f.write(_model_parts("x", "big_weight"))
        _stream_raw(f.write)
    assert src.stat().st_size > 2**31
    code = ("import resource, sys, trtdeploy; "
            "trtdeploy.rename_file(sys.argv[1], sys.argv[2], {'x': 'input', 'big_weight': 'w'}); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)")
    proc = subprocess.run([sys.executable, "-c", code, str(src), str(dst)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    peak = int(proc.stdout.strip().splitlines()[-1])
    src.unlink()
    want = hashlib.sha256(_model_parts("input", "w"))
    _stream_raw(want.update)
    got = hashlib.sha256()
    with open(dst, "rb") as f:
        while chunk := f.read(64 << 20):
            got.update(chunk)
    assert got.hexdigest() == want.hexdigest()
    assert set(_C.scan_file(str(dst))["names"]) == {"input", "y", "w"}
    # streaming: resident memory stays a small fraction of the file (the benchmark reports the ratio)
    assert peak < 0.25 * os.path.getsize(dst), f"peak RSS {peak / 2**20:.0f} MiB"


def _big_python_model(path):
    """A Relu -> Identity -> Add model whose 9 weights (unused but one) take 2.1 GiB, saved with
    external data: over protobuf's limit once loaded."""
    import onnx
    from onnx import numpy_helper

    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Identity", ["r"], ["i"], name="idn"),
             helper.make_node("Add", ["i", "w0"], ["y"], name="add")]
    g = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", TP.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, [4])])
    g.initializer.append(numpy_helper.from_array(np.ones(4, np.float32), "w0"))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    data = path.parent / "weights.bin"
    with open(data, "wb") as f:
        for k in range(9):
            t = m.graph.initializer.add()
            t.name, t.data_type, t.data_location = f"big{k}", TP.UINT8, onnx.TensorProto.EXTERNAL
            t.dims.append(240 << 20)
            for key, v in (("location", data.name), ("offset", str(f.tell())), ("length", str(240 << 20))):
                e = t.external_data.add()
                e.key, e.value = key, v
            f.write(BLOCK * 15)
    onnx.save(m, str(path))


@pytest.fixture(scope="module")
def big_python_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("bigpy") / "big.onnx"
    _big_python_model(path)
    return path


@pytest.mark.parametrize("cmd", [("remove-node", "--node", "idn"), ("insert-cast", "--tensor", "r", "--to", "float64"),
                                 ("rename", "--tensor", "x=input", "--python")])
def test_python_paths_write_models_over_2gb(tmp_path, cmd, big_python_model):
    """Loaded whole (2.1 GiB), changed in Python and written: protobuf cannot serialize that in one
    message (EncodeError from ByteSize() was a traceback), so the weights go to <out>.data."""
    src = big_python_model
    out = tmp_path / "out" / "r.onnx"
    proc = subprocess.run([sys.executable, "-m", "trtdeploy.cli", cmd[0], str(src), "-o", str(out), *cmd[1:],
                           *([] if cmd[0] == "rename" else ["--no-verify"])], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.onnx", "r.onnx.data"]
    assert out.stat().st_size < (1 << 20) and (out.parent / "r.onnx.data").stat().st_size >= 9 * (240 << 20)
    assert set(_C.scan_file(str(out))["external_locations"]) == {"r.onnx.data"}
