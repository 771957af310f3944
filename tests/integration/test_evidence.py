"""Evidence against Azurite (the Azure Storage emulator, started from npm as mosquitto is): the
module's snapshots and clips of a real clip's crossings land in Blob Storage with their
metadata, masked and playable (decoded back); a refused credential, a missing container and an
Azurite outage are said and lose nothing (at the sender, and for the whole module with Blob Storage
away from its start); the `evidence` method says where the newest are."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from azure.storage.blob import generate_container_sas

from edgevision.config.evidence import EvidenceConfig
from edgevision.evidence.delivery import BlobDestination, EvidenceSender
from edgevision.evidence.store import EvidenceStore, Item
from tests.support.azurite import ACCOUNT, KEY, Azurite
from tests.support.links import HubLink, Link
from tests.support.waits import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    emulator = Azurite(Path(tempfile.mkdtemp(prefix="azurite-")))
    emulator.start()
    yield emulator
    emulator.stop()


def _sender(store: EvidenceStore, config: EvidenceConfig) -> tuple[EvidenceSender, list[tuple[Item, str]]]:
    delivered: list[tuple[Item, str]] = []
    sender = EvidenceSender(store, BlobDestination(config), config, lambda item, where: delivered.append((item, where)))
    sender.start()
    return sender, delivered


def _fill(store: EvidenceStore, count: int, start: int = 0) -> None:
    for index in range(start, start + count):
        meta = {"camera": "door", "kind": "snapshot", "rule": "line:entrance", "track_id": index, "label": "person"}
        store.put(f"door/2026-12-04/e{index}.jpg", f"jpeg {index}".encode(), meta)


def test_uploads_land_with_their_metadata_in_a_container_made_for_them(azurite: Azurite, tmp_path: Path) -> None:
    config = EvidenceConfig(
        destination="blob", blob_credential=azurite.connection_string(), container="made-here", min_free_mb=0
    )
    store = EvidenceStore(tmp_path, config)
    _fill(store, 3)
    sender, delivered = _sender(store, config)
    try:
        wait_for(lambda: len(delivered) == 3, 30, "three uploads")
    finally:
        sender.stop()
    container = azurite.container("made-here")
    blob = container.get_blob_client("door/2026-12-04/e1.jpg")
    properties = blob.get_blob_properties()
    assert blob.download_blob().readall() == b"jpeg 1"
    assert properties.metadata == {
        "camera": "door",
        "kind": "snapshot",
        "rule": "line:entrance",
        "track_id": "1",
        "label": "person",
    }
    assert properties.content_settings.content_type == "image/jpeg"
    assert delivered[1][1] == f"{azurite.endpoint}/made-here/door/2026-12-04/e1.jpg"
    assert store.stats()["pending"] == 0 and store.stats()["last_error"] is None


def test_a_refused_credential_and_a_missing_container_are_said_and_nothing_is_lost(
    azurite: Azurite, tmp_path: Path
) -> None:
    secret = tmp_path / "credential"
    wrong_key = "A" * 86 + "=="
    secret.write_text(azurite.connection_string(key=wrong_key))
    config = EvidenceConfig(
        destination="blob",
        blob_credential_file=secret,
        container="refusals",
        min_free_mb=0,
        retry_initial_s=0.2,
        retry_max_s=0.5,
    )
    store = EvidenceStore(tmp_path / "store", config)
    _fill(store, 2)
    sender, delivered = _sender(store, config)
    try:
        wait_for(lambda: store.last_error and "refused the credential" in store.last_error, 20, "the refusal said")
        assert delivered == [] and store.stats()["pending"] == 2
        assert wrong_key not in store.last_error
        # A SAS URL for a container that does not exist: it cannot make one; said so.
        sas = generate_container_sas(
            ACCOUNT, "nowhere", account_key=KEY, permission="rcw", expiry=datetime.now(UTC) + timedelta(hours=1)
        )
        secret.write_text(f"{azurite.endpoint}/nowhere?{sas}")
        wait_for(lambda: "does not exist" in (store.last_error or ""), 20, "the missing container said")
        assert "sig=" not in store.last_error and sas not in store.last_error and store.stats()["pending"] == 2
        # The mounted Secret is fixed: read again, and everything held goes.
        secret.write_text(azurite.connection_string())
        wait_for(lambda: len(delivered) == 2, 30, "the held files delivered")
    finally:
        sender.stop()
    assert sorted(b.name for b in azurite.container("refusals").list_blobs()) == [
        "door/2026-12-04/e0.jpg",
        "door/2026-12-04/e1.jpg",
    ]


def test_an_azurite_outage_loses_nothing(azurite: Azurite, tmp_path: Path) -> None:
    config = EvidenceConfig(
        destination="blob",
        blob_credential=azurite.connection_string(),
        container="outage",
        min_free_mb=0,
        retry_initial_s=0.2,
        retry_max_s=1.0,
        timeout_s=3,
    )
    store = EvidenceStore(tmp_path, config)
    sender, delivered = _sender(store, config)
    try:
        _fill(store, 2)
        wait_for(lambda: len(delivered) == 2, 30, "uploads before the outage")
        azurite.stop()
        _fill(store, 5, start=2)  # made while Blob Storage is away
        wait_for(lambda: "cannot reach" in (store.last_error or ""), 20, "the outage said")
        assert store.stats()["pending"] == 5
        azurite.start()
        wait_for(lambda: len(delivered) == 7, 60, "everything held delivered")
    finally:
        if not azurite.running:
            azurite.start()
        sender.stop()
    assert len(list(azurite.container("outage").list_blobs())) == 7
    assert store.stats()["dropped"] == {}


def _decode(data: bytes, suffix: str, folder: Path) -> list[np.ndarray]:
    path = folder / f"downloaded.{suffix}"
    path.write_bytes(data)
    if suffix == "jpg":
        return [cv2.imread(str(path))]
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def _crossings(assets: Path, **extra: Any) -> dict[str, Any]:
    """A camera on the pedestrians clip (100 frames, every one) keeping evidence of its crossings."""
    plaza = {
        "uri": str(assets / "video" / "pedestrians-720p.avi"),
        "every_frame": True,
        "max_frames": 100,
        "lines": {"walkway": {"points": "0,0.5 1,0.5"}},
        "evidence": {"enabled": True, "pre_s": 1, "post_s": 1},
        **extra,
    }
    return {"cameras": {"plaza": plaza}}


def _blob_env(azurite: Azurite, container: str) -> dict[str, str]:
    """Evidence to Azurite: where it goes is the device owner's (local) choice, in the environment."""
    return {
        "EDGEVISION_EVIDENCE__DESTINATION": "blob",
        "EDGEVISION_EVIDENCE__BLOB_CREDENTIAL": azurite.connection_string(),
        "EDGEVISION_EVIDENCE__CONTAINER": container,
    }


