"""trtdeploy build/bench/fp16 without TensorRT: plans, profiles, the fp16 pass, statistics, errors."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import fixture_path, load_fixture, ort_run, run_cli

from trtdeploy import TrtDeployError, make_dynamic
from trtdeploy.bench.stats import compare_padded, engine_markdown, summarize, write_report
from trtdeploy.plan import ProfileSpec, add_shapes, make_plan, plan_profiles, profile_specs
from trtdeploy.surgery.fp16 import to_fp16
from trtdeploy.verify import verify_fp16

DYN = "yolov5_p5_dynamic_op12"  # images: [batch, 3, height, width]


def spec(**kinds):
    s = ProfileSpec()
    for kind, text in kinds.items():
        if kind == "batch":
            s.batch = text
        else:
            add_shapes(s, kind, text)
    return s


def test_profiles_from_shapes_and_batch():
    m = load_fixture(DYN)
    profiles = plan_profiles(m, [spec(min="images:1x3x320x320", opt="images:8x3x640x640", max="images:32x3x640x640"),
                                 spec(opt="images:1x3x1280x1280")])
    assert profiles[0]["images"] == {"min": [1, 3, 320, 320], "opt": [8, 3, 640, 640], "max": [32, 3, 640, 640]}
    assert profiles[1]["images"]["min"] == profiles[1]["images"]["max"] == [1, 3, 1280, 1280]
    batch_only = make_dynamic(load_fixture("yolov5_p5_op13"))
    p = plan_profiles(batch_only, [spec(batch=(1, 8, 32))])
    assert p[0]["images"] == {"min": [1, 3, 128, 128], "opt": [8, 3, 128, 128], "max": [32, 3, 128, 128]}


def test_dynamic_dim_without_value_names_it():
    m = load_fixture(DYN)
    with pytest.raises(TrtDeployError, match=r"2 dynamic dims have no size: 'images' dim 2 'height', 'images' dim 3 "
                                             r"'width'; give them, e.g. --min-shapes images:1x3x640x640 "
                                             r"--opt-shapes images:8x3x640x640 --max-shapes images:32x3x640x640"):
        plan_profiles(m, [spec(batch=(1, 8, 32))])  # the given batch sizes are in the example
    with pytest.raises(TrtDeployError, match=r"3 dynamic dims have no size: 'images' dim 0 'batch', 'images' dim 2 "
                                             r"'height', 'images' dim 3 'width'"):
        plan_profiles(m, [])
    batch_only = make_dynamic(load_fixture("yolov5_p5_op13"))
    with pytest.raises(TrtDeployError, match=r"1 dynamic dim has no size: 'images' dim 0 'batch'; .* or --batch 1:8:32"):
        plan_profiles(batch_only, [])


def test_missing_dims_message_is_ready_to_paste(tmp_path):
    """The example in the message is a working set of flags for the same model."""
    import re
    import shlex

    two = two_input_model(tmp_path)
    for path in (fixture_path(DYN), two):
        proc = run_cli("build", path, "--dry-run")
        assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
        example = re.search(r"e\.g\. (--min-shapes .*) \(example sizes", proc.stderr).group(1)
        again = run_cli("build", path, "--dry-run", "--json", *shlex.split(example))
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["profiles"][0]


def two_input_model(tmp_path, name="two.onnx"):
    """a [batch, seq], b [batch, seq, 4] -> out: two inputs sharing the dims 'batch' and 'seq'."""
    from onnx import TensorProto as TP
    from onnx import helper

    g = helper.make_graph(
        [helper.make_node("Unsqueeze", ["a", "axes"], ["a3"]), helper.make_node("Add", ["a3", "b"], ["out"])], "two",
        [helper.make_tensor_value_info("a", TP.FLOAT, ["batch", "seq"]),
         helper.make_tensor_value_info("b", TP.FLOAT, ["batch", "seq", 4])],
        [helper.make_tensor_value_info("out", TP.FLOAT, ["batch", "seq", 4])],
        [onnx.numpy_helper.from_array(np.array([2], np.int64), "axes")])
    path = tmp_path / name
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_shared_dim_names_zero_sizes_and_duplicates(tmp_path):
    m = onnx.load(str(two_input_model(tmp_path)))
    ok = plan_profiles(m, [spec(opt="a:2x7,b:2x7x4")])
    assert ok[0]["b"]["max"] == [2, 7, 4]
    with pytest.raises(TrtDeployError, match=r"input 'a' dim 0 and input 'b' dim 0 are both 'batch' but their opt "
                                             r"sizes differ \(2 and 3\)"):
        plan_profiles(m, [spec(opt="a:2x7,b:3x7x4")])
    with pytest.raises(TrtDeployError, match=r"are both 'seq' but their min sizes differ"):
        plan_profiles(m, [spec(min="a:1x1,b:1x2x4", opt="a:2x7,b:2x7x4")])
    with pytest.raises(TrtDeployError, match=r"--min-shapes 'a:1x0': a dim of 0 makes an empty tensor; dims start at 1"):
        plan_profiles(m, [spec(min="a:1x0,b:1x0x4", opt="a:2x7,b:2x7x4")])
    with pytest.raises(TrtDeployError, match=r"--opt-shapes 'a:2x7,a:3x7': input 'a' is given twice"):
        profile_specs([[("opt", "--opt-shapes", "a:2x7,a:3x7")]])
    with pytest.raises(TrtDeployError, match=r"--optShapes: input 'a' already has opt shapes in the profile \(from "
                                             r"--opt-shapes a:2x7\)"):
        profile_specs([[("opt", "--opt-shapes", "a:2x7"), ("opt", "--optShapes", "a:3x7")]])
    with pytest.raises(TrtDeployError, match=r"--batch is given twice in profile 1"):
        profile_specs([[], [("batch", "--batch", "1:2:3"), ("batch", "--batch", "1:2:4")]])
    # one input per repeated flag, and the same input in the next profile, are fine
    specs = profile_specs([[("opt", "--opt-shapes", "a:2x7"), ("opt", "--opt-shapes", "b:2x7x4")],
                           [("opt", "--opt-shapes", "a:1x7,b:1x7x4")]])
    assert [p["a"]["opt"] for p in plan_profiles(m, specs)] == [[2, 7], [1, 7]]


@pytest.mark.parametrize("flags, message", [
    (["--min-shapes", "images:1,3,640,640"], "--min-shapes 'images:1,3,640,640': dims are separated by 'x' "
                                             "(images:1x3x640x640)"),
    (["--opt-shapes", "images=1x3x640x640"], "--opt-shapes 'images=1x3x640x640': put ':' between the name and the "
                                             "dims (images:1x3x640x640)"),
    (["--maxShapes", "images:1x3x640x"], "--maxShapes 'images:1x3x640x': empty dim in '1x3x640x'"),
    (["--batch", "1:8"], "--batch 1:8: expected MIN:OPT:MAX"),
    (["--batch", "0:1:8"], "--batch 0:1:8: batch sizes start at 1"),
    (["--batch", "8:1:32"], "--batch 8:1:32: needs MIN <= OPT <= MAX"),
    (["--opt-shapes", ""], "--opt-shapes is empty"),
    (["--opt-shapes", "images:1x3x64x64,images:2x3x64x64"], "input 'images' is given twice"),
    (["--min-shapes", "images:1x3x64x64", "--minShapes", "images:1x3x64x64"], "already has min shapes"),
])
def test_malformed_profile_flags_are_one_line(flags, message):
    proc = run_cli("build", fixture_path(DYN), "--dry-run", *flags)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr


def test_trtexec_spellings_are_aliases():
    args = ["images:1x3x320x320", "images:8x3x640x640", "images:32x3x640x640"]
    dashed = run_cli("build", fixture_path(DYN), "--dry-run", "--json", "--min-shapes", args[0], "--opt-shapes",
                     args[1], "--max-shapes", args[2])
    camel = run_cli("build", fixture_path(DYN), "--dry-run", "--json", "--minShapes", args[0], "--optShapes",
                    args[1], "--maxShapes", args[2])
    assert dashed.returncode == camel.returncode == 0, camel.stderr
    assert json.loads(dashed.stdout)["profiles"] == json.loads(camel.stdout)["profiles"]


def test_dry_run_refuses_what_cannot_build(tmp_path):
    from trtdeploy.yolo.patch import patch

    patched = tmp_path / "p.onnx"
    onnx.save(patch(make_dynamic(load_fixture("yolov5_p5_op13"))), str(patched))
    proc = run_cli("build", patched, "--dry-run", "--batch", "1:2:4", "--plugins", tmp_path / "nope.so")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "profile 0:" in proc.stdout and "MISSING: --plugins" in proc.stdout  # the plan is still shown
    assert proc.stderr.strip().splitlines() == [f"trtdeploy build: error: --plugins {tmp_path / 'nope.so'}: no such file"]
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    for path in (empty, text):
        proc = run_cli("build", path, "--dry-run")
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and str(path) in proc.stderr, proc.stderr
    proc = run_cli("build", fixture_path("yolov5_p5_op13"), "--dry-run", "--timing-cache", tmp_path)
    assert proc.returncode == 1 and "is a folder" in proc.stderr
    # what a real build would only find after building: an engine or cache it cannot write, a workspace of -5
    for flags, want in ((["-o", "/proc/x.engine"], "-o /proc/x.engine: '/proc' is a kernel file system"),
                        (["--timing-cache", "/proc/x.cache"], "--timing-cache /proc/x.cache: '/proc' is a kernel"),
                        (["-o", str(tmp_path / "f" / "x.engine")], "is not a folder"),
                        (["--workspace", "-5"], "--workspace -5: give a positive size in MiB")):
        (tmp_path / "f").write_text("a file")
        proc = run_cli("build", fixture_path("yolov5_p5_op13"), "--dry-run", *flags)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("trtdeploy build: error: ")
        assert want in proc.stderr, proc.stderr


def test_static_dims_and_order_checked():
    static = load_fixture("yolov5_p5_op13")
    with pytest.raises(TrtDeployError, match=r"dim 0 is static \(1\) and cannot be 4"):
        plan_profiles(static, [spec(opt="images:4x3x128x128")])
    assert plan_profiles(static, [])[0]["images"]["opt"] == [1, 3, 128, 128]
    m = load_fixture(DYN)
    with pytest.raises(TrtDeployError, match="min 8 <= opt 4"):
        plan_profiles(m, [spec(min="images:8x3x64x64", opt="images:4x3x64x64", max="images:16x3x64x64")])
    with pytest.raises(TrtDeployError, match="rank 3"):
        plan_profiles(m, [spec(opt="images:1x3x64")])
    with pytest.raises(TrtDeployError, match="not an input"):
        plan_profiles(m, [spec(opt="image:1x3x64x64")])


def test_plan_dict_and_plugins(tmp_path):
    from trtdeploy._info import plugin_libraries
    from trtdeploy.yolo.patch import patch

    m = make_dynamic(load_fixture("yolov5_p5_op13"))
    plan = make_plan(m, "m.onnx", "m.engine", [spec(batch=(1, 4, 8))], precision="fp16", workspace_mib=1024,
                     timing_cache="cache.bin")
    d = plan.to_dict()
    assert d["profiles"][0]["images"]["max"] == [8, 3, 128, 128]
    assert d["precision"] == "fp16" and "TensorRT 11" in d["precision_how"] and d["tensorrt_version"] is None
    assert d["plugins"] == [] and d["plugin_ops"] == [] and d["outputs"]["output0"]["shape"] == ["batch", 1008, 85]
    patched = patch(m)
    built = {row["tensorrt_major"]: row["library"] for row in plugin_libraries()}
    planned = make_plan(patched, "p.onnx", "p.engine", [spec(batch=(1, 4, 8))])
    assert planned.plugin_ops == ["YoloLayer_TRT"]
    if not built:  # built without TensorRT headers: the plan says what is missing
        assert "installed without it" in planned.missing[0]
    else:  # no TensorRT here: every library is listed, the build picks the one for its major
        assert planned.plugins == list(built.values()) and not planned.missing
    for version, major in (("10.8.0", 10), ("11.1.0", 11)):
        p = make_plan(patched, "p.onnx", "p.engine", [spec(batch=(1, 4, 8))], tensorrt_version=version)
        if major in built:
            assert p.plugins == [built[major]] and not p.missing
        else:
            assert f"the installed TensorRT is {version}" in p.missing[0] or "installed without it" in p.missing[0]
    user = make_plan(patched, "p.onnx", "p.engine", [spec(batch=(1, 4, 8))], plugins=["/x/lib.so"])
    assert user.missing == ["--plugins /x/lib.so: no such file"]
    lib = tmp_path / "libmine.so"
    lib.write_bytes(b"")
    user = make_plan(patched, "p.onnx", "p.engine", [spec(batch=(1, 4, 8))], plugins=[str(lib)], tensorrt_version="12.0")
    assert user.plugins == [str(lib)] and not user.missing  # with --plugins, theirs may provide YoloLayer_TRT


ROWS = [{"library": "/lib/libtrtdeploy_plugins_trt10.so", "tensorrt_major": 10, "tensorrt_version": "10.16.1"},
        {"library": "/lib/libtrtdeploy_plugins_trt11.so", "tensorrt_major": 11, "tensorrt_version": "11.1.0"}]


def test_plugin_library_matches_the_tensorrt_major():
    from trtdeploy._info import select_plugin_library

    assert select_plugin_library(ROWS, "10.8.0.43") == ROWS[0]["library"]
    assert select_plugin_library(ROWS, "11.0.0") == ROWS[1]["library"]
    with pytest.raises(TrtDeployError, match=r"the installed TensorRT is 11\.1\.0 but trtdeploy's plugin library "
                                             r"was built for TensorRT 10\.16\.1 \(libtrtdeploy_plugins_trt10\.so\) only"):
        select_plugin_library(ROWS[:1], "11.1.0")
    with pytest.raises(TrtDeployError, match=r"TensorRT is 12\.0\.1 but .* 10\.16\.1 .*, 11\.1\.0 .* TensorRT 12 include"):
        select_plugin_library(ROWS, "12.0.1")
    with pytest.raises(TrtDeployError, match="installed without it"):
        select_plugin_library([], "10.8.0")


def test_plugin_plan_without_a_built_library(monkeypatch):
    import trtdeploy._info as info
    from trtdeploy.plan import plugin_plan

    monkeypatch.setattr(info, "plugin_libraries", lambda: [])  # as installed without TensorRT headers
    libs, missing = plugin_plan(["YoloLayer_TRT"], [], None)
    assert libs == [] and "installed without it" in missing[0]
    assert plugin_plan(["SomethingElse"], [], "10.16.1") == ([], [])
    monkeypatch.setattr(info, "plugin_libraries", lambda: ROWS[:1])
    assert "TensorRT is 11.1.0 but" in plugin_plan(["YoloLayer_TRT"], [], "11.1.0")[1][0]


def test_engine_plugins_from_sidecar_or_engine_bytes(tmp_path):
    from trtdeploy._info import plugin_libraries
    from trtdeploy.plan import engine_plugins

    built = {row["tensorrt_major"]: row["library"] for row in plugin_libraries()}
    if 10 not in built:
        pytest.skip("no TensorRT 10 plugin library in this build")
    elsewhere = "/old/venv/site-packages/trtdeploy/lib/libtrtdeploy_plugins_trt10.so"
    sidecar = {"plugins": [elsewhere], "plugin_ops": ["YoloLayer_TRT"], "tensorrt_version": "10.16.1"}
    assert engine_plugins(sidecar, False, [], "10.16.1") == ([built[10]], [])  # re-resolved for this install
    libs, notes = engine_plugins(None, True, [], "10.16.1")
    assert libs == [built[10]] and "its bytes name YoloLayer_TRT" in notes[0]
    assert engine_plugins(None, False, [], "10.16.1") == ([], [])
    assert engine_plugins({"plugins": [], "plugin_ops": []}, True, [], "10.16.1") == ([], [])  # the sidecar knows
    mine = tmp_path / "libmine.so"
    with pytest.raises(TrtDeployError, match=r"built with plugin library .*libmine.so \(per its sidecar\), which does "
                                             r"not exist here"):
        engine_plugins({"plugins": [str(mine)], "plugin_ops": ["Mine"]}, False, [], "10.16.1")
    mine.write_bytes(b"")
    assert engine_plugins({"plugins": [str(mine), elsewhere], "plugin_ops": ["Mine", "YoloLayer_TRT"]}, False, [],
                          "10.16.1") == ([str(mine), built[10]], [])
    with pytest.raises(TrtDeployError, match="the installed TensorRT is 12.0.0"):
        engine_plugins(sidecar, False, [], "12.0.0")


@pytest.mark.parametrize("precision, major, typed, flag, convert", [
    ("fp32", 10, False, None, None), ("fp32", 11, False, None, None),
    ("fp16", 10, False, "FP16", None), ("fp16", 10, True, None, "fp16"), ("fp16", 11, False, None, "fp16"),
    ("bf16", 10, False, "BF16", None), ("bf16", 10, True, "refuse", None), ("bf16", 11, False, "refuse", None),
])
def test_precision_strategy(precision, major, typed, flag, convert):
    from trtdeploy.plan import precision_strategy

    if flag == "refuse":  # never a float32 engine recorded as bf16
        with pytest.raises(TrtDeployError, match="--bf16 needs a weakly typed network"):
            precision_strategy(precision, major, typed)
        return
    s = precision_strategy(precision, major, typed)
    assert (s["builder_flag"], s["convert"]) == (flag, convert)
    assert s["strongly_typed"] == (typed or major >= 11)


def test_fp16_pass_is_the_plan_for_strongly_typed_builds(tmp_path):
    """`build` and `bench` share make_plan + build_engine: on TensorRT 11 the fp16 graph pass is in the
    plan, and prepare_model (TensorRT's input) really is the float16 model, checked in onnxruntime."""
    from trtdeploy.trt.build import make_sidecar, prepare_model

    m = make_dynamic(load_fixture("yolov5_p5_op13"))
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    plan = make_plan(m, str(path), str(tmp_path / "m.engine"), [spec(batch=(1, 2, 4))], precision="fp16",
                     tensorrt_version="11.1.0")
    assert plan.convert == "fp16" and plan.builder_flag is None and plan.strongly_typed
    half = onnx.load(prepare_model(plan, str(tmp_path)))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in half.graph.initializer)
    weak = make_plan(m, str(path), "m.engine", [spec(batch=(1, 2, 4))], precision="fp16", tensorrt_version="10.16.1")
    assert weak.builder_flag == "FP16" and prepare_model(weak, str(tmp_path)) == str(path)
    with pytest.raises(TrtDeployError, match="--bf16 needs a weakly typed network"):
        make_plan(m, str(path), "m.engine", [spec(batch=(1, 2, 4))], precision="bf16", tensorrt_version="11.1.0")
    side = make_sidecar(plan, "11.1.0", 1.0)
    assert side["plugins"] == [] and side["plugin_ops"] == [] and side["precision"] == "fp16"


