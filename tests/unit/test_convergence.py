"""The configuration rules: base under the whole desired document, rejected whole, last known good."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgevision.config.model import AppConfig
from edgevision.convergence import Convergence, errors_by_key
from edgevision.errors import ConfigError
from edgevision.upstream.desired import LastKnownGood

BASE = {"http": {"enabled": False}, "model": {"score_threshold": 0.3}}
CAM = {"uri": "rtsp://cam/a"}


class Switch:
    """Stands in for the running pipeline: records each configuration it is switched to."""

    def __init__(self) -> None:
        self.configs: list[AppConfig] = []

    def __call__(self, config: AppConfig) -> dict[str, list[str]]:
        self.configs.append(config)
        return {"live": ["x"], "restarted": []}


def _running(tmp_path: Path) -> tuple[Convergence, Switch, list[tuple[list[str], int | None, str]]]:
    state = Convergence(BASE, LastKnownGood(tmp_path))
    rejected: list[tuple[list[str], int | None, str]] = []
    state.on_rejected = lambda error, version, source: rejected.append((error.problems, version, source))
    switch = Switch()
    state.attach(lambda _config: switch)
    return state, switch, rejected


def test_a_rejected_key_rejects_the_whole_document_and_nulling_it_applies_it(tmp_path: Path) -> None:
    state, switch, rejected = _running(tmp_path)
    state.twin_document({"$version": 1, "cameras": {"a": CAM}})
    assert [c.id for c in state.config.cameras] == ["a"] and state.status["applied_version"] == 1
    state.twin_patch({"$version": 2, "model": {"score_threshold": 0.9}, "bogus": 1})
    # Nothing of it applies: not the valid threshold either.
    assert state.config.model.score_threshold == 0.3 and len(switch.configs) == 1
    assert state.status["rejected_version"] == 2 and state.status["errors"] == {
        "bogus": "Extra inputs are not permitted"
    }
    assert rejected == [(["bogus: Extra inputs are not permitted"], 2, "twin")]
    state.twin_patch({"$version": 3, "bogus": None})
    assert state.config.model.score_threshold == 0.9 and state.status["applied_version"] == 3
    assert state.status["rejected_version"] is None and state.source == "twin"


def test_a_full_read_applies_only_when_the_running_configuration_differs(tmp_path: Path) -> None:
    state, switch, _ = _running(tmp_path)
    state.twin_document({"$version": 5, "cameras": {"a": CAM}})
    state.twin_document({"$version": 5, "cameras": {"a": CAM}})
    assert len(switch.configs) == 1
    # A method patch changes the running configuration until the next twin read.
    state.apply_patch({"model": {"score_threshold": 0.6}}, "method")
    assert state.config.model.score_threshold == 0.6
    state.twin_document({"$version": 5, "cameras": {"a": CAM}})
    assert state.config.model.score_threshold == 0.3 and len(switch.configs) == 3


def test_what_cannot_be_built_is_rejected_and_nothing_changes(tmp_path: Path) -> None:
    state = Convergence(BASE, LastKnownGood(tmp_path))

    def broken(_config: AppConfig) -> dict[str, list[str]]:
        raise FileNotFoundError("no such model file")

    state.attach(lambda _config: broken)
    before = state.config
    with pytest.raises(ConfigError, match="model: no such model file"):
        state.apply_patch({"model": {"name": "elsewhere"}}, "method")
    assert state.config == before and "no such model file" in state.status["last_error"]


def test_the_last_good_document_runs_at_the_next_start_over_the_new_base(tmp_path: Path) -> None:
    first, _, _ = _running(tmp_path)
    first.twin_document({"$version": 4, "cameras": {"a": CAM}})
    first.twin_patch({"$version": 5, "bogus": 1})  # rejected: the saved copy stays version 4
    redeployed = Convergence({**BASE, "metrics_interval_s": 2}, LastKnownGood(tmp_path))
    assert redeployed.restore()
    config = redeployed.config
    assert [c.id for c in config.cameras] == ["a"] and config.metrics_interval_s == 2
    assert redeployed.source == "last known good" and redeployed.status["applied_version"] == 4


def test_a_damaged_last_good_copy_starts_from_the_base_and_says_so(tmp_path: Path) -> None:
    LastKnownGood(tmp_path).path.write_text("{not json")
    state = Convergence(BASE, LastKnownGood(tmp_path))
    assert not state.restore()
    assert state.config.cameras == () and state.damaged and "moved aside" in state.damaged


def test_errors_are_keyed_by_field_path_as_twin_property_names() -> None:
    error = ConfigError(["cameras.front.uri: no host", "surprise: Extra inputs are not permitted"])
    assert errors_by_key(error) == {"cameras/front/uri": "no host", "surprise": "Extra inputs are not permitted"}
