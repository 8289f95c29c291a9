"""Files in and out: what is not a model is refused by every command, -o that cannot be written is one
line, shapes on the command line are parsed with precise messages."""

from __future__ import annotations

import os

import onnx
import pytest
from conftest import fixture_path, load_fixture, run_cli

from trtdeploy import TrtDeployError
from trtdeploy.io import Staging, load, save
from trtdeploy.ort import parse_shapes

MODEL_COMMANDS = [
    ("inspect",), ("fp16", "-o", "{out}"), ("dynamic", "-o", "{out}"), ("simplify", "-o", "{out}"),
    ("remove-node", "-o", "{out}", "--node", "n"), ("insert-cast", "-o", "{out}", "--tensor", "t", "--to", "int32"),
    ("rename", "-o", "{out}", "--tensor", "a=b"), ("rename", "-o", "{out}", "--input", "a=b"),
    ("rename", "-o", "{out}", "--tensor", "a=b", "--python"), ("expose", "--all"),
]


@pytest.mark.parametrize("content", [b"", b"\x08\x07", b"not a model at all"], ids=["empty", "no-graph", "junk"])
@pytest.mark.parametrize("cmd", MODEL_COMMANDS, ids=lambda c: " ".join(c[:1] + c[3:4]))
def test_not_a_model_is_refused_by_every_command(tmp_path, cmd, content):
    """A 0-byte .onnx was accepted by inspect and fp16 (which wrote a 2-byte model); b'\\x08\\x07' parses
    as a ModelProto (ir_version 7) with no graph."""
    src = tmp_path / "m.onnx"
    src.write_bytes(content)
    out = tmp_path / "o.onnx"
    proc = run_cli(cmd[0], src, *[a.format(out=out) for a in cmd[1:]])
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2
    assert "not" in proc.stderr.splitlines()[-1] and str(src) in proc.stderr
    assert not out.exists()
    with pytest.raises(TrtDeployError):
        load(src)


def test_verify_refuses_an_empty_file(tmp_path):
    (tmp_path / "e.onnx").write_bytes(b"")
    proc = run_cli("verify", fixture_path("view_cnn"), tmp_path / "e.onnx")
    assert proc.returncode == 1 and "empty file (0 bytes)" in proc.stderr


@pytest.mark.parametrize("where", ["a folder", "under a file", "/proc", "read-only folder"])
def test_output_that_cannot_be_written(tmp_path, where):
    if where == "a folder":
        out, want = tmp_path, "is a folder; give a file name"
    elif where == "under a file":
        (tmp_path / "f").write_text("x")
        out, want = tmp_path / "f" / "o.onnx", "is not a folder"
    elif where == "/proc":
        out, want = "/proc/o.onnx", "kernel file system"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes in read-only folders")
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        out, want = ro / "o.onnx", "permission denied"
    for cmd in (["dynamic"], ["remove-node", "--node", "/Relu"], ["rename", "--tensor", "input=x"], ["fp16"]):
        proc = run_cli(cmd[0], fixture_path("flatten"), "-o", out, *cmd[1:])
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert want in proc.stderr, proc.stderr


def test_staging_writes_nothing_on_failure_and_protects_inputs(tmp_path):
    m = load_fixture("view_cnn")
    out = tmp_path / "m.onnx"

    def refuse(staged):
        assert staged.exists() and staged.parent != tmp_path
        raise TrtDeployError("no")

    with pytest.raises(TrtDeployError):
        save(m, out, check=refuse)
    assert list(tmp_path.iterdir()) == []
    save(m, out, external_data=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]
    with pytest.raises(TrtDeployError, match="refusing to overwrite .*m.onnx.data: it belongs to the input"):
        save(m, out, external_data=True, protect=[tmp_path / "m.onnx.data"])
    with Staging(tmp_path / "x.onnx") as st:
        st.path("x.onnx").write_bytes(b"1")
    assert not (tmp_path / "x.onnx").exists()  # not committed: removed


