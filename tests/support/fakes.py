"""Stand-ins at the pipeline's seams: a model that needs no file, an engine that needs no ONNX
Runtime, and sources that play scripted frames. Everything between them is the real code.

The engine's output is all zeros (no detections) unless a frame asks otherwise: a frame whose
top-left pixel is 255 yields one detection of class `seq % 80`, so results can be checked
against what went in.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgevision.config.camera import CameraConfig
from edgevision.config.model import ModelConfig, SourceOptions
from edgevision.detector.load import LoadedDetector
from edgevision.families.registry import FAMILIES
from edgevision.families.yolox import anchor_count
from edgevision.inference.options import EngineConfig
from edgevision.inference.providers import CPU, CUDA
from edgevision.inference.status import EngineStatus
from edgevision.metrics import PipelineMetrics
from edgevision.models.manifest import find_manifest
from edgevision.models.store import ResolvedModel
from edgevision.pipeline.build import Seams
from edgevision.sources.frames import Frame, FrameQueue

MANIFEST = find_manifest("yolox-nano")
ANCHORS = anchor_count(MANIFEST.input.width, MANIFEST.input.height, MANIFEST.strides)
COLUMNS = 5 + MANIFEST.num_classes


def stub_model(config: ModelConfig | None = None) -> ResolvedModel:
    """The built-in yolox-nano manifest, named as configuration names the model, with a file that
    is never opened (the engine is a stand-in)."""
    name = (config.spec if config else None) or "yolox-nano"
    manifest = MANIFEST if name == MANIFEST.name else MANIFEST.model_copy(update={"name": name})
    return ResolvedModel(manifest=manifest, path=Path(f"/nonexistent/{name}.onnx"), sha256="0" * 64, verified=False)


class GpuFault(RuntimeError):
    pass


@dataclass
class EngineScript:
    """How stand-in engines behave: GPU or not, after how many of its runs a GPU engine fails or
    hangs (each engine counts its own: a restored GPU works again for a while), how slow runs are."""

    on_gpu: bool = False
    fail_after: int | None = None
    hang_s: float | None = None
    delay_s: Callable[[], float] = lambda: 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Every run in order: (batch size, whether its input was all zeros: a warm-up run).
    log: list[tuple[int, bool]] = field(default_factory=list)
    # Writes the raw output for a batch instead of the marked-frame rule (tests/support/scene.py).
    detector: Callable[[np.ndarray, np.ndarray], list[np.ndarray]] | None = None


class StubRunner:
    def __init__(self, engine: StubEngine, batch_size: int) -> None:
        self.batch_size = batch_size
        self.takes_frames = False
        self._engine = engine
        self.input = np.zeros((batch_size, 3, MANIFEST.input.height, MANIFEST.input.width), np.float32)
        self._output = np.zeros((batch_size, ANCHORS, COLUMNS), np.float32)

    def frames(self, height: int, width: int) -> np.ndarray:
        raise AssertionError("the stand-in engine takes tensors, not frames")

    def run(self) -> list[np.ndarray]:
        return self._engine.compute(self.input, self._output)


class StubEngine:
    """Looks like edgevision.inference.engine.Engine to the stages."""

    def __init__(self, config: EngineConfig, script: EngineScript) -> None:
        self.config = config
        self.script = script
        gpu = script.on_gpu and config.provider != "cpu"
        provider = CUDA if gpu else CPU
        self.status = EngineStatus(
            requested=[provider], in_use=[provider], provider=provider, cuda_graph=gpu and config.cuda_graph
        )
        self.input_shape: list[Any] = ["batch", 3, MANIFEST.input.height, MANIFEST.input.width]
        self.input_type = "tensor(float)"
        self.output_names = ["output"]
        self.output_shapes: list[list[Any]] = [["batch", ANCHORS, COLUMNS]]
        self.runs = 0

    @property
    def provider(self) -> str:
        return self.status.provider

    @property
    def on_gpu(self) -> bool:
        return self.provider == CUDA

    takes_frames = False
    dynamic_batch = True

    def runner(self, batch_size: int) -> StubRunner:
        return StubRunner(self, batch_size)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.compute(batch, np.zeros((len(batch), ANCHORS, COLUMNS), np.float32))

    def compute(self, batch: np.ndarray, out: np.ndarray) -> list[np.ndarray]:
        script = self.script
        with script.lock:
            script.log.append((len(batch), not batch.any()))
        if self.on_gpu:
            with script.lock:
                self.runs += 1
                runs = self.runs
            if script.fail_after is not None and runs > script.fail_after:
                if script.hang_s is None:
                    raise GpuFault("CUDA failure 700: an illegal memory access was encountered")
                time.sleep(script.hang_s)
        delay = script.delay_s()
        if delay:
            time.sleep(delay)
        if script.detector is not None:
            return script.detector(batch, out)
        out[...] = 0.0
        # A marked frame (letterboxed pixel (0, 0) of channel 0 at 255): one box at anchor 0.
        marked = batch[:, 0, 0, 0] >= 255.0
        out[marked, 0, 4] = 0.9
        out[marked, 0, 5] = 1.0
        return [out]


@dataclass
class EngineFactory:
    """A detector loader for Pipeline whose models need no file and whose engines are stand-ins;
    keeps every engine config it was asked for."""

    script: EngineScript = field(default_factory=EngineScript)
    cpu_script: EngineScript = field(default_factory=EngineScript)
    loaded: list[EngineConfig] = field(default_factory=list)
    # A model (by name) whose GPU engines follow their own script.
    by_model: dict[str, EngineScript] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    # How configured models resolve (a test may make some fail).
    resolver: Callable[[ModelConfig], ResolvedModel] = stub_model

    def resolve(self, config: ModelConfig) -> ResolvedModel:
        return self.resolver(config)

    def load(
        self, model: ResolvedModel, config: EngineConfig | None = None, max_batch: int = 1, in_graph: bool = False
    ) -> LoadedDetector:
        config = config or EngineConfig()
        self.loaded.append(config)
        self.models.append(model.name)
        script = self.by_model.get(model.name, self.script)
        engine = StubEngine(config, self.cpu_script if config.provider == "cpu" else script)
        return LoadedDetector(model=model, family=FAMILIES["yolox"], engine=engine, max_batch=max_batch)


def pipeline_seams(engines: EngineFactory, sources: SourceFactory | None = None, gpu: bool = False) -> Seams:
    """The pipeline's seams with stand-ins: no model file, no ONNX Runtime, scripted cameras."""
    seams = Seams(detector_loader=engines, gpu_check=lambda _config: gpu)
    return seams if sources is None else dataclasses.replace(seams, source_factory=sources)


