"""The README's worked example: a synthetic scene (tests/support/scene.py) with a zone, a line and
a privacy mask, through the real pipeline with a detector-shaped stand-in; writes the preview it
serves as a JPEG and the analytics events it raised. Nothing from the shared assets is used.

    .venv/bin/python benchmarks/analytics_example.py benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edgevision.config.load import validate  # noqa: E402
from edgevision.pipeline.pipeline import Pipeline  # noqa: E402
from tests.support.fakes import EngineFactory, EngineScript, pipeline_seams, scripted_sources  # noqa: E402
from tests.support.scene import HEIGHT, WIDTH, Mover, Scene, SceneDetector, render_indexed  # noqa: E402
from tests.support.sinks import CollectingSink  # noqa: E402

CONFIG = {
    "cameras": {
        "plaza": {
            "uri": f"synthetic:{WIDTH}x{HEIGHT}@0",
            "zones": {"queue": {"polygon": "0.08,0.42 0.62,0.42 0.62,0.72 0.08,0.72", "dwell_s": 2.0}},
            "lines": {"entrance": {"points": "0.05,0.8 0.7,0.8", "classes": "person"}},
            "masks": {"office": {"polygon": "0.74,0.04 0.98,0.04 0.98,0.5 0.74,0.5", "drop_detections": True}},
        }
    },
    "metrics_interval_s": 3600,
}


def scene() -> Scene:
    walkers = [Mover(0, (0.12 + 0.12 * i, 0.15), (0.16 + 0.12 * i, 0.95), 6 * i, 6 * i + 70) for i in range(4)]
    back = [Mover(0, (0.55, 0.98), (0.5, 0.3), 20, 90)]
    waiting = [Mover(0, (0.3, 0.55), (0.33, 0.6), 0, 119)]
    inside_mask = [Mover(0, (0.85, 0.3), (0.86, 0.32), 0, 119)]
    return Scene(walkers + back + waiting + inside_mask, frames=120, dropout=0.03, weak=0.1)


# The stand-in detector reads each frame's index from two blocks drawn inside the office mask.
CODES = (520, 60)


def main(out: Path) -> int:
    example = scene()
    # Stop mid-scene, when the preview has most to show.
    shown = 46
    engines = EngineFactory(script=EngineScript(detector=SceneDetector(example, at=CODES).compute))
    sink = CollectingSink()
    frames = {"plaza": (render_indexed(example, f, CODES) for f in range(shown + 1))}
    pipeline = Pipeline(
        validate(CONFIG), sink, seams=pipeline_seams(engines, scripted_sources(frames, interval_s=0.04))
    )
    pipeline.start()
    pipeline.wait(60)
    preview = pipeline.snapshot("plaza", 200_000)
    assert preview is not None
    out.mkdir(parents=True, exist_ok=True)
    (out / "analytics-example.jpg").write_bytes(preview.jpeg)
    # The whole scene for the events.
    sink = CollectingSink()
    frames = {"plaza": (render_indexed(example, f, CODES) for f in range(example.frames))}
    pipeline = Pipeline(
        validate(CONFIG), sink, seams=pipeline_seams(engines, scripted_sources(frames, interval_s=0.04))
    )
    pipeline.start()
    pipeline.wait(60)
    analytics = ("zone_enter", "zone_exit", "dwell", "line_cross")
    events = [{k: v for k, v in e.items() if k != "schema"} for e in sink.of_type("event") if e["event"] in analytics]
    (out / "analytics-example-events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    print(json.dumps(sink.of_type("result")[-1]["counts"], indent=1))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "benchmarks" / "results", help="folder to write to")
    sys.exit(main(parser.parse_args().out))
