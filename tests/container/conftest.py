"""The container tier: the image built from the repository's Dockerfile (on a locally made base
where no registry can be reached), run under podman. `make image-test` builds it and names it in
EDGEVISION_TEST_IMAGE; EDGEVISION_CONTAINER_FLAGS carries what this host needs on every run."""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.container import LABEL, Engine

IMAGE_ENV = "EDGEVISION_TEST_IMAGE"
FLAGS_ENV = "EDGEVISION_CONTAINER_FLAGS"


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    image = os.environ.get(IMAGE_ENV)
    if not image:
        pytest.fail(f"{IMAGE_ENV} is not set: `make image-test` builds the image and runs these tests")
    binary = shutil.which("podman")
    if binary is None:
        pytest.fail("podman is not installed (`make image-test` installs it as root)")
    running = Engine(binary, image, shlex.split(os.environ.get(FLAGS_ENV, "")))
    running("image", "inspect", image)
    yield running
    left = running("ps", "--all", "--quiet", "--filter", f"label={LABEL}", check=False).stdout.split()
    if left:
        running("rm", "--force", *left, check=False)


@pytest.fixture
def shared_dir(tmp_path: Path) -> Iterator[Path]:
    """A host folder the container's user (uid 10001) may write: results, state."""
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    yield folder


@pytest.fixture(scope="session")
def model_mount(model_path: Path) -> tuple[str, ...]:
    """The test model, read-only at /models. It is the team's re-export, whose SHA-256 differs
    from the official manifest's: the image refuses that unless model.verify is warn."""
    return f"--volume={model_path.parent}:/models:ro", "--env=EDGEVISION_MODEL__VERIFY=warn"


@pytest.fixture(scope="session")
def clips_mount(videos: dict[str, Path]) -> str:
    folders = {p.parent for p in videos.values()}
    assert len(folders) == 1
    return f"--volume={folders.pop()}:/clips:ro"