def test_tensorrt_dtypes_map_to_torch():
    from trtdeploy.trt.runtime import TORCH_DTYPES, torch_dtype_name

    # tensorrt.DataType members in the 10.16 and 11.1 bindings (python/src/infer/pyFoundationalTypes.cpp)
    members = {"FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8", "INT4", "FP4", "E8M0"}
    assert set(TORCH_DTYPES) == members
    assert torch_dtype_name("INT64", "x") == "int64" and torch_dtype_name("UINT8", "x") == "uint8"
    assert torch_dtype_name("FP8", "x") == "float8_e4m3fn"
    with pytest.raises(TrtDeployError, match="engine tensor 'w' is int4"):
        torch_dtype_name("INT4", "w")
    try:
        import torch
    except ImportError:
        return
    assert all(getattr(torch, name) is not None for name in TORCH_DTYPES.values() if name)


class _Registry:
    """Stands in for tensorrt's IPluginRegistry as its bindings document it: load_library returns a
    handle, or None on failure (including plugins already registered); get_creator returns None when
    no creator of that name/version/namespace is registered."""

    def __init__(self, fail=(), registered=()):
        self.fail, self.registered, self.loaded = set(fail), set(registered), []

    def load_library(self, path):
        self.loaded.append(path)
        return None if path in self.fail else object()

    def get_creator(self, name, version, namespace=""):
        return object() if (name, version, namespace) in self.registered else None