def test_the_module_uploads_masked_snapshots_and_playable_clips_of_crossings(
    hub_factory, run_module, broker, azurite: Azurite, assets: Path, tmp_path: Path
) -> None:
    link: Link = HubLink(hub_factory, run_module, broker)
    desired = _crossings(assets, masks={"corner": {"polygon": "0,0 0.25,0 0.25,0.25 0,0.25"}})
    # Where evidence goes is the device owner's (local) choice: a twin may not name it.
    module = link.start(
        desired,
        env=_blob_env(azurite, "edge-device-1"),
    )

    def delivered(kind: str) -> list[dict[str, Any]]:
        return [m.body for m in link.sent("events") if m.body.get("event") == "evidence" and m.body["kind"] == kind]

    try:
        wait_for(lambda: delivered("clip") and delivered("snapshot"), 120, "a clip and a snapshot delivered")
    except AssertionError:
        print([m.body.get("event") for m in link.sent("events")], module.stderr[-5000:])
        raise
    crossings = [m.body for m in link.sent("events") if m.body.get("event") == "line_cross"]
    clip_event, snapshot_event = delivered("clip")[0], delivered("snapshot")[0]
    # The crossing said where its evidence would be; the upload put it there.
    assert clip_event["location"] in {c["evidence"]["clip"] for c in crossings}
    assert snapshot_event["location"] in {c["evidence"]["snapshot"] for c in crossings}
    assert clip_event["location"].startswith(f"{azurite.endpoint}/edge-device-1/plaza/")

    container = azurite.container("edge-device-1")
    blob_name = clip_event["location"].split("/edge-device-1/", 1)[1]
    clip = container.get_blob_client(blob_name)
    metadata = clip.get_blob_properties().metadata
    assert metadata["camera"] == "plaza" and metadata["rule"] == "line" and metadata["label"] == "person"
    assert metadata["codec"] == "h264" and metadata["browser_playable"] == "True"
    frames = _decode(clip.download_blob().readall(), "mp4", tmp_path)
    assert len(frames) == int(metadata["frames"]) >= 10 and frames[0].shape == (720, 1280, 3)
    assert max(int(f[8:176, 8:312].max()) for f in frames) <= 8  # the mask, black in every frame
    snapshot_name = snapshot_event["location"].split("/edge-device-1/", 1)[1]
    (snapshot,) = _decode(container.get_blob_client(snapshot_name).download_blob().readall(), "jpg", tmp_path)
    # Black inside the mask (1280 x 0.25 = 320 by 180), short of the decoder's chroma
    # upsampling at its edge.
    assert snapshot.shape == (720, 1280, 3) and snapshot[:160, :304].max() == 0

    status, latest = link.invoke("evidence", {"camera": "plaza"})
    assert status == 200 and latest["clip"]["location"].startswith(f"{azurite.endpoint}/edge-device-1/plaza/")
    assert link.invoke("evidence", {"camera": "nope"})[0] == 404
    _code, document = link.invoke("getStatus")
    queue = document["evidence"]
    assert queue["delivered"] >= 2 and queue["last_error"] is None and queue["recorder"]["codec"] == "h264"
    # The account key is never echoed: not in events, status or the log.
    assert KEY not in str([m.body for m in link.sent("events")]) + str(document)
    assert module.stop() == 0
    assert KEY not in module.stderr


