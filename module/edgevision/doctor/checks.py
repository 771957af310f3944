"""The doctor's checks: each proves one inference path on this machine, or says why it cannot.

A check returns its detail (and figures), raises Failed with the reason, or Skipped with why it
does not apply here (no GPU, TensorRT not installed, --skip-tensorrt).
"""

from __future__ import annotations

import ctypes
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgevision.doctor.compare import Outputs, agree, max_difference, run, unmatched
from edgevision.doctor.context import Check, Context, Failed, Skipped, Tolerance
from edgevision.doctor.sequence import batch_sequence
from edgevision.inference.engine import Engine
from edgevision.inference.options import EngineConfig, padded_batch_sizes, provider_options
from edgevision.inference.providers import CPU, CUDA, TENSORRT

CUDA_NAME = "cuda"
SEQUENCE_RULE = "a run after a batch-size change: at most 10x the steady run"
# Tolerances, stated in every result (measured on the CPU: graph letterbox 0.22, fp16 0.82).
GRAPH_RAW_ATOL, GRAPH_SCORE_TOL = 0.5, 0.05
FP16_RAW_ATOL, FP16_SCORE_TOL = 1.0, 0.1
MATCH_IOU = 0.9
GRAPH_TOLERANCE = Tolerance(GRAPH_RAW_ATOL, MATCH_IOU)
# Batched against single runs on a GPU: measured on an H200 up to 0.44 (other cuDNN algorithms
# per batch size, the same detections).
BATCH_RAW_ATOL, BATCH_SCORE_TOL = 0.5, 0.05
BATCH_TOLERANCE = Tolerance(BATCH_RAW_ATOL, MATCH_IOU)


def discovery(ctx: Context) -> tuple[str, dict[str, Any]]:
    info = ctx.accelerator
    if info.mode == "none":
        raise Skipped("no GPU: " + "; ".join(info.reasons))
    if info.cuda_compatible is False:
        raise Failed("; ".join(info.cuda_problems))
    gpu = info.gpus[0] if info.gpus else None
    cc = gpu.compute_capability if gpu else None
    figures = {"driver": info.driver_version, "cuda_driver": info.cuda_driver_version, "compute_capability": cc}
    return f"{info.summary()}, CUDA {info.cuda_driver_version}, compute capability {cc}", figures


def reference(ctx: Context) -> tuple[str, dict[str, Any]]:
    ctx.reference = run(ctx.detector("cpu"), ctx.frames)
    found = sum(len(d) for d in ctx.reference.detections)
    return f"{len(ctx.frames)} frame(s), {found} detection(s): the reference for the comparisons below", {}


def _reference(ctx: Context) -> Outputs:
    if ctx.reference is None:
        raise Skipped("the CPU reference did not run")
    return ctx.reference


def io_binding(provider: str) -> Callable[[Context], tuple[str, dict[str, Any]]]:
    def check(ctx: Context) -> tuple[str, dict[str, Any]]:
        if provider != "cpu":
            ctx.need_gpu()
        plain = run(ctx.detector(provider, io_binding=False), ctx.frames)
        bound = run(ctx.detector(provider, io_binding=True), ctx.frames)
        diff = max_difference(plain, bound)
        if diff != 0.0:
            raise Failed(f"IO-bound outputs differ from a plain run by up to {diff:g}")
        return "IO-bound outputs equal a plain run's, bit for bit", {"max_abs_diff": diff}

    return check


def _batch_sizes(engine: Engine, max_batch: int) -> list[int]:
    """The padded batch sizes up to `max_batch` this engine runs (a fixed-batch export: its own)."""
    return padded_batch_sizes(max_batch) if engine.dynamic_batch else [int(engine.input_shape[0])]


def batching(provider: str) -> Callable[[Context], tuple[str, dict[str, Any]]]:
    def check(ctx: Context) -> tuple[str, dict[str, Any]]:
        detector = ctx.batched(provider)
        diffs = {}
        for size in padded_batch_sizes(ctx.max_batch):
            frames = [ctx.frames[i % len(ctx.frames)] for i in range(size)]
            batched = run(detector, frames, batch=size)
            single = run(detector, frames, batch=1)
            if provider == "cpu":
                diffs[size] = max_difference(batched, single)
                continue
            # On a GPU each batch size has its own session, and cuDNN picks its algorithms per
            # shape: outputs differ in their last bits (up to 0.44 on an H200), detections do not.
            ok, detail, diffs[size] = agree(
                ctx.model.manifest.family,
                f"batch of {size}",
                single,
                batched,
                BATCH_RAW_ATOL,
                BATCH_SCORE_TOL,
                MATCH_IOU,
            )
            if not ok:
                raise Failed(f"batched runs differ from single runs: {detail}")
        wrong = {s: d for s, d in diffs.items() if d != 0.0}
        if provider == "cpu" and wrong:
            raise Failed(f"batched outputs differ from single runs: max |diff| by batch size {wrong}")
        if provider == "cpu":
            return f"batches of {', '.join(map(str, diffs))} equal single runs, bit for bit", {"max_abs_diff": diffs}
        return (
            f"batches of {', '.join(map(str, diffs))} agree with single runs (max |diff| by size {diffs}), "
            "every detection matched",
            {"max_abs_diff": diffs},
        )

    return check


