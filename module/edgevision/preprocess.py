"""Letterbox frames into the model's input, in place: on the host, or handed to the graph."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

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
    # Stretched (not letterboxed) input: the vertical scale; None: the same as `scale`.
    scale_y: float | None = None

    @property
    def scales(self) -> tuple[float, float]:
        """Model-input pixels per frame pixel, horizontally and vertically."""
        return self.scale, self.scale if self.scale_y is None else self.scale_y


# Stands in for the letterbox of a frame that could not be preprocessed; its row is ignored.
PLACEHOLDER = LetterboxMeta(width=1, height=1, scale=1.0)


class BatchInput(Protocol):
    """The input side of an inference runner (edgevision.inference.runner.BoundRunner)."""

    @property
    def input(self) -> np.ndarray: ...

    def frame_size(self, height: int, width: int) -> tuple[int, int]:
        """The frame size a batch whose first frame is `height` x `width` is fed at (the engine
        takes a bounded number of frame sizes; beyond them, the nearest one it has)."""
        ...

    def frames(self, height: int, width: int) -> np.ndarray: ...


class Preprocessor(Protocol):
    def prepare(self, images: Sequence[np.ndarray], runner: BatchInput) -> tuple[list[LetterboxMeta], dict[int, str]]:
        """Fill the runner's input from `images`; returns each frame's placement and the bad ones."""
        ...


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
        frame = as_bgr(frame)
        h, w = frame.shape[:2]
        spec = self.spec
        meta, nh, nw = place(h, w, spec)
        if (nh, nw) != self._last_covered:
            self._canvas[nh:, :] = spec.pad_value
            self._canvas[:nh, nw:] = spec.pad_value
            self._last_covered = (nh, nw)
        _paste(frame, self._canvas[:nh, :nw])
        if spec.channel_order == "RGB":
            np.copyto(out, self._chw[::-1])
        else:
            np.copyto(out, self._chw)
        if self._affine is not None:
            out *= self._affine[0]
            out += self._affine[1]
        return meta

    def prepare(self, images: Sequence[np.ndarray], runner: BatchInput) -> tuple[list[LetterboxMeta], dict[int, str]]:
        metas: list[LetterboxMeta] = []
        bad: dict[int, str] = {}
        batch = runner.input
        for index, image in enumerate(images):
            try:
                metas.append(self(image, batch[index]))
            except FrameError as exc:
                bad[index] = str(exc)
                metas.append(PLACEHOLDER)
        return metas, bad


class FrameFeed:
    """For a graph that letterboxes by itself: copy uint8 BGR frames into its batch as they are.

    A batch takes the size of its first good frame (or, where the engine has as many frame sizes
    as it takes, the nearest of them); a frame of another size is fitted into that size on the
    host (aspect kept, padded), and the graph's letterbox then scales it with the rest.
    """

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec

    def prepare(self, images: Sequence[np.ndarray], runner: BatchInput) -> tuple[list[LetterboxMeta], dict[int, str]]:
        bad: dict[int, str] = {}
        frames: list[np.ndarray | None] = []
        for index, image in enumerate(images):
            try:
                frames.append(as_bgr(image))
            except FrameError as exc:
                bad[index] = str(exc)
                frames.append(None)
        first = next((f for f in frames if f is not None), None)
        if first is None:
            return [PLACEHOLDER] * len(images), bad
        h, w = runner.frame_size(*first.shape[:2])
        batch = runner.frames(h, w)
        outer = place(h, w, self.spec)[0]
        metas: list[LetterboxMeta] = []
        for index, frame in enumerate(frames):
            if frame is None:
                metas.append(PLACEHOLDER)
            elif frame.shape[:2] == (h, w):
                np.copyto(batch[index], frame)
                metas.append(LetterboxMeta(width=w, height=h, scale=outer.scale, scale_y=outer.scale_y))
            elif self.spec.resize == "stretch":
                # Stretched to the batch's frame size, then by the graph to the model's.
                fh, fw = frame.shape[:2]
                _paste(frame, batch[index])
                sx, sy = outer.scales
                metas.append(LetterboxMeta(width=fw, height=fh, scale=sx * w / fw, scale_y=sy * h / fh))
            else:
                fh, fw = frame.shape[:2]
                inner, nh, nw = fit(fh, fw, h, w)
                slot = batch[index]
                slot[nh:] = self.spec.pad_value
                slot[:nh, nw:] = self.spec.pad_value
                _paste(frame, slot[:nh, :nw])
                metas.append(LetterboxMeta(width=fw, height=fh, scale=inner * outer.scale))
        return metas, bad


def _paste(frame: np.ndarray, region: np.ndarray) -> None:
    """Frame into region: a copy at the same size, else OpenCV's linear resize, in place."""
    if region.shape[:2] == frame.shape[:2]:
        region[...] = frame
    else:
        cv2.resize(frame, (region.shape[1], region.shape[0]), dst=region, interpolation=cv2.INTER_LINEAR)


def preprocessor(spec: InputSpec, takes_frames: bool) -> Preprocessor:
    """The host letterbox, or the plain frame copy for a graph that letterboxes by itself."""
    return FrameFeed(spec) if takes_frames else Letterbox(spec)


def place(h: int, w: int, spec: InputSpec) -> tuple[LetterboxMeta, int, int]:
    """Where an h x w frame lands on the model input: its placement, and the covered height and width."""
    if spec.resize == "stretch":
        meta = LetterboxMeta(width=w, height=h, scale=spec.width / w, scale_y=spec.height / h)
        return meta, spec.height, spec.width
    scale, nh, nw = fit(h, w, spec.height, spec.width)
    return LetterboxMeta(width=w, height=h, scale=scale), nh, nw


def fit(h: int, w: int, th: int, tw: int) -> tuple[float, int, int]:
    """Scale and size of an h x w frame letterboxed into th x tw.

    The truncated side is computed in integers, as the in-graph letterbox does, so both place
    every pixel alike (float products like 360 * (416 / 360) can land just under a whole number).
    """
    if th * w <= tw * h:
        nh, nw = th, w * th // h
    else:
        nh, nw = h * tw // w, tw
    return min(th / h, tw / w), max(1, nh), max(1, nw)


def as_bgr(frame: np.ndarray) -> np.ndarray:
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