def test_load_plugins_checks_return_values(tmp_path, monkeypatch):
    import types

    import trtdeploy.trt as trt_pkg

    monkeypatch.setattr(trt_pkg, "_loaded", {})
    a, bundled = tmp_path / "liba.so", tmp_path / "libtrtdeploy_plugins_trt10.so"
    a.write_bytes(b"")
    bundled.write_bytes(b"")
    registry = _Registry(fail={str(a)})
    fake = types.SimpleNamespace(__version__="10.16.1", get_plugin_registry=lambda: registry)
    with pytest.raises(TrtDeployError, match=r"TensorRT 10.16.1 could not load plugin library .*liba.so"):
        trt_pkg.load_plugins(fake, [str(a)])
    registry.fail.clear()
    trt_pkg.load_plugins(fake, [str(a), str(a)])
    trt_pkg.load_plugins(fake, [str(a)])  # a second build in the same process: loaded once
    assert registry.loaded == [str(a), str(a)]  # the failed attempt, then one load
    registry.registered.add(("YoloLayer_TRT", "1", ""))
    trt_pkg.load_plugins(fake, [str(bundled)])  # already provided: not loaded again (it would fail)
    assert str(bundled) not in registry.loaded
    with pytest.raises(TrtDeployError, match="does not exist"):
        trt_pkg.load_plugins(fake, [str(tmp_path / "gone.so")])


