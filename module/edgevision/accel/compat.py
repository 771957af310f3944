"""Whether the GPU and driver found can run the CUDA this module is built for.

onnxruntime-gpu 1.31 is built for CUDA 13: its driver must be of the R580 branch or newer
(a driver reports the newest CUDA it supports), and CUDA 13 has no code for GPUs older than
Turing (compute capability 7.5). Said plainly here, instead of a container toolkit refusal or a
provider failing with a CUDA error code.
"""

from __future__ import annotations

from collections.abc import Sequence

# What the image's CUDA needs (onnxruntime-gpu 1.31, CUDA 13).
CUDA_MAJOR = 13
MIN_COMPUTE_CAPABILITY = (7, 5)
DRIVER_ADVICE = (
    "an NVIDIA driver of the R580 branch or newer (Linux/DDA >= 580.65.06, Windows host for GPU-PV >= 580.88)"
)


def _version(text: str | None) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in (text or "").split("."))
    except ValueError:
        return None


def cuda_problems(
    cuda_driver_version: str | None, compute_capabilities: Sequence[tuple[str | None, str | None]]
) -> tuple[bool | None, list[str]]:
    """(True: it can run; False: it cannot, with why; None: not known, with why) for the driver's
    CUDA version ("12.4") and each GPU's (name, compute capability "7.5")."""
    problems: list[str] = []
    unknown: list[str] = []
    supported = _version(cuda_driver_version)
    if supported is None:
        unknown.append("the driver's CUDA version could not be read")
    elif supported[0] < CUDA_MAJOR:
        problems.append(
            f"the driver supports CUDA {cuda_driver_version} only; this module's onnxruntime-gpu needs CUDA "
            f"{CUDA_MAJOR}: install {DRIVER_ADVICE}"
        )
    for name, capability in compute_capabilities:
        parsed = _version(capability)
        if parsed is None:
            unknown.append(f"the compute capability of {name or 'a GPU'} could not be read")
        elif parsed[:2] < MIN_COMPUTE_CAPABILITY:
            low = ".".join(map(str, MIN_COMPUTE_CAPABILITY))
            problems.append(
                f"{name or 'the GPU'} has compute capability {capability}; CUDA {CUDA_MAJOR} runs on {low} "
                "(Turing) and newer only (Maxwell, Pascal and Volta are not supported)"
            )
    if problems:
        return False, problems + unknown
    if unknown:
        return None, unknown
    return True, []
