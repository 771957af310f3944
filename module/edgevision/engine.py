"""ONNX Runtime session with a verified execution provider and IO-bound runners."""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import io
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort
import platformdirs

log = logging.getLogger(__name__)

ProviderChoice = Literal["auto", "cpu", "cuda", "tensorrt"]
PROVIDER_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt")

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
GPU_PROVIDERS = (TENSORRT, CUDA)

# The shared library ORT dlopens for each GPU provider; loading it ourselves first is how the
# reason for a silent fallback (which CUDA/cuDNN/TensorRT library is missing) is learned.
_PROVIDER_LIBRARIES = {
    CUDA: "libonnxruntime_providers_cuda.so",
    TENSORRT: "libonnxruntime_providers_tensorrt.so",
}


class EngineError(RuntimeError):
    """The model cannot be loaded or run."""


class ProviderUnavailableError(EngineError):
    """A provider was required (strict mode) but ONNX Runtime could not use it."""


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
    tensorrt_cache_dir: Path | None = None


@dataclass
class EngineStatus:
    requested: list[str]
    in_use: list[str]
    provider: str
    dropped: dict[str, str] = field(default_factory=dict)
    io_binding: bool = False

    @property
    def fell_back(self) -> bool:
        return bool(self.dropped)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def requested_providers(config: EngineConfig) -> list[str]:
    """The provider order a preference stands for, CPU last as the fallback."""
    order = {
        "auto": ([TENSORRT] if config.use_tensorrt else []) + [CUDA, CPU],
        "cuda": [CUDA, CPU],
        "tensorrt": [TENSORRT, CUDA, CPU],
        "cpu": [CPU],
    }
    if config.provider not in order:
        raise ValueError(f"unknown provider {config.provider!r}: choose one of {', '.join(PROVIDER_CHOICES)}")
    return order[config.provider]


