from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

FIXTURES = Path(__file__).parent / "fixtures"

if os.environ.get("TRTDEPLOY_TEST_INSTALLED"):  # tools/test_wheel.py: the installed wheel, not the tree
    import trtdeploy

    if Path(trtdeploy.__file__).resolve().is_relative_to(Path(__file__).resolve().parent.parent):
        raise pytest.UsageError(f"testing an installed wheel, but trtdeploy was imported from {trtdeploy.__file__}")


def fixture_path(name: str) -> Path:
    return FIXTURES / (name if name.endswith(".onnx") else f"{name}.onnx")


def load_fixture(name: str) -> onnx.ModelProto:
    return onnx.load(str(fixture_path(name)))


def ort_run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """The installed console entry point, as a user runs it (separate process, real exit code)."""
    return subprocess.run([sys.executable, "-m", "trtdeploy.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def varint(v: int) -> bytes:
    """Protobuf varint encoding (for tests that write the wire format by hand)."""
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def ld_field(number: int, payload_len: int) -> bytes:
    """Key and length prefix of a length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(payload_len)
