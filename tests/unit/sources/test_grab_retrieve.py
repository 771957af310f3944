"""A frame is taken in two steps (readers.py): `grab` moves on, `retrieve` makes the pixels, so
the source can leave a frame the camera will never send to inference unconverted. A frame
grabbed and never retrieved costs no pixels and changes neither the frames after it nor their
times."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgevision.config.source_uri import parse_source_uri
from edgevision.sources.frames import BufferPool
from edgevision.sources.readers import CaptureReader, EndOfStream, FolderReader


def _clip(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for index in range(frames):
        writer.write(np.full((48, 64, 3), index * 20 % 256, np.uint8))
    writer.release()
    return path


def test_frames_grabbed_and_not_retrieved_leave_the_others_as_read_makes_them(tmp_path: Path) -> None:
    spec = parse_source_uri(str(_clip(tmp_path / "c.avi", 10)))
    pool = BufferPool()
    every, some = CaptureReader(spec, 5.0, 5.0), CaptureReader(spec, 5.0, 5.0)
    try:
        read = [(every.read(pool), every.media_time_s()) for _ in range(10)]
        for index in range(10):
            some.grab()
            if index % 3 == 0:
                image = some.retrieve(pool)
                assert image is not None
                assert np.array_equal(image, read[index][0]) and some.media_time_s() == read[index][1]
            else:
                assert some.media_time_s() == read[index][1]  # its time is known without pixels
    finally:
        every.close()
        some.close()


def test_an_image_of_a_folder_grabbed_and_not_retrieved_is_never_decoded(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((8, 8, 3), 10, np.uint8))
    (folder / "b.png").write_bytes(b"\x89PNG damaged")  # decoding it would yield nothing
    cv2.imwrite(str(folder / "c.png"), np.full((8, 8, 3), 30, np.uint8))
    reader = FolderReader(parse_source_uri(str(folder)))
    pool = BufferPool()
    reader.grab()
    reader.grab()  # b.png: passed over
    reader.grab()
    image = reader.retrieve(pool)
    assert image is not None and int(image[0, 0, 0]) == 30
    assert reader.retrieve(pool) is None  # nothing grabbed since: no frame twice
    with pytest.raises(EndOfStream):
        reader.grab()
