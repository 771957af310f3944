"""Local sinks: JSON Lines to a rotated file, and the switch that replaces a sink live."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgevision.config.model import SinkConfig
from edgevision.errors import ConfigError
from edgevision.publish.sinks import JsonLinesSink, open_sink


def test_jsonl_sink_rotates_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "out" / "results.jsonl"
    sink = JsonLinesSink(path, rotate_bytes=2000, backups=3)
    for seq in range(300):
        sink.publish({"type": "result", "seq": seq, "label": "person"})
    sink.close()
    files = sorted(path.parent.iterdir())
    assert [f.name for f in files] == ["results.jsonl", "results.jsonl.1", "results.jsonl.2", "results.jsonl.3"]
    seqs = []
    for name in ("results.jsonl.3", "results.jsonl.2", "results.jsonl.1", "results.jsonl"):
        text = (path.parent / name).read_text()
        assert text.endswith("\n") and len(text) <= 2000
        seqs.extend(json.loads(line)["seq"] for line in text.splitlines())
    # The newest lines are kept, in order; only the oldest files are gone.
    assert seqs == list(range(seqs[0], 300)) and seqs[0] > 0


def test_an_unwritable_sink_path_is_a_configuration_error(tmp_path: Path) -> None:
    # Under a regular file: no write can succeed, whatever the user (the tests may run as root).
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"sink\.path: cannot write .*not-a-folder/results\.jsonl"):
        open_sink(SinkConfig(kind="jsonl", path=blocker / "results.jsonl"))