def _agree(
    ctx: Context, name: str, reference: Outputs, other: Outputs, raw_atol: float, score_tol: float
) -> tuple[str, dict]:
    ok, detail, diff = agree(ctx.model.manifest.family, name, reference, other, raw_atol, score_tol, MATCH_IOU)
    if not ok:
        raise Failed(detail)
    return detail, {"max_abs_diff": diff}


def graph_preprocessing(provider: str) -> Callable[[Context], tuple[str, dict[str, Any]]]:
    def check(ctx: Context) -> tuple[str, dict[str, Any]]:
        if provider != "cpu":
            ctx.need_gpu()
        host = run(ctx.detector(provider), ctx.frames)
        graph = run(ctx.detector(provider, in_graph=True), ctx.frames)
        return _agree(ctx, "letterbox in the graph vs on the host", host, graph, GRAPH_RAW_ATOL, GRAPH_SCORE_TOL)

    return check


def cuda_session(ctx: Context) -> tuple[str, dict[str, Any]]:
    ctx.need_gpu()
    detector = ctx.detector(CUDA_NAME)
    engine = detector.engine
    asked = engine.session.get_provider_options().get(CUDA, {})
    # What the engine asked ONNX Runtime for (search, workspace, arena: README, "GPU options").
    wanted = {
        k: v
        for k, v in provider_options(engine.config, CUDA).items()
        if k in ("cudnn_conv_algo_search", "cudnn_conv_use_max_workspace", "arena_extend_strategy")
    }
    off = {k: asked.get(k) for k, v in wanted.items() if str(asked.get(k)) != str(v)}
    if engine.provider != CUDA or engine.status.dropped:
        raise Failed(f"running on {engine.provider}: {engine.status.dropped}")
    gpu = run(detector, ctx.frames)
    missing = unmatched(_reference(ctx), gpu, MATCH_IOU, GRAPH_SCORE_TOL)
    detail = f"CUDA session created with the asked options, no fallback; CPU detections matched: {not missing}"
    if off:
        detail += f"; options not as asked: {off}"
    if missing:
        raise Failed(f"CUDA and CPU detections differ: {missing[:5]}")
    return detail, {"provider_options": asked}


def fp16(ctx: Context) -> tuple[str, dict[str, Any]]:
    ctx.need_gpu()
    full = run(ctx.detector(CUDA_NAME), ctx.frames)
    half = ctx.detector(CUDA_NAME, fp16=True)
    if half.engine.status.precision != "fp16":
        raise Failed(f"the fp16 copy is not in use: {half.engine.status.declined}")
    return _agree(ctx, "fp16 vs fp32", full, run(half, ctx.frames), FP16_RAW_ATOL, FP16_SCORE_TOL)


def _per_run_ms(engine: Engine, ctx: Context, runs: int = 20, batch: int = 1) -> float:
    runner = engine.runner(batch)
    if runner.takes_frames:
        runner.frames(ctx.model.manifest.input.height, ctx.model.manifest.input.width)
    runner.run()
    started = time.perf_counter()
    for _ in range(runs):
        runner.run()
    return (time.perf_counter() - started) * 1e3 / runs


def cuda_graph(ctx: Context) -> tuple[str, dict[str, Any]]:
    ctx.need_gpu()
    normal = ctx.detector(CUDA_NAME, io_binding=True)
    graphed = ctx.detector(CUDA_NAME, cuda_graph=True)
    if not graphed.engine.status.cuda_graph:
        raise Failed(f"CUDA graphs not in effect: {graphed.engine.status.declined.get('cuda_graph')}")
    diff = max_difference(run(normal, ctx.frames), run(graphed, ctx.frames))
    if diff != 0.0:
        raise Failed(f"graph replay differs from a normal run by up to {diff:g}")
    times = {
        "normal_ms": round(_per_run_ms(normal.engine, ctx), 3),
        "graph_ms": round(_per_run_ms(graphed.engine, ctx), 3),
    }
    return f"graph replay equals a normal run; per run {times['normal_ms']} ms -> {times['graph_ms']} ms", times


