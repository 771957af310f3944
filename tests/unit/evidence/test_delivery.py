"""destination: folder (a volume Azure Container Storage enabled by Arc syncs to Blob): files
copied in whole, oldest first, each delivery said; a folder that cannot be written is said and
the files are kept until it can. And the credential is never in what a failure says."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgevision.config.evidence import EvidenceConfig
from edgevision.evidence.delivery import BlobDestination, DeliveryError, EvidenceSender, FolderDestination
from edgevision.evidence.store import EvidenceStore, Item
from tests.support.waits import wait_for


def test_files_are_copied_into_the_folder_whole_and_said(tmp_path: Path) -> None:
    synced = tmp_path / "synced"
    config = EvidenceConfig(destination="folder", folder=synced, min_free_mb=0, retry_initial_s=0.05, retry_max_s=0.1)
    store = EvidenceStore(tmp_path / "state", config)
    delivered: list[tuple[Item, str]] = []
    sender = EvidenceSender(
        store, FolderDestination(synced), config, lambda item, where: delivered.append((item, where))
    )
    synced.write_text("a file where the volume should be")  # not mounted yet: unwritable
    sender.start()
    try:
        store.put("door/2026-12-04/a.jpg", b"first", {"camera": "door", "kind": "snapshot"})
        store.put("door/2026-12-04/b.mp4", b"second", {"camera": "door", "kind": "clip"})
        wait_for(
            lambda: store.last_error is not None and "cannot write into" in store.last_error, 10, "the failure said"
        )
        assert delivered == [] and store.stats()["pending"] == 2
        synced.unlink()
        # The volume is there now: everything held goes, oldest first. (The sender, retrying every
        # 50 ms, may make the folder itself between these two lines.)
        synced.mkdir(exist_ok=True)
        wait_for(lambda: len(delivered) == 2, 10, "both delivered")
    finally:
        sender.stop()
    assert [where for _, where in delivered] == [
        str(synced / "door/2026-12-04/a.jpg"),
        str(synced / "door/2026-12-04/b.mp4"),
    ]
    assert (synced / "door/2026-12-04/b.mp4").read_bytes() == b"second"
    assert not list(synced.rglob("*.part"))  # a syncing agent never sees half a file
    assert store.stats()["pending"] == 0 and store.latest("door")["clip"].delivered == delivered[1][1]


def test_a_folder_that_is_a_file_is_said_and_nothing_is_lost(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("x")
    destination = FolderDestination(tmp_path / "not-a-folder")
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"clip")
    with pytest.raises(DeliveryError, match="cannot write into"):
        destination.deliver(source, "door/d/clip.mp4", {})
    assert source.read_bytes() == b"clip"


def test_a_credential_that_is_neither_form_is_refused_without_being_echoed() -> None:
    secret = "AccountKey=hunter2-not-a-connection-string"
    destination = BlobDestination(EvidenceConfig(destination="blob", blob_credential=secret))
    with pytest.raises(DeliveryError) as raised:
        destination.deliver(Path("/nonexistent"), "a.jpg", {})
    assert "hunter2" not in str(raised.value)
    assert "hunter2" not in destination.locate("door/d/a.jpg")
