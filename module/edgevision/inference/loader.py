"""Which copy of a model an engine loads (dynamic batch, letterbox in the graph, fp16), with a
TensorRT profile for the batch sizes it will see, checked against its family's contract."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import onnx

from edgevision.families.base import Family
from edgevision.families.registry import family_for
from edgevision.inference.engine import Engine
from edgevision.inference.options import EngineConfig, padded_batch_sizes, tensorrt_profile
from edgevision.inference.providers import TENSORRT, requested_providers
from edgevision.models.store import ResolvedModel
from edgevision.models.variants import Variant, variant_path


def load_engine(
    model: ResolvedModel,
    config: EngineConfig | None,
    max_batch: int,
    in_graph: bool = False,
    family: Family | None = None,
) -> Engine:
    """An engine for this model: the dynamic-batch copy for batches above 1, the letterbox-in-graph
    copy when `in_graph`, and its fp16 copy when the config asks and a GPU runs it."""
    config = config or EngineConfig()
    variant = Variant(dynamic_batch=max_batch > 1, frames_in=in_graph)
    spec = model.manifest.input
    path = variant_path(model.path, model.sha256, variant, spec)
    config = dataclasses.replace(config, frames_in=in_graph)
    if not in_graph and TENSORRT in requested_providers(config.provider, config.use_tensorrt):
        config = dataclasses.replace(config, tensorrt_profile=profile_for(path, max_batch))
    half = Variant(dynamic_batch=variant.dynamic_batch, frames_in=in_graph, fp16=True)
    engine = Engine(path, config, fp16_model=lambda: variant_path(model.path, model.sha256, half, spec))
    (family or family_for(model.manifest)).check(engine, model.manifest, model.path.name)
    return engine


def profile_for(path: Path, max_batch: int) -> tuple[str, str, str]:
    """The TensorRT profile of a model file: its input, every padded batch size up to `max_batch`
    (or its fixed batch)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    fixed = dims[0].dim_value if dims[0].HasField("dim_value") else None
    sizes = [fixed] if fixed else padded_batch_sizes(max_batch)
    return tensorrt_profile(graph.input[0].name, [d.dim_value for d in dims[1:]], sizes)
