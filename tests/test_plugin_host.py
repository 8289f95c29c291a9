"""YoloLayer_TRT driven through IPluginV3 by the test host (tests/plugin_host/), once per plugin library
built (one per TensorRT major whose headers were found at install time).

The host dlopens the installed library and plays TensorRT's part: creator lookup, createPlugin with
fields typed as the ONNX parser types them (taken from models really produced by `yolo patch`),
capability interfaces, output types and shapes (symbolic, through a host IExprBuilder), formats,
configure, workspace, serialization round trip, clone/attach, onShapeChange, every rejection path
with the plugin's log line, and enqueue: on a CPU-only machine the error path; on a GPU (marked
`gpu`) every output row against the NumPy oracle.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from conftest import load_fixture
from onnx import numpy_helper

from trtdeploy._info import plugin_libraries
from trtdeploy.yolo.decode import decode_numpy
from trtdeploy.yolo.head import find_head
from trtdeploy.yolo.patch import patch
from trtdeploy.yolo.verify_v5 import plugin_params, verify_patch

LIBS = plugin_libraries()
pytestmark = pytest.mark.skipif(
    not LIBS, reason="trtdeploy was built without TensorRT headers, so there is no plugin library to test: set "
                     "TRTDEPLOY_TENSORRT_INCLUDE_DIRS to the TensorRT 10/11 include folders and reinstall")
lib_params = pytest.mark.parametrize("lib", LIBS, ids=[f"trt{row['tensorrt_major']}" for row in LIBS])


class Host:
    """One host process: a command line in, one JSON object out."""

    def __init__(self, lib: dict, load: bool = True):
        if not lib["host"]:
            pytest.skip("no plugin test host: TRTDEPLOY_PLUGIN_HOST_DIR must name the folder where CMake built "
                        f"{lib['host_name']} (tools/test_wheel.py does both)")
        self.proc = subprocess.Popen([lib["host"]], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.creators = self("load " + lib["library"])["creators"] if load else None

    def __call__(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        out = self.proc.stdout.readline()
        if not out:
            self.proc.wait(10)
            pytest.fail(f"the host died on '{line}' (exit {self.proc.returncode}): {self.proc.stderr.read()}")
        reply = json.loads(out)
        assert "host_error" not in reply, reply
        return reply

    def close(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(30) == 0, self.proc.stderr.read()  # no crash when the plugins are destroyed

    def fields(self, lines: list[str]) -> None:
        self("fields_clear")
        for line in lines:
            self(line)


@pytest.fixture
def host(request):
    hosts = []

    def make(lib, load=True):
        hosts.append(Host(lib, load))
        return hosts[-1]

    yield make
    for h in hosts:
        h.close()


# ---- the models: real `yolo patch` output, P5 and P6, several class counts -----------------------

def with_num_classes(model: onnx.ModelProto, nc: int) -> onnx.ModelProto:
    """The export with a head for nc classes: each detection conv keeps the first nc+5 channels of
    every anchor, and the decode's Reshape/Split constants follow (checked by running the result)."""
    head = find_head(model)
    old, new, na = head.num_classes + 5, nc + 5, head.num_anchors
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {t.name: t for t in m.graph.initializer}
    for node in m.graph.node:
        if node.name in head.conv_nodes:
            for name in node.input[1:]:
                a = numpy_helper.to_array(inits[name])
                a = a.reshape(na, old, *a.shape[1:])[:, :new].reshape(na * new, *a.shape[1:])
                inits[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(a), name))
    readers = {i: n.op_type for n in m.graph.node for i in n.input}

    def fix(t: onnx.TensorProto, reader: str | None) -> None:
        a = numpy_helper.to_array(t)
        if a.dtype != np.int64 or a.ndim != 1:
            return
        if reader == "Reshape":
            a = np.where(a == old, new, a)
        elif reader == "Split":
            a = np.where(a == old - 4, new - 4, a)
        t.CopyFrom(numpy_helper.from_array(a, t.name))

    for t in m.graph.initializer:
        fix(t, readers.get(t.name))
    for n in m.graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            fix(n.attribute[0].t, readers.get(n.output[0]))
    return m


