"""Every detector family through the real engine, with real weights: the YOLOX-Nano graph grafted
into each exporter's input convention, output layout and metadata (tests/support/family_models).

Each must find what YOLOX-Nano finds through YOLOX's own decoder: the same objects, boxes within
IoU 0.9, scores within 0.02. The DETR layouts take a stretched input, so their reference is
YOLOX-Nano on the same stretched input.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edgevision.detections import Detections
from edgevision.detector.detector import Detector
from edgevision.detector.load import LoadedDetector, load_detector
from edgevision.detector.resolve import resolve_model
from edgevision.doctor.compare import iou
from edgevision.families.registry import family_of
from edgevision.imageio import read_image
from edgevision.inference.engine import Engine
from edgevision.inference.options import EngineConfig
from edgevision.models.store import ResolvedModel
from edgevision.models.variants import Variant, variant_path
from tests.support.family_models import EXPECTED

CPU = EngineConfig(provider="cpu")
LABELLED = {"detr-postprocessed"}  # no metadata, no class count: it takes a labels file


def _model(family_models: dict[str, Path], name: str) -> ResolvedModel:
    labels = family_models[name].parent / "coco.txt" if name in LABELLED else None
    return resolve_model(str(family_models[name]), labels=labels)


def _reference(resolved_model: ResolvedModel, stretch: bool) -> Detector:
    manifest = resolved_model.manifest
    if stretch:
        manifest = manifest.model_copy(update={"input": manifest.input.model_copy(update={"resize": "stretch"})})
    model = ResolvedModel(manifest, resolved_model.path, resolved_model.sha256, resolved_model.verified)
    return Detector(load_detector(model, CPU))


def assert_same(reference: list[Detections], found: list[Detections], labels: tuple[str, ...], why: str) -> None:
    for index, (want, got) in enumerate(zip(reference, found, strict=True)):
        assert len(want) == len(got), f"{why}, image {index}: {want.labels(labels)} vs {got.labels(labels)}"
        for box, score, cid in zip(want.boxes, want.scores, want.class_ids, strict=True):
            assert any(
                c == cid and abs(s - score) <= 0.02 and iou(box, b) >= 0.9
                for b, s, c in zip(got.boxes, got.scores, got.class_ids, strict=True)
            ), f"{why}, image {index}: {labels[cid]} {score:.3f} not found"


@pytest.fixture(scope="module")
def frames(images: dict[str, Path]) -> list[np.ndarray]:
    return [read_image(path) for path in images.values()]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_family_is_recognised_and_finds_what_yolox_finds(
    family_models: dict[str, Path], resolved_model: ResolvedModel, frames: list[np.ndarray], name: str
) -> None:
    family, layout = EXPECTED[name]
    model = _model(family_models, name)
    assert (model.manifest.family, model.manifest.layout) == (family, layout)
    assert not model.verified and model.verification.startswith("no manifest: recognised as")
    found = Detector(load_detector(model, CPU)).detect(frames)
    reference = _reference(resolved_model, stretch=family == "detr").detect(frames)
    assert_same(reference, found, model.manifest.labels, name)
    # The test images' objects, named by the file's own metadata (or the labels file).
    if family != "detr" or layout != "rf-detr":
        assert "person" in found[0].labels(model.manifest.labels)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_familys_preprocessing_runs_in_the_graph_too(
    family_models: dict[str, Path], frames: list[np.ndarray], name: str
) -> None:
    """The in-graph path follows the family's own input convention (RGB, 0-1, ImageNet, stretch).
    The square astronaut is letterboxed and stretched alike, so every family must agree on it."""
    model = _model(family_models, name)
    host = Detector(load_detector(model, CPU)).detect(frames[:1])
    in_graph = Detector(load_detector(model, CPU, in_graph=True))
    assert in_graph.engine.takes_frames
    assert_same(host, in_graph.detect(frames[:1]), model.manifest.labels, f"{name} in the graph")


def test_a_dynamic_batch_export_runs_batched_and_equals_single_runs(
    family_models: dict[str, Path], frames: list[np.ndarray]
) -> None:
    model = _model(family_models, "ultralytics-dynamic")
    batched = Detector(load_detector(model, CPU, max_batch=4))
    assert batched.engine.dynamic_batch and "max_batch" not in batched.engine.status.declined
    single = Detector(dataclasses.replace(batched.loaded, max_batch=1))
    many = frames * 2
    together, alone = batched.detect(many), single.detect(many)
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_a_fixed_batch_export_of_another_family_runs_one_frame_at_a_time_and_says_so(
    family_models: dict[str, Path], frames: list[np.ndarray]
) -> None:
    model = _model(family_models, "end2end")
    detector = Detector(load_detector(model, CPU, max_batch=4))
    assert not detector.engine.dynamic_batch
    assert "fixed batch of 1" in detector.engine.status.declined["max_batch"]
    assert [len(d) for d in detector.detect(frames)] == [
        len(d) for d in Detector(load_detector(model, CPU)).detect(frames)
    ]


@pytest.mark.parametrize("name", ["ultralytics", "end2end", "detr-postprocessed", "rf-detr"])
def test_each_familys_fp16_copy_builds_and_finds_the_same_objects(
    family_models: dict[str, Path], frames: list[np.ndarray], name: str
) -> None:
    """The half-precision copy the CUDA EP would run (made by ONNX Runtime's converter), run here
    on the CPU: NMS, TopK and the integer outputs survive the conversion."""
    model = _model(family_models, name)
    path = variant_path(model.path, model.sha256, Variant(fp16=True), model.manifest.input)
    family = family_of(model.manifest)
    half = Engine(path, CPU, extra_inputs=lambda names: family.extra_inputs(model.manifest, names))
    found = Detector(LoadedDetector(model, family, half, max_batch=1)).detect(frames)
    want = Detector(load_detector(model, CPU)).detect(frames)
    for a, b in zip(want, found, strict=True):
        assert a.labels(model.manifest.labels) == b.labels(model.manifest.labels)
        assert all(iou(x, y) >= 0.9 for x, y in zip(a.boxes, b.boxes, strict=True))