def test_a_twin_may_not_choose_where_the_video_goes(hub_factory, run_module, broker, azurite: Azurite) -> None:
    link = HubLink(hub_factory, run_module, broker)
    module = link.start({"cameras": {"syn": {"uri": "synthetic:64x48@5"}}})
    wait_for(lambda: link.hub is not None and link.hub.reported.get("config", {}).get("applied_version"), 60, "up")
    assert link.hub is not None
    version = link.hub.patch_desired(
        {"evidence": {"destination": "blob", "blob_credential": "https://attacker/c?sig=x"}}
    )
    wait_for(lambda: link.hub.reported.get("config", {}).get("rejected_version") == version, 30, "the refusal")
    error = link.hub.reported_now()["config"]["last_error"]
    assert "evidence.destination" in error and "sig=x" not in error
    assert module.stop() == 0


def test_the_module_holds_evidence_while_blob_storage_is_away_and_delivers_each_once(
    hub_factory, run_module, broker, azurite: Azurite, assets: Path
) -> None:
    """The whole module, Blob Storage unreachable from its start (a device up before its
    network's storage): the crossings' snapshots and clips wait on the state volume, the status
    says why, and once Azurite is back each is delivered, once, as its `evidence` event says."""
    link: Link = HubLink(hub_factory, run_module, broker)
    desired = _crossings(assets)
    env = {
        **_blob_env(azurite, "held-while-away"),
        "EDGEVISION_EVIDENCE__RETRY_INITIAL_S": "0.2",
        "EDGEVISION_EVIDENCE__RETRY_MAX_S": "1",
    }
    azurite.stop()
    try:
        module = link.start(desired, env=env)

        def queue() -> dict[str, Any]:
            return link.invoke("getStatus")[1]["evidence"]

        # Every crossing of the 100 frames recorded (their clips closed), none delivered.
        wait_for(
            lambda: (
                link.hub is not None
                and link.hub.reported.get("cameras", {}).get("plaza", {}).get("state") == "finished"
                and queue()["pending"] >= 2
                and queue()["written"] == queue()["pending"]
            ),
            120,
            "evidence held while Blob Storage is away",
        )
        held = queue()
        assert held["delivered"] == 0 and "cannot reach" in (held["last_error"] or "")
        assert not [m for m in link.sent("events") if m.body.get("event") == "evidence"]
        azurite.start()
        wait_for(lambda: queue()["pending"] == 0, 60, "everything held delivered")
    finally:
        if not azurite.running:
            azurite.start()
    done = queue()
    assert done["delivered"] == held["written"] and done["dropped"] == {}
    locations = [m.body["location"] for m in link.sent("events") if m.body.get("event") == "evidence"]
    assert len(locations) == len(set(locations)) == held["written"]
    blobs = {b.name for b in azurite.container("held-while-away").list_blobs()}
    assert {loc.split("/held-while-away/", 1)[1] for loc in locations} == blobs
    assert module.stop() == 0
    assert KEY not in module.stderr
