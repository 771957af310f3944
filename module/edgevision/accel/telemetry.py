"""GPU readings for metrics snapshots: utilisation, memory, temperature, power."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from edgevision.accel.discover import AcceleratorInfo

log = logging.getLogger(__name__)


class GpuTelemetry:
    """NVML in this process; every field optional, since GPU-PV answers only part of NVML."""

    def __init__(self) -> None:
        import pynvml

        self._nvml = pynvml
        pynvml.nvmlInit()
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, accelerator: AcceleratorInfo) -> GpuTelemetry | None:
        """Only where discovery's child-process probe showed that NVML answers without hanging."""
        nvml_ok = any(p.name == "nvml" and p.ok for p in accelerator.probes)
        if not accelerator.has_gpu or not nvml_ok:
            return None
        try:
            return cls()
        except Exception as exc:  # noqa: BLE001 - telemetry is optional
            log.warning("GPU telemetry unavailable: %s", exc)
            return None

    def sample(self) -> list[dict[str, Any]]:
        nvml = self._nvml
        readings = []
        with self._lock:
            if self._closed:
                return []
            for index, handle in enumerate(self._handles):
                reading: dict[str, Any] = {"index": index}
                _read(reading, "utilization_pct", lambda h=handle: nvml.nvmlDeviceGetUtilizationRates(h).gpu)
                _read(reading, "memory_used_mib", lambda h=handle: nvml.nvmlDeviceGetMemoryInfo(h).used // 2**20)
                _read(reading, "memory_total_mib", lambda h=handle: nvml.nvmlDeviceGetMemoryInfo(h).total // 2**20)
                _read(
                    reading,
                    "temperature_c",
                    lambda h=handle: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU),
                )
                _read(reading, "power_w", lambda h=handle: round(nvml.nvmlDeviceGetPowerUsage(h) / 1000.0, 1))
                readings.append(reading)
        return readings

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                try:
                    self._nvml.nvmlShutdown()
                except Exception as exc:  # noqa: BLE001 - closing; nothing to do about it
                    log.debug("nvmlShutdown: %s", exc)


def _read(reading: dict[str, Any], key: str, query: Callable[[], Any]) -> None:
    try:
        reading[key] = query()
    except Exception:  # noqa: BLE001, S110 - "not supported" under GPU-PV: leave the field out
        pass
