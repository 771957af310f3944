"""Every detector family by the name manifests and configuration use."""

from __future__ import annotations

from edgevision.families.base import Family, Recognition
from edgevision.families.detr import DetrFamily
from edgevision.families.end2end import End2EndFamily
from edgevision.families.ultralytics import UltralyticsFamily
from edgevision.families.yolox import YoloxFamily
from edgevision.models.manifest import ModelManifest
from edgevision.models.onnx_facts import ModelFacts

# In the order of models.manifest.FAMILY_NAMES (a unit test keeps the two in step).
FAMILIES: dict[str, Family] = {
    family.name: family for family in (YoloxFamily(), UltralyticsFamily(), End2EndFamily(), DetrFamily())
}


def family_of(manifest: ModelManifest) -> Family:
    """The family a manifest names (a configured family is already the manifest's: see
    edgevision.detector.resolve)."""
    return FAMILIES[manifest.family]


def recognise(facts: ModelFacts, family: str | None = None) -> list[Recognition]:
    """Every family whose layout this file fits (only `family` when given), each with its reason."""
    candidates = [FAMILIES[family]] if family else list(FAMILIES.values())
    return [r for r in (f.recognise(facts) for f in candidates) if r is not None]
