"""Prepend the letterbox to the model graph: uint8 BGR frames in, the model's input out.

The host then only copies frames into the batch; the resize, padding, layout change and
dtype conversion run on whichever execution provider runs the model. The frames are cast to
float first: the CUDA provider has no uint8 Pad (nor TensorRT's parser a uint8 Resize), and a
node left on the CPU costs copies both ways every batch and rules out CUDA graph capture.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgevision.errors import BuildError
from edgevision.models.manifest import InputSpec

FRAMES_INPUT = "frames"
# Opset 11 is YOLOX's export opset; the wrapper uses only ops whose form it shares with later ones.
MIN_OPSET = 11


class InGraphError(BuildError):
    """The graph cannot take the preprocessing wrapper."""


def add_preprocessing(model: onnx.ModelProto, spec: InputSpec) -> onnx.ModelProto:
    """A copy of `model` whose single input is `frames`: uint8 [N, H, W, 3], any H and W."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise InGraphError(f"model opset {opset}; preprocessing in the graph needs opset {MIN_OPSET} or later")
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    if len(graph.input) != 1:
        raise InGraphError(f"model has {len(graph.input)} inputs; one image input is expected")
    original = graph.input[0]
    dims = original.type.tensor_type.shape.dim
    batch = dims[0].dim_param or dims[0].dim_value
    nodes, inits = _letterbox_nodes(spec, out=original.name)
    frames = helper.make_tensor_value_info(FRAMES_INPUT, TensorProto.UINT8, [batch, "height", "width", 3])
    graph.input.remove(original)
    graph.input.append(frames)
    graph.initializer.extend(inits)
    # Prepend: nodes must stay topologically sorted.
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)
    onnx.checker.check_model(model)
    return model


def _letterbox_nodes(spec: InputSpec, out: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    th, tw = spec.height, spec.width
    inits: list[onnx.TensorProto] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, f"pre.{name}"))
        return f"pre.{name}"

    i64 = lambda *v: np.asarray(v, dtype=np.int64)  # noqa: E731 - local shorthand
    n = helper.make_node
    nodes = [
        n("Cast", [FRAMES_INPUT], ["pre.frames_float"], to=TensorProto.FLOAT),
        n("Transpose", ["pre.frames_float"], ["pre.nchw"], perm=[0, 3, 1, 2]),
        n("Shape", [FRAMES_INPUT], ["pre.shape"]),
        n("Slice", ["pre.shape", const("s0", i64(0)), const("s1", i64(1))], ["pre.n"]),
        n("Slice", ["pre.shape", const("s1b", i64(1)), const("s2", i64(2))], ["pre.h"]),
        n("Slice", ["pre.shape", const("s2b", i64(2)), const("s3", i64(3))], ["pre.w"]),
        # Integer arithmetic, as the host does, so both agree on every pixel of the layout:
        # fit the height when th/H <= tw/W, i.e. th*W <= tw*H; the other side is truncated.
        n("Mul", ["pre.w", const("th", i64(th))], ["pre.th_w"]),
        n("Mul", ["pre.h", const("tw", i64(tw))], ["pre.tw_h"]),
        n("Greater", ["pre.th_w", "pre.tw_h"], ["pre.fit_width"]),
        n("Div", ["pre.tw_h", "pre.w"], ["pre.h_by_w"]),
        n("Div", ["pre.th_w", "pre.h"], ["pre.w_by_h"]),
        n("Where", ["pre.fit_width", "pre.h_by_w", "pre.th"], ["pre.nh0"]),
        n("Where", ["pre.fit_width", "pre.tw", "pre.w_by_h"], ["pre.nw0"]),
        # At least one pixel (a 1000x1 frame): add 1 where the truncation gave 0.
        n("Equal", ["pre.nh0", const("zero", i64(0))], ["pre.nh_zero"]),
        n("Equal", ["pre.nw0", "pre.zero"], ["pre.nw_zero"]),
        n("Cast", ["pre.nh_zero"], ["pre.nh_fix"], to=TensorProto.INT64),
        n("Cast", ["pre.nw_zero"], ["pre.nw_fix"], to=TensorProto.INT64),
        n("Add", ["pre.nh0", "pre.nh_fix"], ["pre.nh"]),
        n("Add", ["pre.nw0", "pre.nw_fix"], ["pre.nw"]),
        n("Concat", ["pre.n", const("c", i64(3)), "pre.nh", "pre.nw"], ["pre.sizes"], axis=0),
        # Linear with half-pixel centres and no antialiasing: what cv2.INTER_LINEAR does.
        n(
            "Resize",
            ["pre.nchw", const("roi", np.zeros(0, np.float32)), const("scales", np.zeros(0, np.float32)), "pre.sizes"],
            ["pre.resized"],
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        ),
        n("Concat", ["pre.nh", "pre.nw"], ["pre.nhw"], axis=0),
        n("Sub", [const("thw", i64(th, tw)), "pre.nhw"], ["pre.pad_end"]),
        n(
            "Concat",
            [const("zeros4", i64(0, 0, 0, 0)), const("zeros2", i64(0, 0)), "pre.pad_end"],
            ["pre.pads"],
            axis=0,
        ),
        n(
            "Pad",
            ["pre.resized", "pre.pads", const("pad_value", np.asarray(spec.pad_value, dtype=np.float32))],
            ["pre.padded"],
            mode="constant",
        ),
    ]
    last = "pre.padded"
    if spec.channel_order == "RGB":
        nodes.append(n("Gather", [last, const("bgr_to_rgb", i64(2, 1, 0))], ["pre.rgb"], axis=1))
        last = "pre.rgb"
    norm = spec.normalization
    if norm.is_identity:
        nodes.append(n("Identity", [last], [out]))
    else:
        std = np.asarray(norm.std, dtype=np.float32)
        scale = (np.float32(norm.scale) / std).reshape(1, 3, 1, 1)
        offset = (-np.asarray(norm.mean, dtype=np.float32) / std).reshape(1, 3, 1, 1)
        nodes += [
            n("Mul", [last, const("scale", scale)], ["pre.scaled"]),
            n("Add", ["pre.scaled", const("offset", offset)], [out]),
        ]
    return nodes, inits
