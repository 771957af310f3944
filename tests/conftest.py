"""Shared fixtures: the test assets, the real model, and an isolated cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
FAKES = Path(__file__).resolve().parent / "fakes"


def pytest_configure(config: pytest.Config) -> None:
    # Keep dynamic-batch copies and downloads of the suite out of the user's cache.
    cache = Path(config.rootpath) / ".pytest_cache" / "xdg-cache"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["XDG_CACHE_HOME"] = str(cache)


def _assets_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("EDGEVISION_REQUIRE_ASSETS"))


@pytest.fixture(scope="session")
def assets() -> Path:
    """The shared test assets; in CI their absence fails the tests that need them."""
    configured = os.environ.get("EDGEVISION_ASSETS")
    path = Path(configured) if configured else REPO.parent / "shared" / "assets"
    if not (path / "models").is_dir() or not (path / "images").is_dir():
        message = f"test assets not found at {path} (set EDGEVISION_ASSETS)"
        if _assets_required():
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def model_path(assets: Path) -> Path:
    return assets / "models" / "yolox_nano.onnx"


@pytest.fixture(scope="session")
def resolved_model(model_path: Path):
    from edgevision.models import resolve_model

    return resolve_model(str(model_path))


@pytest.fixture(scope="session")
def images(assets: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted((assets / "images").glob("*.jpg"))}


@pytest.fixture(scope="session")
def compiler() -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("a C compiler (cc) is needed to build the fake driver libraries")
    return cc


@pytest.fixture(scope="session")
def build_fake(compiler: str, tmp_path_factory: pytest.TempPathFactory):
    """Compile a fake driver library (NVML or CUDA) into its own folder; cached per variant."""
    built: dict[tuple[str, str], Path] = {}

    def build(source: str, soname: str, mode: str = "") -> Path:
        key = (source, mode)
        if key not in built:
            out_dir = tmp_path_factory.mktemp(f"{Path(source).stem}{mode.lower()}")
            args = [compiler, "-shared", "-fPIC", "-o", str(out_dir / soname), str(FAKES / source)]
            if mode:
                args.insert(1, f"-DMODE_{mode}")
            subprocess.run(args, check=True)
            built[key] = out_dir
        return built[key]

    return build


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m edgevision ...` as a user would, in a real child process."""
    return subprocess.run(
        [sys.executable, "-m", "edgevision", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


class CollectingSink:
    """Keeps every message in memory; the pipeline sees an ordinary sink."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def publish(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.messages.append(message)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages if m["type"] == kind]
