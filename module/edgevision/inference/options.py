"""Engine settings, and the ONNX Runtime session and provider options they stand for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import onnxruntime as ort
import platformdirs

from edgevision.accel.discover import paravirtualized
from edgevision.config.model import ProviderChoice
from edgevision.inference.providers import CUDA, TENSORRT


@dataclass(frozen=True)
class EngineConfig:
    provider: ProviderChoice = "auto"
    # `auto` tries TensorRT only when wanted: its first engine build takes minutes.
    use_tensorrt: bool = False
    # With a forced provider that cannot run: raise instead of falling back to the CPU.
    strict: bool = False
    intra_op_threads: int = 0  # 0: ONNX Runtime's default (one per core)
    inter_op_threads: int = 1
    # Spinning threads burn cores that decode and preprocessing need; keep it off when sharing.
    allow_spinning: bool = True
    device_id: int = 0
    # None: IO binding on GPU providers only.
    io_binding: bool | None = None
    # None: chosen by measurement (README, "GPU options"). EXHAUSTIVE, ONNX Runtime's default, was
    # the fastest on the H200 (1,639 fps against 1,555 with HEURISTIC, one input shape per run);
    # it benchmarks every convolution algorithm once per session with large workspaces, which
    # fails where GPU memory is short: on GPU-PV (shared with Windows) or under a memory limit,
    # HEURISTIC without the maximal workspace.
    cudnn_conv_algo_search: Literal["EXHAUSTIVE", "HEURISTIC", "DEFAULT"] | None = None
    # None: ONNX Runtime's default (kNextPowerOfTwo). kSameAsRequested, this module's choice until
    # 2026-12, cost a third of the throughput on the H200 (1,017 fps against 1,555).
    arena_extend_strategy: Literal["kNextPowerOfTwo", "kSameAsRequested"] | None = None
    # What all of this engine's GPU sessions may hold together (the pipeline gives each model its
    # share of inference.gpu_mem_limit_mb, which is per process); each session gets a part in
    # proportion to its batch size.
    gpu_mem_limit_mb: float | None = None
    # Whether the GPU's memory is shared with the host (GPU-PV); None: look for /dev/dxg.
    shared_gpu: bool | None = None
    tensorrt_fp16: bool = True
    # None: the user cache dir.
    tensorrt_cache_dir: Path | None = None
    # Half-precision copy of the model on the CUDA provider (TensorRT has its own fp16 switch).
    fp16: bool = False
    # CUDA graphs: capture each batch shape once, replay it after; off by default because a
    # graph that cannot be captured (nodes on the CPU, shapes that move) fails at run time.
    cuda_graph: bool = False
    # The model takes uint8 frames of any size (preprocessing in the graph): not for TensorRT.
    frames_in: bool = False
    # TensorRT: each input's name and its dimensions after the batch. Every session gets a profile
    # pinned to its own batch (one engine per input shape, built once and cached).
    tensorrt_inputs: tuple[tuple[str, tuple[int, ...]], ...] | None = None

    @property
    def cache_dir(self) -> Path:
        """Where TensorRT keeps engines and timing caches."""
        return self.tensorrt_cache_dir or Path(platformdirs.user_cache_dir("edgevision")) / "tensorrt"

    @property
    def memory_short(self) -> bool:
        """GPU memory is shared with Windows (GPU-PV) or limited by configuration."""
        shared = self.shared_gpu if self.shared_gpu is not None else paravirtualized()
        return shared or self.gpu_mem_limit_mb is not None


def padded_batch_sizes(max_batch: int) -> list[int]:
    """The few batch shapes an engine sees: powers of two up to max_batch, and max_batch.

    A GPU arena grows for every new input shape and never shrinks, and TensorRT tunes for a
    shape range, so partial batches are padded up to the next of these sizes.
    """
    sizes, size = [], 1
    while size < max_batch:
        sizes.append(size)
        size *= 2
    sizes.append(max_batch)
    return sizes


def tensorrt_profile(inputs: Sequence[tuple[str, Sequence[int]]], batch_sizes: list[int]) -> tuple[str, str, str]:
    """min/opt/max shapes covering `batch_sizes`, for each input (name, its dimensions after the batch).

    Tuned for the largest batch. An engine's sessions each run one batch size, so each gets a
    profile of its own size alone (min = opt = max).
    """
    smallest, largest = min(batch_sizes), max(batch_sizes)

    def shapes(batch: int) -> str:
        return ",".join(f"{name}:{'x'.join(str(d) for d in [batch, *dims])}" for name, dims in inputs)

    return shapes(smallest), shapes(largest), shapes(largest)


def session_options(config: EngineConfig) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = config.intra_op_threads
    options.inter_op_num_threads = config.inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    spin = "1" if config.allow_spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    return options


def memory_share(limit_mb: float | None, batch: int, planned: Sequence[int]) -> int | None:
    """The bytes of an engine's GPU memory limit one session may hold: a part in proportion to its
    batch among the batches its sessions are planned for (activations grow with the batch)."""
    if limit_mb is None:
        return None
    return int(limit_mb * 2**20 * min(batch / sum(planned), 1.0))


def provider_options(
    config: EngineConfig, provider: str, cuda_graph: bool = False, batch: int = 1, memory: int | None = None
) -> dict[str, Any]:
    """The options of one session: `batch`, the batch size it runs; `memory`, its share of the
    engine's GPU memory limit in bytes (`memory_share`)."""
    if provider == CUDA:
        short = config.memory_short
        options: dict[str, Any] = {
            "device_id": config.device_id,
            "cudnn_conv_algo_search": config.cudnn_conv_algo_search or ("HEURISTIC" if short else "EXHAUSTIVE"),
            # Inputs are copied on the compute stream, so a bound input is never read early.
            "do_copy_in_default_stream": True,
        }
        if short:
            # The largest workspace cuDNN could use is what GPU-PV cannot spare.
            options["cudnn_conv_use_max_workspace"] = "0"
        if config.arena_extend_strategy:
            options["arena_extend_strategy"] = config.arena_extend_strategy
        if memory:
            options["gpu_mem_limit"] = memory
        if cuda_graph:
            options["enable_cuda_graph"] = "1"
        return options
    if provider == TENSORRT:
        # Engines and timing caches persist, so only the first start pays for the build.
        cache = str(config.cache_dir)
        options = {
            "device_id": config.device_id,
            "trt_fp16_enable": config.tensorrt_fp16,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": cache,
        }
        if config.tensorrt_inputs is not None:
            low, opt, high = tensorrt_profile(config.tensorrt_inputs, [batch])
            options |= {"trt_profile_min_shapes": low, "trt_profile_opt_shapes": opt, "trt_profile_max_shapes": high}
        return options
    return {}
