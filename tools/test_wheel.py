"""Test a wheel as a GPU host gets it: python tools/test_wheel.py dist/trtdeploy-*.whl [PYTEST ARGS]

1. Builds the IPluginV3 test hosts (tests/plugin_host) with CMake in build/plugin-hosts: they are for the
   tests only and not in the wheel (one arch is enough: on a GPU machine, the one visible).
2. Installs the wheel with its [test] extra into a fresh virtual environment.
3. Runs pytest from the checkout against the installed package, with a PATH that holds no compiler and
   no nvcc and without CUDA_HOME (a TensorRT runtime image), TRTDEPLOY_PLUGIN_HOST_DIR naming the hosts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPILERS = ("nvcc", "gcc", "g++", "cc", "c++", "cpp", "clang", "clang++", "zig", "ld")


def fail(message: str) -> None:
    sys.exit(f"test_wheel: {message}")


def build_hosts(out: Path) -> Path | None:
    """CMake builds yolo_plugin_host_trt<MAJOR> for the headers in TRTDEPLOY_TENSORRT_INCLUDE_DIRS."""
    if not os.environ.get("TRTDEPLOY_TENSORRT_INCLUDE_DIRS"):
        print("test_wheel: TRTDEPLOY_TENSORRT_INCLUDE_DIRS unset: no plugin test host (those tests skip)")
        return None
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "pybind11>=2.12", "cmake>=3.18", "ninja"],
                   check=True)
    import pybind11

    arch = "native" if shutil.which("nvidia-smi") else "75-real"
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(out), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                    f"-DCMAKE_CUDA_ARCHITECTURES={arch}", "-DTRTDEPLOY_CUDA=ON", "-DTRTDEPLOY_TENSORRT=ON",
                    "-DTRTDEPLOY_PLUGIN_HOST=ON", f"-DPython_EXECUTABLE={sys.executable}",
                    f"-Dpybind11_DIR={pybind11.get_cmake_dir()}"], check=True, stdout=subprocess.DEVNULL)
    from build_wheel import tensorrt_major  # tools/ is sys.path[0]

    dirs = [d for d in re.split(r"[;:]", os.environ["TRTDEPLOY_TENSORRT_INCLUDE_DIRS"]) if d]
    targets = sorted({f"yolo_plugin_host_trt{tensorrt_major(Path(d))}" for d in dirs})
    subprocess.run(["cmake", "--build", str(out), "-j2", "--target", *targets], check=True)
    return out


def runtime_path(folder: Path) -> str:
    """PATH for the tests: every program of the system folders except compilers and nvcc."""
    folder.mkdir()
    for d in ("/usr/local/bin", "/usr/bin", "/bin"):
        for exe in sorted(Path(d).iterdir()) if Path(d).is_dir() else []:
            name = exe.name
            base = re.sub(r"-[0-9.]+$", "", name.removeprefix("x86_64-linux-gnu-")).split(".")[0]
            if base in COMPILERS or not os.access(exe, os.X_OK) or (folder / name).exists():
                continue
            (folder / name).symlink_to(exe)
    return str(folder)


def main() -> None:
    if len(sys.argv) < 2 or not sys.argv[1].endswith(".whl") or not Path(sys.argv[1]).is_file():
        fail("usage: python tools/test_wheel.py WHEEL [PYTEST ARGS] (a built .whl, e.g. from tools/build_wheel.py)")
    wheel = Path(sys.argv[1]).resolve()
    hosts = build_hosts(ROOT / "build" / "plugin-hosts")
    with tempfile.TemporaryDirectory(prefix="trtdeploy-wheel-test-") as tmp:
        tmp = Path(tmp)
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py = str(venv / "bin" / "python")
        subprocess.run([py, "-m", "pip", "install", "--quiet", f"{wheel}[test]"], check=True)
        env = {k: v for k, v in os.environ.items()
               if k not in ("CUDA_HOME", "CUDA_PATH", "CUDACXX", "PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{venv / 'bin'}:{runtime_path(tmp / 'bin')}"
        env["TRTDEPLOY_TEST_INSTALLED"] = "1"  # tests/conftest.py refuses a trtdeploy imported from the tree
        if hosts:
            env["TRTDEPLOY_PLUGIN_HOST_DIR"] = str(hosts)
        found = [c for c in COMPILERS if shutil.which(c, path=env["PATH"])]
        if found:
            fail(f"the test PATH still has {', '.join(found)}")
        subprocess.run([py, "-m", "trtdeploy", "doctor"], env=env, cwd=tmp)
        rc = subprocess.run([py, "-m", "pytest", *sys.argv[2:]], env=env, cwd=ROOT).returncode
    sys.exit(rc)


if __name__ == "__main__":
    main()
