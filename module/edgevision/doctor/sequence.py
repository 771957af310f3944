"""The check that would have caught a GPU session re-planning at every shape change: the batch
sizes in the order a pipeline under changing load forms them, each run timed.

On an H200 a CUDA session fed batch sizes mixed among 1, 2, 4 and 8 took about 1 s a run (up to
3.3 s) against 1-5 ms for the same size every run; every check of single shapes passed.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

from edgevision.doctor.context import Context, Failed, Skipped
from edgevision.inference.options import padded_batch_sizes

# A run right after a change of batch size may take this many times its size's steady run.
SLOW_FACTOR = 10.0
STEADY_RUNS = 5


def pipeline_sequence(sizes: list[int]) -> list[int]:
    """Batch sizes as a pipeline under changing load forms them (partial batches padded to these
    sizes): every size right after every other, each ordered pair once."""
    sequence: list[int] = []
    for first in sizes:
        for second in sizes:
            if first != second:
                sequence += [first, second]
    return sequence


def slow_changes(steady_ms: dict[int, float], runs: list[tuple[int, float]], factor: float = SLOW_FACTOR) -> list[str]:
    """The runs right after a change of batch size that took over `factor` times their size's
    steady run, each said in a few words."""
    slow = []
    for (before, _), (size, ms) in itertools.pairwise(runs):
        if size != before and ms > factor * steady_ms[size]:
            slow.append(f"batch {size} after {before}: {ms:.1f} ms (steady {steady_ms[size]:.2f} ms)")
    return slow


def _timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1e3


def batch_sequence(provider: str) -> Callable[[Context], tuple[str, dict[str, Any]]]:
    def check(ctx: Context) -> tuple[str, dict[str, Any]]:
        detector = ctx.batched(provider)
        engine = detector.engine
        if ctx.max_batch < 2:
            raise Skipped("--max-batch 1: no change of shape to time")
        sizes = padded_batch_sizes(ctx.max_batch)
        prepare = detector.preprocessor()
        runners = {}
        for size in sizes:
            runners[size] = runner = engine.runner(size)
            prepare.prepare([ctx.frames[i % len(ctx.frames)] for i in range(size)], runner)
        steady = {}
        for size, runner in runners.items():
            runner.run()  # the first run of a shape: a new session warms up, TensorRT builds
            steady[size] = statistics.median(_timed(runner.run) for _ in range(STEADY_RUNS))
        runs = [(size, _timed(runners[size].run)) for size in pipeline_sequence(sizes)]
        slow = slow_changes(steady, runs)
        worst = max(ms / steady[size] for size, ms in runs)
        figures = {
            "steady_ms": {s: round(ms, 3) for s, ms in steady.items()},
            "worst_vs_steady": round(worst, 2),
            "sessions": engine.status.sessions,
            "one_shape_per_session": engine.status.one_shape_per_session,
        }
        name = "CPU" if provider == "cpu" else engine.provider.replace("ExecutionProvider", "")
        if slow:
            raise Failed(
                f"{name}: {len(slow)} of {len(runs)} runs after a batch-size change took over {SLOW_FACTOR:g}x "
                f"the steady run: {'; '.join(slow[:4])}"
            )
        return (
            f"{len(runs)} runs in the pipeline's order of batch sizes {sizes}: the slowest after a change "
            f"{worst:.1f}x its steady run ({engine.status.sessions} session(s))",
            figures,
        )

    return check
