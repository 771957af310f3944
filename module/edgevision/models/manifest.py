"""Model manifests: what a model file is, where it comes from, and how to feed it."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgevision.documents import DocumentError, read_bounded, read_document
from edgevision.errors import BuildError

MANIFEST_SUFFIX = ".json"
# The detector families a manifest may name; edgevision.families holds one module for each.
FAMILY_NAMES: tuple[str, ...] = ("yolox", "ultralytics", "end2end", "detr")


class ManifestError(BuildError, ValueError):
    """A manifest is missing or invalid."""


class Normalization(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # input = (pixel * scale - mean) / std, per channel in the model's channel order
    scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.mean == (0.0, 0.0, 0.0) and self.std == (1.0, 1.0, 1.0)


class InputSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    width: int = Field(gt=0, le=4096)
    height: int = Field(gt=0, le=4096)
    channel_order: Literal["BGR", "RGB"] = "BGR"
    layout: Literal["NCHW"] = "NCHW"
    # letterbox: aspect kept, image at the top-left, padded; stretch: resized to fill (DETR-style
    # models are trained that way).
    resize: Literal["letterbox", "stretch"] = "letterbox"
    pad_value: int = Field(default=114, ge=0, le=255)
    normalization: Normalization = Normalization()


class ModelManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    # The detector family (edgevision.families) whose decoder reads this model's output.
    family: str
    file: str = Field(pattern=r"^[A-Za-z0-9._-]+\.onnx$")
    url: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    size_bytes: int | None = Field(default=None, gt=0)
    license: str
    source: str | None = None
    input: InputSpec
    # YOLOX and Ultralytics: the strides of the anchor grid.
    strides: tuple[int, ...] = (8, 16, 32)
    # DETR-style exports: which of their output layouts (edgevision.families.detr).
    layout: str | None = None
    # A list of class names, or the name of a text file beside the manifest, one name a line.
    labels: tuple[str, ...]
    # Where the manifest was read from; labels files are found relative to it.
    origin: Path | None = Field(default=None, exclude=True)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return url

    @field_validator("family")
    @classmethod
    def _known_family(cls, family: str) -> str:
        if family not in FAMILY_NAMES:
            raise ValueError(f"unknown family {family!r} (known: {', '.join(FAMILY_NAMES)})")
        return family

    @model_validator(mode="after")
    def _url_needs_hash(self) -> ModelManifest:
        if self.url and not self.sha256:
            raise ValueError("a manifest with a url needs its sha256, so downloads can be verified")
        return self

    @cached_property
    def num_classes(self) -> int:
        return len(self.labels)


def manifest_dirs() -> list[Path]:
    """Built-in manifests: EDGEVISION_MANIFEST_DIR, those packaged in the wheel, or the repo's models/."""
    dirs = []
    if os.environ.get("EDGEVISION_MANIFEST_DIR"):
        dirs.append(Path(os.environ["EDGEVISION_MANIFEST_DIR"]))
    package = Path(__file__).resolve().parent.parent
    dirs.append(package / "_manifests")
    # Source checkouts and editable installs read the repository's models/ folder directly.
    dirs.append(package.parent.parent / "models")
    return [d for d in dirs if d.is_dir()]


def load_manifest_file(path: Path) -> ModelManifest:
    try:
        raw = read_document(path, "manifest")
    except DocumentError as exc:
        raise ManifestError(str(exc)) from exc
    if isinstance(raw, dict) and isinstance(raw.get("labels"), str):
        labels_path = path.parent / raw["labels"]
        try:
            text = read_bounded(labels_path, "labels file").decode("utf-8", errors="replace")
        except DocumentError as exc:
            raise ManifestError(f"manifest {path}: {exc}") from exc
        raw["labels"] = [line.strip() for line in text.splitlines() if line.strip()]
    try:
        return ModelManifest.model_validate({**raw, "origin": path})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'manifest'}: {e['msg']}" for e in exc.errors())
        raise ManifestError(f"invalid manifest {path}: {problems}") from exc


def available_manifests() -> dict[str, ModelManifest]:
    """Every built-in manifest by model name (the first directory that has a name wins)."""
    found: dict[str, ModelManifest] = {}
    for directory in manifest_dirs():
        for path in sorted(directory.glob(f"*{MANIFEST_SUFFIX}")):
            manifest = load_manifest_file(path)
            found.setdefault(manifest.name, manifest)
    return found


def find_manifest(spec: str) -> ModelManifest:
    """A manifest by model name, or from a JSON file path."""
    if spec.endswith(MANIFEST_SUFFIX) or os.sep in spec:
        return load_manifest_file(Path(spec))
    manifests = available_manifests()
    if spec not in manifests:
        known = ", ".join(sorted(manifests)) or "none installed"
        raise ManifestError(f"unknown model {spec!r} (known: {known})")
    return manifests[spec]


def manifest_for_file(path: Path) -> ModelManifest | None:
    """The built-in manifest whose file name matches a model file, if any."""
    for manifest in available_manifests().values():
        if manifest.file == path.name:
            return manifest
    return None