def test_cli_dry_run_json_and_errors(tmp_path):
    proc = run_cli("build", fixture_path(DYN), "--dry-run", "--json", "--min-shapes", "images:1x3x320x320",
                   "--opt-shapes", "images:8x3x640x640", "--max-shapes", "images:32x3x640x640",
                   "--profile", "--batch", "1:1:1", "--opt-shapes", "images:1x3x1280x1280")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert len(plan["profiles"]) == 2 and plan["profiles"][1]["images"]["opt"] == [1, 3, 1280, 1280]
    proc = run_cli("build", fixture_path(DYN), "--dry-run", "--batch", "1:8:32")
    assert proc.returncode == 1 and "dim 2 'height'" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_build_without_tensorrt_is_one_line(tmp_path):
    import importlib.util

    for module in ("tensorrt", "tensorrt_rtx"):
        if importlib.util.find_spec(module) is not None:
            pytest.skip(f"{module} is installed here: a builder is there (tests/test_rtx_build.py builds with RTX)")
    proc = run_cli("build", fixture_path("yolov5_p5_op13"), "-o", tmp_path / "m.engine")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "pip install tensorrt" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.engine").exists()
    proc = run_cli("bench", fixture_path("yolov5_p5_op13"), "--shapes", "images:1x3x128x128")
    assert proc.returncode == 1 and "pip install tensorrt" in proc.stderr


