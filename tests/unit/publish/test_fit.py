"""The 256 KB guard: oversized messages are split or truncated, never sent to fail."""

from __future__ import annotations

from edgevision.publish.fit import MAX_BODY_BYTES, fit
from edgevision.publish.messages import encode
from tests.support.messages import result


def test_fit_leaves_small_messages_and_splits_big_results_in_order() -> None:
    small = result(1, "person")
    assert fit(small) == [small]
    big = {
        "type": "result",
        "camera": "crowd",
        "seq": 3,
        "detections": [{"label": "person", "score": i / 5000, "box": {"x1": i}} for i in range(9000)],
    }
    parts = fit(big)
    assert len(parts) > 1
    assert all(len(encode(p).encode()) <= MAX_BODY_BYTES for p in parts)
    assert [p["part"]["index"] for p in parts] == list(range(len(parts)))
    assert {p["part"]["count"] for p in parts} == {len(parts)}
    assert [d for p in parts for d in p["detections"]] == big["detections"]


def test_fit_truncates_other_oversized_documents() -> None:
    huge = {"type": "metrics", "totals": {"fps": 9.0}, "cameras": {f"cam{i}": {"x": "y" * 100} for i in range(4000)}}
    (reduced,) = fit(huge)
    assert (
        reduced["totals"] == {"fps": 9.0}
        and "cameras" not in reduced
        and reduced["truncated"]["bytes"] > MAX_BODY_BYTES
    )
