"""How inference is spread over threads, chosen from the provider in use."""

from __future__ import annotations

import os
from dataclasses import dataclass

from edgevision.config.model import AppConfig


@dataclass(frozen=True)
class Layout:
    workers: int
    intra_op_threads: int
    max_batch: int


# ORT's spinning threads would take cores from decoding and preprocessing, which share them.
ALLOW_SPINNING = False


def choose_layout(config: AppConfig, on_gpu: bool, cores: int | None = None) -> Layout:
    """GPU: one worker feeding batches. CPU: frame-level parallelism, one intra-op thread each.

    On a CPU every stage shares the cores: one session run per core with one thread each
    scales better than one run with many threads on a small model.
    """
    cores = cores or os.cpu_count() or 1
    inference = config.inference
    if on_gpu:
        return Layout(
            workers=inference.workers or 1,
            intra_op_threads=inference.intra_op_threads if inference.intra_op_threads is not None else 0,
            max_batch=inference.max_batch or 8,
        )
    return Layout(
        workers=inference.workers or cores,
        intra_op_threads=inference.intra_op_threads if inference.intra_op_threads is not None else 1,
        max_batch=inference.max_batch or 1,
    )
