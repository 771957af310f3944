"""The module client: made from the IoT Edge environment, connected in the background, replaced
when it goes stale, and (re)subscribed on request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Literal
from urllib.parse import urlsplit

from azure.iot.device import IoTHubModuleClient

from edgevision.errors import UpstreamError
from edgevision.upstream.sdk import call_with_timeout, classify

log = logging.getLogger(__name__)

# One subscribe or unsubscribe; the SDK itself may wait forever for the acknowledgement.
_STEP_TIMEOUT_S = 5.0
# Creating a client in IoT Edge asks the workload API for the trust bundle and a token
# signature, over HTTP without a timeout of its own.
_CREATE_TIMEOUT_S = 30.0

EDGE_VARIABLES = (
    "IOTEDGE_IOTHUBHOSTNAME",
    "IOTEDGE_DEVICEID",
    "IOTEDGE_MODULEID",
    "IOTEDGE_GATEWAYHOSTNAME",
    "IOTEDGE_MODULEGENERATIONID",
    "IOTEDGE_WORKLOADURI",
    "IOTEDGE_APIVERSION",
)
# The SDK's fallback for local development (what VS Code's IoT Edge tools set).
DEV_VARIABLES = ("EdgeHubConnectionString", "EdgeModuleCACertificateFile")

EdgeMode = Literal["iotedge", "local-dev"]


def stale_after(retry_interval_s: float, configured: float | None) -> float:
    """How long a disconnected client is waited for before a new one is built."""
    return configured or max(30.0, 3 * retry_interval_s)


def edge_mode(environ: Mapping[str, str]) -> EdgeMode | None:
    if all(environ.get(v) for v in EDGE_VARIABLES):
        return "iotedge"
    if all(environ.get(v) for v in DEV_VARIABLES):
        return "local-dev"
    return None


def describe_mode(mode: EdgeMode | None, environ: Mapping[str, str]) -> str:
    if mode == "iotedge":
        return (
            f"IoT Edge (edgeAgent's environment; tokens signed by the workload API at {environ['IOTEDGE_WORKLOADURI']})"
        )
    if mode == "local-dev":
        return "IoT Edge (local development pair: EdgeHubConnectionString and EdgeModuleCACertificateFile)"
    return "stand-alone (no IoT Edge runtime: results go to the local sink)"


def client_factory(environ: Mapping[str, str], retry_interval_s: float) -> Callable[[], IoTHubModuleClient]:
    """Makes clients the way edgeAgent's environment says; failures say what is missing."""
    workload = environ.get("IOTEDGE_WORKLOADURI", "")

    def create() -> IoTHubModuleClient:
        if workload.startswith("unix://"):
            from pathlib import Path

            socket_path = Path(urlsplit(workload).path)
            if not socket_path.exists():
                raise UpstreamError(
                    f"the IoT Edge workload API socket {socket_path} ({workload}) does not exist: edgeAgent "
                    "mounts it into every module it starts; is the module started outside IoT Edge with "
                    "IOTEDGE_* variables, or is aziot-edged not running?",
                    transient=False,
                )
        try:
            # Both modes go through the SDK's own environment reading, so a module under IoT Edge
            # and one started by the local-development tools connect the same way.
            return call_with_timeout(
                lambda: IoTHubModuleClient.create_from_edge_environment(
                    connection_retry=True, connection_retry_interval=int(retry_interval_s)
                ),
                _CREATE_TIMEOUT_S,
            )
        except Exception as exc:  # classified, with the workload API named
            where = f" (workload API {workload})" if workload else ""
            raise classify(exc, f"creating the IoT Hub module client{where}") from exc

    return create


