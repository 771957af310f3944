"""Fuzzing the configuration parser and the patch handler: never an unhandled error, never a partial apply."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edgevision.config import AppConfig, ConfigError, merge, validate

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)

# Field names the configuration really has, so generated documents reach deep validation
# instead of stopping at "unknown key".
SECTIONS = {
    "model": ["name", "manifest", "score_threshold", "nms_iou"],
    "inference": [
        "provider",
        "use_tensorrt",
        "workers",
        "intra_op_threads",
        "max_batch",
        "max_batch_wait_ms",
        "preprocess_workers",
        "preprocess",
        "fp16",
        "cuda_graph",
        "gpu_retry_initial_s",
        "gpu_retry_max_s",
        "inference_timeout_s",
    ],
    "sources": [
        "live_queue_size",
        "every_frame_queue_size",
        "reconnect_initial_s",
        "reconnect_max_s",
        "stall_timeout_s",
        "open_timeout_s",
    ],
    "upstream": [
        "results_mode",
        "heartbeat_s",
        "summary_interval_s",
        "queue_size",
        "outbox_max_mb",
        "outbox_max_age_s",
        "report_min_interval_s",
        "connection_retry_interval_s",
    ],
    "http": ["enabled", "bind", "port", "preview_fps", "preview_viewers"],
}
CAMERA_FIELDS = ["uri", "target_fps", "every_frame", "loop", "max_frames"]
plausible = (
    st.sampled_from(
        [
            0,
            -1,
            1,
            0.5,
            1.5,
            1e9,
            "",
            "cpu",
            "graph",
            "rtsp://",
            "rtsp://cam/1",
            "file.mp4",
            "synthetic:320x240@5",
            "http://[::1",
            "yolox-nano",
            "no-such-model",
            True,
            None,
        ]
    )
    | json_scalars
)
sections = st.fixed_dictionaries(
    {},
    optional={
        name: st.dictionaries(st.sampled_from(fields + ["bogus"]), plausible, max_size=4)
        for name, fields in SECTIONS.items()
    },
)
cameras = st.dictionaries(
    st.text(alphabet="abc.-_ 1", min_size=0, max_size=6),
    st.dictionaries(st.sampled_from(CAMERA_FIELDS + ["id"]), plausible, max_size=4) | json_values,
    max_size=3,
)
documents = st.one_of(
    json_values,
    sections,
    st.builds(lambda s, c: {**s, "cameras": c}, sections, cameras),
    st.builds(lambda s, n: {**s, "metrics_interval_s": n}, sections, plausible),
)


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
