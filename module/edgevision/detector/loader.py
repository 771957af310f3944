"""The seam every user of a detector goes through: the pipeline, POST /score, `detect`, `doctor`
and the benchmark are handed a DetectorLoader, and a test may hand them a stand-in."""

from __future__ import annotations

import threading
from pathlib import Path

from edgevision.config.model import ModelConfig
from edgevision.detector.load import LoadedDetector, load_detector
from edgevision.detector.resolve import ModelResolver
from edgevision.inference.options import EngineConfig
from edgevision.inference.sessions import SessionFactory
from edgevision.inference.status import Once
from edgevision.models.store import ResolvedModel


class DetectorLoader:
    """Configuration in, a loaded detector out, in two steps: `resolve` finds and verifies the
    file (anew each time: it may have been replaced; why one is not verified is said once per
    file and content), `load` makes the engine for a provider and batch size (a pipeline loads
    one model several times: for the GPU, for the CPU after a failover, with a new layout)."""

    def __init__(self, sessions: SessionFactory | None = None) -> None:
        self._sessions = sessions or SessionFactory()
        self._resolve = ModelResolver()
        # A fallback is warned once per model, however many engines it takes.
        self._said: dict[tuple[Path, str], Once] = {}
        self._lock = threading.Lock()

    def resolve(self, config: ModelConfig) -> ResolvedModel:
        return self._resolve(config)

    def load(
        self, model: ResolvedModel, engine: EngineConfig | None = None, max_batch: int = 1, in_graph: bool = False
    ) -> LoadedDetector:
        with self._lock:
            said = self._said.setdefault((model.path, model.sha256), Once())
        return load_detector(model, engine, max_batch, in_graph, self._sessions, said)
