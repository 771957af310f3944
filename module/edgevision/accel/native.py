"""Queries NVML and the CUDA driver API; run as a child process by :mod:`edgevision.accel.discover`.

It runs in its own process because a broken driver stack can hang or kill the process that
loads it: the parent survives either, with a timeout, and reports why. Standard library and
pynvml only, so it starts fast. Prints one JSON object on stdout.
"""

from __future__ import annotations

import ctypes
import json
import sys
from collections.abc import Callable
from typing import Any

# CUresult codes and CUdevice_attribute values from cuda.h that are used below.
_CUDA_SUCCESS = 0
_CU_ATTR_CC_MAJOR = 75
_CU_ATTR_CC_MINOR = 76


def _optional(fields: dict[str, Any], unsupported: list[str], key: str, fn: Callable[[], Any]) -> None:
    """Store fn() under key, or record key as unsupported: under GPU-PV many NVML queries fail."""
    try:
        fields[key] = fn()
    except Exception as exc:  # noqa: BLE001 - any NVML failure makes the field optional
        unsupported.append(f"{key}: {exc}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def probe_nvml() -> dict[str, Any]:
    """Ask NVML for the driver and every GPU; every field but the device count is optional."""
    result: dict[str, Any] = {"ok": False, "error": None, "gpus": [], "unsupported": []}
    try:
        import pynvml
    except ImportError as exc:
        result["error"] = f"nvidia-ml-py not installed: {exc}"
        return result
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        result["error"] = f"nvmlInit failed: {exc}"
        return result
    unsupported: list[str] = result["unsupported"]
    try:
        _optional(result, unsupported, "driver_version", lambda: _text(pynvml.nvmlSystemGetDriverVersion()))
        _optional(result, unsupported, "cuda_driver_version", pynvml.nvmlSystemGetCudaDriverVersion)
        try:
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            result["error"] = f"nvmlDeviceGetCount failed: {exc}"
            return result
        for index in range(count):
            gpu: dict[str, Any] = {"index": index}
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            except pynvml.NVMLError as exc:
                unsupported.append(f"gpu{index}: {exc}")
                continue
            gpu_unsupported: list[str] = []
            _optional(gpu, gpu_unsupported, "name", lambda h=handle: _text(pynvml.nvmlDeviceGetName(h)))
            _optional(gpu, gpu_unsupported, "uuid", lambda h=handle: _text(pynvml.nvmlDeviceGetUUID(h)))
            _optional(gpu, gpu_unsupported, "memory", lambda h=handle: _memory(pynvml.nvmlDeviceGetMemoryInfo(h)))
            _optional(
                gpu,
                gpu_unsupported,
                "compute_capability",
                lambda h=handle: "{}.{}".format(*pynvml.nvmlDeviceGetCudaComputeCapability(h)),
            )
            unsupported.extend(f"gpu{index}.{item}" for item in gpu_unsupported)
            result["gpus"].append(gpu)
        result["ok"] = True
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
    return result


def _memory(info: Any) -> dict[str, int]:
    return {"total_bytes": int(info.total), "free_bytes": int(info.free)}


class _CudaError(RuntimeError):
    pass


def probe_cuda(library: str = "libcuda.so.1", with_free_memory: bool = True) -> dict[str, Any]:
    """Ask the CUDA driver API for the driver version and devices (GPU-PV's source of memory figures)."""
    result: dict[str, Any] = {"ok": False, "error": None, "gpus": []}
    try:
        cuda = ctypes.CDLL(library)
    except OSError as exc:
        result["error"] = f"cannot load {library}: {exc}"
        return result

    def call(name: str, *args: Any) -> None:
        try:
            fn = getattr(cuda, name)
        except AttributeError as exc:
            raise _CudaError(f"{name} missing from {library}") from exc
        code = fn(*args)
        if code != _CUDA_SUCCESS:
            raise _CudaError(f"{name} returned CUresult {code}")

    try:
        call("cuInit", 0)
        version = ctypes.c_int()
        call("cuDriverGetVersion", ctypes.byref(version))
        result["cuda_driver_version"] = version.value
        count = ctypes.c_int()
        call("cuDeviceGetCount", ctypes.byref(count))
        for index in range(count.value):
            result["gpus"].append(_cuda_device(call, index, with_free_memory))
        result["ok"] = True
    except _CudaError as exc:
        result["error"] = str(exc)
    return result


def _cuda_device(call: Callable[..., None], index: int, with_free_memory: bool) -> dict[str, Any]:
    device = ctypes.c_int()
    call("cuDeviceGet", ctypes.byref(device), index)
    name = ctypes.create_string_buffer(256)
    call("cuDeviceGetName", name, 256, device)
    total = ctypes.c_size_t()
    call("cuDeviceTotalMem_v2", ctypes.byref(total), device)
    major, minor = ctypes.c_int(), ctypes.c_int()
    call("cuDeviceGetAttribute", ctypes.byref(major), _CU_ATTR_CC_MAJOR, device)
    call("cuDeviceGetAttribute", ctypes.byref(minor), _CU_ATTR_CC_MINOR, device)
    gpu: dict[str, Any] = {
        "index": index,
        "name": name.value.decode(errors="replace"),
        "memory": {"total_bytes": total.value},
        "compute_capability": f"{major.value}.{minor.value}",
    }
    if with_free_memory:
        # Free memory needs a context; the primary one is released when this process exits.
        try:
            ctx = ctypes.c_void_p()
            call("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), device)
            call("cuCtxSetCurrent", ctx)
            free, total_ctx = ctypes.c_size_t(), ctypes.c_size_t()
            call("cuMemGetInfo_v2", ctypes.byref(free), ctypes.byref(total_ctx))
            gpu["memory"]["free_bytes"] = free.value
        except _CudaError as exc:
            gpu["memory_free_error"] = str(exc)
    return gpu


def main(argv: list[str]) -> int:
    report: dict[str, Any] = {}
    if "nvml" in argv:
        report["nvml"] = probe_nvml()
    if "cuda" in argv:
        report["cuda"] = probe_cuda(with_free_memory="cuda-free" in argv)
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