@pytest.mark.parametrize("name", ["yolov5_p5_op13", "yolov5_p5_dynamo", "retina_head", "cls_token", "fpn_interp"])
def test_fp16_pass_matches_fp32(name):
    m = load_fixture(name)
    h = to_fp16(m)
    assert all(t.data_type != onnx.TensorProto.FLOAT for t in h.graph.initializer if t.dims and np.prod(t.dims) > 16)
    assert [o.type.tensor_type.elem_type for o in h.graph.output] == [onnx.TensorProto.FLOAT] * len(h.graph.output)
    assert h.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    errs = verify_fp16(m, h)
    assert max(errs.values()) < 2e-2
    assert max(errs.values()) > 0  # it really computes in float16


def test_fp16_keeps_plugin_contract_and_sensitive_ops():
    from trtdeploy.yolo.patch import patch

    patched = patch(load_fixture("yolov5_p5_op13"))
    h = to_fp16(patched)
    plugin = next(n for n in h.graph.node if n.op_type == "YoloLayer_TRT")
    producers = {o: n for n in h.graph.node for o in n.output}
    for x in plugin.input:  # float16 sigmoids are cast back: the plugin sees float32 as exported
        assert producers[x].op_type == "Cast"
        assert next(a.i for a in producers[x].attribute if a.name == "to") == onnx.TensorProto.FLOAT
    kept = to_fp16(load_fixture("view_cnn"), keep_nodes={"/fc/Gemm"})
    gemm = next(n for n in kept.graph.node if n.name == "/fc/Gemm")
    producers = {o: n for n in kept.graph.node for o in n.output}
    assert producers[gemm.input[0]].op_type == "Cast"
    with pytest.raises(TrtDeployError, match="no node named 'nope'"):
        to_fp16(load_fixture("view_cnn"), keep_nodes={"nope"})


