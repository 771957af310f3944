"""Derived copies of the model: the letterbox inside the graph, and fp16; both agree with the original."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgevision.detections import Detections
from edgevision.detector.detector import Detector
from edgevision.detector.load import LoadedDetector, load_detector
from edgevision.families.registry import family_of
from edgevision.imageio import read_image
from edgevision.inference.options import EngineConfig
from edgevision.models.ingraph import FRAMES_INPUT, InGraphError, add_preprocessing
from edgevision.models.manifest import InputSpec, Normalization
from edgevision.models.variants import Variant, variant_path
from edgevision.preprocess import Letterbox

CPU = EngineConfig(provider="cpu")


def _frames(images: dict[str, Path]) -> dict[str, np.ndarray]:
    astronaut = read_image(images["astronaut"])
    coffee = read_image(images["coffee"])
    return {
        "astronaut": astronaut,
        "coffee": coffee,
        "chelsea": read_image(images["chelsea"]),
        "wide": cv2.resize(astronaut, (640, 360)),
        "tall": np.ascontiguousarray(astronaut[:, 97:398]),
        "grey": cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY),
        "bgra": cv2.cvtColor(coffee, cv2.COLOR_BGR2BGRA),
    }


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def assert_same_detections(got: Detections, want: Detections, min_score: float = 0.4) -> None:
    """Every confident detection of one path has a twin in the other: same class, box IoU > 0.9."""
    assert (got.width, got.height) == (want.width, want.height)
    for source, other in ((want, got), (got, want)):
        for cls, score, box in zip(source.class_ids, source.scores, source.boxes, strict=True):
            if score < min_score:
                continue
            twins = [
                (s, _iou(box, b))
                for c, s, b in zip(other.class_ids, other.scores, other.boxes, strict=True)
                if c == cls
            ]
            best = max(twins, key=lambda t: t[1], default=(0.0, 0.0))
            assert best[1] > 0.9 and abs(best[0] - score) < 0.05, (
                f"class {cls} score {score:.2f} box {box}: best twin {best}"
            )


@pytest.fixture(scope="module")
def host(resolved_model) -> Detector:
    return Detector(load_detector(resolved_model, CPU))


@pytest.fixture(scope="module")
def in_graph(resolved_model) -> Detector:
    return Detector(load_detector(resolved_model, CPU, in_graph=True))


def test_graph_takes_uint8_frames_of_any_size(in_graph: Detector) -> None:
    engine = in_graph.engine
    assert engine.takes_frames
    assert engine.input_name == FRAMES_INPUT
    assert engine.input_shape[1:] == ["height", "width", 3]


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "wide", "tall", "grey", "bgra"])
def test_same_detections_as_the_host_letterbox(host: Detector, in_graph: Detector, images, name: str) -> None:
    frame = _frames(images)[name]
    (want,) = host.detect([frame])
    (got,) = in_graph.detect([frame])
    assert len(want) > 0
    assert_same_detections(got, want)


def test_model_input_matches_the_host_tensor(resolved_model, model_path: Path, images) -> None:
    """The graph's letterboxed tensor differs from OpenCV's by rounding only."""
    spec = resolved_model.manifest.input
    wrapped = add_preprocessing(onnx.load(str(model_path)), spec)
    original_input = onnx.load(str(model_path)).graph.input[0].name
    wrapped.graph.output.insert(0, onnx.helper.make_tensor_value_info(original_input, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(wrapped.SerializeToString(), providers=["CPUExecutionProvider"])
    for name, frame in _frames(images).items():
        if frame.ndim != 3 or frame.shape[2] != 3:
            continue
        (tensor,) = session.run([original_input], {FRAMES_INPUT: frame[None]})
        expected = np.empty((1, 3, spec.height, spec.width), np.float32)
        Letterbox(spec)(frame, expected[0])
        diff = np.abs(tensor - expected)
        # Same layout and padding to the pixel; values differ by integer rounding in the resize.
        assert diff.max() <= 2, name
        assert diff.mean() < 0.6, name


def test_rgb_and_normalisation_in_the_graph(model_path: Path, images) -> None:
    spec = InputSpec(
        width=416,
        height=416,
        channel_order="RGB",
        normalization=Normalization(scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    )
    model = onnx.load(str(model_path))
    original_input = model.graph.input[0].name
    wrapped = add_preprocessing(model, spec)
    wrapped.graph.output.insert(0, onnx.helper.make_tensor_value_info(original_input, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(wrapped.SerializeToString(), providers=["CPUExecutionProvider"])
    frame = _frames(images)["wide"]
    (tensor,) = session.run([original_input], {FRAMES_INPUT: frame[None]})
    expected = np.empty((1, 3, 416, 416), np.float32)
    Letterbox(spec)(frame, expected[0])
    assert np.abs(tensor - expected).max() < 2 / 255 / 0.224


def test_mixed_sizes_in_one_batch(resolved_model, host: Detector, images) -> None:
    """A batch takes its first frame's size; other sizes are fitted into it on the host."""
    batched = Detector(load_detector(resolved_model, CPU, max_batch=4, in_graph=True))
    frames = _frames(images)
    batch = [frames["astronaut"], frames["wide"], frames["tall"], frames["chelsea"]]
    for got, frame in zip(batched.detect(batch), batch, strict=True):
        (want,) = host.detect([frame])
        assert_same_detections(got, want)


def test_variant_files_are_cached_and_distinct(resolved_model, tmp_path: Path) -> None:
    spec = resolved_model.manifest.input
    plain = variant_path(resolved_model.path, resolved_model.sha256, Variant(), spec)
    assert plain == resolved_model.path
    frames = variant_path(
        resolved_model.path,
        resolved_model.sha256,
        Variant(dynamic_batch=True, frames_in=True),
        spec,
        cache_dir=tmp_path,
    )
    assert "dynbatch.frames" in frames.name
    again = variant_path(
        resolved_model.path,
        resolved_model.sha256,
        Variant(dynamic_batch=True, frames_in=True),
        spec,
        cache_dir=tmp_path,
    )
    assert again == frames
    graph = onnx.load(str(frames)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8


def test_old_opsets_are_refused(model_path: Path) -> None:
    model = onnx.load(str(model_path))
    model.opset_import[0].version = 10
    with pytest.raises(InGraphError, match="opset 10"):
        add_preprocessing(model, InputSpec(width=416, height=416))


def test_fp16_copy_finds_the_same_objects(resolved_model, host: Detector, images, tmp_path: Path) -> None:
    """The CPU runs fp16 graphs by casting back, so the half-precision weights are checked here."""
    from edgevision.inference.engine import Engine

    half = variant_path(resolved_model.path, resolved_model.sha256, Variant(fp16=True), cache_dir=tmp_path)
    graph = onnx.load(str(half)).graph
    assert sum(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer) > 100
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # callers unchanged
    detector = Detector(
        LoadedDetector(resolved_model, family_of(resolved_model.manifest), Engine(half, CPU), max_batch=1)
    )
    for frame in _frames(images).values():
        (want,) = host.detect([frame])
        (got,) = detector.detect([frame])
        assert_same_detections(got, want)


def test_gpu_only_options_are_reported_as_not_in_effect_on_the_cpu(resolved_model) -> None:
    detector = Detector(load_detector(resolved_model, EngineConfig(provider="cpu", fp16=True, cuda_graph=True)))
    status = detector.engine.status
    assert status.provider == "CPUExecutionProvider"
    assert status.precision == "fp32" and not status.cuda_graph
    assert "CPU" in status.declined["fp16"]
    assert "CUDA provider is not in use" in status.declined["cuda_graph"]
