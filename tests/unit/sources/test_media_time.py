"""Each frame's time in its source: a file's own timeline (from 0, growing across loops, whatever
speed it is read at), an image folder's at its frame rate; live sources have none (the capture
clock times them)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgevision.config.source_uri import SourceSpec, parse_source_uri
from edgevision.sources.frames import BufferPool
from edgevision.sources.readers import CaptureReader, EndOfStream, FolderReader, SyntheticReader


def _clip(path: Path, frames: int, fps: float) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for index in range(frames):
        writer.write(np.full((48, 64, 3), index * 10 % 256, np.uint8))
    writer.release()
    return path


def _read_all(reader: CaptureReader | FolderReader, pool: BufferPool) -> list[float | None]:
    times = []
    while True:
        try:
            image = reader.read(pool)
        except EndOfStream:
            return times
        assert image is not None
        times.append(reader.media_time_s())


def test_a_file_is_timed_by_its_own_timeline_and_loops_keep_counting(tmp_path: Path) -> None:
    reader = CaptureReader(parse_source_uri(str(_clip(tmp_path / "c.avi", 10, 25.0))), 5.0, 5.0)
    pool = BufferPool()
    try:
        first = _read_all(reader, pool)
        assert first == pytest.approx([i / 25 for i in range(10)], abs=1e-6)
        reader.rewind()
        second = _read_all(reader, pool)
    finally:
        reader.close()
    # The second pass goes on from where the first ended: time never runs backwards.
    assert second == pytest.approx([(10 + i) / 25 for i in range(10)], abs=1e-6)


def test_a_folder_is_timed_at_its_frame_rate_and_synthetic_frames_too(tmp_path: Path) -> None:
    for index in range(3):
        cv2.imwrite(str(tmp_path / f"{index}.png"), np.zeros((8, 8, 3), np.uint8))
    folder = FolderReader(SourceSpec("folder", str(tmp_path), fps=4.0))
    assert _read_all(folder, BufferPool()) == pytest.approx([0.0, 0.25, 0.5])
    synthetic = SyntheticReader(parse_source_uri("synthetic:64x48@10"))
    pool = BufferPool()
    times = []
    for _ in range(3):
        synthetic.read(pool)
        times.append(synthetic.media_time_s())
    assert times == pytest.approx([0.0, 0.1, 0.2])