def test_fp16_cli_verify(tmp_path):
    out = tmp_path / "h.onnx"
    proc = run_cli("fp16", fixture_path("retina_head"), "-o", out, "--verify")
    assert proc.returncode == 0, proc.stderr
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    got = ort_run(onnx.load(str(out)), {"input": x})
    want = ort_run(load_fixture("retina_head"), {"input": x})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=2e-2 * np.abs(w).max())


def test_stats_and_padded_report(tmp_path):
    s = summarize([10.0, 12.0, 11.0, 50.0, 11.5], batch=8)
    assert s["median_us"] == 11.5 and s["min_us"] == 10.0
    assert s["p99_us"] == pytest.approx(np.percentile([10.0, 12.0, 11.0, 50.0, 11.5], 99))
    assert s["throughput_per_s"] == pytest.approx(8 / 11.5e-6)
    dyn = {1: summarize([100.0], 1), 8: summarize([400.0], 8)}
    pad = {1: summarize([800.0], 1), 8: summarize([800.0], 8)}
    rows = compare_padded(dyn, pad)
    assert [r["padded_over_dynamic"] for r in rows] == [8.0, 2.0]
    result = {"engine": "m.engine", "date": "2026-11-22", "device": "GPU", "tensorrt_version": "10.x", "command": "c",
              "warmup": 1, "iters": 1, "runs": [{"profile": 0, "shapes": {"images": [1, 3, 8, 8]}, **dyn[1]}],
              "padded_batch": 8, "padded": rows}
    paths = write_report(tmp_path, "engine_bench", result, engine_markdown(result))
    assert json.loads(paths[0].read_text())["padded"][0]["padded_over_dynamic"] == 8.0
    assert "8.00x" in paths[1].read_text()


