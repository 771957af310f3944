"""The real YOLOX-Nano model on the real test images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from edgevision.detector.detector import Detector, StageTimes
from edgevision.detector.load import load_detector
from edgevision.imageio import read_image
from edgevision.inference.options import EngineConfig
from edgevision.models.dynbatch import make_dynamic_batch
from edgevision.models.variants import dynamic_batch_path
from edgevision.preprocess import FrameError, Letterbox

EXPECTED = {"astronaut": "person", "coffee": "cup", "chelsea": "cat"}


@pytest.fixture(scope="module")
def detector(resolved_model) -> Detector:
    return Detector(load_detector(resolved_model, EngineConfig(provider="cpu")))


@pytest.fixture(scope="module")
def batch_detector(resolved_model) -> Detector:
    return Detector(load_detector(resolved_model, EngineConfig(provider="cpu"), max_batch=4))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_finds_the_expected_object(detector: Detector, images: dict[str, Path], name: str) -> None:
    frame = read_image(images[name])
    (result,) = detector.detect([frame])
    h, w = frame.shape[:2]
    assert (result.width, result.height) == (w, h)
    hits = [
        (score, box)
        for label, score, box in zip(result.labels(detector.labels), result.scores, result.boxes, strict=True)
        if label == EXPECTED[name] and score > 0.5
    ]
    assert hits, f"{name}: no {EXPECTED[name]} above 0.5 in {result.labels(detector.labels)}"
    for _, (x1, y1, x2, y2) in hits:
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    # Sorted by score, best first.
    assert list(result.scores) == sorted(result.scores, reverse=True)


def test_batch_of_four_equals_four_single_calls(
    detector: Detector, batch_detector: Detector, images: dict[str, Path]
) -> None:
    frames = [read_image(images[n]) for n in ("astronaut", "coffee", "chelsea", "astronaut")]
    assert batch_detector.engine.dynamic_batch
    times = StageTimes()
    batched = batch_detector.detect(frames, times)
    assert times.frames == 4
    singles = [detector.detect([f])[0] for f in frames]
    for b, s in zip(batched, singles, strict=True):
        np.testing.assert_array_equal(b.class_ids, s.class_ids)
        np.testing.assert_array_equal(b.scores, s.scores)
        np.testing.assert_array_equal(b.boxes, s.boxes)


def test_dynamic_batch_graph_keeps_the_batch_axis(model_path: Path, resolved_model) -> None:
    original = onnx.load(str(model_path))
    converted = make_dynamic_batch(original)
    assert converted.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert converted.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    path = dynamic_batch_path(model_path, resolved_model.sha256)
    mtime = path.stat().st_mtime_ns
    assert dynamic_batch_path(model_path, resolved_model.sha256) == path
    assert path.stat().st_mtime_ns == mtime


def test_dynamic_batch_copy_goes_to_cache_when_model_dir_is_read_only(
    tmp_path: Path, model_path: Path, resolved_model
) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / model_path.name).write_bytes(model_path.read_bytes())
    ro.chmod(0o555)
    try:
        path = dynamic_batch_path(ro / model_path.name, resolved_model.sha256, cache_dir=tmp_path / "cache")
    finally:
        ro.chmod(0o755)
    assert path.parent == tmp_path / "cache"
    assert not any(p.name.endswith(".onnx") and "dynbatch" in p.name for p in ro.iterdir())


def test_frames_of_other_layouts(detector: Detector, images: dict[str, Path]) -> None:
    bgr = read_image(images["astronaut"])
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    results = detector.detect([grey, bgra, grey[..., None]])
    labels = [r.labels(detector.labels) for r in results]
    assert all("person" in found for found in labels)
    # BGRA carries the same pixels as BGR.
    np.testing.assert_array_equal(results[1].boxes, detector.detect([bgr])[0].boxes)


@pytest.mark.parametrize(
    "frame, message",
    [
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((10, 10, 3), np.float32), "dtype"),
        (np.zeros((10, 10, 2), np.uint8), "shape"),
    ],
)
def test_bad_frames_are_refused_clearly(detector: Detector, frame: np.ndarray, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        detector.detect([frame])


def test_letterbox_matches_yolox_reference(resolved_model, images: dict[str, Path]) -> None:
    """Same tensor as YOLOX's own preprocessing: resize by truncated scale, pad 114 bottom/right."""
    frame = read_image(images["coffee"])  # 600 x 400 -> 416 x 277
    spec = resolved_model.manifest.input
    out = np.empty((3, spec.height, spec.width), np.float32)
    meta = Letterbox(spec)(frame, out)
    r = min(416 / 400, 416 / 600)
    resized = cv2.resize(frame, (int(600 * r), int(400 * r)), interpolation=cv2.INTER_LINEAR)
    reference = np.full((416, 416, 3), 114, np.uint8)
    reference[: resized.shape[0], : resized.shape[1]] = resized
    np.testing.assert_array_equal(out, reference.transpose(2, 0, 1).astype(np.float32))
    assert meta.scale == pytest.approx(r)


def test_letterbox_clears_padding_between_frame_sizes(resolved_model) -> None:
    spec = resolved_model.manifest.input
    box = Letterbox(spec)
    out = np.empty((3, spec.height, spec.width), np.float32)
    box(np.full((416, 416, 3), 7, np.uint8), out)
    box(np.full((100, 416, 3), 7, np.uint8), out)
    assert (out[:, 100:, :] == 114).all() and (out[:, :100, :] == 7).all()
