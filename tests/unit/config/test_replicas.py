"""Cameras spread over replicas by rendezvous hashing: each camera has exactly one replica, the
shares are even, a change of the replica count moves only what the new (or removed) replica
takes (or gave up), and a replica with no known ordinal refuses to guess."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from edgevision.config.load import validate
from edgevision.config.replicas import ReplicasConfig, held, ordinal_from_host, owner
from edgevision.errors import ConfigError
from edgevision.pipeline.pipeline import Pipeline
from tests.support.fakes import EngineFactory, pipeline_seams
from tests.support.sinks import CollectingSink

CAMERAS = [f"cam-{i:03d}" for i in range(300)]


def test_every_camera_has_exactly_one_replica_and_the_shares_are_even() -> None:
    shares = [held(CAMERAS, ordinal, 3) for ordinal in range(3)]
    assert sorted(c for share in shares for c in share) == sorted(CAMERAS)
    assert all(70 <= len(share) <= 130 for share in shares), [len(s) for s in shares]
    assert held(CAMERAS, 0, 1) == CAMERAS


def test_scaling_out_moves_only_the_cameras_the_new_replica_takes() -> None:
    before = {c: owner(c, 3) for c in CAMERAS}
    after = {c: owner(c, 4) for c in CAMERAS}
    moved = [c for c in CAMERAS if before[c] != after[c]]
    assert all(after[c] == 3 for c in moved)
    assert 0.15 * len(CAMERAS) < len(moved) < 0.35 * len(CAMERAS)
    # Scaling back: only the removed replica's cameras move, back where they were.
    assert all(owner(c, 3) == before[c] for c in CAMERAS)
    assert Counter(after.values())[3] == len(moved)


def test_a_statefulset_pod_name_gives_the_ordinal() -> None:
    assert ordinal_from_host("edgevision-2") == 2
    assert ordinal_from_host("edgevision-analytics-12\n") == 12
    assert ordinal_from_host("vm") is None and ordinal_from_host("host-") is None


def test_an_ordinal_outside_the_count_is_refused() -> None:
    with pytest.raises(ValidationError, match="not below count"):
        ReplicasConfig(count=2, ordinal=2)


def _document(**replicas: int) -> dict:
    cameras = {f"c{i}": {"uri": "synthetic:64x48@0", "max_frames": 1} for i in range(9)}
    return {"cameras": cameras, "replicas": replicas}


def test_a_replica_takes_its_share_and_says_so_and_one_without_an_ordinal_refuses() -> None:
    engines = EngineFactory()
    pipeline = Pipeline(validate(_document(count=3, ordinal=1)), CollectingSink(), seams=pipeline_seams(engines))
    mine = held([f"c{i}" for i in range(9)], 1, 3)
    assert [c.id for c in pipeline.config.cameras] == mine
    assert pipeline.replica_status() == {"ordinal": 1, "count": 3, "cameras": sorted(mine), "configured": 9}
    with pytest.raises(ConfigError, match="ordinal is unknown"):
        Pipeline(validate(_document(count=3)), CollectingSink(), seams=pipeline_seams(engines))
    from_host = Pipeline(validate(_document(count=3)), CollectingSink(), seams=pipeline_seams(engines), host_ordinal=2)
    assert [c.id for c in from_host.config.cameras] == held([f"c{i}" for i in range(9)], 2, 3)