def test_doctor_lists_each_plugin_library_with_its_tensorrt_version():
    from trtdeploy import _C
    from trtdeploy._info import plugin_libraries

    rows = plugin_libraries()
    assert [(r["tensorrt_major"], r["tensorrt_version"]) for r in rows] == \
        [(r["tensorrt_major"], r["tensorrt_version"]) for r in _C.build_info()["tensorrt_plugins"]]
    text = run_cli("doctor").stdout
    info = json.loads(run_cli("doctor", "--json").stdout)
    assert [r["library"] for r in info["tensorrt_plugins"]] == [r["library"] for r in rows]
    for r in rows:
        assert r["library"].endswith(f"libtrtdeploy_plugins_trt{r['tensorrt_major']}.so")
        assert r["tensorrt_version"].startswith(f"{r['tensorrt_major']}.")
        assert f"{r['library']} (built for TensorRT {r['tensorrt_version']})" in text
    if not rows:
        assert "TensorRT plugin    not built" in text


def test_rtx_plan_rules_without_a_builder(tmp_path):
    """TensorRT-RTX's plan rules are pure: they hold where no builder is installed (a dry run)."""
    from trtdeploy.trt.rtx import parse_capabilities

    assert parse_capabilities("8.9,sm_120,SM86,75") == ["8.9", "12.0", "8.6", "7.5"]
    with pytest.raises(TrtDeployError, match=r"builds for 7.5, 8.0, 8.6, 8.9, 12.0, 12.1 only; data-center GPUs"):
        parse_capabilities("9.0")
    nms = tmp_path / "nms.onnx"
    x = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["idx"], name="my_nms")], "g",
        [x("boxes", onnx.TensorProto.FLOAT, [1, 10, 4]), x("scores", onnx.TensorProto.FLOAT, [1, 1, 10])],
        [x("idx", onnx.TensorProto.INT64, [None, 3])])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)]), str(nms))
    proc = run_cli("build", nms, "-o", tmp_path / "e.engine", "--runtime", "tensorrt-rtx", "--dry-run")
    assert proc.returncode == 1 and "builder: TensorRT-RTX" in proc.stdout
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "'my_nms' is ONNX NonMaxSuppression" in \
        proc.stderr and "yolo patch --nms plugin" in proc.stderr
    proc = run_cli("build", nms, "--runtime", "tensorrt", "--compute-capability", "8.9", "--dry-run")
    assert proc.returncode == 1 and "sets TensorRT-RTX's targets" in proc.stderr
    proc = run_cli("build", nms, "--runtime", "tensorrt-rtx", "--bf16", "--dry-run")
    assert proc.returncode == 1 and "always strongly typed" in proc.stderr


