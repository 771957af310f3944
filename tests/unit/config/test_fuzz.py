"""Fuzzing the configuration parser: every document is accepted (and round-trips) or refused
with each problem named, never another exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from edgevision.config.load import validate
from edgevision.config.model import AppConfig
from edgevision.errors import ConfigError
from tests.support.config_strategies import documents


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_the_parser_accepts_or_names_the_problem(document: Any) -> None:
    try:
        config = validate(document)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
    else:
        assert isinstance(config, AppConfig)
        # What was accepted survives a round trip as the module reports it.
        assert validate(json.loads(json.dumps(config.model_dump(mode="json")))) == config


def test_an_oversized_document_is_refused() -> None:
    with pytest.raises(ConfigError, match="at most 32768"):
        validate({"cameras": {f"cam{i}": {"uri": f"rtsp://10.0.0.{i % 250}/stream/{'x' * 200}"} for i in range(200)}})
