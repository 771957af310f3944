"""Each family's decoder on hand-made outputs: boxes mapped back to the frame (letterboxed or
stretched), thresholds, unknown classes dropped, padding rows ignored."""

from __future__ import annotations

import numpy as np
import pytest

from edgevision.families.detr import DetrDecoder
from edgevision.families.end2end import End2EndDecoder
from edgevision.families.ultralytics import UltralyticsDecoder, rgb_input
from edgevision.families.yolox import anchor_count
from edgevision.models.manifest import find_manifest
from edgevision.preprocess import LetterboxMeta, place

COCO = find_manifest("yolox-nano").labels
SIDE = 640
# A 1280 x 720 frame letterboxed into 640: half size, image at the top-left.
LETTERBOX = place(720, 1280, rgb_input((SIDE, SIDE)))[0]
# The same frame stretched into 640 x 640: half across, 640/720 down.
STRETCH = place(720, 1280, rgb_input((SIDE, SIDE), "stretch"))[0]


def _manifest(layout: str | None, classes: int = 80):
    base = find_manifest("yolox-nano")
    return base.model_copy(
        update={
            "family": "detr",
            "layout": layout,
            "input": rgb_input((SIDE, SIDE), "stretch"),
            "labels": COCO[:classes],
        }
    )


def test_ultralytics_takes_the_best_class_per_anchor_column_then_nms() -> None:
    anchors = anchor_count(SIDE, SIDE, (8, 16, 32))
    assert anchors == 8400
    out = np.zeros((1, 84, anchors), np.float32)
    out[0, :4, 10] = (100, 50, 40, 20)  # cx cy w h in input pixels
    out[0, 4 + 2, 10] = 0.9  # car
    out[0, 4 + 7, 10] = 0.4  # truck, weaker: not this anchor's class
    out[0, :4, 11] = (101, 50, 40, 20)  # a duplicate of the same car: suppressed
    out[0, 4 + 2, 11] = 0.6
    (dets,) = UltralyticsDecoder(80, score_threshold=0.3, nms_iou=0.45)([out], [LETTERBOX])
    assert dets.class_ids.tolist() == [2] and dets.scores.tolist() == pytest.approx([0.9])
    np.testing.assert_allclose(dets.boxes[0], [160, 80, 240, 120])  # twice the input pixels


def test_end_to_end_rows_are_thresholded_not_suppressed() -> None:
    out = np.zeros((2, 300, 6), np.float32)
    out[0, 0] = (10, 20, 50, 60, 0.8, 0)
    out[0, 1] = (12, 20, 50, 60, 0.7, 0)  # overlapping, kept: the export has no duplicates
    out[0, 2] = (0, 0, 5, 5, 0.9, 80)  # a class the labels do not name: dropped
    out[1, 0] = (0, 0, 5, 5, 0.2, 3)  # under the threshold
    first, second = End2EndDecoder(80, score_threshold=0.3)([out], [LETTERBOX, LETTERBOX])
    assert first.scores.tolist() == pytest.approx([0.8, 0.7]) and len(second) == 0
    np.testing.assert_allclose(first.boxes[0], [20, 40, 100, 120])


def test_detr_ultralytics_layouts_map_normalised_boxes_through_the_stretch() -> None:
    scores = np.zeros((1, 300, 84), np.float32)
    scores[0, 0, :4] = (0.5, 0.5, 0.25, 0.25)
    scores[0, 0, 4 + 15] = 0.7  # cat
    (dets,) = DetrDecoder(_manifest("ultralytics"), 0.3)([scores], [STRETCH])
    # Normalised (0.375..0.625) of the input -> of the 1280 x 720 frame.
    np.testing.assert_allclose(dets.boxes[0], [480, 270, 800, 450], rtol=1e-5)
    topk = np.zeros((1, 300, 6), np.float32)
    topk[0, 0] = (0.5, 0.5, 0.25, 0.25, 0.7, 15)
    topk[0, 1] = (0.5, 0.5, 0.25, 0.25, 0.9, 2.5)  # not a whole class: garbage, dropped
    (same,) = DetrDecoder(_manifest("ultralytics-topk"), 0.3)([topk], [STRETCH])
    np.testing.assert_allclose(same.boxes, dets.boxes, rtol=1e-5)
    assert same.class_ids.tolist() == [15]


def test_detr_deployment_exports_give_boxes_in_the_sizes_they_were_given() -> None:
    labels = np.zeros((1, 300), np.int64)
    boxes = np.zeros((1, 300, 4), np.float32)
    scores = np.zeros((1, 300), np.float32)
    labels[0, 0], boxes[0, 0], scores[0, 0] = 0, (320, 160, 480, 320), 0.95
    # The module passes the input's own size, so these are input pixels.
    (dets,) = DetrDecoder(_manifest("postprocessed"), 0.3)([labels, boxes, scores], [STRETCH])
    np.testing.assert_allclose(dets.boxes[0], [640, 180, 960, 360], rtol=1e-5)


def test_rf_detr_skips_the_background_column_and_thresholds_on_the_sigmoid() -> None:
    dets = np.zeros((1, 300, 4), np.float32)
    logits = np.full((1, 300, 91), -10.0, np.float32)
    dets[0, 0] = (0.5, 0.5, 0.25, 0.25)
    logits[0, 0, 0] = 10.0  # background: never a detection
    logits[0, 0, 1 + 15] = np.log(0.7 / 0.3)  # class 15 at sigmoid 0.7
    logits[0, 1, 1 + 3] = np.log(0.2 / 0.8)  # under the threshold
    (found,) = DetrDecoder(_manifest("rf-detr", 90), 0.3)([dets, logits], [STRETCH])
    assert found.class_ids.tolist() == [15] and found.scores.tolist() == pytest.approx([0.7], abs=1e-5)
    # Outputs in either order.
    (again,) = DetrDecoder(_manifest("rf-detr", 90), 0.3)([logits, dets], [STRETCH])
    np.testing.assert_allclose(again.boxes, found.boxes)


def test_a_letterbox_meta_without_a_vertical_scale_uses_the_same_scale_both_ways() -> None:
    assert LetterboxMeta(10, 10, 0.5).scales == (0.5, 0.5)
    assert STRETCH.scales == pytest.approx((0.5, 640 / 720))
