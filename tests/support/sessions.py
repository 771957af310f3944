"""A session factory for the engine's seam whose sessions are real ONNX Runtime CPU sessions that
answer as a GPU provider would, and record every image input shape they run.

The engine then takes its GPU path for real (one session per input shape, IO binding with
"device" buffers, CUDA graph options, TensorRT profiles, memory shares) while ONNX Runtime
computes on the CPU: what each session was created with and fed is the evidence.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgevision.inference.providers import CPU, CUDA, TENSORRT
from edgevision.inference.sessions import ProviderList, SessionFactory

CUDA_FAILURE = "CUDA failure 700: an illegal memory access was encountered"


class RecordingBinding:
    """An IO binding that remembers the image input's shape (what the next run is fed)."""

    def __init__(self, real: Any, image: str) -> None:
        self.real = real
        self._image = image
        self.image_shape: tuple[int, ...] | None = None

    def bind_ortvalue_input(self, name: str, value: ort.OrtValue) -> None:
        if name == self._image:
            self.image_shape = tuple(value.shape())
        self.real.bind_ortvalue_input(name, value)

    def bind_cpu_input(self, name: str, array: np.ndarray) -> None:
        if name == self._image:
            self.image_shape = tuple(array.shape)
        self.real.bind_cpu_input(name, array)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class RecordingSession:
    """A CPU session that says it runs on `provider`, with the options it was created with."""

    def __init__(
        self, factory: FakeGpuSessions, real: Any, provider: str, options: dict[str, Any], model: Path | bytes
    ) -> None:
        self._factory = factory
        self.real = real
        self.provider = provider
        self.options = options
        self.model = model
        self._image = next(i.name for i in real.get_inputs() if len(i.shape) == 4)
        # Every run's image input shape, in order (warm-up runs included).
        self.shapes: list[tuple[int, ...]] = []

    def get_providers(self) -> list[str]:
        return [CPU] if self.provider == CPU else [self.provider, CPU]

    def get_provider_options(self) -> dict[str, dict[str, str]]:
        return {self.provider: {k: str(v) for k, v in self.options.items()}}

    def get_inputs(self) -> Any:
        return self.real.get_inputs()

    def get_outputs(self) -> Any:
        return self.real.get_outputs()

    def io_binding(self) -> RecordingBinding:
        return RecordingBinding(self.real.io_binding(), self._image)

    def run(self, names: Any, feeds: dict[str, Any], run_options: Any = None) -> list[np.ndarray]:
        self._ran(tuple(feeds[self._image].shape))
        return self.real.run(names, feeds, run_options)

    def run_with_iobinding(self, binding: RecordingBinding, run_options: Any = None) -> None:
        assert binding.image_shape is not None, "run with no image bound"
        self._ran(binding.image_shape)
        self.real.run_with_iobinding(binding.real, run_options)

    def _ran(self, shape: tuple[int, ...]) -> None:
        self.shapes.append(shape)
        self._factory.ran(self)


class FakeGpuSessions(SessionFactory):
    """Sessions for the engine: GPU providers in `loading` load; `fail_run(n, shape)`, asked
    before the n-th run of any GPU session (of that input shape), may make that run fail as a CUDA
    error does."""

    def __init__(
        self,
        loading: tuple[str, ...] = (CUDA, TENSORRT),
        fail_run: Callable[[int, tuple[int, ...]], bool] | None = None,
    ) -> None:
        self._loading = loading
        self._fail_run = fail_run or (lambda n, shape: False)
        self._lock = threading.Lock()
        self.sessions: list[RecordingSession] = []
        self.gpu_runs = 0

    def load_errors(self, providers: list[str]) -> dict[str, str | None]:
        return {p: None if p == CPU or p in self._loading else "not loadable in this test" for p in providers}

    def create(self, model: Path | bytes, options: ort.SessionOptions, providers: ProviderList) -> RecordingSession:
        provider, provider_options = providers[0]
        real = ort.InferenceSession(str(model) if isinstance(model, Path) else model, options, providers=[CPU])
        session = RecordingSession(self, real, provider, provider_options, model)
        with self._lock:
            self.sessions.append(session)
        return session

    def device_buffer(self, shape: list[int], dtype: type, device_id: int) -> ort.OrtValue:
        return ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, "cpu", 0)

    def to_device(self, array: np.ndarray, device_id: int) -> ort.OrtValue:
        return ort.OrtValue.ortvalue_from_numpy(array)

    def ran(self, session: RecordingSession) -> None:
        if session.provider == CPU:
            return
        with self._lock:
            self.gpu_runs += 1
            runs = self.gpu_runs
        if self._fail_run(runs, session.shapes[-1]):
            raise RuntimeError(CUDA_FAILURE)

    def gpu_sessions(self) -> list[RecordingSession]:
        with self._lock:
            return [s for s in self.sessions if s.provider != CPU]

    def mixed(self) -> list[tuple[str, list[tuple[int, ...]]]]:
        """GPU sessions that ran more than one input shape (none, if the rule holds)."""
        return [(s.provider, sorted(set(s.shapes))) for s in self.gpu_sessions() if len(set(s.shapes)) > 1]
