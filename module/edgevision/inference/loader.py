"""Which copy of a model an engine loads (dynamic batch, letterbox in the graph, fp16), checked
against its family's contract at load time."""

from __future__ import annotations

from edgevision.families.base import Family
from edgevision.families.registry import family_for
from edgevision.inference.engine import Engine
from edgevision.inference.options import EngineConfig
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
    variant = Variant(dynamic_batch=max_batch > 1, frames_in=in_graph)
    spec = model.manifest.input
    path = variant_path(model.path, model.sha256, variant, spec)
    half = Variant(dynamic_batch=variant.dynamic_batch, frames_in=in_graph, fp16=True)
    engine = Engine(path, config, fp16_model=lambda: variant_path(model.path, model.sha256, half, spec))
    (family or family_for(model.manifest)).check(engine, model.manifest, model.path.name)
    return engine
