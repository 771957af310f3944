"""The desired document kept whole, and the last known good copy on disk."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from edgevision.upstream.desired import DesiredDocument, LastKnownGood


def test_patches_merge_into_the_whole_document_and_nulls_remove_keys() -> None:
    desired = DesiredDocument()
    assert desired.full({"$version": 3, "cameras": {"a": {"uri": "rtsp://a"}}, "bogus": 1, "$metadata": {}})
    assert desired.snapshot() == ({"cameras": {"a": {"uri": "rtsp://a"}}, "bogus": 1}, 3)
    assert desired.patch({"$version": 4, "cameras": {"b": {"uri": "rtsp://b"}}, "bogus": None})
    assert desired.snapshot() == ({"cameras": {"a": {"uri": "rtsp://a"}, "b": {"uri": "rtsp://b"}}}, 4)
    # A patch already in the document (the full read after a reconnect saw it) is not merged again.
    assert not desired.patch({"$version": 4, "cameras": {"a": None}})
    # A full read as new as ours replaces it; an older one (a read that raced a patch) does not.
    assert desired.full({"$version": 4, "cameras": {"c": {"uri": "rtsp://c"}}})
    assert not desired.full({"$version": 3, "cameras": {}})
    assert desired.snapshot() == ({"cameras": {"c": {"uri": "rtsp://c"}}}, 4)


def test_the_first_twin_read_replaces_a_remembered_document_whatever_its_version() -> None:
    # A module re-created by a deployment: its twin's versions start again at 1.
    desired = DesiredDocument({"cameras": {"old": {"uri": "rtsp://old"}}}, version=40)
    assert desired.full({"$version": 2, "cameras": {"new": {"uri": "rtsp://new"}}})
    assert desired.snapshot() == ({"cameras": {"new": {"uri": "rtsp://new"}}}, 2)
    assert not desired.full({"$version": 1})


def test_last_known_good_is_private_and_a_damaged_copy_is_moved_aside(tmp_path: Path) -> None:
    store = LastKnownGood(tmp_path)
    assert store.load() is None and store.damaged is None
    store.save({"cameras": {"a": {"uri": "rtsp://user:secret@a"}}}, 7)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    remembered = LastKnownGood(tmp_path).load()
    assert remembered is not None and remembered.version == 7 and "a" in remembered.document["cameras"]
    for damage in (b"{truncated", b'{"version": 1}', b'["a list"]', b'{"document": [], "version": 1}'):
        store.path.write_bytes(damage)
        again = LastKnownGood(tmp_path)
        assert again.load() is None
        assert again.damaged and "moved aside" in again.damaged
        assert not store.path.exists()
    aside = sorted(p.name for p in tmp_path.iterdir())
    assert aside and all(".damaged-" in name for name in aside)
    json.loads(json.dumps(aside))