def patched_model(name: str, nc: int | None, max_detections: int = 0):
    model = load_fixture(name)
    if nc is not None:
        model = with_num_classes(model, nc)
    out = patch(model, max_detections=max_detections)
    verify_patch(model, out)  # the edited export and its patch agree: the head edit is consistent
    node = next(n for n in out.graph.node if n.op_type == "YoloLayer_TRT")
    return model, node


MODELS = {  # id: (fixture, class count or None = as exported, max_detections)
    "p5_nc80": ("yolov5_p5_op13", None, 0),
    "p5_nc1": ("yolov5_p5_op13", 1, 0),
    "p6_nc20": ("yolov5_p6_op13", None, 0),
    "p6_nc7_maxdet100": ("yolov5_p6_op13", 7, 100),
    "p5_nc3_maxdet_above_total": ("yolov5_p5_op13", 3, 10**6),  # min(total, max_detections) = total
}
_cache: dict = {}


def model_case(key: str):
    if key not in _cache:
        fixture, nc, md = MODELS[key]
        model, node = patched_model(fixture, nc, md)
        _cache[key] = (find_head(model), node)
    return _cache[key]


def parser_fields(node: onnx.NodeProto, creator_fields: list[dict]) -> list[str]:
    """What the ONNX parser passes createPlugin: for each field the creator declares that the node
    has, INT -> one int32, FLOAT -> one float32, FLOATS -> float32 values, INTS -> int32 values."""
    attrs = {a.name: a for a in node.attribute}
    A = onnx.AttributeProto
    lines = []
    for f in creator_fields:
        a = attrs.get(f["name"])
        if a is None:
            continue  # the parser warns and leaves the default to the creator
        if a.type == A.INT:
            lines.append(f"field {a.name} int32 {np.int32(a.i)}")
        elif a.type == A.FLOAT:
            lines.append(f"field {a.name} float32 {np.float32(a.f):.9g}")
        elif a.type == A.FLOATS:
            lines.append(f"field {a.name} float32 " + " ".join(f"{np.float32(v):.9g}" for v in a.floats))
        elif a.type == A.INTS:
            lines.append(f"field {a.name} int32 " + " ".join(str(np.int32(v)) for v in a.ints))
        else:
            pytest.fail(f"attribute {a.name} has a type the test does not map")
    return lines


