"""The failover state: capped exponential backoff between GPU retries, reset after a good run."""

from __future__ import annotations

from edgevision.pipeline.failover import Failover, FailoverPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_up_to_the_cap_and_resets_after_a_long_good_run() -> None:
    clock = Clock()
    state = Failover(FailoverPolicy(retry_initial_s=1, retry_max_s=4), clock)
    waits = []
    for _ in range(4):
        waits.append(state.failed("CUDA error"))
        assert state.on_fallback and not state.retry_due()
        clock.now += waits[-1]
        assert state.retry_due()
        state.restored()
    assert waits == [1, 2, 4, 4]
    assert state.to_dict()["switches"] == 4 and state.to_dict()["restores"] == 4
    # The GPU then runs as long as the cap without failing: the next failure starts over.
    clock.now += 4
    assert state.failed("again") == 1


def test_a_retry_that_cannot_load_the_gpu_waits_as_long_again() -> None:
    clock = Clock()
    state = Failover(FailoverPolicy(retry_initial_s=2, retry_max_s=60), clock)
    state.failed("lost device")
    clock.now = 2
    assert state.postpone() == 4 and state.to_dict()["retry_in_s"] == 4
    assert state.to_dict()["reason"] == "lost device"
