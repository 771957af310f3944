"""Letterbox frames into the model's NCHW float input, in place."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgevision.models.manifest import InputSpec


class FrameError(ValueError):
    """A frame that cannot be fed to the model (empty, wrong type or channel count)."""


@dataclass(frozen=True)
class LetterboxMeta:
    """How a frame was placed on the model input: enough to map boxes back."""

    width: int
    height: int
    scale: float


class Letterbox:
    """Resize keeping the aspect ratio, image at the top-left, padding with a constant.

    Holds one uint8 canvas so a frame costs one resize and one conversion, no allocation.
    Not thread-safe: one per preprocessing thread.
    """

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        self._canvas = np.full((spec.height, spec.width, 3), spec.pad_value, dtype=np.uint8)
        self._chw = self._canvas.transpose(2, 0, 1)
        norm = spec.normalization
        self._affine = None
        if not norm.is_identity:
            scale = np.float32(norm.scale) / np.asarray(norm.std, dtype=np.float32)
            offset = -np.asarray(norm.mean, dtype=np.float32) / np.asarray(norm.std, dtype=np.float32)
            self._affine = (scale.reshape(3, 1, 1), offset.reshape(3, 1, 1))
        self._last_covered = (spec.height, spec.width)

    def __call__(self, frame: np.ndarray, out: np.ndarray) -> LetterboxMeta:
        """Write `frame` into `out` (3 x H x W float32, e.g. one slot of a batch buffer)."""
        frame = _as_bgr(frame)
        h, w = frame.shape[:2]
        spec = self.spec
        scale = min(spec.height / h, spec.width / w)
        # Truncation, as YOLOX's own preprocessing does, so boxes map back identically.
        nh, nw = max(1, int(h * scale)), max(1, int(w * scale))
        if (nh, nw) != self._last_covered:
            self._canvas[nh:, :] = spec.pad_value
            self._canvas[:nh, nw:] = spec.pad_value
            self._last_covered = (nh, nw)
        region = self._canvas[:nh, :nw]
        if (nh, nw) == (h, w):
            region[...] = frame
        else:
            cv2.resize(frame, (nw, nh), dst=region, interpolation=cv2.INTER_LINEAR)
        if spec.channel_order == "RGB":
            np.copyto(out, self._chw[::-1])
        else:
            np.copyto(out, self._chw)
        if self._affine is not None:
            out *= self._affine[0]
            out += self._affine[1]
        return LetterboxMeta(width=w, height=h, scale=scale)


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.size == 0:
        raise FrameError("empty frame")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame dtype {frame.dtype}; 8-bit images expected")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise FrameError(f"frame shape {frame.shape}; grey, BGR or BGRA expected")
