"""Running the doctor's checks, each within its time limit, and the table or JSON they make."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgevision.accel.discover import AcceleratorInfo
from edgevision.detector.loader import DetectorLoader
from edgevision.doctor.checks import CHECKS
from edgevision.doctor.compare import generated_frame
from edgevision.doctor.context import Check, Context, Failed, Skipped, Tolerance
from edgevision.errors import first_line
from edgevision.inference.providers import CUDA, TENSORRT, load_errors
from edgevision.models.store import ResolvedModel


@dataclass
class Result:
    name: str
    provider: str | None
    status: str  # pass | fail | skip
    detail: str
    tolerance: str | None
    seconds: float
    time_limit_s: float
    figures: dict[str, Any] = field(default_factory=dict)


def _within(check: Check, ctx: Context, limit_s: float) -> tuple[str, str, dict[str, Any]]:
    """Run one check on its own thread; a check that does not finish in time fails (a hung
    driver call cannot be interrupted: it is left behind, and the rest carry on)."""
    outcome: list[tuple[str, str, dict[str, Any]]] = []

    def target() -> None:
        try:
            detail, figures = check.run(ctx)
            outcome.append(("pass", detail, figures))
        except Skipped as exc:
            outcome.append(("skip", str(exc), {}))
        except Failed as exc:
            outcome.append(("fail", str(exc), {}))
        except Exception as exc:  # noqa: BLE001 - any other error is this check's failure, with its reason
            outcome.append(("fail", f"{type(exc).__name__}: {first_line(exc)}", {}))

    worker = threading.Thread(target=target, name=f"doctor-{check.name}", daemon=True)
    worker.start()
    worker.join(limit_s)
    if not outcome:
        return "fail", f"did not finish within {limit_s:g} s", {}
    return outcome[0]


def run_checks(
    model: ResolvedModel,
    accelerator: AcceleratorInfo,
    images: Sequence[np.ndarray] = (),
    *,
    max_batch: int = 8,
    skip_tensorrt: bool = False,
    limit_s: float = 120.0,
    tensorrt_limit_s: float = 900.0,
    loader: DetectorLoader | None = None,
) -> list[Result]:
    errors = load_errors([CUDA, TENSORRT])
    if accelerator.mode == "none":
        cuda_unusable: str | None = "no GPU: " + "; ".join(accelerator.reasons)
    elif errors[CUDA]:
        cuda_unusable = f"the CUDA provider cannot be used: {errors[CUDA]}"
    else:
        cuda_unusable = None
    ctx = Context(
        model=model,
        frames=[generated_frame(), *images],
        max_batch=max_batch,
        accelerator=accelerator,
        cuda_unusable=cuda_unusable,
        tensorrt_unusable=errors[TENSORRT],
        skip_tensorrt=skip_tensorrt,
        loader=loader or DetectorLoader(),
    )
    results = []
    for check in CHECKS:
        limit = tensorrt_limit_s if check.provider == TENSORRT else limit_s
        started = time.perf_counter()
        status, detail, figures = _within(check, ctx, limit)
        results.append(
            Result(
                check.name,
                check.provider,
                status,
                detail,
                check.tolerance.describe(model.manifest.family)
                if isinstance(check.tolerance, Tolerance)
                else check.tolerance,
                round(time.perf_counter() - started, 2),
                limit,
                figures,
            )
        )
    return results


def as_json(results: Sequence[Result], model: ResolvedModel, accelerator: AcceleratorInfo) -> dict[str, Any]:
    return {
        "model": model.name,
        "accelerator": accelerator.summary(),
        "passed": all(r.status != "fail" for r in results),
        "checks": [asdict(r) for r in results],
    }


def as_table(results: Sequence[Result]) -> str:
    rows = [("check", "provider", "result", "time / limit", "tolerance", "detail")]
    for r in results:
        provider = (r.provider or "-").replace("ExecutionProvider", "")
        rows.append(
            (r.name, provider, r.status.upper(), f"{r.seconds:g}/{r.time_limit_s:g} s", r.tolerance or "-", r.detail)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)) + "  " + row[5]
        for row in rows
    ]
    failed = sum(r.status == "fail" for r in results)
    skipped = sum(r.status == "skip" for r in results)
    lines.append(f"{len(results) - failed - skipped} passed, {failed} failed, {skipped} skipped")
    return "\n".join(lines)