@pytest.mark.parametrize("text,message", [
    ("images:0x3x320x320", "a dim of 0 makes an empty tensor; dims start at 1"),
    ("images:1,3,640,640", "dims are separated by 'x' (images:1x3x640x640); ',' separates inputs"),
    ("images=1x3x640x640", "put ':' between the name and the dims (images:1x3x640x640)"),
    ("images:1x3x640x", "empty dim in '1x3x640x'"),
    ("images:", "no dims after 'images:'"),
    ("images:1x-3x640x640", "dim -3 is negative"),
    ("images:1x3xHx640", "dim 'H' is not a number"),
    (":1x3", "no input name before ':'"),
    ("images:1x3,,mask:1", "empty entry"),
    ("images:1x3,images:1x4", "input 'images' is given twice"),
])
def test_parse_shapes_messages(text, message):
    with pytest.raises(TrtDeployError) as exc:
        parse_shapes(text, "--min-shapes")
    assert message in str(exc.value) and str(exc.value).startswith("--min-shapes")
    assert "\n" not in str(exc.value)


def test_parse_shapes_ok():
    assert parse_shapes("images:1x3x640x640,mask:1x1") == {"images": [1, 3, 640, 640], "mask": [1, 1]}
    assert parse_shapes("input:0:2x3") == {"input:0": [2, 3]}  # TF-style names keep their ':'
    assert parse_shapes(None) == {}


def test_cli_shapes_message_is_one_line(tmp_path):
    proc = run_cli("simplify", fixture_path("flatten"), "-o", tmp_path / "o.onnx", "--shapes", "input:1,3,16,16")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("',' separates inputs")
    assert not (tmp_path / "o.onnx").exists()


def test_loaded_model_keeps_external_weights_beside_it(tmp_path):
    src = tmp_path / "m.onnx"
    onnx.save_model(load_fixture("view_cnn"), str(src), save_as_external_data=True, location="w.bin",
                    size_threshold=0)
    (tmp_path / "w.bin").unlink()
    with pytest.raises(TrtDeployError, match="external data file missing"):
        load(src)
    assert load(src, load_external_data=False).graph.node


def test_refused_write_leaves_no_folder_it_made(tmp_path):
    """-o a/b/m.onnx whose check fails: the folders a/ and a/b/ that staging made are gone again; a
    folder that existed before stays, and a committed write keeps the folders it made."""
    m = load_fixture("view_cnn")

    def refuse(staged):
        raise TrtDeployError("no")

    (tmp_path / "kept").mkdir()
    for out in (tmp_path / "a" / "b" / "m.onnx", tmp_path / "kept" / "c" / "m.onnx"):
        with pytest.raises(TrtDeployError):
            save(m, out, check=refuse)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept"]
    save(m, tmp_path / "a" / "b" / "m.onnx")
    assert (tmp_path / "a" / "b" / "m.onnx").is_file()


def test_atomic_savez_takes_any_tensor_name(tmp_path):
    """np.savez(f, **arrays) fails for a tensor named 'file' (its own parameter)."""
    import numpy as np

    from trtdeploy.io import atomic_savez

    arrays = {"file": np.arange(3, dtype=np.float32), "allow_pickle": np.ones((2, 2), np.int64),
              "/model/Conv_output_0": np.zeros((1, 2), np.float16)}
    atomic_savez(tmp_path / "d.npz", arrays)
    with np.load(tmp_path / "d.npz") as got:
        assert sorted(got.files) == sorted(arrays)
        for k, v in arrays.items():
            assert got[k].dtype == v.dtype and np.array_equal(got[k], v)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


