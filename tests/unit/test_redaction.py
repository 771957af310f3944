"""Camera passwords never leave the module: URIs in every shape users write them."""

from __future__ import annotations

import logging

import pytest

from edgevision.errors import ConfigError
from edgevision.redaction import RedactingFilter, redact_document, redact_text, redact_uri

SECRET = "hunter2"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/stream1", "rtsp://***@10.0.0.5:554/stream1"),
        # The password holds @ and / unencoded: the user part ends at the last @ before the host.
        ("rtsp://admin:hun@ter2@10.0.0.5/stream1", "rtsp://***@10.0.0.5/stream1"),
        ("rtsp://admin:hu/n@ter2@cam.local:554/a/b", "rtsp://***@cam.local:554/a/b"),
        ("http://admin:p%40ss@[fe80::1]:8080/mjpg", "http://***@[fe80::1]:8080/mjpg"),
        (
            "http://10.0.0.5/cgi/mjpg?user=admin&pwd=hunter2&res=720",
            "http://10.0.0.5/cgi/mjpg?user=***&pwd=***&res=720",
        ),
        ("rtsp://cam/live?Password=hunter2;channel=1", "rtsp://cam/live?Password=***;channel=1"),
        (
            "https://x.blob.core.windows.net/v.mp4?sv=2024&sig=hunter2%3D",
            "https://x.blob.core.windows.net/v.mp4?sv=***&sig=***",
        ),
        ("http://cam/a?access_token=hunter2#frag", "http://cam/a?access_token=***#***"),
        ("http://cam/a?api-key=hunter2", "http://cam/a?api-key=***"),
        ("rtsp://10.0.0.5/stream1", "rtsp://10.0.0.5/stream1"),
        ("/data/clips/a@b.mp4", "/data/clips/a@b.mp4"),
        ("synthetic:640x480@10", "synthetic:640x480@10"),
    ],
)
def test_uris_lose_their_credentials(uri: str, expected: str) -> None:
    assert redact_uri(uri) == expected
    assert SECRET not in redact_uri(uri)


def test_uris_inside_text_and_documents() -> None:
    text = "cannot open 'rtsp://admin:hun@ter2@10.0.0.5/x': 401; retrying rtsp://u:hunter2@h/y"
    assert SECRET not in redact_text(text) and "hun@ter2" not in redact_text(text)
    assert redact_text(text).count("***@") == 2
    document = {"cameras": [{"uri": "rtsp://a:hunter2@h/x"}], "errors": ["rtsp://h/x?pwd=hunter2 failed"], "n": 3}
    assert SECRET not in str(redact_document(document)) and redact_document(document)["n"] == 3


def test_configuration_errors_never_quote_a_password() -> None:
    error = ConfigError(["cameras.a.uri: 'rtsq://admin:hun@ter2@10.0.0.5/x': unsupported scheme"])
    assert SECRET not in str(error) and "ter2" not in str(error) and all("ter2" not in p for p in error.problems)


def test_log_records_are_redacted_whoever_logs_them() -> None:
    record = logging.LogRecord(
        "azure", logging.WARNING, __file__, 1, "reconnect to %s failed", ("rtsp://a:hunter2@h/x",), None
    )
    assert RedactingFilter().filter(record)
    assert SECRET not in record.getMessage()
    try:
        raise OSError("open rtsp://a:hunter2@h/x")
    except OSError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    RedactingFilter().filter(failed)
    assert SECRET not in (failed.exc_text or "")
