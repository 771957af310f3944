"""Redaction by structure, as a property: whatever a password holds (the whole printable range:
spaces, quotes, `@`, `/`, `?`, `#`, `&`, `%`) and whichever URI form carries it, it never appears
in what the module says, in a URI on its own or inside a line of text."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from edgevision.errors import ConfigError
from edgevision.redaction import redact_document, redact_text, redact_uri

PASSWORDS = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=6, max_size=40)
FORMS = [
    "rtsp://admin:{}@10.0.0.5:554/stream1",
    "http://{}@cam.local/video.mjpg",
    "rtsp://{}:x@[fe80::1]:8554/live",
    "http://10.0.0.5/cgi/mjpg?user=admin&pwd={}&res=720",
    "https://bucket.s3.amazonaws.com/clip.mp4?X-Amz-Credential=AKIA&X-Amz-Signature={}",
    "https://cam.example/stream?sessionToken={}&channel=1",
    "file:/media/clip.mp4?token={}",
    "rtsp://10.0.0.5/stream1#{}",
]
HOSTILE = ["p@ss/w?rd#1", 'it\'s "quoted"', "with spaces in it", "a%40b%2Fc", "x://y@z/w", "&loop=1#?@"]


WRAPPERS = ("camera front: cannot open {} (connection refused)", "'{}': 401", "open {} failed")


def _fits(password: str, form: str) -> bool:
    """The password can be told apart from the rest of the URI, the text around it and ***."""
    around = " ".join(w.format(form.replace("{}", "")) for w in WRAPPERS)
    return bool(password.strip("*")) and password not in around and "*" * 3 not in password


@settings(max_examples=400, deadline=None)
@given(password=PASSWORDS, form=st.sampled_from(FORMS))
@example(password="x://y@z/w", form=FORMS[0])
@example(password=" ab://c", form=FORMS[0])
def test_no_password_survives_in_a_uri_or_in_text(password: str, form: str) -> None:
    assume(_fits(password, form))
    uri = form.format(password)
    assert password not in redact_uri(uri)
    for text in (*(w.format(uri) for w in WRAPPERS), uri):
        assert password not in redact_text(text), text
    assert password not in str(redact_document({"uri": uri, "errors": [WRAPPERS[2].format(uri)]}))


@pytest.mark.parametrize("password", HOSTILE)
@pytest.mark.parametrize("form", FORMS)
def test_hostile_passwords_in_every_form_and_in_configuration_errors(password: str, form: str) -> None:
    uri = form.format(password)
    assert password not in redact_uri(uri) and password not in redact_text(f"x {uri} y")
    error = ConfigError([f"cameras.a.uri: {uri!r}: unsupported", f"cameras.a.uri: {uri}"])
    assert password not in str(error)


def test_what_is_not_secret_stays() -> None:
    assert redact_uri("rtsp://10.0.0.5:554/Streaming/Channels/101?channel=1&subtype=0") == (
        "rtsp://10.0.0.5:554/Streaming/Channels/101?channel=1&subtype=0"
    )
    assert redact_text("no address here: " + string.ascii_letters) == "no address here: " + string.ascii_letters
    assert redact_uri("/media/clips/a@b.mp4") == "/media/clips/a@b.mp4"
