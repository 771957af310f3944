"""The YOLOX family: recognising its layout, and decoding a hand-made output tensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgevision.families.registry import recognise
from edgevision.families.yolox import YoloxDecoder, anchor_count
from edgevision.models.manifest import find_manifest
from edgevision.models.onnx_facts import read_facts
from edgevision.preprocess import LetterboxMeta
from tests.support.onnx_shapes import shape_model

NANO = find_manifest("yolox-nano")
ANCHORS = anchor_count(416, 416, (8, 16, 32))


def test_the_layout_is_recognised_from_the_output_shape(tmp_path: Path) -> None:
    assert ANCHORS == 3549
    image = [("images", "float32", ["N", 3, 416, 416])]
    facts = read_facts(shape_model(tmp_path / "yolox.onnx", image, [("output", "float32", ["N", ANCHORS, 85])]))
    (found,) = recognise(facts, "yolox")
    assert found.family == NANO.family and "3549" in found.reason and found.input == NANO.input
    other = read_facts(shape_model(tmp_path / "other.onnx", image, [("output0", "float32", ["N", 84, 8400])]))
    assert recognise(other, "yolox") == []


def test_a_box_is_decoded_on_its_grid_and_mapped_back_to_the_frame() -> None:
    output = np.zeros((2, ANCHORS, 85), np.float32)
    # Stride-8 grid, cell (x=10, y=5): anchor 5 * 52 + 10. Centre offset 0.5, size exp(0) * 8 = 8.
    anchor = 5 * 52 + 10
    output[1, anchor, :4] = (0.5, 0.5, 0.0, 0.0)
    output[1, anchor, 4] = 0.9  # objectness
    output[1, anchor, 5 + 41] = 0.8  # cup
    # A weaker duplicate of the same class right beside it is suppressed by NMS.
    output[1, anchor + 1, :4] = (-0.5, 0.5, 0.0, 0.0)
    output[1, anchor + 1, 4], output[1, anchor + 1, 5 + 41] = 0.9, 0.5
    metas = [LetterboxMeta(640, 480, 0.65), LetterboxMeta(832, 832, 0.5)]
    first, second = YoloxDecoder(NANO, score_threshold=0.3, nms_iou=0.45)([output], metas)
    assert len(first) == 0 and (first.width, first.height) == (640, 480)
    assert second.class_ids.tolist() == [41] and second.scores.tolist() == pytest.approx([0.72])
    # Centre (10.5 * 8, 5.5 * 8) = (84, 44) in the model input, 8 x 8; the frame is twice as large.
    np.testing.assert_allclose(second.boxes[0], [160, 80, 176, 96])


def test_an_output_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="does not match the manifest"):
        YoloxDecoder(NANO)([np.zeros((1, 100, 85), np.float32)], [LetterboxMeta(8, 8, 1.0)])
