"""A loaded detector, assembled in one place: which copy of the model the engine runs (dynamic
batch, letterbox in the graph, fp16), a TensorRT profile for the batch sizes it will see, and
its family's contract checked against the file it runs."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from edgevision.families.base import Decoder, Family
from edgevision.families.registry import family_of
from edgevision.inference.engine import Engine
from edgevision.inference.options import EngineConfig, padded_batch_sizes
from edgevision.inference.providers import TENSORRT, requested_providers
from edgevision.inference.sessions import SessionFactory
from edgevision.inference.status import EngineError, Once
from edgevision.models.manifest import InputSpec
from edgevision.models.onnx_facts import ModelFacts, ModelFileError, read_facts
from edgevision.models.store import ResolvedModel
from edgevision.models.variants import Variant, variant_path
from edgevision.preprocess import Preprocessor, preprocessor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedDetector:
    """A model ready to run: resolved and verified, its family known, its engine created on the
    copy of the graph it needs, and the family's contract checked. Shared by the threads that
    run it (each takes its own runners and decoder)."""

    model: ResolvedModel
    family: Family
    engine: Engine
    # The largest batch asked for, or the file's own fixed batch where its family cannot rewrite it.
    max_batch: int

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def labels(self) -> tuple[str, ...]:
        return self.model.manifest.labels

    @property
    def batch(self) -> int:
        """How many frames one run takes at most: `max_batch`, or a fixed-batch export's own batch."""
        return self.max_batch if self.engine.dynamic_batch else int(self.engine.input_shape[0])

    def decoder(self, score_threshold: float = 0.3, nms_iou: float = 0.45) -> Decoder:
        """A fresh decoder (its thresholds change live, so each user keeps its own)."""
        return self.family.decoder(self.model.manifest, score_threshold, nms_iou)

    def preprocessor(self) -> Preprocessor:
        return preprocessor(self.model.manifest.input, self.engine.takes_frames)


@dataclass(frozen=True)
class BatchCapacity:
    """How large a batch a model file can run: None for any, with how (and why not, if 1)."""

    largest: int | None
    # The file's batch dimension is fixed; the dynamic-batch copy is made by rewriting it.
    rewrite: bool
    reason: str | None = None


def batch_capacity(model: ResolvedModel, facts: ModelFacts | None = None) -> BatchCapacity:
    """`facts`: the file's, when already read."""
    family = family_of(model.manifest)
    try:
        image = (facts or read_facts(model.path)).image_input
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


def load_detector(
    model: ResolvedModel,
    config: EngineConfig | None = None,
    max_batch: int = 1,
    in_graph: bool = False,
    sessions: SessionFactory | None = None,
    said: Once | None = None,
) -> LoadedDetector:
    """The detector for this model: the dynamic-batch copy for batches above 1 (when the file's
    batch is fixed and its family can be rewritten), the letterbox-in-graph copy when `in_graph`,
    and its fp16 copy when the config asks and a GPU runs it. `sessions` creates the engine's
    ONNX Runtime sessions (None: ONNX Runtime's own; a test records what they are fed); `said`
    remembers the warnings already given for this model (a loader keeps one for all its loads)."""
    if max_batch < 1:
        raise ValueError("max_batch must be at least 1")
    config = config or EngineConfig()
    family = family_of(model.manifest)
    try:
        original = read_facts(model.path)
    except ModelFileError as exc:
        raise EngineError(f"cannot load model {model.path}: {exc}") from exc
    capacity = batch_capacity(model, original)
    declined = None
    if capacity.largest is not None and max_batch > capacity.largest:
        # Said, not silent: the engine's status carries it to /status and `detect`'s log.
        declined = f"batches of {max_batch} asked: {capacity.reason}"
        log.warning("%s", declined)
        max_batch = capacity.largest
    variant = Variant(dynamic_batch=max_batch > 1 and capacity.rewrite, frames_in=in_graph)
    spec = model.manifest.input
    path = variant_path(model.path, model.sha256, variant, spec)
    # The file the engine runs, read once: the TensorRT profile and the family's contract.
    facts = original if path == model.path else read_facts(path)
    config = dataclasses.replace(config, frames_in=in_graph)
    if not in_graph and TENSORRT in requested_providers(config.provider, config.use_tensorrt):
        config = dataclasses.replace(config, tensorrt_inputs=tensorrt_inputs(facts, spec))
    half = Variant(dynamic_batch=variant.dynamic_batch, frames_in=in_graph, fp16=True)
    engine = Engine(
        path,
        config,
        fp16_model=lambda: variant_path(model.path, model.sha256, half, spec),
        extra_inputs=lambda names: family.extra_inputs(model.manifest, names),
        input_hw=(spec.height, spec.width),
        sessions=sessions,
        batch_sizes=batch_sizes(facts, max_batch),
        said=said,
    )
    # The fp16 copy keeps the float32 inputs and outputs: the same facts hold for it.
    family.check(facts.with_output_shapes(engine.output_shapes), model.manifest, model.path.name)
    if declined is not None:
        engine.status.declined["max_batch"] = declined
    return LoadedDetector(model=model, family=family, engine=engine, max_batch=max_batch)


def batch_sizes(facts: ModelFacts, max_batch: int) -> list[int]:
    """The batch sizes a file's engine runs: its fixed batch, or the padded sizes up to `max_batch`."""
    image = facts.image_input
    fixed = image.shape[0] if image is not None and isinstance(image.shape[0], int) else None
    return [fixed] if fixed else padded_batch_sizes(max_batch)


def tensorrt_inputs(facts: ModelFacts, spec: InputSpec | None = None) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Each input of a model file with its dimensions after the batch, for TensorRT profiles: the
    image (height and width an export left open are the manifest's) and any other input (a DETR
    export's sizes)."""
    image = facts.image_input
    if image is None:
        raise EngineError(f"{facts.path.name}: no 4-D image input")
    shape = [d if isinstance(d, int) else 0 for d in image.shape[1:]]
    if spec is not None:
        shape = [shape[0] or 3, shape[1] or spec.height, shape[2] or spec.width]
    tails = [(image.name, tuple(shape))]
    for other in facts.inputs:
        if other is not image:
            tails.append((other.name, tuple(d if isinstance(d, int) else 1 for d in other.shape[1:])))
    return tuple(tails)