def tensorrt(ctx: Context) -> tuple[str, dict[str, Any]]:
    if ctx.skip_tensorrt:
        raise Skipped("--skip-tensorrt")
    ctx.need_gpu()
    if ctx.tensorrt_unusable:
        raise Skipped(ctx.tensorrt_unusable)
    with tempfile.TemporaryDirectory(prefix="edgevision-trt-") as cache:
        times = []
        for _ in range(2):
            started = time.perf_counter()
            config = EngineConfig(provider="tensorrt", strict=True, tensorrt_cache_dir=Path(cache))
            engine = ctx.loader.load(ctx.model, config, ctx.max_batch).engine
            engine.runner(1).run()
            times.append(round(time.perf_counter() - started, 2))
        cached = sorted(p.name for p in Path(cache).iterdir())
    if not any(name.endswith(".engine") for name in cached):
        raise Failed(f"no engine was cached (cache held {cached})")
    if times[1] >= times[0] / 2:
        raise Failed(f"the second start took {times[1]} s after a {times[0]} s build: the engine was not reused")
    return f"engine built in {times[0]} s, reused at the second start in {times[1]} s", {
        "build_s": times[0],
        "reuse_s": times[1],
    }


def _gpu_memory_used_mib() -> float | None:
    try:
        cudart = ctypes.CDLL("libcudart.so.13")
    except OSError:
        return None
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    if cudart.cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total)) != 0:
        return None
    return round((total.value - free.value) / 2**20, 1)


def gpu_memory(ctx: Context) -> tuple[str, dict[str, Any]]:
    ctx.need_gpu()
    engine = ctx.detector(CUDA_NAME, max_batch=ctx.max_batch).engine
    used = {}
    for size in _batch_sizes(engine, ctx.max_batch):
        engine.runner(size).run()
        used[size] = _gpu_memory_used_mib()
    return "device memory in use after each batch size (MiB): " + ", ".join(f"{s}: {m}" for s, m in used.items()), {
        "used_mib": used
    }


def throughput(provider: str) -> Callable[[Context], tuple[str, dict[str, Any]]]:
    def check(ctx: Context) -> tuple[str, dict[str, Any]]:
        if provider != "cpu":
            ctx.need_gpu()
        engine = ctx.detector(provider, max_batch=ctx.max_batch, io_binding=True).engine
        fps = {}
        for size in _batch_sizes(engine, ctx.max_batch):
            fps[size] = round(size * 1000.0 / _per_run_ms(engine, ctx, runs=10, batch=size), 1)
        return "frames per second by batch size: " + ", ".join(f"{s}: {f}" for s, f in fps.items()), {"fps": fps}

    return check


CHECKS = (
    Check("discovery", None, "CUDA 13 driver (R580+), compute capability >= 7.5", discovery),
    Check("reference", CPU, None, reference),
    Check("io-binding", CPU, "exact", io_binding("cpu")),
    Check("batching", CPU, "exact", batching("cpu")),
    Check("graph-preprocessing", CPU, GRAPH_TOLERANCE, graph_preprocessing("cpu")),
    Check("throughput", CPU, None, throughput("cpu")),
    Check("batch-sequence", CPU, SEQUENCE_RULE, batch_sequence("cpu")),
    Check("cuda-session", CUDA, f"CPU detections matched, IoU >= {MATCH_IOU}", cuda_session, gpu=True),
    Check("io-binding", CUDA, "exact", io_binding(CUDA_NAME), gpu=True),
    Check("batching", CUDA, BATCH_TOLERANCE, batching(CUDA_NAME), gpu=True),
    Check("batch-sequence", CUDA, SEQUENCE_RULE, batch_sequence(CUDA_NAME), gpu=True),
    Check("fp16", CUDA, Tolerance(FP16_RAW_ATOL, MATCH_IOU), fp16, gpu=True),
    Check("graph-preprocessing", CUDA, GRAPH_TOLERANCE, graph_preprocessing(CUDA_NAME), gpu=True),
    Check("cuda-graph", CUDA, "exact", cuda_graph, gpu=True),
    Check("tensorrt", TENSORRT, "second start reuses the engine", tensorrt, gpu=True),
    Check("gpu-memory", CUDA, None, gpu_memory, gpu=True),
    Check("throughput", CUDA, None, throughput(CUDA_NAME), gpu=True),
)
