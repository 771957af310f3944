"""Direct methods against a stand-in for the control interface."""

from __future__ import annotations

import base64

from edgevision.control import PreviewImage
from edgevision.upstream.methods import Methods
from tests.support.control import StandInControl


def test_each_method_answers_with_a_status_and_json() -> None:
    control = StandInControl(cameras=["front", "back"])
    methods = Methods(control)
    assert methods("getStatus", None)[0] == 200
    assert methods("applyConfig", {"model": {"score_threshold": 0.5}}) == (
        200,
        {"applied": True, "changes": {"live": ["model"], "restarted": []}},
    )
    assert control.patches == [({"model": {"score_threshold": 0.5}}, "method")]
    assert methods("applyConfig", {"bad": 1}) == (400, {"errors": ["bad: not a field"]})
    assert methods("applyConfig", "text")[0] == 400
    assert methods("restartCamera", {"camera": "back"}) == (200, {"camera": "back", "restarted": True})
    assert control.restarted == ["back"]
    assert methods("restartCamera", {"camera": "side"})[0] == 404
    assert methods("restartCamera", {})[0] == 400
    status, answer = methods("reboot", {})
    assert status == 404 and answer["methods"] == ["applyConfig", "evidence", "getStatus", "restartCamera", "snapshot"]


def test_snapshot_is_base64_jpeg_within_the_method_limit() -> None:
    control = StandInControl(cameras=["front"])
    methods = Methods(control)
    assert methods("snapshot", {"camera": "front"})[0] == 404  # no frame yet
    control.frames["front"] = [PreviewImage("front", 7, 0.0, 8, 8, 6, b"\xff\xd8jpeg")]
    status, answer = methods("snapshot", {"camera": "front", "max_bytes": 10**9})
    assert status == 200 and answer["seq"] == 7 and answer["detections_seq"] == 6
    assert base64.b64decode(answer["jpeg_base64"]) == b"\xff\xd8jpeg"


def test_a_module_still_starting_answers_503() -> None:
    control = StandInControl(started=False)
    assert Methods(control)("getStatus", None)[0] == 503
