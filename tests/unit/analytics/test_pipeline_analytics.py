"""The synthetic scene through the real pipeline: a detector-shaped stage writes YOLOX-Nano's raw
output for what the scene holds, and the real decoder, NMS, tracker, zones, lines, publisher and
preview do the rest. Counts must be exact; masked pixels constant in every image that leaves."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from edgevision.config.load import validate
from edgevision.pipeline.pipeline import Pipeline
from tests.support.fakes import EngineFactory, EngineScript, pipeline_seams, scripted_sources
from tests.support.scene import HEIGHT, WIDTH, Mover, Scene, SceneDetector, render_indexed
from tests.support.sinks import CollectingSink

PERSON = 0
MASK = "0.75,0.05 0.98,0.05 0.98,0.45 0.75,0.45"


def _scene() -> Scene:
    down = [Mover(PERSON, (0.15 + 0.1 * i, 0.2), (0.2 + 0.1 * i, 0.85), 4 * i, 4 * i + 50) for i in range(5)]
    up = [Mover(PERSON, (0.3 + 0.15 * i, 0.9), (0.3 + 0.15 * i, 0.25), 10 + 6 * i, 70 + 6 * i) for i in range(2)]
    # Stands inside the privacy mask the whole time: dropped, never tracked or drawn.
    hidden = Mover(PERSON, (0.85, 0.3), (0.86, 0.32), 0, 100)
    return Scene([*down, *up, hidden], frames=110, dropout=0.05, weak=0.1)


def _document(detection: str = "every_frame") -> dict[str, Any]:
    return {
        "cameras": {
            "plaza": {
                "uri": f"synthetic:{WIDTH}x{HEIGHT}@0",
                "zones": {"middle": {"polygon": "0.1,0.4 0.7,0.4 0.7,0.7 0.1,0.7"}},
                "lines": {"gate": {"points": "0.05,0.55 0.72,0.55"}},
                "masks": {"desk": {"polygon": MASK, "drop_detections": True}},
                # The first test counts per detected frame (the mask's drops): every frame.
                "detection": {"mode": detection},
            }
        },
        "inference": {"workers": 2},
        "metrics_interval_s": 3600,
    }


def test_the_scene_is_counted_exactly_through_the_pipeline_and_the_mask_hides_what_it_covers() -> None:
    scene = _scene()
    engines = EngineFactory(script=EngineScript(detector=SceneDetector(scene).compute))
    frames = {"plaza": (render_indexed(scene, f) for f in range(scene.frames))}
    sink = CollectingSink()
    pipeline = Pipeline(validate(_document()), sink, seams=pipeline_seams(engines, scripted_sources(frames)))
    pipeline.start()
    assert pipeline.wait(60)
    results = sink.of_type("result")
    assert [r["seq"] for r in results] == list(range(scene.frames))
    crossings = sink.events("line_cross")
    assert sorted(e["direction"] for e in crossings) == ["in"] * 5 + ["out"] * 2
    assert {e["camera"] for e in crossings} == {"plaza"} and all(e["track_id"] for e in crossings)
    # Results carry track ids and the camera's counts.
    tracked = [d for r in results for d in r["detections"]]
    assert tracked and all("track_id" in d for d in tracked)
    assert results[-1]["counts"]["lines"]["gate"] == {"in": {"person": 5}, "out": {"person": 2}}
    # Every one of the seven walkers crossed the zone: entered once each, and left.
    middle = results[-1]["counts"]["zones"]["middle"]
    assert middle["entered"] == {"person": 7} and middle["exited"] == {"person": 7}
    # The one standing in the mask never appears in a result, and was counted as dropped.
    mask_x = 0.75 * WIDTH
    assert all(d["box"]["x1"] < mask_x for d in tracked)
    analytics = pipeline.metrics_snapshot()["analytics"]["plaza"]
    assert analytics["dropped_by_mask"] >= 90 and analytics["tracks"]["ids_issued"] == 7
    assert pipeline.status()["analytics"]["plaza"]["lines"]["gate"]["in"] == {"person": 5}


def test_masked_pixels_are_constant_in_every_preview_image() -> None:
    scene = _scene()
    engines = EngineFactory(script=EngineScript(detector=SceneDetector(scene).compute))
    frames = {"plaza": (render_indexed(scene, f) for f in range(scene.frames))}
    pipeline = Pipeline(
        validate(_document()), CollectingSink(), seams=pipeline_seams(engines, scripted_sources(frames))
    )
    pipeline.start()
    assert pipeline.wait(60)
    snap = pipeline.snapshot("plaza", 200_000)
    assert snap is not None
    image = cv2.imdecode(np.frombuffer(snap.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (HEIGHT, WIDTH)
    # More than 16 px inside the mask's border (JPEG bleeds at edges): exactly black.
    x1, y1, x2, y2 = int(0.75 * WIDTH) + 17, int(0.05 * HEIGHT) + 17, int(0.98 * WIDTH) - 17, int(0.45 * HEIGHT) - 17
    inside = image[y1:y2, x1:x2]
    assert inside.max() <= 2, inside.max()
    # Outside it the scene (and the overlays) are there: not a black frame.
    assert image[int(0.6 * HEIGHT) :, : int(0.6 * WIDTH)].mean() > 50


@pytest.mark.parametrize("mode", ["motion", "interval"])
def test_frames_the_detector_skips_carry_tracked_boxes_and_the_counts_stay_exact(mode: str) -> None:
    """The default mode through the real pipeline: about a third of the frames go through the
    detector (every third near the line, every fourth elsewhere), the others are published with
    the tracker's boxes and `detected: false`; the crossings and zone visits are those of
    every-frame detection."""
    scene = _scene()
    detector, seen = SceneDetector(scene), set()

    def compute(batch: np.ndarray, out: np.ndarray) -> list[np.ndarray]:
        seen.update(detector.frame_of(batch[slot]) for slot in range(len(batch)))
        return detector.compute(batch, out)

    engines = EngineFactory(script=EngineScript(detector=compute))
    frames = {"plaza": (render_indexed(scene, f) for f in range(scene.frames))}
    sink = CollectingSink()
    pipeline = Pipeline(validate(_document(mode)), sink, seams=pipeline_seams(engines, scripted_sources(frames)))
    pipeline.start()
    assert pipeline.wait(60)
    results = sink.of_type("result")
    assert [r["seq"] for r in results] == list(range(scene.frames))
    carried = [r for r in results if not r["detected"]]
    assert 0.4 * scene.frames < len(carried) < 0.8 * scene.frames
    # The detector saw exactly the frames published as detected.
    assert seen & set(range(scene.frames)) == {r["seq"] for r in results if r["detected"]}
    # A carried frame has the tracks' boxes, each with its id, where the tracker predicts them.
    assert any(r["detections"] for r in carried) and all("track_id" in d for r in carried for d in r["detections"])
    assert results[-1]["counts"]["lines"]["gate"] == {"in": {"person": 5}, "out": {"person": 2}}
    middle = results[-1]["counts"]["zones"]["middle"]
    assert middle["entered"] == {"person": 7} and middle["exited"] == {"person": 7}
    camera = pipeline.metrics_snapshot()["cameras"]["plaza"]
    assert camera["carried"] == len(carried) and camera["inferred"] == scene.frames
