"""Calling the azure-iot-device SDK: every call bounded in time, every failure classed as
transient (retried) or fatal (not)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from azure.iot.device import exceptions as sdk_errors

from edgevision.errors import UpstreamError, first_line

# A dropped or refused link, a timeout: the SDK or the module tries again.
_TRANSIENT = (
    sdk_errors.ConnectionFailedError,
    sdk_errors.ConnectionDroppedError,
    sdk_errors.NoConnectionError,
    sdk_errors.OperationTimeout,
    sdk_errors.OperationCancelled,
    TimeoutError,
    OSError,
)


def classify(exc: BaseException, doing: str) -> UpstreamError:
    """An SDK failure as an UpstreamError: transient for link trouble (including credentials,
    which a new client may renew), fatal for what retrying the same call cannot fix: a value the
    SDK refuses (a message over its size limit, a bad argument)."""
    transient = isinstance(exc, _TRANSIENT) or not isinstance(exc, ValueError | TypeError)
    error = UpstreamError(f"{doing}: {first_line(exc)}", transient=transient)
    error.__cause__ = exc
    return error


def call_with_timeout(fn: Callable[[], Any], timeout_s: float) -> Any:
    """Run a blocking SDK call, giving up after `timeout_s` (the call itself is left to finish)."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            errors.append(exc)

    worker = threading.Thread(target=run, name="sdk-call", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if errors:
        raise errors[0]
    return result[0] if result else None
