"""The doctor's runner: time limits, pass/fail/skip, the table and the JSON."""

from __future__ import annotations

import threading
from typing import Any

from edgevision.accel.discover import AcceleratorInfo
from edgevision.doctor.context import Check, Failed, Skipped
from edgevision.doctor.run import Result, _within, as_json, as_table
from tests.support.fakes import stub_model


def _check(run: Any) -> Check:
    return Check("stand-in", "CUDAExecutionProvider", "exact", run)


def test_each_outcome_and_a_check_that_hangs() -> None:
    release = threading.Event()

    def hangs(_ctx: Any) -> tuple[str, dict[str, Any]]:
        release.wait(30)
        return "late", {}

    def fails(_ctx: Any) -> tuple[str, dict[str, Any]]:
        raise Failed("outputs differ by 0.5")

    def skips(_ctx: Any) -> tuple[str, dict[str, Any]]:
        raise Skipped("no GPU")

    def breaks(_ctx: Any) -> tuple[str, dict[str, Any]]:
        raise RuntimeError("CUDA failure 2: out of memory\nmore text")

    assert _within(_check(lambda _ctx: ("fine", {"x": 1})), None, 5) == ("pass", "fine", {"x": 1})
    assert _within(_check(fails), None, 5) == ("fail", "outputs differ by 0.5", {})
    assert _within(_check(skips), None, 5) == ("skip", "no GPU", {})
    assert _within(_check(breaks), None, 5) == ("fail", "RuntimeError: CUDA failure 2: out of memory", {})
    assert _within(_check(hangs), None, 0.2) == ("fail", "did not finish within 0.2 s", {})
    release.set()


def test_the_table_and_the_json_say_what_passed() -> None:
    results = [
        Result("io-binding", "CPUExecutionProvider", "pass", "equal", "exact", 0.1, 120, {"max_abs_diff": 0.0}),
        Result("cuda-session", "CUDAExecutionProvider", "skip", "no GPU: no device nodes", None, 0.0, 120),
        Result("batching", "CUDAExecutionProvider", "fail", "differ", "exact", 0.2, 120),
    ]
    table = as_table(results)
    assert "io-binding" in table and "SKIP" in table and "no GPU: no device nodes" in table
    assert table.splitlines()[-1] == "1 passed, 1 failed, 1 skipped"
    document = as_json(results, stub_model(), AcceleratorInfo(mode="none", reasons=["no device nodes"]))
    assert document["passed"] is False and document["checks"][0]["figures"] == {"max_abs_diff": 0.0}
    assert as_json(results[:2], stub_model(), AcceleratorInfo(mode="none"))["passed"] is True
