"""Every detector family by name, and which of them a model's shapes fit."""

from __future__ import annotations

from collections.abc import Sequence

from edgevision.families.base import Family, Shape
from edgevision.families.names import FAMILY_NAMES
from edgevision.families.yolox import YoloxFamily
from edgevision.models.manifest import ModelManifest

FAMILIES: dict[str, Family] = {"yolox": YoloxFamily()}
assert tuple(FAMILIES) == FAMILY_NAMES, "families/names.py lists every family"


def family_for(manifest: ModelManifest, configured: str | None = None) -> Family:
    """The family configuration names, else the manifest's."""
    return FAMILIES[configured or manifest.family]


def recognise(input_shape: Shape, output_shapes: Sequence[Shape], manifest: ModelManifest) -> list[tuple[Family, str]]:
    """Every family whose layout these shapes fit, each with the reason."""
    found = []
    for family in FAMILIES.values():
        reason = family.recognise(input_shape, output_shapes, manifest)
        if reason is not None:
            found.append((family, reason))
    return found