def level_shapes(head, batch: int, height: int, width: int) -> list[tuple[int, int, int, int]]:
    c = head.num_anchors * (head.num_classes + 5)
    return [(batch, c, height // s, width // s) for s in head.strides]


def rows(head, shapes, max_detections: int) -> int:
    total = sum(head.num_anchors * h * w for _, _, h, w in shapes)
    return min(total, max_detections) if max_detections > 0 else total


def tensors(dtype: str, shapes, lo=None, hi=None) -> str:
    """Host tensor specs TYPE:DIMS[:MIN:MAX]."""
    x = lambda s: "x".join(map(str, s))  # noqa: E731
    if lo is None:
        return " ".join(f"{dtype}:{x(s)}" for s in shapes)
    return " ".join(f"{dtype}:{x(s)}:{x(a)}:{x(b)}" for s, a, b in zip(shapes, lo, hi))


def created(host, lib, key: str):
    head, node = model_case(key)
    h = host(lib)
    h.fields(parser_fields(node, h.creators[0]["fields"]))
    reply = h("create build /model/YoloLayer_TRT")
    assert reply["ok"] and reply["logs"] == [], reply
    return h, head, node


# ---- identity, creation, capabilities ---------------------------------------------------------------

@lib_params
def test_creator_identity_and_fields(host, lib):
    from trtdeploy import _C

    h = host(lib, load=False)
    info = h("info")
    assert info["tensorrt_major"] == lib["tensorrt_major"] and info["tensorrt_version"] == lib["tensorrt_version"]
    loaded = h("load " + lib["library"])
    assert loaded["count"] == 2 and loaded["logs"] == []  # YoloLayer_TRT, TRTDeploy_NMS (tests/test_nms_plugin_host.py)
    c = loaded["creators"][0]
    assert (c["kind"], c["major"], c["name"], c["version"], c["namespace"]) == \
        ("PLUGIN CREATOR_V3ONE", 1, "YoloLayer_TRT", "1", "")
    want = [{"name": s["name"], "type": "int32" if s["type"] == "int" else "float32",
             "length": 0 if s["type"] == "floats" else 1} for s in _C.yolo_layer_attributes()]
    assert c["fields"] == want  # the creator and the Python node inserter read one table


@lib_params
@pytest.mark.parametrize("key", list(MODELS))
def test_build_phase_on_patched_models(host, lib, key):
    h, head, node = created(host, lib, key)
    p = plugin_params(node)
    caps = h("capabilities")
    assert caps["plugin_kind"] == "PLUGIN"
    assert [caps[k]["kind"] for k in ("core", "build", "runtime")] == \
        ["PLUGIN_V3ONE_CORE", "PLUGIN_V3ONE_BUILD", "PLUGIN_V3ONE_RUNTIME"]
    assert (caps["name"], caps["version"], caps["namespace"], caps["nb_outputs"]) == ("YoloLayer_TRT", "1", "", 4)
    levels = len(head.strides)
    for dtype in ("float32", "float16"):
        dt = h("datatypes " + " ".join([dtype] * levels))
        assert dt["rc"] == 0 and dt["types"] == ["int32", "float32", "float32", "int32"]

    # symbolic B/H/W: one symbol per level dim, evaluated at several batch sizes and input sizes
    c = head.num_anchors * (head.num_classes + 5)
    dims = " ".join(f"B,{c},H{i},W{i}" for i in range(levels))
    sizes = [(1, 640, 640), (4, 384, 640), (16, 1280, 704), (3, 256, 128)]
    binds = [",".join([f"B={b}"] + [f"H{i}={hh // s},W{i}={ww // s}" for i, s in enumerate(head.strides)])
             for b, hh, ww in sizes]
    out = h(f"shapes {dims} -- " + " ".join(binds))
    assert out["rc"] == 0 and out["logs"] == [] and out["size_tensors"] == 0
    want_rows = [rows(head, level_shapes(head, *s), p["max_detections"]) for s in sizes]
    batches = [s[0] for s in sizes]
    num, boxes, scores, classes = out["outputs"]
    assert [d["values"] for d in num] == [batches, [1] * len(sizes)]
    assert [d["values"] for d in boxes] == [batches, want_rows, [4] * len(sizes)]
    assert [d["values"] for d in scores] == [d["values"] for d in classes] == [batches, want_rows]
    assert all(o[0]["expr"] == "B" for o in out["outputs"])  # the batch is the input's own expression
    assert [num[1]["constant"], boxes[2]["constant"], boxes[1]["constant"]] == [True, True, False]
    if p["max_detections"]:
        assert boxes[1]["expr"].startswith("min(")

    # static dims: everything folds to constants, as TensorRT folds them
    shapes = level_shapes(head, 2, 256, 320)
    static = h("shapes " + " ".join(",".join(map(str, s)) for s in shapes))
    assert all(d["constant"] for o in static["outputs"] for d in o)
    assert static["outputs"][1][1]["expr"] == str(rows(head, shapes, p["max_detections"]))


@lib_params
def test_formats_at_every_position(host, lib):
    h, head, _ = created(host, lib, "p5_nc80")
    n = len(head.strides)
    outs = ["int32", "float32", "float32", "int32"]
    candidates = ["float32", "float16", "bfloat16", "int32", "int8", "int64", "bool", "fp8"]
    formats = [0, 1, 2, 5, 8]  # LINEAR, CHW2, HWC8, CHW32, HWC
    for base in ("float32", "float16"):
        io = [base] * n + outs
        assert h(f"formats {n} " + " ".join(f"{t}:0" for t in io))["supported"] == [True] * (n + 4)
        for pos in range(n + 4):
            for t in candidates:
                for f in formats:
                    combo = list(io)
                    combo[pos] = t
                    got = h(f"formats {n} " + " ".join(f"{x}:{f if i == pos else 0}" for i, x in enumerate(combo)))
                    if pos < n:
                        want = f == 0 and t in ("float32", "float16") and (pos == 0 or t == base)
                    else:
                        want = f == 0 and t == outs[pos - n]
                    assert got["supported"][pos] == want, (base, pos, t, f)


@lib_params
@pytest.mark.parametrize("key", ["p5_nc80", "p6_nc7_maxdet100"])
def test_configure_workspace_serialize_clone_attach(host, lib, key):
    from trtdeploy import _C

    h, head, node = created(host, lib, key)
    p = plugin_params(node)
    c = head.num_anchors * (head.num_classes + 5)
    lo, hi = level_shapes(head, 1, 128, 128), level_shapes(head, 8, 640, 512)
    dyn = [(-1, c, -1, -1)] * len(lo)
    assert h("configure " + tensors("float32", dyn, lo, hi)) == {"cmd": "configure", "rc": 0, "logs": []}
    ws = h("workspace " + tensors("float32", dyn, lo, hi))["bytes"]
    assert ws > 0
    if _C.build_info()["cuda"]:  # sized from the profile's max shapes, as the kernel needs it
        plan = _C.yolo_decode_plan([list(s) for s in hi], p["anchors"], p["max_stride"], p["num_classes"],
                                   p["max_detections"])
        assert ws == plan["workspace_bytes"]
    assert h("workspace " + tensors("float32", dyn, lo, lo))["bytes"] < ws

    first = h("serialize")["fields"]
    want = {"max_stride": [p["max_stride"]], "num_classes": [p["num_classes"]], "anchors": p["anchors"],
            "prenms_score_threshold": [p["score_threshold"]], "score_mode": [p["score_mode"]],
            "max_detections": [p["max_detections"]]}
    as_f32 = lambda d: {k: np.float32(v).tolist() for k, v in d.items()}  # noqa: E731 - 9 digits round-trip
    assert as_f32({f["name"]: f["values"] for f in first}) == as_f32(want)
    assert {f["name"]: f["type"] for f in first} == {
        "max_stride": "int32", "num_classes": "int32", "anchors": "float32", "prenms_score_threshold": "float32",
        "score_mode": "int32", "max_detections": "int32"}
    # deserialization: the serialized fields through createPlugin(kRUNTIME), then TensorRT's runtime calls
    assert h("create runtime /model/YoloLayer_TRT")["ok"]
    assert h("serialize")["fields"] == first
    assert h("attach")["ok"] and h("serialize")["fields"] == first
    run = level_shapes(head, 3, 320, 256)
    assert h("shapechange " + tensors("float16", run)) == {"cmd": "shapechange", "rc": 0, "logs": []}
    assert h("clone")["ok"] and h("serialize")["fields"] == first
    assert h("shapechange " + tensors("float32", run))["rc"] == 0


# ---- every rejection path, each with the plugin's own log line --------------------------------------

P5_FIELDS = ["field max_stride int32 32", "field num_classes int32 80",
             "field anchors float32 10 13 16 30 33 23 30 61 62 45 59 119 116 90 156 198 373 326"]


@lib_params
@pytest.mark.parametrize("fields, log", [
    (P5_FIELDS + ["field bogus int32 1"], "createPlugin: unknown field 'bogus'"),
    (["field max_stride int32 32", "field num_classes float32 80", P5_FIELDS[2]],
     "createPlugin: field 'num_classes' must be one int32"),
    (["field max_stride int32 32", "field num_classes int32 80", "field anchors int32 10 13"],
     "createPlugin: field 'anchors' must be float32 values"),
    (P5_FIELDS + ["field prenms_score_threshold int32 0"], "field 'prenms_score_threshold' must be one float32"),
    (P5_FIELDS + ["field max_detections int32 1 2"], "field 'max_detections' must be one int32"),
    (P5_FIELDS[:2], "createPlugin: missing required field 'anchors'"),
    (P5_FIELDS[1:], "createPlugin: missing required field 'max_stride'"),
    (P5_FIELDS + ["field max_stride int32 32"], "field 'max_stride' given twice"),
    (["field max_stride int32 0"] + P5_FIELDS[1:], "max_stride must be >= 1"),
    (P5_FIELDS[:2] + ["field anchors float32 10 13 16"], "anchors must hold (w, h) pairs"),
    (P5_FIELDS[:2] + ["field anchors float32 10 -13"], "anchors must be positive sizes in pixels"),
    (P5_FIELDS + ["field score_mode int32 2"], "score_mode must be 0 or 1"),
    (P5_FIELDS + ["field max_detections int32 -1"], "max_detections must be >= 0"),
    (P5_FIELDS[:2] + ["field anchors float32"], "field 'anchors' must be non-empty"),
])
def test_create_rejections(host, lib, fields, log):
    h = host(lib)
    h.fields(fields)
    for phase in ("build", "runtime"):
        reply = h(f"create {phase} /model/YoloLayer_TRT")
        assert not reply["ok"]
        assert reply["logs"] == [f"ERROR: YoloLayer_TRT (/model/YoloLayer_TRT) {log}"] or \
            (len(reply["logs"]) == 1 and log in reply["logs"][0]), reply


L = [(2, 255, 16, 16), (2, 255, 8, 8), (2, 255, 4, 4)]


@lib_params
@pytest.mark.parametrize("command, log", [
    ("configure " + tensors("float32", L[:2]), "configurePlugin: 18 anchor values do not split into 2 levels"),
    ("configure " + tensors("float32", L + [(2, 255, 2, 2)]), "configurePlugin: 18 anchor values do not split into 4"),
    ("configure outputs=3 " + tensors("float32", L), "configurePlugin: has 4 outputs, not 3"),
    ("configure " + tensors("float32", [L[0], (2, 100, 8, 8), L[2]]),
     "configurePlugin: input 1 has 100 channels; num_anchors * (num_classes + 5) = 3 * (80 + 5) = 255"),
    ("configure " + tensors("float32", [L[0], (3, 255, 8, 8), L[2]]),
     "configurePlugin: input 1 has batch 3 but input 0 has batch 2"),
    ("configure float32:2x255x16x16 float16:2x255x8x8 float32:2x255x4x4",
     "configurePlugin: input 1 is float16 but input 0 is float32; all levels must share one type"),
    ("configure " + tensors("bfloat16", L), "configurePlugin: input 0 is bfloat16; the levels must be float32 or float16"),
    ("configure float32:2x255x16 float32:2x255x8x8 float32:2x255x4x4", "configurePlugin: input 0 has 3 dims"),
    ("datatypes bfloat16 bfloat16 bfloat16", "getOutputDataTypes: input 0 is bfloat16"),
    ("shapes B,255,H0,W0 B,255,H1,W1", "getOutputShapes: 18 anchor values do not split into 2 levels"),
    ("shapes B,255,H0,W0 B,254,H1,W1 B,255,H2,W2", "getOutputShapes: input 1 has 254 channels"),
    ("shapes 2,255,H0,W0 3,255,H1,W1 2,255,H2,W2", "getOutputShapes: input 1 has batch 3 but input 0 has batch 2"),
    ("shapes outputs=2 B,255,H0,W0 B,255,H1,W1 B,255,H2,W2", "getOutputShapes: has 4 outputs, not 2"),
    ("shapes B,255,H0 B,255,H1,W1 B,255,H2,W2", "getOutputShapes: input 0 has 3 dims"),
    ("shapechange " + tensors("float32", [L[0], (3, 255, 8, 8), L[2]]),
     "onShapeChange: input 1 has batch 3 but input 0 has batch 2"),
    ("shapechange " + tensors("float32", [L[0], (2, 256, 8, 8), L[2]]),
     "onShapeChange: input 1 has 256 channels"),  # C dynamic at build: checked when the shape is known
    ("shapechange float16:2x255x16x16 float32:2x255x8x8 float32:2x255x4x4",
     "onShapeChange: input 1 is float32 but input 0 is float16"),
    ("shapechange " + tensors("bfloat16", L), "onShapeChange: input 0 is bfloat16"),
    ("shapechange " + tensors("float32", [(2, 255, 12, 12), L[1], L[2]]), "onShapeChange: YoloLayer_TRT: level grid "
     "sizes are not max_stride-compatible"),
    ("shapechange " + tensors("float32", L + [(2, 255, 2, 2)]), "onShapeChange: 18 anchor values do not split into 4"),
    ("shapechange outputs=5 " + tensors("float32", L), "onShapeChange: has 4 outputs, not 5"),
])
def test_shape_and_type_rejections(host, lib, command, log):
    h = host(lib)
    h.fields(P5_FIELDS)
    assert h("create build layer")["ok"]
    reply = h(command)
    assert reply["rc"] == -1, reply
    assert len(reply["logs"]) == 1 and reply["logs"][0].startswith("ERROR: YoloLayer_TRT (layer) ") and \
        log in reply["logs"][0], reply


ONE_LEVEL_FIELDS = ["field max_stride int32 8", "field num_classes int32 1", "field anchors float32 8 8"]
EDGE = 2 ** 15  # one level of 1 anchor: EDGE x EDGE cells = 2^30 anchors per image, the most the decode takes


@lib_params
@pytest.mark.parametrize("fields, max_shapes, ok", [
    (ONE_LEVEL_FIELDS, [(4, 6, EDGE, EDGE)], True),
    (ONE_LEVEL_FIELDS, [(4, 6, EDGE, EDGE + 1)], False),
    (ONE_LEVEL_FIELDS, [(1, 6, 2 ** 40, 2 ** 40)], False),  # no int64 overflow on the way
    (ONE_LEVEL_FIELDS, [(2 ** 31, 6, 8, 8)], False),  # max batch above int32
    (P5_FIELDS, [(1, 255, 16384, 16384), (1, 255, 8192, 8192), (1, 255, 4096, 4096)], True),  # 63 * 2^24
    (P5_FIELDS, [(1, 255, 32768, 16384), (1, 255, 16384, 8192), (1, 255, 8192, 4096)], False),  # the sum
])
def test_profile_max_shapes_within_the_anchor_limit(host, lib, fields, max_shapes, ok):
    """A profile admitting more anchors per image than the decode takes fails the build in configurePlugin
    (getWorkspaceSize could only return 0, and enqueue would then get no workspace), with the reason."""
    h = host(lib)
    h.fields(fields)
    assert h("create build layer")["ok"]
    dyn = [(-1, s[1], -1, -1) for s in max_shapes]
    lo = [(1, s[1], 1, 1) for s in max_shapes]
    spec = tensors("float32", dyn, lo, max_shapes)
    configured, ws = h("configure " + spec), h("workspace " + spec)
    if ok:
        assert configured["rc"] == 0 and configured["logs"] == [] and ws["logs"] == [] and ws["bytes"] > 0
    else:
        assert configured["rc"] == -1 and ws["bytes"] == 0
        for reply, call in ((configured, "configurePlugin"), (ws, "getWorkspaceSize")):
            assert len(reply["logs"]) == 1, reply
            assert reply["logs"][0].startswith(f"ERROR: YoloLayer_TRT (layer) {call}: the profile's max "), reply


# ---- the kernel's C++ entry, decode_cuda, called directly --------------------------------------------

@lib_params
@pytest.mark.parametrize("args, want", [
    ("max_detections=0", "cudaErrorInvalidValue"),  # params not finalized: the kernel would divide by 0
    ("max_detections=-1", "cudaErrorInvalidValue"),
    ("max_detections=17", "cudaErrorInvalidValue"),  # 16 anchors per image: rows past them
    ("batch=0 max_detections=0", "cudaErrorInvalidValue"),
    ("ws_offset=4", "cudaErrorMisalignedAddress"),  # the workspace must be 16-byte aligned
    ("batch=0", "cudaSuccess"),  # nothing to do: no CUDA call at all
])
def test_decode_cuda_refuses_bad_arguments(host, lib, args, want):
    """Checked before any CUDA call, so on every machine."""
    assert host(lib)(f"decode {args}")["rc"] == want


@lib_params
@pytest.mark.parametrize("max_det, kept", [(1, 1), (16, 16), (None, 16)])
def test_decode_cuda_valid_arguments(host, lib, max_det, kept):
    """Valid params get past the checks: decoded on a GPU; without one, the CUDA error of the first call."""
    h = host(lib)
    reply = h("decode" + (f" max_detections={max_det}" if max_det else ""))
    if reply["device"]:
        assert reply["rc"] == "cudaSuccess" and reply["num_detections"] == [kept, kept], reply
    else:
        assert reply["rc"] not in ("cudaSuccess", "cudaErrorInvalidValue", "cudaErrorMisalignedAddress"), reply


@pytest.mark.gpu
@lib_params
@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_decode_cuda_returns_its_own_status(host, lib, dtype):
    """An error left pending by an earlier, unrelated call is neither returned nor cleared."""
    h = host(lib)
    if not _gpu(h):
        pytest.skip(f"no CUDA device visible to the host ({h('devices')['error']})")
    assert h(f"prepare {dtype}")["rc"] == "cudaSuccess"
    fp16 = " fp16" if dtype == "fp16" else ""
    assert h("decode" + fp16) | {"logs": []} == {"cmd": "decode", "device": True, "rc": "cudaSuccess",
                                                 "pending": "cudaSuccess", "num_detections": [16, 16], "logs": []}
    reply = h("decode stale" + fp16)
    assert reply["stale"] == "cudaErrorInvalidDevice"
    assert reply["rc"] == "cudaSuccess" and reply["num_detections"] == [16, 16], reply
    assert reply["pending"] == "cudaErrorInvalidDevice", reply  # still there for its owner


# ---- enqueue -----------------------------------------------------------------------------------------

def _gpu(h) -> bool:
    return h("devices")["count"] > 0


@lib_params
def test_enqueue_without_gpu_fails_cleanly(host, lib):
    h, head, _ = created(host, lib, "p5_nc80")
    if _gpu(h):
        pytest.skip("a CUDA device is visible: the GPU test below runs enqueue for real")
    shapes = level_shapes(head, 2, 128, 160)
    assert h("shapechange " + tensors("float32", shapes))["rc"] == 0
    reply = h("enqueue " + tensors("float32", shapes) + " -- /nonexistent /nonexistent")
    assert reply["device"] is False and reply["rc"] == -1
    assert len(reply["logs"]) == 1 and \
        "YoloLayer_TRT (/model/YoloLayer_TRT) enqueue: the decode kernel did not launch: cuda" in reply["logs"][0]
    assert reply["output_shapes"][1] == [2, rows(head, shapes, 0), 4]
    h("devices")  # still answering: no crash


@lib_params
def test_enqueue_without_workspace_fails_cleanly(host, lib, tmp_path):
    """A null workspace with images to decode is refused before any CUDA call (with a GPU too); with
    batch 0 there is nothing to do and none is needed."""
    from trtdeploy import _C

    h, head, node = created(host, lib, "p5_nc80")
    p = plugin_params(node)
    shapes = level_shapes(head, 2, 128, 160)
    assert h("shapechange " + tensors("float32", shapes))["rc"] == 0
    reply = h("enqueue " + tensors("float32", shapes) + " -- /nonexistent /nonexistent noworkspace")
    need = _C.yolo_decode_plan([list(s) for s in shapes], p["anchors"], p["max_stride"], p["num_classes"],
                               p["max_detections"])["workspace_bytes"]
    assert reply["rc"] == -1 and reply["logs"] == [
        f"ERROR: YoloLayer_TRT (/model/YoloLayer_TRT) enqueue: no workspace; these shapes need {need} bytes "
        "(getWorkspaceSize)"], reply
    empty = level_shapes(head, 0, 128, 160)
    (tmp_path / "in.bin").write_bytes(b"")
    assert h("shapechange " + tensors("float32", empty))["rc"] == 0
    reply = h("enqueue " + tensors("float32", empty) + f" -- {tmp_path / 'in.bin'} {tmp_path / 'out'} noworkspace")
    assert reply["rc"] == 0 and reply["logs"] == [], reply


def _levels(seed, shapes, dtype, skew=3.0):
    rng = np.random.default_rng(seed)
    return [(rng.random(s, dtype=np.float32) ** skew).astype(dtype) for s in shapes]


@pytest.mark.gpu
@lib_params
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("key", ["p5_nc80", "p6_nc7_maxdet100"])
def test_enqueue_on_gpu_equals_oracle(host, lib, tmp_path, dtype, key):
    h, head, node = created(host, lib, key)
    if not _gpu(h):
        pytest.skip(f"no CUDA device visible to the host ({h('devices')['error']})")
    p = plugin_params(node)
    for batch, height, width in ((1, 128, 128), (3, 96, 160), (2, 256, 128)):  # two+ batches, non-square
        shapes = level_shapes(head, batch, height, width)
        levels = _levels(batch * height + width, shapes, np.dtype(dtype))
        (tmp_path / "in.bin").write_bytes(b"".join(lv.tobytes() for lv in levels))
        assert h("shapechange " + tensors(dtype, shapes))["rc"] == 0
        reply = h("enqueue " + tensors(dtype, shapes) + f" -- {tmp_path / 'in.bin'} {tmp_path / 'out'}")
        assert reply["device"] and reply["rc"] == 0 and reply["logs"] == [], reply
        n = rows(head, shapes, p["max_detections"])
        got = [np.fromfile(tmp_path / "out.0.bin", np.int32).reshape(batch, 1),
               np.fromfile(tmp_path / "out.1.bin", np.float32).reshape(batch, n, 4),
               np.fromfile(tmp_path / "out.2.bin", np.float32).reshape(batch, n),
               np.fromfile(tmp_path / "out.3.bin", np.int32).reshape(batch, n)]
        want = decode_numpy(levels, p["anchors"], p["max_stride"], p["num_classes"], p["score_threshold"],
                            p["score_mode"], p["max_detections"])
        np.testing.assert_array_equal(got[0], want[0])
        assert want[0].max() > 0  # something was detected, so rows were really written
        for x, y in zip(got[1:], want[1:]):  # every row, zeros past the count; bit for bit (yoloDecode.h)
            np.testing.assert_array_equal(x, y)


# ---- the libraries themselves -------------------------------------------------------------------------

@lib_params
def test_library_exports_and_dependencies(lib):
    if not shutil.which("nm") or not shutil.which("ldd"):
        pytest.skip("nm/ldd not available")
    defined = subprocess.run(["nm", "-D", "--defined-only", lib["library"]], capture_output=True, text=True).stdout
    assert sorted(line.split()[-1] for line in defined.splitlines()) == ["getCreators", "setLoggerFinder"]
    undefined = subprocess.run(["nm", "-D", "--undefined-only", lib["library"]], capture_output=True, text=True)
    assert undefined.returncode == 0 and "nvinfer" not in undefined.stdout.lower()
    deps = subprocess.run(["ldd", lib["library"]], capture_output=True, text=True).stdout
    assert "libcudart" not in deps and "nvinfer" not in deps
