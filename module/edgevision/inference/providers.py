"""Which execution providers to ask ONNX Runtime for, and why any of them cannot be used.

`plan_providers` is pure: given what the engine configuration asks for and what the load check
found, it decides the providers to try and the options that cannot take effect. Creating the
session (edgevision.inference.engine) only carries the plan out.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import io
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import onnxruntime as ort

from edgevision.config.model import PROVIDER_CHOICES, ProviderChoice
from edgevision.errors import first_line

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
GPU_PROVIDERS = (TENSORRT, CUDA)
# `edgevision benchmark --providers` names.
PROVIDER_NAMES = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT}

CUDNN_LIBRARY = "libcudnn.so.9"
# The shared library ORT dlopens for each GPU provider; loading it ourselves first is how the
# reason for a silent fallback (which CUDA/cuDNN/TensorRT library is missing) is learned.
_PROVIDER_LIBRARIES = {
    CUDA: "libonnxruntime_providers_cuda.so",
    TENSORRT: "libonnxruntime_providers_tensorrt.so",
}


def requested_providers(provider: ProviderChoice, use_tensorrt: bool = False) -> list[str]:
    """The provider order a preference stands for, CPU last as the fallback."""
    order = {
        "auto": ([TENSORRT] if use_tensorrt else []) + [CUDA, CPU],
        "cuda": [CUDA, CPU],
        "tensorrt": [TENSORRT, CUDA, CPU],
        "cpu": [CPU],
    }
    if provider not in order:
        raise ValueError(f"unknown provider {provider!r}: choose one of {', '.join(PROVIDER_CHOICES)}")
    return order[provider]


@dataclass(frozen=True)
class ProviderPlan:
    """What to create the session with; every dropped provider and declined option has its reason."""

    requested: list[str]
    candidates: list[str]
    dropped: dict[str, str] = field(default_factory=dict)
    fp16: bool = False
    cuda_graph: bool = False
    declined: dict[str, str] = field(default_factory=dict)

    @property
    def gpu_possible(self) -> bool:
        return any(p in GPU_PROVIDERS for p in self.candidates)


def plan_providers(
    requested: list[str],
    load_errors: Mapping[str, str | None],
    *,
    fp16: bool = False,
    cuda_graph: bool = False,
    fp16_available: bool = True,
    frames_in: bool = False,
) -> ProviderPlan:
    """Drop providers whose libraries do not load; keep GPU-only options only where a GPU may run.

    `frames_in`: the model takes frames of any height and width (preprocessing in the graph);
    TensorRT would build a new engine for each new size, mid-run, so it is not offered.
    """
    dropped = {p: error for p in requested if (error := load_errors.get(p))}
    if frames_in and TENSORRT in requested and TENSORRT not in dropped:
        dropped[TENSORRT] = (
            "not offered for preprocessing in the graph: the model then takes frames of any height and width, "
            "and TensorRT would build an engine for each new size during the run (use preprocess: host)"
        )
    candidates = [p for p in requested if p not in dropped]
    gpu = any(p in GPU_PROVIDERS for p in candidates)
    declined: dict[str, str] = {}
    use_fp16 = fp16 and fp16_available and gpu
    if fp16 and not use_fp16:
        declined["fp16"] = "no GPU provider; the CPU runs the float32 model"
    use_graph = cuda_graph and CUDA in candidates
    if cuda_graph and not use_graph:
        declined["cuda_graph"] = "the CUDA provider is not in use"
    return ProviderPlan(requested, candidates, dropped, use_fp16, use_graph, declined)


def ort_reason(exc: BaseException) -> str:
    """The part of an ONNX Runtime error that says what happened (its messages open with
    source positions and C++ signatures)."""
    text = " ".join(str(exc).split())
    for marker in ("CUDA failure", "CUDNN failure", "CUBLAS failure", "TensorRT EP", "[TensorRT EP]"):
        start = text.find(marker)
        if start >= 0:
            return text[start:].split(" ; ")[0].strip()
    return first_line(exc)[:500]


def load_errors(providers: list[str]) -> dict[str, str | None]:
    """The load check for each provider (None: it loads)."""
    if any(p in GPU_PROVIDERS for p in providers):
        preload_nvidia_libraries()
    return {p: provider_load_error(p) for p in providers}


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
        if provider == TENSORRT and "libnv" in str(exc):
            return (
                f"TensorRT 10 is not installed ({exc}): onnxruntime-gpu {ort.__version__} needs libnvinfer.so.10 "
                "and libnvonnxparser.so.10, which the edgevision image does not include (about 2 GB more); "
                "the CUDA provider runs instead"
            )
        return f"its libraries do not load: {exc}"
    if provider == CUDA:
        # The CUDA provider no longer links cuDNN: it loads it at the first convolution, so a
        # missing cuDNN would pass the load above and fail in the middle of the first run.
        try:
            ctypes.CDLL(CUDNN_LIBRARY)
        except OSError as exc:
            return f"cuDNN 9 does not load ({exc}); the CUDA provider needs it for the first convolution"
    return None


def gpu_may_run(
    provider: ProviderChoice, use_tensorrt: bool, check: Callable[[str], str | None] = provider_load_error
) -> bool:
    """Whether any GPU provider this preference asks for loads here (the layout follows it)."""
    return any(p in GPU_PROVIDERS and check(p) is None for p in requested_providers(provider, use_tensorrt))


def preload_nvidia_libraries() -> None:
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
