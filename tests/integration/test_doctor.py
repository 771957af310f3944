"""`edgevision doctor` on this machine: the CPU paths proved, every GPU path skipped with its reason."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.processes import run_cli


def test_doctor_checks_the_cpu_paths_and_says_why_the_gpu_ones_are_skipped(
    model_path: Path, images: dict[str, Path]
) -> None:
    proc = run_cli(
        "doctor", "--json", "--images", *map(str, images.values()), env={"EDGEVISION_MODEL_DIR": str(model_path.parent)}
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    document = json.loads(proc.stdout)
    checks = {(c["name"], c["provider"]): c for c in document["checks"]}
    assert document["passed"] is True
    for name in ("reference", "io-binding", "batching", "graph-preprocessing", "throughput", "batch-sequence"):
        assert checks[(name, "CPUExecutionProvider")]["status"] == "pass", checks[(name, "CPUExecutionProvider")]
    assert "every detection matched" in checks[("graph-preprocessing", "CPUExecutionProvider")]["detail"]
    gpu = [c for c in document["checks"] if c["provider"] not in (None, "CPUExecutionProvider")]
    # The pipeline's order of batch sizes, timed: the check that catches a session re-planning.
    sequence = checks[("batch-sequence", "CPUExecutionProvider")]
    assert sequence["figures"]["worst_vs_steady"] < 10 and set(sequence["figures"]["steady_ms"]) == {"1", "2", "4", "8"}
    assert len(gpu) == 10 and all(c["status"] == "skip" and c["detail"] for c in gpu)
    assert all(c["tolerance"] for c in document["checks"] if c["name"] in ("io-binding", "batching", "fp16"))
    table = run_cli("doctor", "--skip-tensorrt", env={"EDGEVISION_MODEL_DIR": str(model_path.parent)})
    assert table.returncode == 0 and "passed" in table.stdout.splitlines()[-1]
