"""Source URIs: what kind of camera a string names, and clear errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgevision.config.source_uri import parse_source_uri, split_named_source


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


def test_a_file_that_is_not_a_video_or_an_image_is_not_a_camera(tmp_path: Path) -> None:
    """FFmpeg renders a text file as video (its tty demuxer): a camera would show it to anyone
    with a snapshot."""
    text = tmp_path / "notes.txt"
    text.write_text("secret notes")
    for uri in (str(text), f"file:{text}", str(tmp_path / "no-suffix")):
        with pytest.raises(ValueError, match="a camera file must be a video or an image"):
            parse_source_uri(uri)
    assert parse_source_uri(str(tmp_path / "clip.MP4")).kind == "file"
    assert parse_source_uri(str(tmp_path / "still.jpeg")).kind == "file"
