"""Configuration documents are bounded before they are parsed: an alias bomb, an absurd or endless
file, deep nesting and bytes that are not UTF-8 each get one clear line, quickly, with little
memory (before: 3.1 GB for a 473-byte alias bomb, 1.7 GB and 58 s for a 10 MB file, 5.3 GB for
EDGEVISION_CONFIG=/dev/zero)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgevision.config import load as configuration
from edgevision.errors import ConfigError

# The classic "billion laughs" in YAML: nine levels, each ten of the one before.
ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)


def _refused(path: Path, match: str) -> str:
    started = time.monotonic()
    with pytest.raises(ConfigError, match=match) as refused:
        configuration.load(path, environ={})
    assert time.monotonic() - started < 2
    message = str(refused.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    assert len(ALIAS_BOMB) < 600
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    _refused(bomb, r"aliases \(\*name\) are not accepted")
    # A merge key is an alias too.
    merged = tmp_path / "merge.yaml"
    merged.write_text("base: &b {score_threshold: 0.5}\nmodel:\n  <<: *b\n")
    _refused(merged, "aliases")


def test_a_huge_or_endless_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (10 << 20) + b"\n")
    _refused(big, r"is over 1048576 bytes: refused before reading it")
    _refused(Path("/dev/zero"), "not a regular file")


def test_deep_nesting_and_bytes_that_are_not_utf8_get_one_line(tmp_path: Path) -> None:
    deep_yaml = tmp_path / "deep.yaml"
    deep_yaml.write_text("a: " + "[" * 10_000 + "]" * 10_000 + "\n")
    _refused(deep_yaml, "nested deeper than 32 levels")
    deep_json = tmp_path / "deep.json"
    deep_json.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _refused(deep_json, "nested deeper than 32 levels")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("model: {name: caf\xe9}\n".encode("latin-1"))
    _refused(latin, r"is not UTF-8 text \(byte 17\)")
    # A document that arrives parsed (the twin, a method) is held to the same depth.
    nested: dict = {}
    node = nested
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ConfigError, match="nested deeper than 32 levels"):
        configuration.validate(nested)


def test_the_alias_bomb_costs_the_cli_little_memory_and_one_line(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    script = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run([sys.executable, '-m', 'edgevision', 'run', '--config', sys.argv[1]], capture_output=True, text=True)\n"
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, repr(done.stderr))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(bomb)], capture_output=True, text=True, check=True).stdout
    code, max_rss_kb, stderr = out.split(" ", 2)
    assert code == "2" and int(max_rss_kb) < 400_000, out
    assert "aliases" in stderr and stderr.count("error") == 1
