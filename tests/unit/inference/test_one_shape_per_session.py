"""No GPU session ever sees two input shapes: a CUDA session re-plans its kernels whenever its input
shape changes (about 1 s a run on an H200 with batch sizes mixed among 1, 2, 4 and 8).

The sessions here are real CPU sessions that answer as CUDA (or TensorRT) would and record every
shape they run (tests/support/sessions.py): the engine takes its GPU path for real."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from edgevision.detector.detector import Detector
from edgevision.detector.load import LoadedDetector, load_detector
from edgevision.detector.resolve import resolve_model
from edgevision.inference.engine import MAX_FRAME_SIZES
from edgevision.inference.options import EngineConfig
from edgevision.inference.providers import CUDA, TENSORRT
from edgevision.models.store import ResolvedModel
from tests.support.sessions import CUDA_FAILURE, FakeGpuSessions
from tests.support.tiny_model import SIZE, tiny_model


@pytest.fixture
def model(tmp_path: Path) -> ResolvedModel:
    path, manifest = tiny_model(tmp_path)
    return resolve_model(str(path), manifest=str(manifest))


def _frames(count: int, shape: tuple[int, int] = (48, 64)) -> list[np.ndarray]:
    rng = np.random.default_rng(count)
    return [rng.integers(0, 255, (*shape, 3), dtype=np.uint8) for _ in range(count)]


def _detector(model: ResolvedModel, fake: FakeGpuSessions, max_batch: int = 8, **options) -> LoadedDetector:
    provider = options.pop("provider", "cuda")
    in_graph = options.pop("in_graph", False)
    return load_detector(model, EngineConfig(provider=provider, **options), max_batch, in_graph, fake)


def _batch_sizes(fake: FakeGpuSessions) -> set[int]:
    return {shape[0] for s in fake.gpu_sessions() for shape in s.shapes}


def test_host_preprocessing_runs_each_padded_batch_size_in_a_session_of_its_own(model: ResolvedModel) -> None:
    fake = FakeGpuSessions()
    loaded = _detector(model, fake)
    assert loaded.engine.provider == CUDA and loaded.engine.status.one_shape_per_session
    detector = Detector(loaded)
    for count in (1, 3, 8, 5, 2, 1, 8):  # partial batches, padded like the pipeline's
        assert len(detector.detect(_frames(count))) == count
    assert fake.mixed() == []
    assert _batch_sizes(fake) == {1, 2, 4, 8}
    assert len(fake.gpu_sessions()) == loaded.engine.status.sessions == 4


def test_the_detections_of_every_session_are_those_of_the_cpu(model: ResolvedModel) -> None:
    frames = _frames(5)
    gpu = Detector(_detector(model, FakeGpuSessions()))
    cpu = Detector(load_detector(model, EngineConfig(provider="cpu"), 8))
    for got, want in zip(gpu.detect(frames), cpu.detect(frames), strict=True):
        assert np.allclose(got.boxes, want.boxes) and np.array_equal(got.class_ids, want.class_ids)


def test_graph_preprocessing_gives_each_frame_size_its_own_sessions(model: ResolvedModel) -> None:
    fake = FakeGpuSessions()
    loaded = _detector(model, fake, in_graph=True)
    assert loaded.engine.takes_frames
    detector = Detector(loaded)
    for count, size in ((2, (48, 64)), (1, (30, 40)), (4, (48, 64)), (2, (30, 40))):
        detector.detect(_frames(count, size))
    assert fake.mixed() == []
    frame_shapes = {shape for s in fake.gpu_sessions() for shape in s.shapes}
    assert {(2, 48, 64, 3), (4, 48, 64, 3), (1, 30, 40, 3), (2, 30, 40, 3)} <= frame_shapes


def test_fp16_runs_its_half_precision_copy_in_one_session_per_shape(model: ResolvedModel) -> None:
    fake = FakeGpuSessions()
    loaded = _detector(model, fake, fp16=True)
    assert loaded.engine.status.precision == "fp16"
    Detector(loaded).detect(_frames(3))
    Detector(loaded).detect(_frames(1))
    assert fake.mixed() == [] and _batch_sizes(fake) == {1, 4}
    assert all("fp16" in Path(s.model).name for s in fake.gpu_sessions())


def test_cuda_graphs_are_captured_in_one_session_per_shape(model: ResolvedModel) -> None:
    fake = FakeGpuSessions()
    loaded = _detector(model, fake, cuda_graph=True)
    assert loaded.engine.status.cuda_graph
    detector = Detector(loaded)
    for count in (1, 2, 8, 2, 1):
        detector.detect(_frames(count))
    assert fake.mixed() == [] and _batch_sizes(fake) == {1, 2, 8}
    assert all(s.options.get("enable_cuda_graph") == "1" for s in fake.gpu_sessions())


def test_tensorrt_sessions_each_get_a_profile_pinned_to_their_batch(model: ResolvedModel) -> None:
    fake = FakeGpuSessions()
    loaded = _detector(model, fake, provider="tensorrt")
    assert loaded.engine.provider == TENSORRT
    detector = Detector(loaded)
    for count in (1, 4, 2):
        detector.detect(_frames(count))
    assert fake.mixed() == []
    for session in fake.gpu_sessions():
        (batch,) = {shape[0] for shape in session.shapes}
        shape = f"images:{batch}x3x{SIZE}x{SIZE}"
        assert session.options["trt_profile_min_shapes"] == session.options["trt_profile_max_shapes"] == shape


def test_the_memory_limit_is_shared_among_the_sessions_by_batch(model: ResolvedModel) -> None:
    fake = FakeGpuSessions()
    loaded = _detector(model, fake, gpu_mem_limit_mb=150.0)
    detector = Detector(loaded)
    for count in (1, 2, 4, 8):
        detector.detect(_frames(count))
    limits = {s.shapes[0][0]: s.options["gpu_mem_limit"] for s in fake.gpu_sessions()}
    assert limits == {1: 10 * 2**20, 2: 20 * 2**20, 4: 40 * 2**20, 8: 80 * 2**20}
    assert sum(limits.values()) <= 150 * 2**20


def test_a_frames_model_that_sees_a_second_frame_size_says_its_limit_is_exceeded(model: ResolvedModel) -> None:
    loaded = _detector(model, FakeGpuSessions(), in_graph=True, gpu_mem_limit_mb=100.0)
    detector = Detector(loaded)
    detector.detect(_frames(1, (48, 64)))
    assert "gpu_mem_limit_mb" not in loaded.engine.status.declined
    detector.detect(_frames(1, (30, 40)))
    assert "2 sizes" in loaded.engine.status.declined["gpu_mem_limit_mb"]


def test_the_cpu_keeps_one_session_for_every_shape(model: ResolvedModel) -> None:
    fake = FakeGpuSessions(loading=())
    loaded = _detector(model, fake, provider="auto")
    assert not loaded.engine.on_gpu and not loaded.engine.status.one_shape_per_session
    detector = Detector(loaded)
    for count in (1, 8, 2):
        detector.detect(_frames(count))
    assert len(fake.sessions) == 1 and len(set(fake.sessions[0].shapes)) == 3


def test_a_fallback_is_said_once_per_model_however_many_sessions(
    model: ResolvedModel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    # CUDA loads but fails its warm-up run: dropped once, for the whole engine.
    fake = FakeGpuSessions(fail_run=lambda n, shape: True)
    detector = Detector(_detector(model, fake))
    for count in (1, 2, 4, 8):
        detector.detect(_frames(count))
    assert [r.getMessage() for r in caplog.records if "not used, running on" in r.getMessage()] == [
        f"{CUDA} not used, running on CPUExecutionProvider: warm-up run failed: {CUDA_FAILURE}"
    ]


@pytest.mark.parametrize("provider", ["cuda", "cpu"])
def test_a_camera_that_keeps_changing_resolution_cannot_make_sessions_without_bound(
    model: ResolvedModel, provider: str
) -> None:
    fake = FakeGpuSessions()
    loaded = _detector(model, fake, provider=provider, in_graph=True)
    detector = Detector(loaded)
    sizes = [(48 + 2 * i, 64 + 2 * i) for i in range(10)]
    for size in sizes:
        (found,) = detector.detect(_frames(1, size))
        assert (found.height, found.width) == size  # fitted on the host, boxes still in its own pixels
    assert len(loaded.engine.frame_sizes) == MAX_FRAME_SIZES
    assert "fitted on the host" in loaded.engine.status.declined["frame_sizes"]
    runners = detector._runners.values()
    assert all(len(r._slots) <= MAX_FRAME_SIZES for r in runners)
    if provider == "cuda":
        # The probe's session, and one per frame size at batch 1.
        assert len(fake.gpu_sessions()) == MAX_FRAME_SIZES + 1 and fake.mixed() == []
