"""Find a model file: explicit path, the model directory, or a verified download."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from edgevision.download import BASE_URL_ENV, DownloadError, IntegrityError, Pinned, download
from edgevision.errors import BuildError
from edgevision.families.registry import recognise_file
from edgevision.models.manifest import ManifestError, ModelManifest, find_manifest, manifest_for_file
from edgevision.models.onnx_facts import read_labels_file

log = logging.getLogger(__name__)

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


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".onnx") or os.sep in spec or spec.startswith(".")


def resolve_model(
    spec: str,
    *,
    manifest: str | ModelManifest | None = None,
    model_dir: Path | None = None,
    download: bool = True,
    progress: bool = True,
    verify: str | None = None,
    family: str | None = None,
    labels: Path | None = None,
    announce: bool = True,
) -> ResolvedModel:
    """Resolve a model name or .onnx path to a file on disk and the manifest that describes it.

    A name is looked up in the model directory, then downloaded from its manifest URL; its file
    must match the manifest's SHA-256 (`verify`: require, the default unless EDGEVISION_MODEL__VERIFY
    says warn). A path is the user's own choice: used as given and reported as not verified
    unless it is the manifest's file. `announce`: log why it is not verified.
    """
    model = _resolve(spec, manifest, model_dir, download, progress, verify or default_verify(), family, labels)
    if announce:
        announce_verification(model)
    return model


def announce_verification(model: ResolvedModel) -> None:
    """Logs why a model is not verified: a warning when its manifest's SHA-256 was not met."""
    if not model.has_manifest:
        log.info("%s: %s", model.path.name, model.verification)
    elif not model.verified:
        log.warning("%s: not verified: %s", model.path, model.verification)


def _resolve(
    spec: str,
    manifest: ModelManifest | str | None,
    model_dir: Path | None,
    download: bool,
    progress: bool,
    verify: str,
    family: str | None,
    labels: Path | None,
) -> ResolvedModel:
    if isinstance(manifest, str):
        manifest = find_manifest(manifest)
    if _looks_like_path(spec):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(f"model file not found: {path}")
        if manifest is None and family is None and labels is None:
            manifest = manifest_for_file(path)
        if manifest is None:
            return _recognised(path, family, labels)
        return _describe(_amended(manifest, family, labels), path, verify, by_path=True)

    manifest = _amended(manifest or find_manifest(spec), family, labels)
    directory = model_dir or default_model_dir()
    path = directory / manifest.file
    if path.is_file():
        return _describe(manifest, path, verify, by_path=False)
    if not download:
        raise ModelUnavailableError(_missing_message(manifest, directory, "downloads are disabled"))
    return _describe(manifest, download_model(manifest, directory, progress=progress), verify, by_path=False)


def _amended(manifest: ModelManifest, family: str | None, labels: Path | None) -> ModelManifest:
    """A manifest's model with the configuration's own class names; a family that contradicts it is an error."""
    if family is not None and family != manifest.family:
        raise ManifestError(f"model {manifest.name} is a {manifest.family} model by its manifest, not {family}")
    if labels is None:
        return manifest
    names = read_labels_file(labels)
    if len(names) != manifest.num_classes:
        raise ManifestError(
            f"labels file {labels.name} names {len(names)} classes; {manifest.name} has {manifest.num_classes}"
        )
    return manifest.model_copy(update={"labels": names})


def _recognised(path: Path, family: str | None, labels: Path | None) -> ResolvedModel:
    """A file no manifest describes: its family and classes read from the file itself."""
    found = recognise_file(path, family, labels)
    note = f"no manifest: recognised as {found.manifest.family} ({found.recognition.reason}); labels from {found.labels_from}"
    return ResolvedModel(
        manifest=found.manifest,
        path=path,
        sha256=sha256_of(path),
        verified=False,
        verification=note,
        has_manifest=False,
    )


def _describe(manifest: ModelManifest, path: Path, verify: str, by_path: bool) -> ResolvedModel:
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
        raise ModelIntegrityError(f"{path}: {why}: refused (model.verify is require; warn runs it anyway)")
    else:
        note = f"{why} (model.verify: {verify})" if manifest.sha256 else why
    return ResolvedModel(manifest=manifest, path=path, sha256=digest, verified=False, verification=note)


def _missing_message(manifest: ModelManifest, directory: Path, why: str) -> str:
    expected = f" (SHA-256 {manifest.sha256})" if manifest.sha256 else ""
    return (
        f"model {manifest.name} is not available ({why}): put {manifest.file}{expected} into {directory}, "
        f"or set {MODEL_DIR_ENV} to the folder that holds it"
    )


def download_model(manifest: ModelManifest, directory: Path, *, progress: bool = True) -> Path:
    """The manifest's file, downloaded into `directory` (see edgevision.download: HTTPS, size,
    deadline, SHA-256)."""
    if not manifest.url and not os.environ.get(BASE_URL_ENV):
        raise ModelUnavailableError(_missing_message(manifest, directory, "its manifest has no download URL"))
    pinned = Pinned(manifest.file, manifest.url, manifest.sha256, manifest.size_bytes)
    try:
        return download(pinned, directory, progress=progress)
    except IntegrityError as exc:
        raise ModelIntegrityError(f"download of {manifest.name}: {exc}") from exc
    except DownloadError as exc:
        raise ModelUnavailableError(_missing_message(manifest, directory, str(exc))) from exc
