"""How an engine creates its ONNX Runtime sessions: the seam below the engine, where a test may
record what each session is created with and fed (never where it decides what runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import onnxruntime as ort

# Each provider with its options, in the order ONNX Runtime should try them.
ProviderList = list[tuple[str, dict[str, Any]]]


class SessionFactory(Protocol):
    def __call__(self, model: Path | bytes, options: ort.SessionOptions, providers: ProviderList) -> Any:
        """A session (or something that runs like one) for the model file or its bytes."""
        ...


def create_session(model: Path | bytes, options: ort.SessionOptions, providers: ProviderList) -> ort.InferenceSession:
    """A plain ONNX Runtime session. Its own fallback is off: it would retry on its own provider
    list with default options (EXHAUSTIVE cuDNN search, no memory limit) and report nothing useful."""
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, sess_options=options, providers=providers, enable_fallback=0)
