"""The module's upstream against a real broker (mosquitto with TLS) and real processes: what
both links promise (results, events and metrics delivered with their properties, the methods,
the 256 KB guard, nothing lost over an outage or a kill -9, a bounded stop) run over each, IoT
Hub through the local edgeHub with the real SDK and MQTT v5 (tests/support/links.py); what only
the twin does (live configuration with its $version) over IoT Hub."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.support.edgehub import IoTHubSimulator
from tests.support.links import HubLink, Link, results
from tests.support.waits import wait_for

pytestmark = pytest.mark.slow


def test_results_metrics_and_events_reach_their_outputs(link: Link, assets: Path, tmp_path: Path) -> None:
    video = assets / "video" / "pedestrians-720p.avi"
    desired = {
        "cameras": {
            "plaza": {"uri": str(video), "every_frame": True, "max_frames": 80, "detection": {"mode": "every_frame"}}
        },
        "upstream": {"results_mode": "every_frame"},
        "metrics_interval_s": 1,
    }
    module = link.start(desired)
    wait_for(lambda: len(link.sent("results")) >= 80 and link.sent("metrics"), 90, "80 results and metrics")
    assert module.stop() == 0, module.stderr
    wait_for(lambda: any(m.body["event"] == "stopped" for m in link.sent("events")), 10, "the stopped event")
    sent = link.sent("results")
    assert len(sent) == 80
    for message in sent:
        assert message.properties["content_type"] == "application/json"
        assert (message.properties["camera"], message.properties["type"]) == ("plaza", "result")
        assert message.properties["schema"] == "edgevision.result/1"
        assert message.properties["message_id"].endswith(f":plaza:{message.body['seq']}")
    assert [m.body["seq"] for m in sent] == list(range(80))
    metrics = link.sent("metrics")
    assert metrics[-1].properties["type"] == "metrics" and metrics[-1].body["cameras"]["plaza"]["inferred"] == 80
    events = [m.body["event"] for m in link.sent("events")]
    assert events[0] == "started" and "stopped" in events
    if isinstance(link, HubLink):
        assert link.hub is not None
        assert {(m.device, m.module) for m in link.hub.outputs()} == {("edge-device", "edgevision")}

    # The same camera run stand-alone, with neither link, gives the same results.
    out = tmp_path / "local.jsonl"
    local = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgevision",
            "run",
            "--source",
            f"plaza={video}",
            "--every-frame",
            "--detection",
            "every_frame",
            "--max-frames",
            "80",
            "--sink",
            f"jsonl:{out}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "EDGEVISION_MODEL_DIR": str(assets / "models"), "EDGEVISION_HTTP__ENABLED": "false"},
        check=False,
    )
    assert local.returncode == 0, local.stderr
    local_results = [json.loads(line) for line in out.read_text().splitlines() if '"type":"result"' in line]
    assert len(local_results) == len(sent)
    assert [r["detections"] for r in local_results] == [m.body["detections"] for m in sent]


def _results(hub: IoTHubSimulator) -> list[dict[str, Any]]:
    return [m.body for m in hub.outputs("results")]


def test_twin_configures_the_module_live(hub_factory, run_module, assets: Path) -> None:
    video = assets / "video" / "pedestrians-720p.avi"
    desired = {
        "cameras": {"plaza": {"uri": f"file:{video}?loop=1"}},
        "model": {"score_threshold": 0.6},
        "upstream": {"results_mode": "every_frame", "report_min_interval_s": 0.2},
    }
    hub = hub_factory(desired)
    module = run_module(hub)
    hub.wait_for(lambda: len(_results(hub)) >= 20, 60, "first results")
    # The desired document at start is in force...
    assert all(d["score"] >= 0.6 for r in _results(hub) for d in r["detections"])
    hub.wait_for(lambda: hub.reported.get("config", {}).get("applied_version") == 1, 20, "version 1 reported")
    reported = hub.reported_now()
    assert reported["inference"]["provider"] == "CPUExecutionProvider"
    assert "CUDAExecutionProvider" in reported["inference"]["dropped"]
    assert reported["cameras"]["plaza"]["state"] == "streaming"
    assert reported["accelerator"]["mode"] == "none" and reported["module"]["mode"] == "local-dev"
    status, before = hub.invoke("getStatus")
    assert status == 200

    # ...a patch takes effect without a restart and is reported with its $version...
    version = hub.patch_desired({"model": {"score_threshold": 0.85}, "cameras": {"plaza": {"target_fps": 4}}})
    hub.wait_for(lambda: hub.reported.get("config", {}).get("applied_version") == version, 20, "patch reported")
    time.sleep(1.0)
    mark, started = len(_results(hub)), time.monotonic()
    time.sleep(4.0)
    later = _results(hub)[mark:]
    rate = len(later) / (time.monotonic() - started)
    assert 2.5 <= rate <= 5.5, rate
    assert later and all(d["score"] >= 0.85 for r in later for d in r["detections"])
    status, after = hub.invoke("getStatus")
    assert after["started_at"] == before["started_at"] and module.proc.poll() is None
    assert after["configuration"]["model"]["score_threshold"] == 0.85

    # ...and an invalid one is rejected whole, reported, and changes nothing.
    bad = hub.patch_desired({"model": {"score_threshold": 2.0}, "cameras": {"plaza": {"target_fps": 9}}})
    hub.wait_for(lambda: hub.reported.get("config", {}).get("rejected_version") == bad, 20, "rejection reported")
    config = hub.reported_now()["config"]
    assert config["applied_version"] == version and "model.score_threshold" in config["last_error"]
    status, after = hub.invoke("getStatus")
    assert after["configuration"]["model"]["score_threshold"] == 0.85
    assert after["configuration"]["cameras"][0]["target_fps"] == 4  # the valid half was not applied either
    events = [m.body for m in hub.outputs("events")]
    assert any(e["event"] == "config_rejected" and e["version"] == bad for e in events)
    assert module.stop() == 0


def test_direct_methods(link: Link, assets: Path) -> None:
    video = assets / "video" / "pedestrians-720p.avi"
    link.start({"cameras": {"plaza": {"uri": f"file:{video}?loop=1"}, "syn": {"uri": "synthetic:320x240@5"}}})
    wait_for(lambda: any(m.body.get("event") == "started" for m in link.sent("events")), 60, "module start")
    time.sleep(1.0)

    status, document = link.invoke("getStatus")
    assert status == 200 and set(document["cameras"]) == {"plaza", "syn"}
    assert document["provider"]["provider"] == "CPUExecutionProvider"
    assert document["upstream"]["connected"] and document["upstream"]["link"] == link.name

    assert link.invoke("applyConfig", {"model": {"score_threshold": 0.45}})[0] == 200
    assert link.invoke("getStatus")[1]["configuration"]["model"]["score_threshold"] == 0.45
    status, answer = link.invoke("applyConfig", {"model": {"score_threshold": "high"}, "metrics_interval_s": -1})
    assert status == 400 and any("model.score_threshold" in e for e in answer["errors"])
    assert any("metrics_interval_s" in e for e in answer["errors"])
    assert link.invoke("applyConfig", "threshold=0.5")[0] == 400
    # The upstream section is live: from on_change (the default) to every frame's result.
    before = len(results(link, "syn"))
    assert link.invoke("applyConfig", {"upstream": {"results_mode": "every_frame"}})[0] == 200
    wait_for(lambda: len(results(link, "syn")) >= before + 8, 15, "every frame's result once the mode changed")

    assert link.invoke("restartCamera", {"camera": "syn"}) == (200, {"camera": "syn", "restarted": True})
    assert link.invoke("restartCamera", {"camera": "nope"})[0] == 404
    assert link.invoke("restartCamera", {})[0] == 400

    status, shot = link.invoke("snapshot", {"camera": "plaza"})
    assert status == 200 and shot["content_type"] == "image/jpeg"
    jpeg = base64.b64decode(shot["jpeg_base64"])
    assert len(jpeg) <= 90_000
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[1] <= shot["width"]
    small = link.invoke("snapshot", {"camera": "plaza", "max_bytes": 10_000})[1]
    assert 0 < len(base64.b64decode(small["jpeg_base64"])) <= 10_000
    assert link.invoke("snapshot", {"camera": "nope"})[0] == 404

    status, answer = link.invoke("reboot")
    assert status == 404 and answer["methods"] == ["applyConfig", "evidence", "getStatus", "restartCamera", "snapshot"]


def test_a_300_kb_result_is_split_not_rejected(link: Link) -> None:
    from edgevision.publish.messages import encode
    from edgevision.publish.results_modes import ResultsReducer
    from edgevision.upstream.iothub import IoTHubSink
    from edgevision.upstream.outbox import Outbox
    from edgevision.upstream.sender import MessageSender, to_message

    link.listen({})
    detections = [
        {
            "label": "person",
            "class_id": 0,
            "score": 0.5 + i / 10000,
            "box": {"x1": i, "y1": i + 0.5, "x2": i + 10.25, "y2": i + 20.75},
            "box_norm": [0.12345, 0.23456, 0.34567, 0.45678],
        }
        for i in range(2500)
    ]
    big = {"type": "result", "schema": "edgevision.result/1", "camera": "crowd", "seq": 7, "detections": detections}
    assert len(json.dumps(big)) > 300_000
    with link.client() as client:
        if isinstance(link, HubLink):
            with pytest.raises(ValueError, match="256"):  # what the guard prevents
                client.send_message_to_output(to_message(encode(big).encode(), {}), "results")
        sender = MessageSender(lambda: client, Outbox(":memory:"), run_id="test")
        sender.start()
        try:
            IoTHubSink(sender, ResultsReducer("every_frame", 60, 60)).publish(big)

            def parts() -> list[Any]:
                return [m for m in link.sent("results") if m.body.get("camera") == "crowd"]

            wait_for(lambda: parts() and len(parts()) == parts()[0].body["part"]["count"], 30, "all parts")
            assert sender.stats()["outbox"]["dropped"] == {}
        finally:
            sender.stop()
    received = parts()
    assert len(received) >= 2 and all(p.size < 256 * 1024 for p in received)
    assert [p.body["part"]["index"] for p in received] == list(range(len(received)))
    assert all((p.body["camera"], p.body["seq"]) == ("crowd", 7) for p in received)
    assert [d for p in received for d in p.body["detections"]] == detections
    assert [p.properties["message_id"] for p in received] == [f"test:crowd:7:{i}" for i in range(len(received))]


def _captured_between(results: list[dict[str, Any]], start: float, end: float) -> set[int]:
    from datetime import datetime

    return {r["seq"] for r in results if start <= datetime.fromisoformat(r["captured_at"]).timestamp() <= end}


def test_broker_outage_is_survived(link: Link) -> None:
    # The outage outlasts the stale-connection time, so the IoT Hub client is also replaced in it.
    fps, frames, stale_s, outage_s = 20, 20 * 15, 3, 8
    desired = {
        "cameras": {"syn": {"uri": f"synthetic:320x240@{fps}", "max_frames": frames}},
        "upstream": {"results_mode": "every_frame", "connection_retry_interval_s": 1, "stale_after_s": stale_s},
        "metrics_interval_s": 1,
    }
    module = link.start(desired)
    wait_for(lambda: len(results(link)) >= 20, 60, "results before the outage")
    link.broker.stop()
    outage_start = time.time()
    time.sleep(outage_s)
    outage_end = time.time()
    link.broker.start()
    # The camera stops at `frames`; then everything held in the outbox must arrive.
    wait_for(lambda: {r["seq"] for r in results(link)} >= set(range(frames)), 120, "every result")

    def drained() -> bool:
        code, document = link.invoke("getStatus")
        return code == 200 and document["upstream"]["queued"] == 0

    wait_for(drained, 30, "an empty outbox")
    _status, document = link.invoke("getStatus")
    upstream = document["upstream"]
    print(f"\n{link.name} upstream after the outage:", upstream)
    assert upstream["connected"] and upstream["connects"] >= 2 and upstream["disconnects"] >= 1
    if isinstance(link, HubLink):  # disconnected longer than upstream.stale_after_s: a new client
        assert upstream["client_rebuilds"] >= 1
    received_results = results(link)
    received = [r["seq"] for r in received_results]
    # Every result captured during the outage arrives exactly once, in order.
    during = _captured_between(received_results, outage_start + 1, outage_end - 1)
    assert len(during) >= fps * (outage_s - 2) * 0.8
    assert all(received.count(seq) == 1 for seq in during)
    assert [seq for seq in received if seq in during] == sorted(during)
    # At-least-once overall: at most the message in flight when the broker died comes twice.
    assert len(received) - len(set(received)) <= 1
    outbox = upstream["outbox"]
    # Metrics keep arriving every second, so a message or two may be queued at any moment.
    assert outbox["dropped"] == {} and outbox["queued"] <= 3 and outbox["resent"] >= 1
    # What the outage held back is what arrived afterwards: the results captured in it.
    assert upstream["held_during_outages"]["results"] >= len(during)
    assert outbox["enqueued"] + outbox["inherited"] == outbox["sent"] + outbox["queued"] + sum(
        outbox["dropped"].values()
    )
    assert upstream["sent"]["results"] == len(set(received)) == frames
    assert module.stop() == 0


def test_kill_9_loses_nothing_the_outbox_held(link: Link, tmp_path: Path) -> None:
    import sqlite3

    desired = {
        "cameras": {"syn": {"uri": "synthetic:320x240@20"}},
        "upstream": {"results_mode": "every_frame", "connection_retry_interval_s": 1},
    }
    state = tmp_path / "crash-state"
    first = link.start(desired, state_dir=state)
    wait_for(lambda: len(results(link)) >= 20, 60, "results before the outage")
    link.broker.stop()
    time.sleep(5)
    first.kill()
    with sqlite3.connect(state / "outbox.sqlite") as db:
        pending = [mid for (mid,) in db.execute("SELECT message_id FROM outbox WHERE output = 'results' ORDER BY id")]
    assert len(pending) >= 50, "the outage should have left results in the outbox"
    run1 = pending[0].split(":")[0]
    link.broker.start()
    second = link.start(desired, state_dir=state)

    def ids() -> list[str]:
        return [m.properties.get("message_id", "") for m in link.sent("results")]

    wait_for(lambda: set(pending) <= set(ids()), 90, "the first run's held results")
    wait_for(lambda: any(not mid.startswith(run1) for mid in ids()), 60, "the second run's own results")
    delivered = ids()
    # Each of the first run's messages at most twice (sent, then resent after the crash).
    assert max(delivered.count(mid) for mid in pending) <= 2
    assert all(mid.count(":") == 2 for mid in delivered)  # run:camera:seq, what users de-duplicate on
    # The held results went out first, before the new run's.
    first_new = next(i for i, mid in enumerate(delivered) if not mid.startswith(run1))
    assert set(pending) <= set(delivered[:first_new])
    _status, document = link.invoke("getStatus")
    assert document["upstream"]["outbox"]["inherited"] >= len(pending)
    assert second.stop() == 0


def test_methods_and_patches_work_after_the_broker_loses_subscriptions(link: Link) -> None:
    """edgeHub (or a broker) restarted without its sessions: the IoT Hub SDK neither
    re-subscribes nor notices, so the module renews its subscriptions itself; the MQTT link
    subscribes to its commands at every connection."""
    desired = {
        "cameras": {"syn": {"uri": "synthetic:320x240@10"}},
        "upstream": {"connection_retry_interval_s": 1, "report_min_interval_s": 0.2},
    }
    module = link.start(desired)
    wait_for(lambda: results(link) or link.sent("events"), 60, "module up")
    assert link.invoke("getStatus")[0] == 200
    link.broker.stop(forget_sessions=True)
    time.sleep(2)
    link.broker.start()
    deadline = time.monotonic() + 45
    while True:
        try:
            status, _ = link.invoke("getStatus", timeout=3)
            break
        except TimeoutError:
            if time.monotonic() > deadline:
                module.stop()
                raise AssertionError(
                    f"methods never answered after the broker lost the sessions:\n{module.stderr[-3000:]}"
                ) from None
    assert status == 200
    try:
        link.reconfigure({"model": {"score_threshold": 0.7}})
    except AssertionError:
        module.stop()
        raise AssertionError(f"patch not applied:\n{module.stderr[-4000:]}") from None
    assert link.invoke("getStatus")[1]["configuration"]["model"]["score_threshold"] == 0.7
    assert module.stop() == 0


def test_a_stop_with_the_broker_frozen_ends_within_the_grace(link: Link) -> None:
    """IoT Edge kills a module 10 s after SIGTERM (Kubernetes after its grace period): with the
    broker hung (SIGSTOP, the port open and nothing answered), every upstream call at the stop
    shares upstream.stop_grace_s (8 s by default; 4 s here, to keep the test short)."""
    grace_s = 4
    module = link.start(
        {
            "cameras": {"syn": {"uri": "synthetic:320x240@20"}},
            "upstream": {"results_mode": "every_frame", "report_min_interval_s": 0.2, "stop_grace_s": grace_s},
            "metrics_interval_s": 1,
        }
    )
    wait_for(lambda: len(results(link)) >= 20, 60, "results flowing")
    link.broker.freeze()
    try:
        time.sleep(1)  # calls are in flight and unanswered now
        started = time.monotonic()
        code = module.stop()
        took = time.monotonic() - started
    finally:
        link.broker.thaw()
    assert took < grace_s + 2.0 and code == 0, (took, code, module.stderr[-2000:])
