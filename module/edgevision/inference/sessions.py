"""ONNX Runtime as an engine sees it: which providers load here, sessions, and device buffers.

This is the seam below the engine. A test may hand the engine a factory whose sessions record what
they are created with and fed (tests/support/sessions.py runs the GPU path's logic on CPU
sessions that answer as CUDA would); it never decides what the engine does with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgevision.inference.providers import load_errors

# Each provider with its options, in the order ONNX Runtime should try them.
ProviderList = list[tuple[str, dict[str, Any]]]


class SessionFactory:
    """The real thing: ONNX Runtime's own sessions and CUDA device memory."""

    def load_errors(self, providers: list[str]) -> dict[str, str | None]:
        """Why each provider's libraries cannot load here (None: they can)."""
        return load_errors(providers)

    def create(self, model: Path | bytes, options: ort.SessionOptions, providers: ProviderList) -> Any:
        """A session for the model file or its bytes. ONNX Runtime's own fallback is off: it would
        retry on its own provider list with default options and report nothing useful."""
        source = str(model) if isinstance(model, Path) else model
        return ort.InferenceSession(source, sess_options=options, providers=providers, enable_fallback=0)

    def device_buffer(self, shape: list[int], dtype: type, device_id: int) -> ort.OrtValue:
        """An uninitialised buffer in GPU memory, allocated once and bound for every run."""
        return ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, "cuda", device_id)

    def to_device(self, array: np.ndarray, device_id: int) -> ort.OrtValue:
        """A copy of `array` in GPU memory."""
        return ort.OrtValue.ortvalue_from_numpy(array, "cuda", device_id)
