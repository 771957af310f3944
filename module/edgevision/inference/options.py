"""Engine settings, and the ONNX Runtime session and provider options they stand for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import onnxruntime as ort
import platformdirs

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
    # HEURISTIC: the EXHAUSTIVE default benchmarks every convolution algorithm at the first run
    # of each shape and asks for large workspaces, which fails on GPU-PV where the GPU's memory
    # is shared with the Windows host; for a small detector the heuristic choice costs little.
    cudnn_conv_algo_search: Literal["EXHAUSTIVE", "HEURISTIC", "DEFAULT"] = "HEURISTIC"
    # kSameAsRequested: the default power-of-two arena growth reserves up to twice what the
    # model needs and the arena never shrinks.
    arena_extend_strategy: Literal["kNextPowerOfTwo", "kSameAsRequested"] = "kSameAsRequested"
    gpu_mem_limit_mb: int | None = None
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
    # TensorRT optimisation profile (min, opt, max shapes as ONNX Runtime takes them), so one
    # engine serves every batch size the pipeline forms and none is built during a run.
    tensorrt_profile: tuple[str, str, str] | None = None

    @property
    def cache_dir(self) -> Path:
        """Where TensorRT keeps engines and timing caches."""
        return self.tensorrt_cache_dir or Path(platformdirs.user_cache_dir("edgevision")) / "tensorrt"


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


def tensorrt_profile(inputs: list[tuple[str, list[int]]], batch_sizes: list[int]) -> tuple[str, str, str]:
    """min/opt/max shapes covering `batch_sizes`, for each input (name, its dimensions after the batch).

    Tuned for the largest batch: under load the pipeline forms full batches.
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


def provider_options(config: EngineConfig, provider: str, cuda_graph: bool = False) -> dict[str, Any]:
    if provider == CUDA:
        options: dict[str, Any] = {
            "device_id": config.device_id,
            "cudnn_conv_algo_search": config.cudnn_conv_algo_search,
            "arena_extend_strategy": config.arena_extend_strategy,
            # Inputs are copied on the compute stream, so a bound input is never read early.
            "do_copy_in_default_stream": True,
        }
        if config.gpu_mem_limit_mb:
            options["gpu_mem_limit"] = config.gpu_mem_limit_mb * 1024 * 1024
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
        if config.tensorrt_profile is not None:
            low, opt, high = config.tensorrt_profile
            options |= {"trt_profile_min_shapes": low, "trt_profile_opt_shapes": opt, "trt_profile_max_shapes": high}
        return options
    return {}
