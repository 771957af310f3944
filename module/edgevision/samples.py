"""The sample clip `edgevision run` plays when no camera is given: a small public video, pinned by
its SHA-256 in a manifest (models/samples/) and downloaded into the cache like the model."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import platformdirs
from pydantic import BaseModel, ConfigDict, Field

from edgevision.documents import DocumentError, read_document
from edgevision.download import DownloadError, Pinned, download
from edgevision.models.manifest import manifest_dirs

SAMPLES_DIR_ENV = "EDGEVISION_SAMPLES_DIR"
DEFAULT_SAMPLE = "one-by-one-person"


class SampleManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    file: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    url: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(gt=0, le=2**30)
    license: str
    credit: str
    description: str = ""


class SampleUnavailable(Exception):
    """The sample could not be had; says why."""


def find_sample(name: str = DEFAULT_SAMPLE) -> SampleManifest:
    """The first manifest of that name in the manifest folders' samples/ (EDGEVISION_MANIFEST_DIR first)."""
    for directory in manifest_dirs():
        path = directory / "samples" / f"{name}.json"
        if path.is_file():
            try:
                return SampleManifest.model_validate(read_document(path, "sample manifest"))
            except (DocumentError, ValueError) as exc:
                raise SampleUnavailable(f"sample manifest {path}: {exc}") from None
    raise SampleUnavailable(f"no sample named {name!r}")


def samples_dir() -> Path:
    configured = os.environ.get(SAMPLES_DIR_ENV)
    return Path(configured) if configured else Path(platformdirs.user_cache_dir("edgevision")) / "samples"


def sample_clip(name: str = DEFAULT_SAMPLE, progress: bool = True) -> tuple[Path, SampleManifest]:
    """The sample's file in the cache, downloaded first if it is not there (or not the pinned one)."""
    manifest = find_sample(name)
    path = samples_dir() / manifest.file
    if path.is_file() and _sha256(path) == manifest.sha256:
        return path, manifest
    try:
        pinned = Pinned(manifest.file, manifest.url, manifest.sha256, manifest.size_bytes)
        return download(pinned, samples_dir(), progress=progress), manifest
    except DownloadError as exc:
        raise SampleUnavailable(str(exc)) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
