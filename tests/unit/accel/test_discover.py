"""Accelerator discovery against fake device roots and fake driver libraries (real dlopen)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgevision.accel.discover import ProbeTargets, discover
from tests.support.processes import run_cli


def _gpu_nodes_here() -> bool:
    """Whether this machine has GPU device nodes (the suite also runs on GPU machines)."""
    return Path("/dev/dxg").exists() or any(Path("/dev").glob("nvidia[0-9]*"))


def _root(tmp_path: Path, *nodes: str) -> Path:
    root = tmp_path / "dev"
    root.mkdir()
    for node in nodes:
        (root / node).touch()
    return root


def _targets(
    root: Path, *, wsl: tuple[Path, ...] = (), libs: tuple[Path, ...] = (), timeout_s: float = 10
) -> ProbeTargets:
    return ProbeTargets(dev_root=root, wsl_lib_dirs=wsl, library_dirs=libs, timeout_s=timeout_s)


def test_none_without_device_nodes_or_libraries(tmp_path: Path) -> None:
    info = discover(_targets(_root(tmp_path)))
    assert info.mode == "none"
    assert info.gpus == []
    probes = {p.name: p for p in info.probes}
    assert not probes["dev-dxg"].ok and not probes["dev-nvidia"].ok and not probes["libcuda"].ok
    assert "NVML" in probes["nvml"].detail and not probes["nvml"].ok
    assert any("no GPU device nodes" in r for r in info.reasons)


def test_real_machine_is_described_with_reasons() -> None:
    info = discover()
    if not _gpu_nodes_here():
        assert info.mode == "none"
    if info.mode == "none":
        assert info.reasons and all(r for r in info.reasons)
        assert info.summary().startswith("no GPU:")
    else:
        assert info.gpus and not info.summary().startswith("no GPU:")


def test_dda_with_working_nvml(tmp_path: Path, build_fake) -> None:
    nvml = build_fake("fake_nvml.c", "libnvidia-ml.so.1", "OK")
    info = discover(_targets(_root(tmp_path, "nvidia0", "nvidiactl"), libs=(nvml,)))
    assert info.mode == "dda"
    assert info.driver_version == "550.54.15"
    assert info.cuda_driver_version == "12.4"
    assert info.device_nodes == [str(tmp_path / "dev" / "nvidia0")]
    (gpu,) = info.gpus
    assert gpu.name == "Tesla T4"
    assert gpu.uuid == "GPU-8a1b2c3d-0000-1111-2222-333344445555"
    assert (gpu.memory_total_mib, gpu.memory_free_mib) == (16384, 15360)
    assert gpu.compute_capability == "7.5"
    assert gpu.source == "nvml"
    assert info.reasons == []
    assert info.summary() == "dda: Tesla T4, 16384 MiB, driver 550.54.15"
    assert json.loads(json.dumps(info.to_dict()))["gpus"][0]["uuid"] == gpu.uuid


def test_gpu_pv_reports_partial_nvml_and_fills_memory_from_cuda(tmp_path: Path, build_fake) -> None:
    # Under GPU-PV both libraries come from the host's /usr/lib/wsl/lib mount.
    wsl = tmp_path / "wsl-lib"
    wsl.mkdir()
    for lib_dir, name in (
        (build_fake("fake_nvml.c", "libnvidia-ml.so.1", "PARTIAL"), "libnvidia-ml.so.1"),
        (build_fake("fake_cuda.c", "libcuda.so.1"), "libcuda.so.1"),
    ):
        (wsl / name).symlink_to(lib_dir / name)
    info = discover(_targets(_root(tmp_path, "dxg"), wsl=(wsl,)))
    assert info.mode == "gpu-pv"
    assert info.cuda_library == str(wsl / "libcuda.so.1")
    assert info.driver_version == "550.54.15"
    (gpu,) = info.gpus
    assert gpu.name == "NVIDIA GeForce RTX 4070"
    assert gpu.uuid is None
    assert (gpu.memory_total_mib, gpu.memory_free_mib) == (12288, 10240)
    assert gpu.compute_capability == "8.9"
    assert gpu.source == "nvml+cuda"
    assert any(u.startswith("gpu0.memory") for u in info.nvml_unsupported)
    assert any(u.startswith("gpu0.uuid") for u in info.nvml_unsupported)


def test_gpu_pv_wins_over_nvidia_nodes(tmp_path: Path, build_fake) -> None:
    nvml = build_fake("fake_nvml.c", "libnvidia-ml.so.1", "OK")
    cuda = build_fake("fake_cuda.c", "libcuda.so.1")
    info = discover(_targets(_root(tmp_path, "dxg", "nvidia0"), libs=(nvml, cuda)))
    assert info.mode == "gpu-pv"


def test_dxg_without_wsl_library_is_none_with_mount_advice(tmp_path: Path) -> None:
    info = discover(_targets(_root(tmp_path, "dxg")))
    assert info.mode == "none"
    assert any("/usr/lib/wsl" in r and "LD_LIBRARY_PATH" in r for r in info.reasons)


@pytest.mark.parametrize("mode, text", [("MISMATCH", "version mismatch"), ("NOPERM", "Insufficient Permissions")])
def test_nvml_failures_are_reported(tmp_path: Path, build_fake, mode: str, text: str) -> None:
    nvml = build_fake("fake_nvml.c", "libnvidia-ml.so.1", mode)
    info = discover(_targets(_root(tmp_path, "nvidia0"), libs=(nvml,)))
    assert info.mode == "none"
    assert any("NVML failed" in r and text in r for r in info.reasons), info.reasons


def test_hanging_driver_times_out(tmp_path: Path, build_fake) -> None:
    nvml = build_fake("fake_nvml.c", "libnvidia-ml.so.1", "HANG")
    started = time.monotonic()
    info = discover(_targets(_root(tmp_path, "nvidia0"), libs=(nvml,), timeout_s=2))
    assert time.monotonic() - started < 8
    assert info.mode == "none"
    assert any("timed out" in r for r in info.reasons)


def test_crashing_driver_does_not_crash_the_caller(tmp_path: Path, build_fake) -> None:
    nvml = build_fake("fake_nvml.c", "libnvidia-ml.so.1", "CRASH")
    info = discover(_targets(_root(tmp_path, "nvidia0"), libs=(nvml,)))
    assert info.mode == "none"
    assert any("SIGSEGV" in r for r in info.reasons)


def test_gpu_command_prints_json() -> None:
    proc = run_cli("gpu")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert {p["name"] for p in document["probes"]} >= {"dev-dxg", "dev-nvidia", "libcuda", "nvml"}
    if not _gpu_nodes_here():
        assert document["mode"] == "none"
    assert document["reasons"] if document["mode"] == "none" else document["gpus"]


TELEMETRY_SCRIPT = """
import json
from pathlib import Path
from edgevision.accel.discover import ProbeTargets, discover
from edgevision.accel.telemetry import GpuTelemetry
info = discover(ProbeTargets(dev_root=Path({root!r}), wsl_lib_dirs=(), library_dirs=(Path({lib!r}),)))
telemetry = GpuTelemetry.open(info)
print(json.dumps(None if telemetry is None else telemetry.sample()))
"""


@pytest.mark.parametrize(
    "mode, expected",
    [
        (
            "OK",
            {
                "index": 0,
                "utilization_pct": 87,
                "memory_used_mib": 1024,
                "memory_total_mib": 16384,
                "temperature_c": 61,
                "power_w": 51.2,
            },
        ),
        # GPU-PV: no utilisation or memory from NVML; the rest is still reported.
        ("PARTIAL", {"index": 0, "temperature_c": 61, "power_w": 51.2}),
    ],
)
def test_gpu_telemetry_reads_nvml_in_process(tmp_path: Path, build_fake, mode: str, expected: dict) -> None:
    nvml = build_fake("fake_nvml.c", "libnvidia-ml.so.1", mode)
    root = _root(tmp_path, "nvidia0")
    script = TELEMETRY_SCRIPT.format(root=str(root), lib=str(nvml))
    # The library is found the way the module finds it in a container: on the loader path.
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LD_LIBRARY_PATH": str(nvml)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [expected]


def test_no_gpu_telemetry_without_a_gpu(tmp_path: Path) -> None:
    from edgevision.accel.telemetry import GpuTelemetry

    assert GpuTelemetry.open(discover(_targets(_root(tmp_path)))) is None


@pytest.mark.parametrize(
    "mode, compatible, says",
    [
        ("CUDA13", True, None),
        ("OK", False, "supports CUDA 12.4 only"),
        ("PASCAL", False, "compute capability 6.1"),
    ],
)
def test_gpu_says_whether_driver_and_gpu_can_run_cuda_13(
    tmp_path: Path, build_fake, mode: str, compatible: bool, says: str | None
) -> None:
    nvml = build_fake("fake_nvml.c", "libnvidia-ml.so.1", mode)
    info = discover(_targets(_root(tmp_path, "nvidia0"), libs=(nvml,)))
    assert info.mode == "dda" and info.cuda_compatible is compatible
    if says is None:
        assert info.cuda_problems == []
    else:
        assert any(says in p for p in info.cuda_problems)
        assert "R580" in " ".join(info.cuda_problems) or "Turing" in " ".join(info.cuda_problems)


def test_gpu_pv_with_an_old_host_driver_is_told_to_update_it(tmp_path: Path, build_fake) -> None:
    nvml = build_fake("fake_nvml.c", "libnvidia-ml.so.1", "PARTIAL")
    cuda = build_fake("fake_cuda.c", "libcuda.so.1")
    info = discover(_targets(_root(tmp_path, "dxg"), wsl=(cuda,), libs=(nvml,)))
    assert info.mode == "gpu-pv" and info.cuda_compatible is False
    assert "R580" in info.cuda_problems[0] and "580.88" in info.cuda_problems[0]
