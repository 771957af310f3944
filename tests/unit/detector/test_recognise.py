"""Recognising a detector's family from its ONNX file: metadata first, shapes second.

Each case is the input, output and metadata layout a real exporter writes; the files hold no
weights (recognition never runs the model).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgevision.detector.recognise import UnrecognisedModelError, recognise_file
from tests.support.onnx_shapes import COCO, shape_model, ultralytics_meta

F = "float32"
RTDETR = {"description": "Ultralytics rtdetr-l model ", "head": "RTDETRDecoder"}


def _recognised(tmp_path: Path, inputs, outputs, metadata=None, **kwargs):
    return recognise_file(shape_model(tmp_path / "m.onnx", inputs, outputs, metadata), **kwargs)


CASES = {
    # yolo export format=onnx (YOLOv5u, v8, 11, 12; YOLOv10 and YOLO26 with nms unset, the default)
    "ultralytics": (
        [("images", F, [1, 3, 320, 320])],
        [("output0", F, [1, 84, 2100])],
        ultralytics_meta(),
        ("ultralytics", None, (320, 320), "RGB", "letterbox"),
    ),
    # dynamic=True: batch, height and width open; the size comes from imgsz
    "ultralytics dynamic": (
        [("images", F, ["batch", 3, "height", "width"])],
        [("output0", F, ["batch", 84, "anchors"])],
        ultralytics_meta(args="{'batch': 1, 'nms': None, 'dynamic': True}"),
        ("ultralytics", None, (320, 320), "RGB", "letterbox"),
    ),
    # nms=False on an end-to-end head (YOLO26, YOLOv10)
    "end2end": (
        [("images", F, [1, 3, 320, 320])],
        [("output0", F, [1, 300, 6])],
        ultralytics_meta(end2end="True", args="{'batch': 1, 'nms': False}"),
        ("end2end", None, (320, 320), "RGB", "letterbox"),
    ),
    # nms=True: NMS in the graph, same rows
    "nms=True": (
        [("images", F, [1, 3, 320, 320])],
        [("output0", F, [1, 300, 6])],
        ultralytics_meta(args="{'batch': 1, 'nms': True, 'dynamic': False}"),
        ("end2end", None, (320, 320), "RGB", "letterbox"),
    ),
    # RT-DETR from Ultralytics 8.4: top-k rows of normalised cx cy w h, score, class
    "rt-detr ultralytics 8.4": (
        [("images", F, [1, 3, 640, 640])],
        [("output0", F, [1, 300, 6])],
        ultralytics_meta(**RTDETR),
        ("detr", "ultralytics-topk", (640, 640), "RGB", "stretch"),
    ),
    # RT-DETR from earlier Ultralytics releases: [N, 300, 4 + C], no `head` key
    "rt-detr ultralytics earlier": (
        [("images", F, [1, 3, 640, 640])],
        [("output0", F, [1, 300, 84])],
        {k: v for k, v in ultralytics_meta(**RTDETR, version="8.3.40").items() if k not in ("head", "end2end")},
        ("detr", "ultralytics", (640, 640), "RGB", "stretch"),
    ),
    # RT-DETR / RT-DETRv2 / D-FINE deployment export (export_onnx.py)
    "rt-detr deploy": (
        [("images", F, ["N", 3, 640, 640]), ("orig_target_sizes", "int64", ["N", 2])],
        [("labels", "int64", ["N", 300]), ("boxes", F, ["N", 300, 4]), ("scores", F, ["N", 300])],
        None,
        ("detr", "postprocessed", (640, 640), "RGB", "stretch"),
    ),
    # RF-DETR: dets and class logits with a background column
    "rf-detr": (
        [("input", F, [1, 3, 560, 560])],
        [("dets", F, [1, 300, 4]), ("labels", F, [1, 300, 91])],
        None,
        ("detr", "rf-detr", (560, 560), "RGB", "stretch"),
    ),
    # YOLOX, the official export
    "yolox": (
        [("images", F, [1, 3, 416, 416])],
        [("output", F, [1, 3549, 85])],
        None,
        ("yolox", None, (416, 416), "BGR", "letterbox"),
    ),
    # An Ultralytics layout whose metadata was stripped: told by its anchor columns
    "ultralytics no metadata": (
        [("images", F, [1, 3, 640, 640])],
        [("output0", F, [1, 84, 8400])],
        None,
        ("ultralytics", None, (640, 640), "RGB", "letterbox"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_exporters_layout_is_recognised(tmp_path: Path, case: str) -> None:
    inputs, outputs, metadata, (family, layout, size, channels, resize) = CASES[case]
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"thing {i}" for i in range(80 if family != "detr" or layout != "rf-detr" else 90)))
    needs_labels = metadata is None and family in ("detr", "end2end") and layout != "rf-detr"
    found = _recognised(tmp_path, inputs, outputs, metadata, labels=labels if needs_labels else None)
    manifest = found.manifest
    assert (manifest.family, manifest.layout) == (family, layout), found.recognition.reason
    assert (manifest.input.height, manifest.input.width) == size
    assert (manifest.input.channel_order, manifest.input.resize) == (channels, resize)
    if family != "yolox":
        # Everything but YOLOX takes 0-1 input.
        assert manifest.input.normalization.scale == pytest.approx(1 / 255)
    if metadata is not None:
        assert manifest.labels[:3] == ("person", "bicycle", "car") and found.labels_from.startswith(
            "the file's metadata"
        )
    assert found.recognition.reason


def test_rf_detr_classes_are_the_logit_columns_after_the_background(tmp_path: Path) -> None:
    found = _recognised(
        tmp_path, [("input", F, [1, 3, 560, 560])], [("dets", F, [1, 300, 4]), ("labels", F, [1, 300, 91])]
    )
    assert found.manifest.num_classes == 90 and found.labels_from.startswith("numbered")
    assert found.manifest.input.normalization.mean == (0.485, 0.456, 0.406)


def test_a_labels_file_that_does_not_fit_the_model_is_refused(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    with pytest.raises(UnrecognisedModelError, match=r"names 2 classes; m\.onnx has 80"):
        _recognised(
            tmp_path,
            [("images", F, [1, 3, 320, 320])],
            [("output0", F, [1, 84, 2100])],
            ultralytics_meta(),
            labels=labels,
        )


def test_a_deployment_export_without_labels_asks_for_them(tmp_path: Path) -> None:
    inputs, outputs, _, _ = CASES["rt-detr deploy"]
    with pytest.raises(UnrecognisedModelError, match="labels file"):
        _recognised(tmp_path, inputs, outputs)


def test_a_segmentation_model_is_refused_and_says_why(tmp_path: Path) -> None:
    with pytest.raises(UnrecognisedModelError, match="task segment: only detection models"):
        _recognised(
            tmp_path,
            [("images", F, [1, 3, 640, 640])],
            [("output0", F, [1, 116, 8400]), ("output1", F, [1, 32, 160, 160])],
            ultralytics_meta(task="segment"),
        )


def test_a_model_of_no_known_layout_says_what_it_saw_and_how_to_name_the_family(tmp_path: Path) -> None:
    with pytest.raises(UnrecognisedModelError) as raised:
        _recognised(tmp_path, [("x", F, [1, 3, 224, 224])], [("logits", F, [1, 1000])])
    message = str(raised.value)
    assert "logits float32 [1, 1000]" in message and "--family" in message and "Your own model" in message


def test_naming_a_family_the_file_does_not_fit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnrecognisedModelError, match="the yolox family") as refused:
        _recognised(
            tmp_path,
            [("images", F, [1, 3, 320, 320])],
            [("output0", F, [1, 84, 2100])],
            ultralytics_meta(),
            family="yolox",
        )
    # The family was named already: the advice is to leave it out, not to name it.
    message = str(refused.value)
    assert "leave the family out" in message and "Name the family with" not in message


def test_names_that_are_not_a_plain_literal_are_never_evaluated(tmp_path: Path) -> None:
    """Metadata is read with ast.literal_eval: a names value that is code yields numbered classes."""
    meta = ultralytics_meta(names="__import__('os').system('touch /tmp/pwned-edgevision')")
    found = _recognised(tmp_path, [("images", F, [1, 3, 320, 320])], [("output0", F, [1, 84, 2100])], meta)
    assert found.manifest.labels[0] == "class 0" and not Path("/tmp/pwned-edgevision").exists()


def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"\x00not a model" * 100)
    with pytest.raises(Exception, match="not an ONNX model"):
        recognise_file(path)
    assert COCO.startswith("{0: 'person'")
