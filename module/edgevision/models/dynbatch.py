"""A dynamic-batch copy of a YOLOX graph exported with a fixed batch of 1."""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import numpy_helper

from edgevision.errors import BuildError

log = logging.getLogger(__name__)

BATCH_DIM = "batch"


class DynamicBatchError(BuildError):
    """The graph cannot be made batch-dynamic by this rewrite."""


def make_dynamic_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make the batch dimension symbolic and let the head's Reshapes carry it through.

    The exported head flattens each level with Reshape to the constant [1, C, -1]; with that 1
    a batch of N silently folds into the anchor axis. Reshape's 0 means "copy this dimension
    from the input", so [0, C, -1] keeps the batch.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if not dims:
            raise DynamicBatchError(f"{value.name} has no shape")
        dims[0].Clear()
        dims[0].dim_param = BATCH_DIM
    # Intermediate shapes were inferred for batch 1 and would contradict the new graph.
    del graph.value_info[:]

    reshape_shapes = {node.input[1] for node in graph.node if node.op_type == "Reshape"}
    rewritten = 0
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] in reshape_shapes:
            for attr in node.attribute:
                if attr.name == "value":
                    rewritten += _rewrite_shape(attr.t)
    for init in graph.initializer:
        if init.name in reshape_shapes:
            rewritten += _rewrite_shape(init)
    if rewritten == 0:
        raise DynamicBatchError("no Reshape with a constant leading batch of 1 found; not a YOLOX export?")
    onnx.checker.check_model(model)
    log.debug("made batch dynamic: %d Reshape shape constant(s) rewritten", rewritten)
    return model


def _rewrite_shape(tensor: onnx.TensorProto) -> int:
    shape = numpy_helper.to_array(tensor)
    if shape.ndim != 1 or shape.size < 2 or shape[0] != 1:
        return 0
    fixed = shape.copy()
    fixed[0] = 0
    tensor.CopyFrom(numpy_helper.from_array(fixed.astype(np.int64), tensor.name))
    return 1
