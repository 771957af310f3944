"""Hypothesis strategies for configuration documents: schema-shaped and random JSON."""

from __future__ import annotations

from hypothesis import strategies as st

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
        "device_id",
        "gpu_mem_limit_mb",
        "tensorrt_cache_dir",
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
        "stale_after_s",
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
        name: st.dictionaries(st.sampled_from([*fields, "bogus"]), plausible, max_size=4)
        for name, fields in SECTIONS.items()
    },
)
cameras = st.dictionaries(
    st.text(alphabet="abc.-_ 1", min_size=0, max_size=6),
    st.dictionaries(st.sampled_from([*CAMERA_FIELDS, "id"]), plausible, max_size=4) | json_values,
    max_size=3,
)
documents = st.one_of(
    json_values,
    sections,
    st.builds(lambda s, c: {**s, "cameras": c}, sections, cameras),
    st.builds(lambda s, n: {**s, "metrics_interval_s": n}, sections, plausible),
)
