"""The detection gate on synthetic frames: a still scene wakes nothing, a moving object does, a
lighting step and camera noise do not, motion inside a privacy mask does not; and the policy
around it: interval detection, tracks near a line never left to prediction for more than
`edge_interval - 1` frames, a still scene looked at every `refresh_s`."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from edgevision.analytics.gate import DetectionGate, Hints
from edgevision.analytics.masks import Masks
from edgevision.analytics.motion import MotionMeter
from edgevision.config.analytics import DetectionConfig, MaskConfig

H, W = 720, 1280


def _floor(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(60, 200, (H, W, 3), dtype=np.uint8), (31, 31), 0)
    return image


def _with_box(image: np.ndarray, x: int, y: int = 300, size: tuple[int, int] = (60, 140)) -> np.ndarray:
    out = image.copy()
    cv2.rectangle(out, (x, y), (x + size[0], y + size[1]), (20, 30, 240), -1)
    return out


_NOISE: dict[float, list[np.ndarray]] = {}


def _noisy(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """The image with Gaussian noise (drawn from a few fields made once: drawing per frame is slow)."""
    if sigma not in _NOISE:
        _NOISE[sigma] = [rng.normal(0, sigma, image.shape).astype(np.int16) for _ in range(5)]
    noise = _NOISE[sigma][int(rng.integers(0, 5))]
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _meter(masks: Masks | None = None) -> MotionMeter:
    config = DetectionConfig()
    return MotionMeter(config.motion_threshold, config.motion_area, masks or Masks({}))


def test_a_still_scene_with_sensor_noise_is_still_and_a_moving_object_is_not() -> None:
    meter, floor, rng = _meter(), _floor(), np.random.default_rng(5)
    assert meter.moved(_noisy(floor, rng, 3))  # the first frame: nothing to compare with
    still = [meter.moved(_noisy(floor, rng, 3)) for _ in range(40)]
    assert not any(still)
    moving = [meter.moved(_noisy(_with_box(floor, 100 + 12 * i), rng, 3)) for i in range(20)]
    assert all(moving)


def test_heavy_noise_raises_the_threshold_by_itself() -> None:
    """Rain or grain at sigma 12 (a fixed threshold of 12 levels would see motion everywhere)."""
    meter, floor, rng = _meter(), _floor(), np.random.default_rng(6)
    decisions = [meter.moved(_noisy(floor, rng, 12)) for _ in range(60)]
    assert not any(decisions[10:])
    assert meter.moved(_noisy(_with_box(floor, 500, size=(120, 260)), rng, 12))


@pytest.mark.parametrize("step", [-40, 35])
def test_a_lighting_step_is_not_motion(step: int) -> None:
    meter, floor = _meter(), _floor()
    for _ in range(10):
        meter.moved(floor)
    brighter = np.clip(floor.astype(np.int16) + step, 0, 255).astype(np.uint8)
    assert not any(meter.moved(brighter) for _ in range(10))


def test_motion_inside_a_privacy_mask_wakes_nothing() -> None:
    masks = Masks({"desk": MaskConfig(polygon="0,0 0.5,0 0.5,1 0,1")})
    meter, floor = _meter(masks), _floor()
    meter.moved(floor)
    inside_mask = [meter.moved(_with_box(floor, 40 + 10 * i)) for i in range(20)]
    assert not any(inside_mask)
    assert meter.moved(_with_box(floor, 900))


def test_the_change_measure_costs_well_under_a_millisecond_at_1080p() -> None:
    """A loose bound (the benchmark reports the real figure): a single core does it in ~0.1 ms."""
    meter, image = _meter(), np.random.default_rng(1).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    meter.moved(image)
    started = time.process_time()
    for _ in range(50):
        meter.moved(image)
    assert (time.process_time() - started) / 50 < 0.005


def _decide(gate: DetectionGate, hints: Hints, frames: int, image: np.ndarray | None = None) -> list[bool]:
    return [gate.decide(image, 100.0 + i / 15, hints) for i in range(frames)]


def test_interval_mode_detects_every_nth_frame_and_every_edge_interval_near_a_line() -> None:
    gate = DetectionGate(DetectionConfig(mode="interval", interval=5, edge_interval=3), Masks({}))
    assert _decide(gate, Hints(active=2, moving=True), 11) == [True, False, False, False, False] * 2 + [True]
    near = _decide(gate, Hints(active=2, moving=True, near_edge=True), 9)
    # Never more than two frames in a row left to prediction.
    runs = "".join("D" if d else "." for d in near).split("D")
    assert max(len(r) for r in runs) <= 2


def test_motion_mode_sleeps_on_a_still_scene_but_looks_every_refresh_s() -> None:
    config = DetectionConfig(mode="motion", refresh_s=2.0)
    gate, floor = DetectionGate(config, Masks({})), _floor()
    decisions = _decide(gate, Hints(), 75, floor)  # 5 s at 15 fps
    assert decisions[0] and sum(decisions) == 3  # the first frame, then at 2 s and 4 s
    # Something moves and no track explains it: looked at at once.
    assert gate.decide(_with_box(floor, 300), 200.0, Hints())
    # A track that moves keeps the detector at the interval even where the pixels are still.
    moving = [gate.decide(floor, 200.0 + (i + 1) / 15, Hints(active=1, moving=True)) for i in range(10)]
    assert sum(moving) == 2


def test_every_frame_mode_detects_every_frame() -> None:
    gate = DetectionGate(DetectionConfig(mode="every_frame"), Masks({}))
    assert all(_decide(gate, Hints(), 20, _floor()))


def test_an_edge_interval_over_the_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="edge_interval"):
        DetectionConfig(interval=2, edge_interval=4)


def test_a_twin_patch_changes_the_mode_live_and_keeps_the_tracks() -> None:
    from edgevision.analytics.camera import Analytics
    from edgevision.config.camera import CameraConfig

    analytics = Analytics(lambda _name, _details: None)
    camera = CameraConfig(id="cam", uri="synthetic:64x48@0", lines={"gate": {"points": "0,0.5 1,0.5"}})
    analytics.configure([camera])
    floor = _floor()
    first = [analytics.wants_detection("cam", floor, 10.0 + i / 15) for i in range(30)]
    assert first[0] and not any(first[1:])  # the default (motion) sleeps on a still scene
    cam = analytics.of("cam")
    assert cam is not None
    tracker = cam._tracker
    analytics.configure([camera.model_copy(update={"detection": DetectionConfig(mode="every_frame")})])
    assert analytics.of("cam") is cam and cam._tracker is tracker
    assert all(analytics.wants_detection("cam", floor, 20.0 + i / 15) for i in range(10))


def test_a_frame_the_gate_cannot_read_goes_to_the_detector_and_the_camera_goes_on(caplog) -> None:
    from edgevision.analytics.camera import Analytics
    from edgevision.config.camera import CameraConfig

    analytics = Analytics(lambda _name, _details: None)
    analytics.configure([CameraConfig(id="cam", uri="synthetic:64x48@0")])
    assert analytics.wants_detection("cam", _floor(), 1.0)
    broken = np.zeros((0, 0, 3), np.uint8)  # no pixels: the resize refuses it
    assert all(analytics.wants_detection("cam", broken, 2.0 + i) for i in range(3))
    assert sum("detection gate failed" in r.getMessage() for r in caplog.records) == 1
