"""Results modes that cut IoT Hub message count."""

from __future__ import annotations

from edgevision.publish.results_modes import ResultsReducer
from tests.support.messages import result


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_every_frame_sends_everything() -> None:
    reducer = ResultsReducer("every_frame", 60, 60)
    assert [m["seq"] for s in range(5) for m in reducer.offer(result(s, "person"))] == list(range(5))


def test_on_change_sends_label_set_changes_and_heartbeats() -> None:
    clock = Clock()
    reducer = ResultsReducer("on_change", heartbeat_s=10, summary_interval_s=60, clock=clock)
    sent = []
    for seq, labels in enumerate([("person",), ("person", "person"), ("person", "car"), ("car", "person"), (), ()]):
        clock.now = seq
        sent += [(m["seq"], m["trigger"]) for m in reducer.offer(result(seq, *labels))]
    # Counts do not matter, order does not matter: only the set of labels in view.
    assert sent == [(0, "first"), (2, "change"), (4, "change")]
    clock.now = 13.5  # the last message went out at 4
    assert reducer.offer(result(6)) == []
    assert [m["trigger"] for m in reducer.offer(result(7, camera="dock"))] == ["first"]  # cameras are apart
    clock.now = 14.0
    assert [m["trigger"] for m in reducer.offer(result(8))] == ["heartbeat"]


def test_summary_counts_per_label_per_interval() -> None:
    clock = Clock()
    reducer = ResultsReducer("summary", heartbeat_s=60, summary_interval_s=30, clock=clock)
    frames = [("person", "person", "car"), ("person",), (), ("dog", "person")]
    for seq, labels in enumerate(frames):
        clock.now = seq
        assert reducer.offer(result(seq, *labels)) == []
    clock.now = 30.0
    (summary,) = reducer.due()
    assert summary["type"] == "summary" and summary["camera"] == "gate" and summary["frames"] == 4
    assert summary["labels"] == {
        "car": {"detections": 1, "frames": 1, "max_per_frame": 1},
        "dog": {"detections": 1, "frames": 1, "max_per_frame": 1},
        "person": {"detections": 4, "frames": 3, "max_per_frame": 2},
    }
    assert reducer.due() == []  # a new interval has begun
    reducer.offer(result(4, "cat"))
    (last,) = reducer.flush()
    assert last["frames"] == 1 and last["labels"] == {"cat": {"detections": 1, "frames": 1, "max_per_frame": 1}}


def _counted(seq: int, crossed: int, camera: str = "gate") -> dict:
    message = result(seq, "car", camera=camera)
    message["counts"] = {"lines": {"road": {"in": {"car": crossed}, "out": {}}}, "zones": {}, "tracks": {"active": 1}}
    return message


def test_analytics_only_sends_no_result_and_each_cameras_counts_per_interval() -> None:
    clock = Clock()
    reducer = ResultsReducer("analytics_only", heartbeat_s=60, summary_interval_s=30, clock=clock)
    for seq in range(5):
        clock.now = seq
        assert reducer.offer(_counted(seq, crossed=seq)) == []
        # A camera with no zone or line sends nothing at all.
        assert reducer.offer(result(seq, "person", camera="lobby")) == []
    clock.now = 30.0
    (counts,) = reducer.due()
    assert counts["type"] == "counts" and counts["schema"] == "edgevision.counts/1" and counts["camera"] == "gate"
    assert counts["lines"]["road"]["in"] == {"car": 4} and counts["frames"] == 5
    assert reducer.due() == [] and reducer.flush() == []


def test_a_summary_carries_the_cameras_latest_counts() -> None:
    clock = Clock()
    reducer = ResultsReducer("summary", heartbeat_s=60, summary_interval_s=10, clock=clock)
    for seq in range(3):
        clock.now = seq
        reducer.offer(_counted(seq, crossed=2 * seq))
    clock.now = 10.0
    (summary,) = reducer.due()
    assert summary["counts"]["lines"]["road"]["in"] == {"car": 4}
