"""Hostile input to the compiled wire-format parser: a clean ValueError, never a crash or hang.
Replays tests/fuzz_corpus/ (inputs kept from libFuzzer runs, fuzz/run.sh) in a child process, so
a segfault fails the test instead of killing the run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ld_field, varint

_C = pytest.importorskip("trtdeploy._C")
CORPUS = Path(__file__).parent / "fuzz_corpus"


def _field(number: int, payload: bytes) -> bytes:
    return ld_field(number, len(payload)) + payload


def _nested(depth: int) -> bytes:
    """Model.graph.node.attribute.g.node.attribute.g... `depth` levels deep."""
    graph = _field(1, _field(1, b"x"))  # a node with input "x"
    for _ in range(depth):
        attr = _field(1, b"body") + _field(6, graph)
        graph = _field(1, _field(5, attr))
    return _field(7, graph)


HOSTILE = {
    "empty": b"",
    "random": bytes(range(256)) * 4,
    "truncated varint": b"\x3a\xff",
    "varint overflow": b"\x08" + b"\xff" * 10 + b"\x01",
    "length past end": _field(7, b"")[:-1] + varint(1 << 40),
    "graph as varint": b"\x38\x01",  # field 7 with wire type 0
    "name as fixed32": _field(7, _field(1, b"\x0d\x00\x00\x00\x00")),  # node.input with wire type 5
    "group wire type": b"\x3b\x3c",
    "field zero": b"\x02\x00",
    "deep nesting": _nested(5000),
}


def _replay(blobs: dict[str, bytes]) -> subprocess.CompletedProcess:
    code = textwrap.dedent("""
        import pickle, sys
        from trtdeploy import _C
        for name, data in pickle.load(sys.stdin.buffer).items():
            for call in (lambda: _C.scan_bytes(data), lambda: _C.rename_bytes(data, {"x": "y"})):
                try:
                    call()
                except ValueError:
                    pass
        print("ok")
    """)
    import pickle

    return subprocess.run([sys.executable, "-c", code], input=pickle.dumps(blobs), capture_output=True, timeout=120)


def test_hostile_inputs_raise_cleanly():
    for name, data in HOSTILE.items():
        if name == "empty":
            assert _C.scan_bytes(data)["names"] == []
            continue
        with pytest.raises(ValueError):
            _C.rename_bytes(data, {"x": "y"})
    with pytest.raises(_C.ParseError, match="nested deeper"):
        _C.scan_bytes(HOSTILE["deep nesting"])
    ok = _nested(20)  # legitimate nesting still works and renames the innermost input
    assert _C.scan_bytes(_C.rename_bytes(ok, {"x": "renamed"}))["names"] == ["renamed"]


def test_fuzz_corpus_replays_in_a_child_process():
    files = sorted(p for p in CORPUS.iterdir() if p.is_file()) if CORPUS.is_dir() else []
    assert files, "tests/fuzz_corpus is empty"
    proc = _replay({p.name: p.read_bytes() for p in files})
    assert proc.returncode == 0 and proc.stdout.strip() == b"ok", proc.stderr[-2000:]
