"""The bounded per-camera frame queues."""

from __future__ import annotations

import threading

import pytest

from edgevision.sources.frames import Frame, FrameQueue


def _frame(seq: int) -> Frame:
    return Frame("cam", seq, 0.0, 0.0, None)


def test_live_queue_drops_the_oldest_and_counts() -> None:
    dropped: list[int] = []
    queue = FrameQueue(2, drop_oldest=True, ready=threading.Condition(), on_drop=lambda f: dropped.append(f.seq))
    stop = threading.Event()
    for seq in range(5):
        assert queue.put(_frame(seq), stop)
    assert dropped == [0, 1, 2]
    assert [queue.pop().seq, queue.pop().seq] == [3, 4] and queue.pop() is None


def test_every_frame_queue_blocks_until_room_or_stop() -> None:
    dropped: list[int] = []
    queue = FrameQueue(1, drop_oldest=False, ready=threading.Condition(), on_drop=lambda f: dropped.append(f.seq))
    stop = threading.Event()
    assert queue.put(_frame(0), stop)
    result: list[bool] = []
    writer = threading.Thread(target=lambda: result.append(queue.put(_frame(1), stop)))
    writer.start()
    writer.join(0.2)
    assert writer.is_alive()  # blocked: nothing is dropped
    assert queue.pop().seq == 0
    writer.join(2)
    assert result == [True] and dropped == []
    blocked = threading.Thread(target=lambda: result.append(queue.put(_frame(2), stop)))
    blocked.start()
    stop.set()
    blocked.join(2)
    assert result == [True, False] and dropped == [2]


@pytest.mark.parametrize("drop_oldest", [True, False])
def test_a_frame_put_after_the_stop_is_dropped_not_left_behind_a_drained_queue(drop_oldest: bool) -> None:
    """The shutdown sets the sources' stop, then drains their queues. A reader that was between
    its last check and its put then must not leave a frame in a drained queue: counted as
    captured, never inferred nor dropped."""
    dropped: list[int] = []
    queue = FrameQueue(2, drop_oldest=drop_oldest, ready=threading.Condition(), on_drop=lambda f: dropped.append(f.seq))
    stop = threading.Event()
    assert queue.put(_frame(0), stop)
    stop.set()
    assert [f.seq for f in queue.drain()] == [0]
    assert not queue.put(_frame(1), stop)
    assert dropped == [1] and len(queue) == 0
