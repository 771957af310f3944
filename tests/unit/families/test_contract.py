"""Each family checks its contract against the facts of the file the engine runs, not an engine:
open sizes filled from a run, frames models, and a clear error when the file does not fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgevision.families.base import ContractError
from edgevision.families.registry import FAMILIES, family_of
from edgevision.models.manifest import FAMILY_NAMES, find_manifest
from edgevision.models.onnx_facts import read_facts
from tests.support.onnx_shapes import shape_model

NANO = find_manifest("yolox-nano")
IMAGE = [("images", "float32", ["N", 3, 416, 416])]


def test_every_family_the_manifests_may_name_is_registered_in_the_same_order() -> None:
    assert tuple(FAMILIES) == FAMILY_NAMES
    assert all(FAMILIES[name].name == name for name in FAMILY_NAMES)


def test_a_file_that_fits_its_manifest_passes(tmp_path: Path) -> None:
    facts = read_facts(shape_model(tmp_path / "m.onnx", IMAGE, [("output", "float32", ["N", 3549, 85])]))
    family_of(NANO).check(facts, NANO, "m.onnx")


def test_a_wrong_class_count_is_refused_at_load(tmp_path: Path) -> None:
    facts = read_facts(shape_model(tmp_path / "m.onnx", IMAGE, [("output", "float32", ["N", 3549, 7])]))
    with pytest.raises(ContractError, match="does not match the manifest"):
        family_of(NANO).check(facts, NANO, "m.onnx")


def test_sizes_a_dynamic_export_leaves_open_are_checked_as_the_run_measured_them(tmp_path: Path) -> None:
    facts = read_facts(shape_model(tmp_path / "m.onnx", IMAGE, [("output", "float32", ["N", "anchors", "cols"])]))
    yolox = FAMILIES["yolox"]
    with pytest.raises(ContractError):  # open sizes fit no contract until a run tells them
        yolox.check(facts, NANO, "m.onnx")
    yolox.check(facts.with_output_shapes([["N", 3549, 85]]), NANO, "m.onnx")
    with pytest.raises(ContractError):
        yolox.check(facts.with_output_shapes([["N", 3549, 84]]), NANO, "m.onnx")
    # The batch stays open whatever the run's batch was.
    assert facts.with_output_shapes([[1, 3549, 85]]).outputs[0].shape == ("N", 3549, 85)


def test_a_frames_model_and_an_open_height_and_width_fit(tmp_path: Path) -> None:
    frames = [("frames", "uint8", ["N", "height", "width", 3])]
    out = [("output", "float32", ["N", 3549, 85])]
    family_of(NANO).check(read_facts(shape_model(tmp_path / "f.onnx", frames, out)), NANO, "f.onnx")
    # An export that leaves height and width open is fed at the manifest's size.
    open_hw = [("images", "float32", ["N", 3, "h", "w"])]
    family_of(NANO).check(read_facts(shape_model(tmp_path / "o.onnx", open_hw, out)), NANO, "o.onnx")
    wrong = [("images", "float32", ["N", 3, 320, 320])]
    with pytest.raises(ContractError, match="input shape"):
        family_of(NANO).check(read_facts(shape_model(tmp_path / "w.onnx", wrong, out)), NANO, "w.onnx")
