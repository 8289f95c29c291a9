"""``yolo patch --nms plugin``: the model ends in the TRTDeploy_NMS plugin (an IPluginV3 in the
trtdeploy plugin library, next to YoloLayer_TRT) instead of ONNX NonMaxSuppression.

The node takes what the patch computes before its NMS (candidate boxes [B, K, 4] x1, y1, x2, y2,
scores [B, K], classes [B, K] int32) and outputs num_detections, detection_boxes, detection_scores,
detection_classes with D = max_detections rows (plugins/nms/README.md). Its attributes come from
trtdeploy._C (the table the plugin creator reads). onnxruntime cannot run the node: the check runs
the model up to the node's inputs in onnxruntime and the node itself through the C++ CPU NMS
(``_C.nms_cpu``, the semantics of the plugin's kernel), see ``runner`` (which runs YoloLayer_TRT before it
the same way, for YOLOv5 models).
"""

from __future__ import annotations

import onnx
from onnx import TensorProto as TP
from onnx import helper

from .._graph import copy_model, prune
from ..errors import TrtDeployError

PLUGIN_DOMAIN = "trt.plugins"  # as YoloLayer_TRT: the ONNX parser looks unknown ops up in the plugin registry


def _C():
    try:
        from .. import _C as c
    except ImportError:
        raise TrtDeployError("trtdeploy._C is not built; reinstall trtdeploy") from None
    return c


def plugin_name() -> str:
    return _C().NMS_PLUGIN_NAME


def attributes(iou_threshold: float, score_threshold: float, max_detections: int, agnostic: bool) -> dict:
    values = {"iou_threshold": float(iou_threshold), "score_threshold": float(score_threshold),
              "max_detections": int(max_detections), "class_agnostic": int(bool(agnostic))}
    out = {}
    for spec in _C().nms_attributes():
        v = values.pop(spec["name"], None)
        if v is None:
            if spec["required"]:
                raise TrtDeployError(f"{plugin_name()} attribute '{spec['name']}' has no value")
            continue
        out[spec["name"]] = int(v) if spec["type"] == "int" else float(v)
    if values:
        raise TrtDeployError(f"{plugin_name()} does not declare {sorted(values)}")
    return out


def append_node(e, boxes: str, scores: str, classes: str, opts: dict, outputs: list[str] | None = None) -> list[str]:
    """The plugin node after boxes [B, K, 4], scores [B, K] and classes [B, K] (int32, or any int type
    with ``cast``) through the Emitter ``e``; returns its four outputs (named ``outputs`` when given)."""
    if opts.get("cast_classes", True):
        classes = e.op("Cast", [classes], base="det_nms_classes", to=TP.INT32)
    outs = outputs or [e.name(f"det_{n}") for n in ("num", "boxes", "scores", "classes")]
    attrs = attributes(opts["iou_threshold"], opts["score_threshold"], opts["max_detections"], opts["agnostic"])
    e.nodes.append(helper.make_node(plugin_name(), [boxes, scores, classes], outs, name=e.name(plugin_name()),
                                    domain=PLUGIN_DOMAIN, plugin_version=_C().NMS_PLUGIN_VERSION, **attrs))
    m = e.model
    if not any(o.domain == PLUGIN_DOMAIN for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid(PLUGIN_DOMAIN, 1))
    return outs


def find_node(model: onnx.ModelProto) -> onnx.NodeProto | None:
    name = plugin_name()
    return next((n for n in model.graph.node if n.op_type == name), None)


def plugin_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.domain == PLUGIN_DOMAIN]


def trunk(patched: onnx.ModelProto, outputs: list[str] | None = None) -> tuple[onnx.ModelProto, list[str]]:
    """The model without its plugin nodes (what onnxruntime can run): its outputs are what the plugins read
    from the rest of the graph, and ``outputs`` not made by a plugin. Returns (model, those names). Refused
    when an ONNX node reads a plugin's output (the plugins must end the graph)."""
    plugins = plugin_nodes(patched)
    made = {o for n in plugins for o in n.output}
    for n in patched.graph.node:
        if n.domain != PLUGIN_DOMAIN and made & set(n.input):
            raise TrtDeployError(f"node '{n.name}' ({n.op_type}) reads the output of a plugin: only a model whose "
                                 "plugins end the graph can be run on the CPU")
    needed = list(dict.fromkeys([x for n in plugins for x in n.input if x and x not in made]
                                + [o for o in outputs or [] if o not in made]))
    m = copy_model(patched)
    g = m.graph
    g.ClearField("output")
    g.output.extend(onnx.ValueInfoProto(name=x) for x in needed)
    keep = [n for n in g.node if n.domain != PLUGIN_DOMAIN]
    g.ClearField("node")
    g.node.extend(keep)
    g.ClearField("value_info")
    prune(g)
    kept = [o for o in m.opset_import if o.domain != PLUGIN_DOMAIN]
    m.ClearField("opset_import")
    m.opset_import.extend(kept)
    return m, needed


def run_node(node: onnx.NodeProto, boxes, scores, classes) -> list:
    """The NMS plugin's outputs through the C++ CPU NMS."""
    from .nms import nms_cpu

    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    if "max_detections" not in a:
        raise TrtDeployError(f"{node.op_type} node '{node.name}' has no max_detections attribute")
    return list(nms_cpu(boxes, scores, classes, a.get("iou_threshold", 0.45), a.get("score_threshold", 0.25),
                        a["max_detections"], bool(a.get("class_agnostic", 0))))


def _run_yolo_layer(node: onnx.NodeProto, *levels) -> list:
    """YoloLayer_TRT's outputs through the C++ CPU decode (the kernel's semantics)."""
    from .verify_v5 import decode, plugin_params

    return list(decode(list(levels), plugin_params(node)))


def _cpu(op_type: str):
    """The C++ CPU implementation of a plugin node of trtdeploy's library."""
    fn = {"YoloLayer_TRT": _run_yolo_layer, plugin_name(): run_node}.get(op_type)
    if fn is None:
        raise TrtDeployError(f"no CPU implementation of the plugin {op_type}: the model cannot be checked here")
    return fn


def runner(patched: onnx.ModelProto, basic: bool = False, outputs=None):
    """feeds -> ``outputs`` of ``patched`` (default the four detection outputs), in order: onnxruntime up to
    the plugins' inputs, then each plugin node through its C++ CPU implementation (YoloLayer_TRT's decode,
    TRTDeploy_NMS's NMS). For a model without plugins, onnxruntime alone."""
    from ..ort import run, session
    from .families import DETECTION_OUTPUTS

    outputs = list(outputs or DETECTION_OUTPUTS)
    plugins = plugin_nodes(patched)
    if not plugins:
        sess = session(patched, basic=basic)
        return lambda feeds: [run(sess, feeds, outputs)[k] for k in outputs]
    model, needed = trunk(patched, outputs)
    sess = session(model, basic=basic)
    fns = [(_cpu(n.op_type), n) for n in plugins]

    def go(feeds):
        values = run(sess, feeds, needed)
        for fn, n in fns:
            values.update(zip(n.output, fn(n, *(values[x] for x in n.input))))
        return [values[k] for k in outputs]

    return go