# A camera setting for tests of the pipeline's mechanics that count on every frame going through
# the detector (the default detection mode skips frames in which nothing moves).
EVERY_FRAME = {"detection": {"mode": "every_frame"}}


def frame_image(seq: int, marked: bool = False, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    image = np.full((*size, 3), seq % 200, np.uint8)
    if marked:
        image[0, 0, 0] = 255
    return image


class ScriptedSource:
    """A camera that plays a fixed list of frames as fast as its queue takes them, then ends."""

    def __init__(
        self,
        camera: CameraConfig,
        options: SourceOptions,
        queue: FrameQueue,
        metrics: PipelineMetrics,
        start_seq: int,
        images: Iterable[np.ndarray],
        interval_s: float = 0.0,
    ) -> None:
        self.camera = camera
        self.stats = metrics.camera(camera.id)
        self._queue = queue
        self._images = images
        self._interval_s = interval_s
        self._seq = start_seq
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"scripted-{camera.id}", daemon=True)

    @property
    def ended(self) -> bool:
        return self.stats.state in ("finished", "stopped")

    @property
    def next_seq(self) -> int:
        return self._seq

    def start(self) -> None:
        self.stats.set_state("streaming")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def restart(self) -> None:
        pass

    def check_stall(self, now: float) -> bool:
        return False

    def _run(self) -> None:
        for image in self._images:
            if self._stop.is_set():
                break
            frame = Frame(self.camera.id, self._seq, time.time(), time.monotonic(), image)
            self._seq += 1
            self.stats.captured_frame()
            if not self._queue.put(frame, self._stop):
                break
            if self._interval_s:
                self._stop.wait(self._interval_s)
        self.stats.set_state("stopped" if self._stop.is_set() else "finished")


SourceFactory = Callable[[CameraConfig, SourceOptions, FrameQueue, PipelineMetrics, int], ScriptedSource]


def scripted_sources(frames: dict[str, Iterable[np.ndarray]], interval_s: float = 0.0) -> SourceFactory:
    """A source factory: each camera id plays its list of frames."""

    def make(camera: CameraConfig, options: SourceOptions, queue: FrameQueue, metrics: PipelineMetrics, start_seq: int):
        return ScriptedSource(camera, options, queue, metrics, start_seq, frames.get(camera.id, ()), interval_s)

    return make
