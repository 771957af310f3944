"""Model files on disk: where they are kept, their SHA-256 against their manifest, and verified
downloads. Which file a configuration names is resolved in edgevision.detector.resolve."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from edgevision.download import BASE_URL_ENV, DownloadError, IntegrityError, Pinned, download
from edgevision.errors import BuildError
from edgevision.models.manifest import ModelManifest

MODEL_DIR_ENV = "EDGEVISION_MODEL_DIR"
# model.verify's process-wide default (the same variable the configuration reads): `require`
# refuses a model named by a manifest whose file's SHA-256 differs; `warn` runs it and says so.
VERIFY_ENV = "EDGEVISION_MODEL__VERIFY"
VERIFY_CHOICES = ("require", "warn")
_CHUNK = 1 << 20


class ModelUnavailableError(BuildError):
    """The model file is not here and cannot be downloaded."""


class ModelIntegrityError(BuildError):
    """A downloaded file does not match its manifest's SHA-256."""


@dataclass(frozen=True)
class ResolvedModel:
    manifest: ModelManifest
    path: Path
    sha256: str
    # True when the file's hash equals the manifest's.
    verified: bool
    # Why it is or is not verified, for status and logs.
    verification: str = "SHA-256 matches the manifest"
    # False for a file no manifest describes (its family and classes read from the file).
    has_manifest: bool = True

    @property
    def name(self) -> str:
        return self.manifest.name


def default_model_dir() -> Path:
    configured = os.environ.get(MODEL_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("edgevision")) / "models"


def default_verify() -> str:
    value = os.environ.get(VERIFY_ENV, "require")
    return value if value in VERIFY_CHOICES else "require"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe(manifest: ModelManifest, path: Path, verify: str, by_path: bool) -> ResolvedModel:
    """The file checked against its manifest's SHA-256: verified, not (and why), or refused
    (`verify` require, a file in the model directory whose hash differs)."""
    digest = sha256_of(path)
    verified = bool(manifest.sha256) and manifest.sha256 == digest
    if verified:
        return ResolvedModel(manifest=manifest, path=path, sha256=digest, verified=True)
    if not manifest.sha256:
        why = "its manifest gives no SHA-256"
    else:
        why = f"SHA-256 {digest[:16]} differs from the manifest's {manifest.sha256[:16]} for {manifest.name}"
    if by_path:
        note = f"given by path ({why})"
    elif manifest.sha256 and verify == "require":
        raise ModelIntegrityError(
            f"{path}: {why}: refused because model.verify is require. To run this file anyway, set model.verify: "
            f"warn in the configuration (or EDGEVISION_MODEL__VERIFY=warn); to get the manifest's file, delete "
            f"{path.name} and it is downloaded again"
        )
    else:
        note = f"{why} (model.verify: {verify})" if manifest.sha256 else why
    return ResolvedModel(manifest=manifest, path=path, sha256=digest, verified=False, verification=note)


def missing_message(manifest: ModelManifest, directory: Path, why: str) -> str:
    expected = f" (SHA-256 {manifest.sha256})" if manifest.sha256 else ""
    return (
        f"model {manifest.name} is not available ({why}): put {manifest.file}{expected} into {directory}, "
        f"or set {MODEL_DIR_ENV} to the folder that holds it"
    )


def download_model(manifest: ModelManifest, directory: Path, *, progress: bool = True) -> Path:
    """The manifest's file, downloaded into `directory` (see edgevision.download: HTTPS, size,
    deadline, SHA-256)."""
    if not manifest.url and not os.environ.get(BASE_URL_ENV):
        raise ModelUnavailableError(missing_message(manifest, directory, "its manifest has no download URL"))
    pinned = Pinned(manifest.file, manifest.url, manifest.sha256, manifest.size_bytes)
    try:
        return download(pinned, directory, progress=progress)
    except IntegrityError as exc:
        raise ModelIntegrityError(f"download of {manifest.name}: {exc}") from exc
    except DownloadError as exc:
        raise ModelUnavailableError(missing_message(manifest, directory, str(exc))) from exc