WRITES_OVER_AN_INPUT = [  # (command, ...) in a folder with m.onnx (inline), e.onnx (+ e.onnx.data), x.npz, map.json
    ("expose", "m.onnx", "--all", "--dump", "m.onnx"),
    ("expose", "e.onnx", "--all", "--dump", "e.onnx.data"),
    ("expose", "m.onnx", "--all", "-o", "x.onnx", "--dump", "x.onnx"),
    ("expose", "m.onnx", "--all", "--dump", "link.onnx"),  # a symlink to m.onnx
    ("expose", "m.onnx", "--all", "--dump", "hard.onnx"),  # a hardlink to m.onnx
    ("expose", "m.onnx", "--all", "--dump", "sub/../m.onnx"),
    ("expose", "m.onnx", "--all", "--inputs", "x.npz", "--dump", "x.npz"),
    ("build", "m.onnx", "--dry-run", "--timing-cache", "m.onnx"),
    ("build", "m.onnx", "--dry-run", "-o", "x.engine", "--timing-cache", "x.engine.json"),  # the sidecar
    ("build", "e.onnx", "--dry-run", "-o", "e.onnx.data"),
    ("build", "m.onnx", "--dry-run", "--timing-cache", "hard.onnx"),
    ("fp16", "m.onnx", "-o", "x.npz", "--inputs", "x.npz"),
    ("dynamic", "e.onnx", "-o", "e.onnx.data"),
    ("dynamic", "m.onnx", "-o", "link.onnx"),
    ("rename", "m.onnx", "-o", "map.json", "--map-file", "map.json"),
    ("rename", "m.onnx", "-o", "hard.onnx", "--tensor", "input=images"),
    ("bench", "r.md", "--shapes", "input:1x3x32x32", "--out", ".", "--name", "r"),  # the engine r.md
]


@pytest.mark.parametrize("cmd", WRITES_OVER_AN_INPUT, ids=lambda c: " ".join(c))
def test_no_output_is_an_input_or_another_output(tmp_path, cmd):
    """`expose M --all --dump M` wrote the .npz over the model and said "wrote M"; --dump over the input's
    external data, --dump over the -o just written, --timing-cache over the model or the sidecar, -o over
    --inputs/--map-file likewise. Every file a call writes is checked against its inputs (a model with its
    data files; symlinks, relative paths, hardlinks are the same file) and its other outputs, before any
    work: one line, exit 1, nothing written."""
    import numpy as np

    m = load_fixture("view_cnn")
    onnx.save(m, str(tmp_path / "m.onnx"))
    onnx.save_model(m, str(tmp_path / "e.onnx"), save_as_external_data=True, location="e.onnx.data", size_threshold=0)
    np.savez(tmp_path / "x.npz", input=np.zeros((1, 3, 32, 32), np.float32))
    (tmp_path / "map.json").write_text('{"input": "images"}')
    (tmp_path / "r.md").write_bytes(b"an engine")
    (tmp_path / "sub").mkdir()
    os.symlink("m.onnx", tmp_path / "link.onnx")
    os.link(tmp_path / "m.onnx", tmp_path / "hard.onnx")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    proc = run_cli(*cmd, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()
    assert len(last) == 1 and "refusing to write " in last[0], proc.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == []


def test_inplace_may_replace_the_model_and_its_data(tmp_path):
    """--inplace is the one way an output replaces an input (the model and its own data files)."""
    onnx.save_model(load_fixture("view_cnn"), str(tmp_path / "e.onnx"), save_as_external_data=True,
                    location="e.onnx.data", size_threshold=0)
    proc = run_cli("dynamic", tmp_path / "e.onnx", "--inplace")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("dynamic", tmp_path / "e.onnx", "-o", tmp_path / "e.onnx")
    assert proc.returncode == 1 and proc.stderr.strip().endswith("give another file name, or --inplace to overwrite it")


def test_zero_dim_is_refused_by_the_shared_shapes_parser(tmp_path):
    """`expose --shapes images:0x3x320x320` gave onnxruntime's Reshape error."""
    proc = run_cli("expose", fixture_path("view_cnn"), "--all", "--shapes", "input:0x3x32x32")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("a dim of 0 makes an empty tensor; dims start at 1")
