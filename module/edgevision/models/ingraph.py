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
    initializers = {i.name for i in graph.initializer}
    images = [v for v in graph.input if v.name not in initializers and len(v.type.tensor_type.shape.dim) == 4]
    if len(images) != 1:
        raise InGraphError(f"model has {len(images)} 4-D inputs; one image input is expected")
    original = images[0]
    dims = original.type.tensor_type.shape.dim
    batch = dims[0].dim_param or dims[0].dim_value
    nodes, inits = _letterbox_nodes(spec, out=original.name)
    frames = helper.make_tensor_value_info(FRAMES_INPUT, TensorProto.UINT8, [batch, "height", "width", 3])
    # The frames take the image's place, first among the inputs (sizes and such follow).
    position = list(graph.input).index(original)
    graph.input.remove(original)
    graph.input.insert(position, frames)
    graph.initializer.extend(inits)
    # Prepend: nodes must stay topologically sorted.
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)
    onnx.checker.check_model(model)
    return model


class _Builder:
    """Nodes and constants of the preprocessing prefix, named `pre.*`."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, f"pre.{name}"))
        return f"pre.{name}"

    def ints(self, name: str, *values: int) -> str:
        return self.const(name, np.asarray(values, dtype=np.int64))

    def add(self, op: str, inputs: list[str], output: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def resize(self, sizes: str) -> str:
        empty = np.zeros(0, np.float32)
        # Linear with half-pixel centres and no antialiasing: what cv2.INTER_LINEAR does.
        return self.add(
            "Resize",
            ["pre.nchw", self.const("roi", empty), self.const("scales", empty), sizes],
            "pre.resized",
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        )


def _letterbox_nodes(spec: InputSpec, out: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    b = _Builder()
    b.add("Cast", [FRAMES_INPUT], "pre.frames_float", to=TensorProto.FLOAT)
    b.add("Transpose", ["pre.frames_float"], "pre.nchw", perm=[0, 3, 1, 2])
    b.add("Shape", [FRAMES_INPUT], "pre.shape")
    b.add("Slice", ["pre.shape", b.ints("s0", 0), b.ints("s1", 1)], "pre.n")
    if spec.resize == "stretch":
        last = b.resize(b.add("Concat", ["pre.n", b.ints("chw", 3, spec.height, spec.width)], "pre.sizes", axis=0))
    else:
        last = _letterbox(b, spec)
    if spec.channel_order == "RGB":
        last = b.add("Gather", [last, b.ints("bgr_to_rgb", 2, 1, 0)], "pre.rgb", axis=1)
    norm = spec.normalization
    if norm.is_identity:
        b.add("Identity", [last], out)
    else:
        std = np.asarray(norm.std, dtype=np.float32)
        scale = (np.float32(norm.scale) / std).reshape(1, 3, 1, 1)
        offset = (-np.asarray(norm.mean, dtype=np.float32) / std).reshape(1, 3, 1, 1)
        scaled = b.add("Mul", [last, b.const("scale", scale)], "pre.scaled")
        b.add("Add", [scaled, b.const("offset", offset)], out)
    return b.nodes, b.inits


def _letterbox(b: _Builder, spec: InputSpec) -> str:
    th, tw = spec.height, spec.width
    b.add("Slice", ["pre.shape", b.ints("s1b", 1), b.ints("s2", 2)], "pre.h")
    b.add("Slice", ["pre.shape", b.ints("s2b", 2), b.ints("s3", 3)], "pre.w")
    # Integer arithmetic, as the host does, so both agree on every pixel of the layout:
    # fit the height when th/H <= tw/W, i.e. th*W <= tw*H; the other side is truncated.
    b.add("Mul", ["pre.w", b.ints("th", th)], "pre.th_w")
    b.add("Mul", ["pre.h", b.ints("tw", tw)], "pre.tw_h")
    b.add("Greater", ["pre.th_w", "pre.tw_h"], "pre.fit_width")
    b.add("Div", ["pre.tw_h", "pre.w"], "pre.h_by_w")
    b.add("Div", ["pre.th_w", "pre.h"], "pre.w_by_h")
    b.add("Where", ["pre.fit_width", "pre.h_by_w", "pre.th"], "pre.nh0")
    b.add("Where", ["pre.fit_width", "pre.tw", "pre.w_by_h"], "pre.nw0")
    # At least one pixel (a 1000x1 frame): add 1 where the truncation gave 0.
    b.add("Equal", ["pre.nh0", b.ints("zero", 0)], "pre.nh_zero")
    b.add("Equal", ["pre.nw0", "pre.zero"], "pre.nw_zero")
    b.add("Cast", ["pre.nh_zero"], "pre.nh_fix", to=TensorProto.INT64)
    b.add("Cast", ["pre.nw_zero"], "pre.nw_fix", to=TensorProto.INT64)
    b.add("Add", ["pre.nh0", "pre.nh_fix"], "pre.nh")
    b.add("Add", ["pre.nw0", "pre.nw_fix"], "pre.nw")
    b.resize(b.add("Concat", ["pre.n", b.ints("c", 3), "pre.nh", "pre.nw"], "pre.sizes", axis=0))
    b.add("Concat", ["pre.nh", "pre.nw"], "pre.nhw", axis=0)
    b.add("Sub", [b.ints("thw", th, tw), "pre.nhw"], "pre.pad_end")
    b.add("Concat", [b.ints("zeros4", 0, 0, 0, 0), b.ints("zeros2", 0, 0), "pre.pad_end"], "pre.pads", axis=0)
    pad_value = b.const("pad_value", np.asarray(spec.pad_value, dtype=np.float32))
    return b.add("Pad", ["pre.resized", "pre.pads", pad_value], "pre.padded", mode="constant")
