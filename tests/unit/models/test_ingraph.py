"""The in-graph letterbox: every op that the CUDA provider or TensorRT cannot take on uint8 runs
on float, checked by ONNX shape inference on a small stand-in detector graph."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgevision.models.ingraph import FRAMES_INPUT, add_preprocessing
from edgevision.models.manifest import InputSpec, Normalization


def _tiny_detector() -> onnx.ModelProto:
    """images [N, 3, 32, 32] -> a 1x1 convolution: the shape of a detector's input side."""
    weight = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["out"])],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4, 32, 32])],
        [weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _element_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    values = [*graph.input, *graph.value_info, *graph.output]
    types = {v.name: v.type.tensor_type.elem_type for v in values}
    types.update({i.name: i.data_type for i in graph.initializer})
    return types


def test_no_resize_pad_or_transpose_runs_on_uint8() -> None:
    for spec in (
        InputSpec(width=32, height=32),
        InputSpec(width=32, height=32, channel_order="RGB", normalization=Normalization(scale=1 / 255)),
    ):
        model = add_preprocessing(_tiny_detector(), spec)
        types = _element_types(model)
        assert types[FRAMES_INPUT] == TensorProto.UINT8
        # The pixel path (shape arithmetic on int64 aside): every op after the first Cast is float.
        for node in model.graph.node:
            if node.op_type in ("Resize", "Pad", "Transpose", "Conv"):
                assert types[node.input[0]] == TensorProto.FLOAT, (node.op_type, node.input[0])
        assert types["images"] == TensorProto.FLOAT
        pads = [n for n in model.graph.node if n.op_type == "Pad"]
        assert pads and all(types[n.input[2]] == TensorProto.FLOAT for n in pads)  # the pad value too


def test_the_wrapped_graph_letterboxes_frames_of_any_size() -> None:
    spec = InputSpec(width=32, height=32, pad_value=114)
    model = add_preprocessing(_tiny_detector(), spec)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    frames = np.full((2, 16, 64, 3), 200, np.uint8)  # wide: scaled to 32 x 8, padded below
    (out,) = session.run(None, {FRAMES_INPUT: frames})
    # The 1x1 convolution of ones sums the three channels: 3 x 200 in the image, 3 x 114 in the pad.
    assert np.allclose(out[:, :, :8, :], 600) and np.allclose(out[:, :, 8:, :], 342)
