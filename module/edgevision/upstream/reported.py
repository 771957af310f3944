"""What the module twin's reported properties say (objects only: twins hold no arrays)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgevision import __version__
from edgevision.accel.discover import AcceleratorInfo


def reported_properties(
    *,
    status: Mapping[str, Any],
    accelerator: AcceleratorInfo | None,
    mode: str | None,
    config_status: Mapping[str, Any],
    results_mode: str,
    outbox: Mapping[str, int],
) -> dict[str, Any]:
    provider = status.get("provider") or {}
    accel = accelerator
    gpu = accel.gpus[0] if accel and accel.gpus else None
    return {
        "module": {"version": __version__, "started_at": status.get("started_at"), "mode": mode},
        "accelerator": {
            "mode": accel.mode if accel else None,
            "gpu": gpu.name if gpu else None,
            "memory_total_mib": gpu.memory_total_mib if gpu else None,
            "driver_version": accel.driver_version if accel else None,
            "cuda_driver_version": accel.cuda_driver_version if accel else None,
            "reasons": "; ".join(accel.reasons) if accel and accel.reasons else None,
        },
        "inference": {
            "model": status.get("model"),
            "provider": provider.get("provider"),
            "requested": ",".join(provider.get("requested", [])),
            "dropped": dict(provider.get("dropped", {})) or None,
        },
        "cameras": {cid: {"state": c["state"], "last_error": c["last_error"]} for cid, c in status["cameras"].items()},
        "config": dict(config_status),
        "upstream": {"results_mode": results_mode, **outbox},
    }
