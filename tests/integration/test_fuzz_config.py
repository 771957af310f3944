"""Fuzzing the patch handler of a running module: a patch applies whole or not at all."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings

from edgevision.config.load import merge, validate
from edgevision.errors import ConfigError
from tests.support.config_strategies import documents


@pytest.fixture(scope="module")
def module(model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    import os

    from edgevision.module import Module

    os.environ["EDGEVISION_MODEL_DIR"] = str(model_path.parent)
    out = tmp_path_factory.mktemp("fuzz")
    running = Module(
        {
            "cameras": {"syn": {"uri": "synthetic:64x48@5"}},
            "sink": {"kind": "jsonl", "path": str(out / "o.jsonl")},
            "http": {"enabled": False},
        },
        environ={},
    )
    running.start()
    yield running
    running.request_stop()
    running.wait(15)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(patch=documents)
def test_a_patch_applies_whole_or_not_at_all(module, patch: Any) -> None:
    before_document = copy.deepcopy(module.document)
    before_config = module.config
    try:
        module.apply_patch(patch)
    except ConfigError as exc:
        event("rejected")
        assert exc.problems
        # Rejected as a whole: the module, the running pipeline and the report are unchanged.
        assert module.document == before_document
        assert module.config == before_config and module.pipeline.config == before_config
        assert module.config_status["last_error"]
    else:
        event("applied")
        expected = validate(merge(before_document, patch))
        assert module.config == expected == module.pipeline.config
        # Put the running configuration back for the next example (not part of the check).
        module.apply_patch({k: None for k in patch})
        module.apply_patch({k: before_document[k] for k in patch if k in before_document})
        assert module.document == before_document
