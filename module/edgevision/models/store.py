"""Find a model file: explicit path, the model directory, or a verified download."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from tqdm import tqdm

from edgevision.errors import BuildError
from edgevision.models.manifest import ManifestError, ModelManifest, find_manifest, manifest_for_file

log = logging.getLogger(__name__)

MODEL_DIR_ENV = "EDGEVISION_MODEL_DIR"
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

    @property
    def name(self) -> str:
        return self.manifest.name


def default_model_dir() -> Path:
    configured = os.environ.get(MODEL_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("edgevision")) / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".onnx") or os.sep in spec or spec.startswith(".")


def resolve_model(
    spec: str,
    *,
    manifest: str | ModelManifest | None = None,
    model_dir: Path | None = None,
    download: bool = True,
    progress: bool = True,
) -> ResolvedModel:
    """Resolve a model name or .onnx path to a file on disk and the manifest that describes it.

    A path is used as given (a hash mismatch is only logged). A name is looked up in the model
    directory, then downloaded from its manifest URL with a SHA-256 check.
    """
    if isinstance(manifest, str):
        manifest = find_manifest(manifest)
    if _looks_like_path(spec):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(f"model file not found: {path}")
        manifest = manifest or manifest_for_file(path)
        if manifest is None:
            raise ManifestError(
                f"no manifest describes {path.name}: name one with --manifest (a model name or a manifest JSON file)"
            )
        return _describe(manifest, path)

    manifest = manifest or find_manifest(spec)
    directory = model_dir or default_model_dir()
    path = directory / manifest.file
    if path.is_file():
        return _describe(manifest, path)
    if not download:
        raise ModelUnavailableError(_missing_message(manifest, directory, "downloads are disabled"))
    return _describe(manifest, download_model(manifest, directory, progress=progress))


def _describe(manifest: ModelManifest, path: Path) -> ResolvedModel:
    digest = sha256_of(path)
    verified = manifest.sha256 == digest
    if manifest.sha256 and not verified:
        log.warning(
            "%s: SHA-256 %s differs from the manifest's %s for %s; using it as given",
            path,
            digest[:16],
            manifest.sha256[:16],
            manifest.name,
        )
    return ResolvedModel(manifest=manifest, path=path, sha256=digest, verified=verified)


def _missing_message(manifest: ModelManifest, directory: Path, why: str) -> str:
    expected = f" (SHA-256 {manifest.sha256})" if manifest.sha256 else ""
    return (
        f"model {manifest.name} is not available ({why}): put {manifest.file}{expected} into {directory}, "
        f"or set {MODEL_DIR_ENV} to the folder that holds it"
    )


def download_model(manifest: ModelManifest, directory: Path, *, progress: bool = True, timeout_s: float = 30.0) -> Path:
    """Download to a temporary file beside the target, check SHA-256, then rename into place."""
    if not manifest.url:
        raise ModelUnavailableError(_missing_message(manifest, directory, "its manifest has no download URL"))
    target = directory / manifest.file
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # Closed by the `with` below, once the download is written.
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
            dir=directory, prefix=f".{manifest.file}.", suffix=".part", delete=False
        )
    except OSError as exc:
        raise ModelUnavailableError(
            _missing_message(manifest, directory, f"cannot write there: {exc.strerror}")
        ) from exc
    tmp = Path(handle.name)
    digest = hashlib.sha256()
    log.info("downloading %s from %s", manifest.name, manifest.url)
    try:
        with handle, urllib.request.urlopen(manifest.url, timeout=timeout_s) as response:
            total = int(response.headers.get("Content-Length") or 0) or manifest.size_bytes
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=manifest.file, disable=not progress or None, leave=False
            ) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    handle.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if manifest.sha256 and digest.hexdigest() != manifest.sha256:
            raise ModelIntegrityError(
                f"download of {manifest.name} from {manifest.url} has SHA-256 {digest.hexdigest()}, "
                f"expected {manifest.sha256}; the file was discarded"
            )
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise ModelUnavailableError(
            _missing_message(manifest, directory, f"download from {manifest.url} failed: {reason}")
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    log.info("saved %s to %s", manifest.name, target)
    return target