class Connection:
    """Owns the IoTHubModuleClient; logs and counts every connection state change.

    A watchdog replaces the client when the link is dead but the SDK does not know it: paho
    1.6's network thread can die on an SSL error while edgeHub goes away, after which the
    client neither reconnects nor reports a disconnection, and every call waits forever.
    """

    def __init__(
        self, create: Callable[[], IoTHubModuleClient], retry_interval_s: float, stale_after_s: float | None = None
    ) -> None:
        self._create = create
        self._retry_s = retry_interval_s
        # Disconnected longer than this, or calls timing out: build a new client.
        self.stale_after_s = stale_after(retry_interval_s, stale_after_s)
        self.client = self._new_client()
        self.rebuilds = 0
        self.connects = 0
        self.disconnects = 0
        self.connected = threading.Event()
        # Called on every connection (the first, reconnects, a rebuilt client's) and loss.
        self.on_connected: Callable[[], None] = lambda: None
        self.on_disconnected: Callable[[], None] = lambda: None
        self._suspect = threading.Event()
        self._disconnected_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._connect_loop, name="upstream-connect", daemon=True)

    def _new_client(self) -> IoTHubModuleClient:
        client = self._create()
        client.on_connection_state_change = lambda c=client: self._state_changed(c)
        return client

    def start(self) -> None:
        self._thread.start()
        threading.Thread(target=self._watchdog, name="upstream-watchdog", daemon=True).start()

    def suspect(self, reason: str) -> None:
        """An SDK call got no answer in time: the link may be dead without the SDK knowing."""
        if not self._suspect.is_set():
            log.warning("edgeHub link suspect: %s", reason)
        self._suspect.set()

    def _watchdog(self) -> None:
        while not self._stop.wait(1.0):
            since = self._disconnected_since
            if self._suspect.is_set():
                self._rebuild("calls time out")
            elif since is not None and time.monotonic() - since > self.stale_after_s:
                self._rebuild(f"disconnected for {time.monotonic() - since:.0f} s")

    def _rebuild(self, why: str) -> None:
        self.rebuilds += 1
        log.warning("replacing the IoT Hub client (%s); rebuild %d", why, self.rebuilds)
        old = self.client
        self._suspect.clear()
        self._disconnected_since = time.monotonic()
        threading.Thread(target=_quietly_shutdown, args=(old,), name="old-client-shutdown", daemon=True).start()
        try:
            self.client = self._new_client()
        except Exception as exc:  # noqa: BLE001 - tried again by the next watchdog round
            log.error("cannot create a new IoT Hub client: %s", exc)
            return
        # Its first connection calls on_connected, which subscribes and reads the twin again.
        self._connect_loop()

    def _connect_loop(self) -> None:
        # Only the first connection is ours to make; after it the SDK reconnects by itself.
        failures = 0
        while not self._stop.is_set() and not self.client.connected:
            try:
                self.client.connect()
            except Exception as exc:  # noqa: BLE001 - edgeHub may start after us
                failures += 1
                if failures == 1 or failures % 10 == 0:
                    log.warning("cannot connect to edgeHub yet (%d tries): %s", failures, exc)
                self._stop.wait(min(self._retry_s, 2.0 * failures))

    def _state_changed(self, client: IoTHubModuleClient) -> None:
        if client is not self.client:
            return  # a replaced client saying goodbye
        if client.connected:
            self._disconnected_since = None
            self.connects += 1
            self.connected.set()
            log.info("connected to edgeHub (%d connection(s) so far)", self.connects)
            self.on_connected()
        else:
            self.disconnects += 1
            self._disconnected_since = time.monotonic()
            self.connected.clear()
            self.on_disconnected()
            if self._stop.is_set():
                log.info("disconnected from edgeHub (shutting down)")
            else:
                log.warning("disconnected from edgeHub (%d so far); the SDK retries", self.disconnects)

    def subscribe(self, handlers: Mapping[str, Callable[..., None]]) -> None:
        """Subscribe to methods, desired patches and twin responses, afresh.

        The SDK never subscribes again by itself, and edgeHub can lose a module's subscriptions
        when it restarts (Azure/iotedge#4050); a subscription asked for while edgeHub was away
        never happened. So every (re)connection unsubscribes and subscribes again: harmless when
        the subscriptions survived. Each step has a timeout (the SDK can wait forever for an
        acknowledgement); a step that fails raises, and the link is suspect.
        """
        client = self.client
        steps: list[tuple[str, Callable[[], object]]] = []
        for attribute, handler in handlers.items():
            steps.append((f"unsubscribing {attribute}", lambda a=attribute: setattr(client, a, None)))
            steps.append((f"subscribing {attribute}", lambda a=attribute, h=handler: setattr(client, a, h)))
        # SDK 2.x (pinned below 3): twin responses have no public handler to toggle.
        if getattr(getattr(client, "_mqtt_pipeline", None), "feature_enabled", {}).get("twin"):
            steps.append(("unsubscribing twin responses", lambda: client._disable_feature("twin")))
        for what, step in steps:
            try:
                call_with_timeout(step, _STEP_TIMEOUT_S)
            except Exception as exc:  # classified and raised
                self.suspect(f"{what}: {exc}")
                raise classify(exc, what) from exc

    def stats(self) -> dict[str, int | bool]:
        return {
            "connected": self.client.connected,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "client_rebuilds": self.rebuilds,
        }

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """The client's shutdown, given up after `timeout_s` (with a frozen edgeHub it waits on
        calls that will not be answered; the process is ending anyway)."""
        self._stop.set()
        try:
            call_with_timeout(self.client.shutdown, timeout_s)
        except Exception as exc:  # noqa: BLE001
            log.debug("client shutdown: %s", exc)


def _quietly_shutdown(client: IoTHubModuleClient) -> None:
    try:
        client.shutdown()
    except Exception as exc:  # noqa: BLE001 - the old client may be wedged; it is abandoned
        log.debug("old client shutdown: %s", exc)
