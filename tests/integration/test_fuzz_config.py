"""Fuzzing the patch handler of a running module: a patch applies whole or not at all."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings

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


# What confinement may relocate: the results file, the outbox, the TensorRT cache.
_PLACED = (("sink", "path"), ("upstream", "outbox_path"), ("inference", "tensorrt_cache_dir"))


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(patch=documents)
@example(patch={"inference": {"tensorrt_cache_dir": "cpu"}})  # found by a CI run: placed in the state folder
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
        expected = validate(merge(before_document, patch)).model_dump(mode="json")
        applied = module.config.model_dump(mode="json")
        # A path a remote patch names is taken inside its folder (config/remote.py): relative
        # ones are made absolute there, so only their tail is what the patch said.
        for section, field in _PLACED:
            said, placed = expected[section][field], applied[section][field]
            if said is not None and said != placed:
                assert Path(placed).is_absolute() and placed.endswith(said.lstrip("./")), (said, placed)
                expected[section][field] = placed
        assert applied == expected
        assert module.config == module.pipeline.config
        # Put the running configuration back for the next example (not part of the check).
        module.apply_patch({k: None for k in patch})
        module.apply_patch({k: before_document[k] for k in patch if k in before_document})
        assert module.document == before_document
