"""The bounded per-camera frame queues."""

from __future__ import annotations

import threading

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
