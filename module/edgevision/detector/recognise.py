"""Which family a model file no manifest describes is (metadata first, shapes second), and the
manifest read from the file itself."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from edgevision.errors import BuildError
from edgevision.families.base import Recognition
from edgevision.families.registry import FAMILIES, recognise
from edgevision.families.ultralytics import ultralytics_metadata
from edgevision.models.manifest import FAMILY_NAMES, ModelManifest
from edgevision.models.onnx_facts import ModelFacts, read_facts, read_labels_file

# Who made a model the module runs but no manifest describes.
UNKNOWN_LICENSE = "unknown: the model's owner's terms"


class UnrecognisedModelError(BuildError):
    """The file's family cannot be told, or does not fit the family named."""


class LabelsNeededError(UnrecognisedModelError):
    """The family is known but the file does not say how many classes it has."""

    def __init__(self, message: str, recognition: Recognition) -> None:
        super().__init__(message)
        self.recognition = recognition


@dataclass(frozen=True)
class Recognised:
    manifest: ModelManifest
    recognition: Recognition
    facts: ModelFacts
    # Where the class names came from: metadata, a labels file, or numbered.
    labels_from: str


def why_not(facts: ModelFacts, family: str | None = None) -> str:
    """One paragraph on why no family fits, and what to do."""
    shapes = "; ".join(o.describe() for o in facts.outputs)
    inputs = "; ".join(i.describe() for i in facts.inputs)
    meta = ultralytics_metadata(facts)
    hint = ""
    if meta is not None and meta.task != "detect":
        hint = f" Its Ultralytics metadata says task {meta.task}: only detection models are run."
    elif facts.image_input is None:
        hint = " It has no 4-D image input."
    elif not all(isinstance(d, int) for d in facts.image_input.shape[2:]) and (meta is None or meta.imgsz is None):
        hint = " Its image input leaves height and width open and no metadata gives its size: write a manifest."
    if family:
        advice = (
            f"If it is not a {family} model, leave the family out (--family / model.family) and the module "
            "recognises it from the file; otherwise write a manifest (see the README, 'Your own model')."
        )
        return f"{facts.path.name}: inputs {inputs}; outputs {shapes}: does not fit the {family} family's layouts.{hint} {advice}"
    return (
        f"{facts.path.name}: inputs {inputs}; outputs {shapes}: does not fit any known family "
        f"({', '.join(FAMILY_NAMES)}).{hint} Name the family with --family / model.family if the file is one "
        "of them, or write a manifest (see the README, 'Your own model')."
    )


def recognise_file(path: Path, family: str | None = None, labels: Path | None = None) -> Recognised:
    """A manifest for a model file no manifest describes, read from the file itself."""
    if family is not None and family not in FAMILIES:
        raise UnrecognisedModelError(f"unknown family {family!r} (known: {', '.join(FAMILY_NAMES)})")
    facts = read_facts(path)
    found = recognise(facts, family)
    if not found:
        raise UnrecognisedModelError(why_not(facts, family))
    if len(found) > 1:
        names = ", ".join(f"{r.family} ({r.reason})" for r in found)
        raise UnrecognisedModelError(
            f"{path.name} fits more than one family: {names}; name one with --family / model.family"
        )
    recognition = found[0]
    names, labels_from = _labels(path, recognition, labels)
    manifest = ModelManifest(
        name=_model_name(path),
        family=recognition.family,
        file=_file_name(path),
        license=UNKNOWN_LICENSE,
        source=f"recognised from the file: {recognition.reason}",
        input=recognition.input,
        strides=recognition.strides,
        layout=recognition.layout,
        labels=names,
        origin=path,
    )
    return Recognised(manifest, recognition, facts, labels_from)


def _labels(path: Path, recognition: Recognition, labels: Path | None) -> tuple[tuple[str, ...], str]:
    count = recognition.class_count
    if labels is not None:
        names = read_labels_file(labels)
        if count and len(names) != count:
            raise UnrecognisedModelError(
                f"labels file {labels.name} names {len(names)} classes; {path.name} has {count}"
            )
        return names, f"labels file {labels.name}"
    if recognition.labels is not None:
        return recognition.labels, "the file's metadata (names)"
    if not count:
        raise LabelsNeededError(
            f"{path.name} ({recognition.family}) does not say how many classes it has: give a labels file, "
            "one name a line (--labels FILE / model.labels)",
            recognition,
        )
    return tuple(f"class {i}" for i in range(count)), f"numbered: the file names no classes ({count}); give --labels"


def _model_name(path: Path) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-._") or "model"
    return name if name[0].isalnum() else f"m{name}"


def _file_name(path: Path) -> str:
    """The manifest's `file` pattern allows a safe subset; the real path is kept separately."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem) or "model"
    return f"{stem}.onnx"
