"""Which copy of a model an engine loads (dynamic batch, letterbox in the graph, fp16), with a
TensorRT profile for the batch sizes it will see, checked against its family's contract."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import onnx

from edgevision.families.base import Family
from edgevision.families.registry import family_for
from edgevision.inference.engine import Engine
from edgevision.inference.options import EngineConfig, padded_batch_sizes, tensorrt_profile
from edgevision.inference.providers import TENSORRT, requested_providers
from edgevision.inference.status import EngineError
from edgevision.models.manifest import InputSpec
from edgevision.models.onnx_facts import ModelFileError, read_facts
from edgevision.models.store import ResolvedModel
from edgevision.models.variants import Variant, variant_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchCapacity:
    """How large a batch a model file can run: None for any, with how (and why not, if 1)."""

    largest: int | None
    # The file's batch dimension is fixed; the dynamic-batch copy is made by rewriting it.
    rewrite: bool
    reason: str | None = None


def batch_capacity(model: ResolvedModel, family: Family | None = None) -> BatchCapacity:
    family = family or family_for(model.manifest)
    try:
        image = read_facts(model.path).image_input
    except ModelFileError as exc:
        raise EngineError(f"cannot load model {model.path}: {exc}") from exc
    if image is None:
        raise EngineError(f"cannot load model {model.path}: no 4-D image input")
    fixed = image.shape[0] if isinstance(image.shape[0], int) else None
    if fixed is None:
        return BatchCapacity(None, rewrite=False)
    if family.rewrites_batch:
        return BatchCapacity(None, rewrite=True)
    return BatchCapacity(
        fixed,
        rewrite=False,
        reason=(
            f"{model.path.name} was exported with a fixed batch of {fixed} and a {family.name} graph cannot be "
            "rewritten safely: it runs one frame at a time (export it with a dynamic batch to batch frames)"
        ),
    )


def load_engine(
    model: ResolvedModel,
    config: EngineConfig | None,
    max_batch: int,
    in_graph: bool = False,
    family: Family | None = None,
) -> Engine:
    """An engine for this model: the dynamic-batch copy for batches above 1 (when the file's batch is
    fixed and its family can be rewritten), the letterbox-in-graph copy when `in_graph`, and its
    fp16 copy when the config asks and a GPU runs it."""
    config = config or EngineConfig()
    family = family or family_for(model.manifest)
    capacity = batch_capacity(model, family)
    declined = None
    if capacity.largest is not None and max_batch > capacity.largest:
        # Said, not silent: the engine's status carries it to /status and `detect`'s log.
        declined = f"batches of {max_batch} asked: {capacity.reason}"
        log.warning("%s", declined)
        max_batch = capacity.largest
    variant = Variant(dynamic_batch=max_batch > 1 and capacity.rewrite, frames_in=in_graph)
    spec = model.manifest.input
    path = variant_path(model.path, model.sha256, variant, spec)
    config = dataclasses.replace(config, frames_in=in_graph)
    if not in_graph and TENSORRT in requested_providers(config.provider, config.use_tensorrt):
        extra = [name for name in _input_names(path) if name != _image_input(path)]
        config = dataclasses.replace(config, tensorrt_profile=profile_for(path, max_batch, spec, extra))
    half = Variant(dynamic_batch=variant.dynamic_batch, frames_in=in_graph, fp16=True)
    engine = Engine(
        path,
        config,
        fp16_model=lambda: variant_path(model.path, model.sha256, half, spec),
        extra_inputs=lambda names: family.extra_inputs(model.manifest, names),
        input_hw=(spec.height, spec.width),
    )
    family.check(engine, model.manifest, model.path.name)
    if declined is not None:
        engine.status.declined["max_batch"] = declined
    return engine


def _graph_inputs(path: Path) -> list[onnx.ValueInfoProto]:
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    return [v for v in graph.input if v.name not in initializers]


def _input_names(path: Path) -> list[str]:
    return [v.name for v in _graph_inputs(path)]


def _image_input(path: Path) -> str | None:
    return next((v.name for v in _graph_inputs(path) if len(v.type.tensor_type.shape.dim) == 4), None)


def profile_for(
    path: Path, max_batch: int, spec: InputSpec | None = None, extra: list[str] | None = None
) -> tuple[str, str, str]:
    """The TensorRT profile of a model file: its image input (and any other input, e.g. a DETR
    export's sizes) at every padded batch size up to `max_batch`, or its fixed batch. Height and
    width an export left open are the manifest's."""
    inputs = {v.name: v for v in _graph_inputs(path)}
    image = next((v for v in inputs.values() if len(v.type.tensor_type.shape.dim) == 4), None)
    if image is None:
        raise EngineError(f"{path.name}: no 4-D image input")
    dims = image.type.tensor_type.shape.dim
    fixed = dims[0].dim_value if dims[0].HasField("dim_value") else None
    sizes = [fixed] if fixed else padded_batch_sizes(max_batch)
    shape = [d.dim_value for d in dims[1:]]
    if spec is not None:
        shape = [shape[0] or 3, shape[1] or spec.height, shape[2] or spec.width]
    tails = [(image.name, shape)]
    for name in extra or []:
        tails.append((name, [d.dim_value or 1 for d in inputs[name].type.tensor_type.shape.dim[1:]]))
    return tensorrt_profile(tails, sizes)
