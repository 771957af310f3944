"""The real CUDA execution provider library, loaded on a machine without a GPU: NVIDIA's CUDA 13
runtime wheels resolve every library it needs but the driver, and a stand-in libcuda.so.1 answers
as a driver with no GPU does (cuInit: CUDA_ERROR_NO_DEVICE). Each check runs in a child process,
since the loader path must be set before the process starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPO

NO_DEVICE = "CUDA failure 100: no CUDA-capable device is detected"


@pytest.fixture(scope="module")
def cuda_libs() -> Path:
    """The CUDA 13 runtime libraries `make cuda-libs` installs (required in CI)."""
    folder = Path(os.environ.get("EDGEVISION_CUDA_LIBS", REPO / ".cache" / "cuda13"))
    if not (folder / "nvidia" / "cu13" / "lib" / "libcublasLt.so.13").exists():
        message = f"CUDA 13 runtime libraries not found in {folder} (run `make cuda-libs`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(scope="module")
def no_gpu_driver(build_fake) -> Path:
    return build_fake("fake_cuda.c", "libcuda.so.1", "NODEVICE")


def _child(script: str, library_path: list[Path], tmp_path: Path, **env: str) -> dict:
    """Run `script` (which prints one JSON line last) with this loader path; ORT's own output kept."""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            **os.environ,
            "LD_LIBRARY_PATH": ":".join(str(p) for p in library_path),
            "EDGEVISION_STATE_DIR": str(tmp_path / "state"),
            **env,
        },
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["stdout"], result["stderr"] = proc.stdout, proc.stderr
    return result


ENGINE = """
import json
from pathlib import Path
from edgevision.inference.engine import Engine
from edgevision.inference.options import EngineConfig
from edgevision.inference.providers import CUDA, provider_load_error
load_error = provider_load_error(CUDA)
engine = Engine(Path({model!r}), EngineConfig(provider="cuda", cuda_graph={graph}))
print(json.dumps({{"load_error": load_error, "status": engine.status.to_dict()}}))
"""


def _libraries(cuda_libs: Path, driver: Path, cudnn: bool = True) -> list[Path]:
    folders = [driver, cuda_libs / "nvidia" / "cu13" / "lib"]
    return folders + ([cuda_libs / "nvidia" / "cudnn" / "lib"] if cudnn else [])


def test_the_driver_reason_is_reported_and_the_engine_falls_back_not_onnx_runtime(
    cuda_libs: Path, no_gpu_driver: Path, model_path: Path, tmp_path: Path
) -> None:
    result = _child(ENGINE.format(model=str(model_path), graph=False), _libraries(cuda_libs, no_gpu_driver), tmp_path)
    # The real CUDA provider library loads: nothing is missing but a GPU.
    assert result["load_error"] is None
    status = result["status"]
    assert status["provider"] == "CPUExecutionProvider" and status["in_use"] == ["CPUExecutionProvider"]
    assert status["dropped"]["CUDAExecutionProvider"] == f"session creation failed: {NO_DEVICE}"
    # ONNX Runtime's own fallback (which prints "EP Error" and retries with default options) did not run.
    assert "EP Error" not in result["stdout"] + result["stderr"]


def test_with_cuda_graphs_the_engine_first_drops_the_graphs_then_the_provider(
    cuda_libs: Path, no_gpu_driver: Path, model_path: Path, tmp_path: Path
) -> None:
    result = _child(ENGINE.format(model=str(model_path), graph=True), _libraries(cuda_libs, no_gpu_driver), tmp_path)
    status = result["status"]
    assert status["cuda_graph"] is False and NO_DEVICE in status["declined"]["cuda_graph"]
    assert NO_DEVICE in status["dropped"]["CUDAExecutionProvider"] and status["provider"] == "CPUExecutionProvider"


def test_a_missing_cudnn_is_caught_by_the_load_check(
    cuda_libs: Path, no_gpu_driver: Path, model_path: Path, tmp_path: Path
) -> None:
    libraries = _libraries(cuda_libs, no_gpu_driver, cudnn=False)
    result = _child(ENGINE.format(model=str(model_path), graph=False), libraries, tmp_path)
    assert "cuDNN 9 does not load" in result["load_error"] and "libcudnn.so.9" in result["load_error"]
    assert result["status"]["dropped"]["CUDAExecutionProvider"] == result["load_error"]


MODULE = """
import json
from edgevision.module import Module
module = Module({{"cameras": {{"syn": {{"uri": "synthetic:64x48@0", "max_frames": 5}}}},
                 "inference": {{"provider": "cuda", "cuda_graph": True}}, "http": {{"enabled": False}}}}, environ={{}})
module.start()
status = module.status()
module.wait(30)
print(json.dumps({{"provider": status["provider"], "layout": status["layout"]}}))
"""


def test_status_tells_the_truth(cuda_libs: Path, no_gpu_driver: Path, model_path: Path, tmp_path: Path) -> None:
    result = _child(
        MODULE.format(), _libraries(cuda_libs, no_gpu_driver), tmp_path, EDGEVISION_MODEL_DIR=str(model_path.parent)
    )
    provider = result["provider"]
    assert provider["provider"] == "CPUExecutionProvider" and provider["cuda_graph"] is False
    assert NO_DEVICE in provider["dropped"]["CUDAExecutionProvider"]
    assert NO_DEVICE in provider["declined"]["cuda_graph"]
