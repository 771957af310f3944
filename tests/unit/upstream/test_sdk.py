"""SDK calls: bounded in time, failures classed as transient or fatal."""

from __future__ import annotations

import threading

import pytest
from azure.iot.device import exceptions as sdk_errors

from edgevision.upstream.sdk import call_with_timeout, classify


def test_link_trouble_is_transient_and_a_refused_value_is_fatal() -> None:
    assert classify(sdk_errors.ConnectionFailedError("down"), "sending").transient
    assert classify(sdk_errors.CredentialError("token"), "sending").transient
    assert classify(TimeoutError("no answer"), "sending").transient
    refused = classify(ValueError("Size of message can not exceed 256 KB"), "sending to results")
    assert not refused.transient and str(refused) == "sending to results: Size of message can not exceed 256 KB"


def test_a_call_that_never_returns_times_out() -> None:
    blocked = threading.Event()
    with pytest.raises(TimeoutError, match=r"0\.2 s"):
        call_with_timeout(blocked.wait, 0.2)
    blocked.set()
    assert call_with_timeout(lambda: 42, 1) == 42
    with pytest.raises(KeyError):
        call_with_timeout(lambda: {}["x"], 1)