def test_batch_combines_with_the_shapes_and_a_lone_min_is_refused():
    """`--batch 1:8:32` with --min/--opt/--max-shapes gave a max batch of 1 without a word (the shapes' axis 0
    won); `--min-shapes` alone silently set opt = max = min."""
    m = load_fixture(DYN)
    p = plan_profiles(m, [spec(batch=(1, 8, 32), opt="images:8x3x640x640")])[0]["images"]
    assert (p["min"], p["opt"], p["max"]) == ([1, 3, 640, 640], [8, 3, 640, 640], [32, 3, 640, 640])
    with pytest.raises(TrtDeployError, match=r"--batch 1:8:32 gives input 'images' a min batch of 1, --min-shapes "
                                             r"gives 2; give the batch once"):
        plan_profiles(m, [spec(batch=(1, 8, 32), min="images:2x3x320x320", opt="images:8x3x640x640",
                               max="images:32x3x640x640")])
    with pytest.raises(TrtDeployError, match=r"input 'images' has --min-shapes but no --opt-shapes; add --opt-shapes"):
        plan_profiles(m, [spec(min="images:1x3x320x320")])
    with pytest.raises(TrtDeployError, match=r"has --min-shapes and --max-shapes but no --opt-shapes"):
        plan_profiles(m, [spec(min="images:1x3x320x320", max="images:4x3x640x640")])


def test_dry_run_of_a_float16_model_says_so(tmp_path):
    """A model converted by `trtdeploy fp16` was planned as "precision: fp32 (float32 as in the model)"."""
    half = tmp_path / "h.onnx"
    assert run_cli("fp16", fixture_path("view_cnn"), "-o", half).returncode == 0
    proc = run_cli("build", half, "--runtime", "tensorrt", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("precision:"))
    assert "already float16" in line and "float32 as in the model" not in line, line
    proc = run_cli("build", fixture_path("view_cnn"), "--runtime", "tensorrt", "--dry-run")
    assert "precision: fp32 (float32 as in the model)" in proc.stdout
