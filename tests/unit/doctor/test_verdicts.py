"""The doctor's verdicts on canned outputs and timings: batched GPU runs compared within a
tolerance with their detections matched, and the batch-size sequence that catches re-planning."""

from __future__ import annotations

import itertools

import numpy as np

from edgevision.detections import Detections
from edgevision.doctor.compare import Outputs, agree
from edgevision.doctor.context import Tolerance
from edgevision.doctor.sequence import pipeline_sequence, slow_changes


def _outputs(raw_shift: float = 0.0, box_shift: float = 0.0, found: bool = True) -> Outputs:
    raw = np.linspace(0, 1, 3549 * 85, dtype=np.float32).reshape(3549, 85) + raw_shift
    boxes = np.array([[10, 10, 110, 210]], np.float32) + box_shift
    detections = Detections(boxes, np.array([0.9], np.float32), np.array([16], np.int64), 640, 480)
    return Outputs([raw], [detections if found else Detections.empty(640, 480)])


def test_a_batched_run_that_differs_in_its_last_bits_with_the_same_detections_agrees() -> None:
    # An H200's batch of 8 against single runs: up to 0.44 apart, the same detections.
    ok, detail, diff = agree("yolox", "batch of 8", _outputs(), _outputs(raw_shift=0.44), 0.5, 0.05, 0.9)
    assert ok and abs(diff - 0.44) < 1e-5 and "every detection matched" in detail


def test_a_lost_detection_or_raw_outputs_beyond_tolerance_do_not_agree() -> None:
    ok, detail, _ = agree("yolox", "batch of 8", _outputs(), _outputs(found=False), 0.5, 0.05, 0.9)
    assert not ok and "frame 0: class 16" in detail
    ok, _, _ = agree("yolox", "batch of 8", _outputs(), _outputs(raw_shift=0.6), 0.5, 0.05, 0.9)
    assert not ok
    moved, _, _ = agree("yolox", "batch of 8", _outputs(), _outputs(box_shift=30.0), 0.5, 0.05, 0.9)
    assert not moved


def test_other_families_are_judged_by_their_detections() -> None:
    ok, detail, _ = agree("end2end", "batch of 4", _outputs(), _outputs(raw_shift=3.0), 0.5, 0.05, 0.9)
    assert ok and "the end2end family: detections decide" in detail


def test_the_sequence_puts_every_batch_size_right_after_every_other() -> None:
    sequence = pipeline_sequence([1, 2, 4, 8])
    transitions = set(itertools.pairwise(sequence))
    assert {(a, b) for a in (1, 2, 4, 8) for b in (1, 2, 4, 8) if a != b} <= transitions


def test_a_run_after_a_change_over_ten_times_the_steady_run_fails() -> None:
    steady = {1: 3.1, 8: 5.4}
    # Measured on an H200 with one session for every shape: about 1 s a run after each change.
    replanning = [(1, 3.0), (8, 1010.0), (1, 980.0), (8, 5.5)]
    assert slow_changes(steady, replanning) == [
        "batch 8 after 1: 1010.0 ms (steady 5.40 ms)",
        "batch 1 after 8: 980.0 ms (steady 3.10 ms)",
    ]
    # One session per shape: a change costs nothing; a slow run of the same size is not a change.
    assert slow_changes(steady, [(1, 3.2), (8, 5.6), (8, 70.0), (1, 3.0)]) == []


def test_the_tolerance_column_is_the_models_family_s() -> None:
    tolerance = Tolerance(0.5, 0.9)
    assert tolerance.describe("yolox") == "raw |diff| <= 0.5; detections IoU >= 0.9"
    assert tolerance.describe("end2end") == "detections IoU >= 0.9 (raw outputs reported)"
    assert "YOLOX" not in tolerance.describe("detr")
