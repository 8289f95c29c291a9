"""``yolo patch --nms plugin``: the model ends in the TRTDeploy_NMS plugin (an IPluginV3 in the
trtdeploy plugin library, next to YoloLayer_TRT) instead of ONNX NonMaxSuppression.

The node takes what the patch computes before its NMS (candidate boxes [B, K, 4] x1, y1, x2, y2,
scores [B, K], classes [B, K] int32) and outputs num_detections, detection_boxes, detection_scores,
detection_classes with D = max_detections rows (plugins/nms/README.md). Its attributes come from
trtdeploy._C (the table the plugin creator reads). onnxruntime cannot run the node: the check runs
the model up to the node's inputs in onnxruntime and the node itself through the C++ CPU NMS
(``_C.nms_cpu``, the semantics of the plugin's kernel), see ``runner``.
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


def append_node(e, boxes: str, scores: str, classes: str, opts: dict) -> list[str]:
    """The plugin node after boxes [B, K, 4], scores [B, K] and classes [B, K] (any int type) through the
    Emitter ``e``; returns its four outputs."""
    cls = e.op("Cast", [classes], base="det_nms_classes", to=TP.INT32)
    outs = [e.name(f"det_{n}") for n in ("num", "boxes", "scores", "classes")]
    attrs = attributes(opts["iou_threshold"], opts["score_threshold"], opts["max_detections"], opts["agnostic"])
    e.nodes.append(helper.make_node(plugin_name(), [boxes, scores, cls], outs, name=e.name(plugin_name()),
                                    domain=PLUGIN_DOMAIN, plugin_version=_C().NMS_PLUGIN_VERSION, **attrs))
    m = e.model
    if not any(o.domain == PLUGIN_DOMAIN for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid(PLUGIN_DOMAIN, 1))
    return outs


def find_node(model: onnx.ModelProto) -> onnx.NodeProto | None:
    name = plugin_name()
    return next((n for n in model.graph.node if n.op_type == name), None)


def trunk(patched: onnx.ModelProto, node: onnx.NodeProto) -> onnx.ModelProto:
    """The model up to the plugin's inputs (what onnxruntime can run)."""
    m = copy_model(patched)
    g = m.graph
    g.ClearField("output")
    g.output.extend(onnx.ValueInfoProto(name=x) for x in node.input)
    keep = [n for n in g.node if n.op_type != node.op_type]
    g.ClearField("node")
    g.node.extend(keep)
    g.ClearField("value_info")
    prune(g)
    if not any(n.domain == PLUGIN_DOMAIN for n in g.node):
        kept = [o for o in m.opset_import if o.domain != PLUGIN_DOMAIN]
        m.ClearField("opset_import")
        m.opset_import.extend(kept)
    return m


def run_node(node: onnx.NodeProto, boxes, scores, classes) -> list:
    """The plugin's outputs through the C++ CPU NMS."""
    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    return list(_C().nms_cpu(boxes, scores, classes, float(a.get("iou_threshold", 0.45)),
                             float(a.get("score_threshold", 0.25)), int(a["max_detections"]),
                             bool(a.get("class_agnostic", 0))))


def runner(patched: onnx.ModelProto, basic: bool = False):
    """feeds -> the four detection outputs of ``patched``: onnxruntime up to the plugin's inputs, then
    the plugin through the C++ CPU NMS. For a model without the plugin, onnxruntime alone."""
    from ..ort import run, session
    from .families import DETECTION_OUTPUTS

    node = find_node(patched)
    if node is None:
        sess = session(patched, basic=basic)
        return lambda feeds: [run(sess, feeds, list(DETECTION_OUTPUTS))[k] for k in DETECTION_OUTPUTS]
    sess = session(trunk(patched, node), basic=basic)
    order = [list(node.output).index(k) for k in DETECTION_OUTPUTS]

    def go(feeds):
        ins = run(sess, feeds, list(node.input))
        outs = run_node(node, *(ins[x] for x in node.input))
        return [outs[i] for i in order]

    return go
