"""Configuration loading and validation, source URIs, frame queues, the JSONL sink."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from edgevision import config as configuration
from edgevision.config import ConfigError
from edgevision.publish.sink import JsonLinesSink
from edgevision.sources import Frame, FrameQueue, parse_source_uri, split_named_source


@pytest.mark.parametrize(
    "uri, kind, target",
    [
        ("rtsp://user:pw@10.0.0.5:554/stream1", "stream", "rtsp://user:pw@10.0.0.5:554/stream1"),
        ("http://127.0.0.1:8080/video.mjpg", "stream", "http://127.0.0.1:8080/video.mjpg"),
        ("https://cam.example/live", "stream", "https://cam.example/live"),
        ("/dev/video2", "usb", "2"),
        ("usb:1", "usb", "1"),
        ("0", "usb", "0"),
        ("file:///videos/a.mp4?loop=1", "file", "/videos/a.mp4"),
        ("/videos/b.mkv", "file", "/videos/b.mkv"),
        ("synthetic:640x480@15", "synthetic", "synthetic"),
    ],
)
def test_source_uris(uri: str, kind: str, target: str) -> None:
    spec = parse_source_uri(uri)
    assert (spec.kind, spec.target) == (kind, target)


def test_source_uri_details(tmp_path: Path) -> None:
    assert parse_source_uri("file:///videos/a.mp4?loop=true").loop
    assert parse_source_uri(str(tmp_path)).kind == "folder"
    synthetic = parse_source_uri("synthetic:640x480@15")
    assert (synthetic.width, synthetic.height, synthetic.fps, synthetic.live) == (640, 480, 15.0, True)
    assert not parse_source_uri("synthetic:64x48@0").live
    assert parse_source_uri("rtsp://h/x").live and not parse_source_uri("/a.mp4").live
    assert split_named_source("front=rtsp://h/x?a=b") == ("front", "rtsp://h/x?a=b")
    assert split_named_source("rtsp://h/x?a=b") == (None, "rtsp://h/x?a=b")


@pytest.mark.parametrize(
    "uri, message",
    [
        ("", "empty"),
        ("ftp://host/file", "unsupported scheme"),
        ("rtsp:///nohost", "no host"),
        ("http://host:99999/x", "(?i)port"),
        ("usb:front", "device index"),
        ("synthetic:big", "synthetic:1280x720@30"),
        ("synthetic:8x8@5", "16..8192"),
    ],
)
def test_bad_source_uris(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_source_uri(uri)


def test_configuration_layers_file_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "edgevision.yaml"
    path.write_text(
        "cameras:\n"
        "  front: {uri: 'rtsp://10.0.0.5/s1', target_fps: 5}\n"
        "  back: {uri: 'synthetic:640x480@10'}\n"
        "model: {score_threshold: 0.4}\n"
        "inference: {max_batch: 4}\n"
    )
    environ = {
        "EDGEVISION_MODEL__SCORE_THRESHOLD": "0.6",
        "EDGEVISION_METRICS_INTERVAL_S": "5",
        "EDGEVISION_MODEL_DIR": "/x",
    }
    config = configuration.load(path, overrides={"inference": {"provider": "cpu"}}, environ=environ)
    assert [c.id for c in config.cameras] == ["front", "back"]
    assert config.camera("front").target_fps == 5
    assert config.model.score_threshold == 0.6  # environment over file
    assert config.metrics_interval_s == 5
    assert (config.inference.max_batch, config.inference.provider) == (4, "cpu")


def test_validation_names_every_bad_field() -> None:
    with pytest.raises(ConfigError) as err:
        configuration.validate(
            {
                "cameras": [{"id": "a", "uri": "ftp://x"}, {"id": "b", "uri": "synthetic:64x64@5", "target_fps": -1}],
                "model": {"score_threshold": 1.5},
                "inference": {"provider": "opencl"},
                "sink": {"kind": "jsonl"},
                "surprise": 1,
            }
        )
    message = str(err.value)
    for field in (
        "cameras.0.uri",
        "cameras.1.target_fps",
        "model.score_threshold",
        "inference.provider",
        "sink",
        "surprise",
    ):
        assert field in message, field


def test_duplicate_camera_ids_are_rejected() -> None:
    with pytest.raises(ConfigError, match="duplicate camera id"):
        configuration.validate({"cameras": [{"id": "a", "uri": "0"}, {"id": "a", "uri": "1"}]})


def test_bad_configuration_files(tmp_path: Path) -> None:
    broken = tmp_path / "c.yaml"
    broken.write_text("cameras: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        configuration.read_file(broken)
    listing = tmp_path / "c.json"
    listing.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="mapping"):
        configuration.read_file(listing)
    with pytest.raises(ConfigError, match="cannot read"):
        configuration.read_file(tmp_path / "missing.yaml")


def test_merge_follows_json_merge_patch() -> None:
    base = {"model": {"name": "yolox-nano", "score_threshold": 0.3}, "metrics_interval_s": 10}
    merged = configuration.merge(base, {"model": {"score_threshold": 0.5}, "metrics_interval_s": None})
    assert merged == {"model": {"name": "yolox-nano", "score_threshold": 0.5}}
    assert base["model"]["score_threshold"] == 0.3


def _frame(seq: int) -> Frame:
    return Frame("cam", seq, 0.0, 0.0, None)


def test_live_queue_drops_the_oldest_and_counts() -> None:
    dropped: list[int] = []
    queue = FrameQueue(2, drop_oldest=True, ready=threading.Condition(), on_drop=lambda f: dropped.append(f.seq))
    stop = threading.Event()
    for seq in range(5):
        assert queue.put(_frame(seq), stop)
    assert dropped == [0, 1, 2]
    assert [queue.pop().seq, queue.pop().seq] == [3, 4] and queue.pop() is None


def test_every_frame_queue_blocks_until_room_or_stop() -> None:
    dropped: list[int] = []
    queue = FrameQueue(1, drop_oldest=False, ready=threading.Condition(), on_drop=lambda f: dropped.append(f.seq))
    stop = threading.Event()
    assert queue.put(_frame(0), stop)
    result: list[bool] = []
    writer = threading.Thread(target=lambda: result.append(queue.put(_frame(1), stop)))
    writer.start()
    writer.join(0.2)
    assert writer.is_alive()  # blocked: nothing is dropped
    assert queue.pop().seq == 0
    writer.join(2)
    assert result == [True] and dropped == []
    blocked = threading.Thread(target=lambda: result.append(queue.put(_frame(2), stop)))
    blocked.start()
    stop.set()
    blocked.join(2)
    assert result == [True, False] and dropped == [2]


def test_jsonl_sink_rotates_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "out" / "results.jsonl"
    sink = JsonLinesSink(path, rotate_bytes=2000, backups=3)
    for seq in range(300):
        sink.publish({"type": "result", "seq": seq, "label": "person"})
    sink.close()
    files = sorted(path.parent.iterdir())
    assert [f.name for f in files] == ["results.jsonl", "results.jsonl.1", "results.jsonl.2", "results.jsonl.3"]
    seqs = []
    for name in ("results.jsonl.3", "results.jsonl.2", "results.jsonl.1", "results.jsonl"):
        text = (path.parent / name).read_text()
        assert text.endswith("\n") and len(text) <= 2000
        seqs.extend(json.loads(line)["seq"] for line in text.splitlines())
    # The newest lines are kept, in order; only the oldest files are gone.
    assert seqs == list(range(seqs[0], 300)) and seqs[0] > 0