def provider_load_error(provider: str) -> str | None:
    """Why ONNX Runtime cannot load a GPU provider here, or None if it can."""
    if provider == CPU:
        return None
    if provider not in ort.get_available_providers():
        return f"not in this onnxruntime build ({ort.__version__}); install onnxruntime-gpu"
    capi = Path(ort.__file__).parent / "capi"
    try:
        ctypes.CDLL(str(capi / "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(capi / _PROVIDER_LIBRARIES[provider]))
    except OSError as exc:
        return f"its libraries do not load: {exc}"
    return None


def _preload_nvidia_libraries() -> None:
    """Load CUDA/cuDNN from NVIDIA's pip wheels when present; ORT does not search there itself."""
    if importlib.util.find_spec("nvidia") is None or not hasattr(ort, "preload_dlls"):
        return
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # preload_dlls reports with print()
        try:
            ort.preload_dlls()
        except Exception as exc:  # noqa: BLE001 - a failed preload shows up as a dropped provider
            log.debug("preload_dlls failed: %s", exc)
    if printed.getvalue().strip():
        log.info("onnxruntime.preload_dlls: %s", printed.getvalue().strip())


class Engine:
    """One ONNX Runtime session; `run` is thread-safe, each `runner` belongs to one thread."""

    def __init__(self, model: Path | bytes, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        requested = requested_providers(self.config)
        dropped: dict[str, str] = {}
        if any(p in GPU_PROVIDERS for p in requested):
            _preload_nvidia_libraries()
        candidates = []
        for provider in requested:
            error = provider_load_error(provider)
            if error:
                dropped[provider] = error
            else:
                candidates.append(provider)

        self.session = self._create_session(model, candidates, dropped)
        in_use = self.session.get_providers()
        for provider in candidates:
            if provider not in in_use and provider not in dropped:
                # ORT logs the cause on its own stderr logger only; say at least that it happened.
                dropped[provider] = "ONNX Runtime did not enable it when creating the session (see its log)"
        provider = in_use[0]
        self.status = EngineStatus(
            requested=requested,
            in_use=in_use,
            provider=provider,
            dropped={p: r for p, r in dropped.items() if requested.index(p) < requested.index(provider)},
            io_binding=self.config.io_binding if self.config.io_binding is not None else provider in GPU_PROVIDERS,
        )
        for name, reason in self.status.dropped.items():
            log.warning("%s not used, running on %s: %s", name, provider, reason)
        forced = {"cuda": CUDA, "tensorrt": TENSORRT}.get(self.config.provider)
        if self.config.strict and forced and provider != forced:
            raise ProviderUnavailableError(f"{forced} required but unavailable: {self.status.dropped.get(forced)}")

        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise EngineError(f"model has {len(inputs)} inputs; one image input is expected")
        self.input_name: str = inputs[0].name
        self.input_shape: list[int | str | None] = list(inputs[0].shape)
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]
        self.output_shapes: list[list[int | str | None]] = [list(o.shape) for o in self.session.get_outputs()]

    @property
    def provider(self) -> str:
        return self.status.provider

    @property
    def on_gpu(self) -> bool:
        return self.status.provider in GPU_PROVIDERS

    @property
    def dynamic_batch(self) -> bool:
        return not isinstance(self.input_shape[0], int)

    def _session_options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.config.intra_op_threads
        options.inter_op_num_threads = self.config.inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        spin = "1" if self.config.allow_spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        return options

    def _provider_options(self, provider: str) -> dict[str, Any]:
        cfg = self.config
        if provider == CUDA:
            options: dict[str, Any] = {
                "device_id": cfg.device_id,
                "cudnn_conv_algo_search": cfg.cudnn_conv_algo_search,
                "arena_extend_strategy": cfg.arena_extend_strategy,
                # Inputs are copied on the compute stream, so a bound input is never read early.
                "do_copy_in_default_stream": True,
            }
            if cfg.gpu_mem_limit_mb:
                options["gpu_mem_limit"] = cfg.gpu_mem_limit_mb * 1024 * 1024
            return options
        if provider == TENSORRT:
            # Engines and timing caches persist, so only the first start pays for the build.
            default = Path(platformdirs.user_cache_dir("edgevision")) / "tensorrt"
            cache = str(cfg.tensorrt_cache_dir or Path(os.environ.get("EDGEVISION_TRT_CACHE", default)))
            return {
                "device_id": cfg.device_id,
                "trt_fp16_enable": cfg.tensorrt_fp16,
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": cache,
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": cache,
            }
        return {}

    def _create_session(self, model: Path | bytes, providers: list[str], dropped: dict[str, str]) -> ort.InferenceSession:
        source = str(model) if isinstance(model, Path) else model
        while True:
            try:
                return ort.InferenceSession(
                    source,
                    sess_options=self._session_options(),
                    providers=[(p, self._provider_options(p)) for p in providers],
                )
            except Exception as exc:  # noqa: BLE001 - ORT raises bare RuntimeError subclasses
                gpu = [p for p in providers if p in GPU_PROVIDERS]
                if not gpu:
                    name = model if isinstance(model, Path) else "from memory"
                    raise EngineError(f"cannot load model {name}: {_first_line(exc)}") from exc
                # A GPU provider that loads but fails at session creation (no device, out of
                # memory): drop it and retry, so the fallback is reported rather than fatal.
                dropped[gpu[0]] = f"session creation failed: {_first_line(exc)}"
                providers = [p for p in providers if p != gpu[0]]

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run one batch; allocates its outputs (use a runner on the hot path)."""
        return self.session.run(self.output_names, {self.input_name: batch})

    def runner(self, batch_size: int) -> BoundRunner:
        """A runner with preallocated buffers for one batch size; not shared between threads."""
        return BoundRunner(self, batch_size)


class BoundRunner:
    """Runs fixed-size batches through preallocated input and output buffers.

    Fill `input` in place, then call `run()`. The returned arrays are overwritten by the next run.
    """

    def __init__(self, engine: Engine, batch_size: int) -> None:
        if not engine.dynamic_batch and engine.input_shape[0] != batch_size:
            raise EngineError(f"model has a fixed batch of {engine.input_shape[0]}, not {batch_size}")
        shape = [batch_size] + [_static_dim(d, "input") for d in engine.input_shape[1:]]
        self.batch_size = batch_size
        self.input = np.zeros(shape, dtype=np.float32)
        self._engine = engine
        self._bound = engine.status.io_binding
        if not self._bound:
            self._feed = {engine.input_name: self.input}
            return
        self._binding = engine.session.io_binding()
        if engine.on_gpu:
            device = ("cuda", engine.config.device_id)
            self._device_input = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, *device)
            self._binding.bind_ortvalue_input(engine.input_name, self._device_input)
        else:
            # On the CPU the session reads the host buffer directly: no copy at all.
            self._device_input = None
            self._binding.bind_cpu_input(engine.input_name, self.input)
        self.outputs: list[np.ndarray] = []
        for name, dims in zip(engine.output_names, engine.output_shapes):
            out = np.empty([batch_size] + [_static_dim(d, name) for d in dims[1:]], dtype=np.float32)
            self.outputs.append(out)
            # Outputs land in host buffers allocated once; on a GPU, ORT copies into them.
            self._binding.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(out))

    def run(self) -> list[np.ndarray]:
        if not self._bound:
            return self._engine.session.run(self._engine.output_names, self._feed)
        if self._device_input is not None:
            self._device_input.update_inplace(self.input)
        self._engine.session.run_with_iobinding(self._binding)
        return self.outputs


def _static_dim(dim: Any, what: str) -> int:
    if not isinstance(dim, int):
        raise EngineError(f"{what} has a non-static dimension {dim!r}; only the batch may vary")
    return dim


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
