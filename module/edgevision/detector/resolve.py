"""Which model file a name, a path or a configuration means, and the manifest that describes it:
a built-in manifest (verified by SHA-256, downloaded when missing) or one read from the file."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from edgevision.config.model import ModelConfig
from edgevision.detector.recognise import recognise_file
from edgevision.models.manifest import ManifestError, ModelManifest, find_manifest, manifest_for_file
from edgevision.models.onnx_facts import read_labels_file
from edgevision.models.store import (
    ModelUnavailableError,
    ResolvedModel,
    default_model_dir,
    default_verify,
    describe,
    download_model,
    missing_message,
    sha256_of,
)

log = logging.getLogger(__name__)


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


class ModelResolver:
    """Resolves configured models anew at every call (the file may have been replaced), but says
    why one is not verified once per file and content, not at every rebuild or failover."""

    def __init__(self) -> None:
        self._announced: set[tuple[Path, str]] = set()
        self._lock = threading.Lock()

    def __call__(self, config: ModelConfig) -> ResolvedModel:
        model = resolve_model(
            config.spec,
            manifest=config.manifest,
            verify=config.verify,
            family=config.family,
            labels=Path(config.labels) if config.labels else None,
            announce=False,
        )
        with self._lock:
            first = (model.path, model.sha256) not in self._announced
            self._announced.add((model.path, model.sha256))
        if first:
            announce_verification(model)
        return model


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".onnx") or os.sep in spec or spec.startswith(".")


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
        return describe(_amended(manifest, family, labels), path, verify, by_path=True)

    manifest = _amended(manifest or find_manifest(spec), family, labels)
    directory = model_dir or default_model_dir()
    path = directory / manifest.file
    if path.is_file():
        return describe(manifest, path, verify, by_path=False)
    if not download:
        raise ModelUnavailableError(missing_message(manifest, directory, "downloads are disabled"))
    return describe(manifest, download_model(manifest, directory, progress=progress), verify, by_path=False)


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
