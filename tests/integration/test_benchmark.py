"""`edgevision benchmark --quick` end to end: JSON, Markdown table and PNG chart."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from tests.support.processes import run_cli


@pytest.mark.slow
def test_quick_benchmark_writes_json_table_and_chart(tmp_path: Path, model_path: Path, assets: Path) -> None:
    proc = run_cli(
        "benchmark",
        "--quick",
        "--out",
        str(tmp_path),
        env={"EDGEVISION_MODEL_DIR": str(model_path.parent), "EDGEVISION_ASSETS": str(assets)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "benchmark-cpu.json").read_text())
    cpu = report["providers"]["cpu"]
    assert cpu["available"] and "errors" not in cpu
    assert [r["batch"] for r in cpu["limit"]] == [1, 2] and all(r["fps"] > 0 for r in cpu["limit"])
    assert cpu["naive"]["fps"] > 0 and cpu["naive"]["latency_ms"]["p95"] is not None
    # Every family's decoder, on one core at a 640 input, 100 detections kept (timing: benchmarks/).
    decoders = report["decoders_ms_per_frame"]
    assert len(decoders) == 7 and all(d["kept"] == 100 and d["ms_per_frame"] > 0 for d in decoders.values())
    assert "Decoding, per family" in (tmp_path / "benchmark-cpu.md").read_text()
    # Tracking's cost at 50 detections, and the tracker on the assets' clips (figures, not verdicts).
    tracking = report["tracking"]
    assert tracking["cost_at_50_detections"]["1 zone + 1 line"]["ms_per_frame"] > 0
    clips = {c["clip"]: c for c in tracking["clips"]}
    assert set(clips) == {"pedestrians-720p.avi", "traffic-360p.mp4"}
    assert all(c["frames"] == 40 and c["ids_issued"] > 0 for c in clips.values())
    assert "Tracking, zones and lines" in (tmp_path / "benchmark-cpu.md").read_text()
    runs = {(r["source"], r["cameras"], r["preprocess"]) for r in cpu["edgevision"]}
    assert runs == {
        ("video", 1, "host"),
        ("video", 4, "host"),
        ("synthetic", 1, "host"),
        ("synthetic", 4, "host"),
        ("video", 1, "graph"),
        ("synthetic", 1, "graph"),
    }
    # Both preprocessing paths have their stage costs measured; in the graph the host only copies.
    stages = cpu["stage_core_ms"]
    assert set(stages) == {"host", "graph"} and all(
        set(s) == {"decode", "preprocess", "inference", "postprocess", "publish"} for s in stages.values()
    )
    assert stages["graph"]["preprocess"] < stages["host"]["preprocess"]
    for run in cpu["edgevision"]:
        assert run["fps"] > 0 and run["vs_limit"] > 0 and run["vs_naive"] > 0 and 0 < run["cpu_utilisation"] <= 1.2
        assert set(run["latency_ms"]) == {"p50", "p95", "p99"}
        # No GPU here: its utilisation is reported as unknown, not as zero.
        assert run["gpu_utilisation_pct"] is None
        expected = {"cpu_stages", "inference"} | ({"decode"} if run["source"] == "video" else set())
        assert set(run["ceilings_fps"]) == expected
        assert run["binding"] == min(run["ceilings_fps"], key=run["ceilings_fps"].get)
        assert run["vs_binding"] == pytest.approx(run["fps"] / run["ceilings_fps"][run["binding"]], abs=1e-3)
        assert run["target"] == 0.9 and run["meets_target"] == (run["vs_binding"] >= 0.9)
    # Providers that cannot run here are listed with the reason, not left out.
    assert report["providers"]["cuda"] == {"available": False, "reason": report["providers"]["cuda"]["reason"]}
    assert report["providers"]["cuda"]["reason"]
    table = (tmp_path / "benchmark-cpu.md").read_text()
    assert "| edgevision, video x4, preprocess host |" in table and "| limit, batch 2 |" in table
    assert "| edgevision, synthetic x1, preprocess graph |" in table and "binding ceiling" in table
    chart = cv2.imread(str(tmp_path / "benchmark-cpu.png"))
    assert chart is not None and chart.shape[0] >= 400 and chart.shape[1] >= 600


@pytest.mark.slow
def test_short_soak_reports_slopes_and_no_thread_or_fd_growth(tmp_path: Path, model_path: Path, assets: Path) -> None:
    proc = run_cli(
        "benchmark",
        "--soak",
        "0.3",
        "--out",
        str(tmp_path),
        env={"EDGEVISION_MODEL_DIR": str(model_path.parent), "EDGEVISION_ASSETS": str(assets)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "soak-cpu.json").read_text())
    assert report["cameras"] == 2 and report["results"] > 100
    assert set(report["slopes_per_hour"]) == {"rss_mib", "threads", "fds", "fps"}  # no GPU memory here
    assert len(report["samples"]) >= 3 and all(s["gpu_memory_mib"] is None for s in report["samples"])
    # Running at full speed adds no threads or descriptors as it goes.
    assert report["threads"]["last"] == report["threads"]["first"]
    assert abs(report["fds"]["last"] - report["fds"]["first"]) <= 2
    assert report["fps"]["min"] > 0
    assert "| rss_mib |" in (tmp_path / "soak-cpu.md").read_text()
