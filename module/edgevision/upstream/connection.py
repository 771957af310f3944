"""The module client: created from the IoT Edge environment, connected in the background."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Literal

from azure.iot.device import IoTHubModuleClient

from edgevision.upstream.sdk import call_with_timeout

log = logging.getLogger(__name__)

# One subscribe or unsubscribe; the SDK itself may wait forever for the acknowledgement.
_STEP_TIMEOUT_S = 5.0

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


class Connection:
    """Owns the IoTHubModuleClient; logs and counts every connection state change.

    A watchdog replaces the client when the link is dead but the SDK does not know it: paho
    1.6's network thread can die on an SSL error while edgeHub goes away, after which the
    client neither reconnects nor reports a disconnection, and every call waits forever.
    """

    def __init__(self, retry_interval_s: float, stale_after_s: float | None = None) -> None:
        self._retry_interval_s = retry_interval_s
        # Disconnected longer than this, or calls timing out: build a new client.
        self.stale_after_s = stale_after(retry_interval_s, stale_after_s)
        self.client = self._create_client()
        self.rebuilds = 0
        self._suspect = threading.Event()
        self._disconnected_since: float | None = None
        self.connects = 0
        self.disconnects = 0
        self.connected = threading.Event()
        # Connected and subscribed: set after the first connection, and after each reconnect
        # once the subscriptions are renewed.
        self.ready = threading.Event()
        self.on_reconnect: Callable[[], None] | None = None
        self._handlers: dict[str, Callable[..., None]] = {}
        self._retry_s = retry_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._connect_loop, name="upstream-connect", daemon=True)

    def _create_client(self) -> IoTHubModuleClient:
        # Both modes go through the SDK's own environment reading, so a module under IoT Edge
        # and one started by the local-development tools connect the same way.
        client = IoTHubModuleClient.create_from_edge_environment(
            connection_retry=True, connection_retry_interval=int(self._retry_interval_s)
        )
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
            stale = since is not None and time.monotonic() - since > self.stale_after_s
            if self._suspect.is_set() or stale:
                self._rebuild(
                    "calls time out" if self._suspect.is_set() else f"disconnected for {time.monotonic() - since:.0f} s"
                )  # type: ignore[operator]

    def _rebuild(self, why: str) -> None:
        self.rebuilds += 1
        log.warning("replacing the IoT Hub client (%s); rebuild %d", why, self.rebuilds)
        old = self.client
        self.ready.clear()
        self._suspect.clear()
        self._disconnected_since = time.monotonic()
        threading.Thread(target=_quietly_shutdown, args=(old,), name="old-client-shutdown", daemon=True).start()
        try:
            self.client = self._create_client()
        except Exception as exc:  # noqa: BLE001 - tried again by the next watchdog round
            log.error("cannot create a new IoT Hub client: %s", exc)
            return
        # Its first connection counts as a reconnect: _state_changed renews the subscriptions.
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
            if self.connects == 1:
                self.ready.set()
            elif self.on_reconnect is not None:
                self.on_reconnect()
        else:
            self.disconnects += 1
            self._disconnected_since = time.monotonic()
            self.connected.clear()
            self.ready.clear()
            if self._stop.is_set():
                log.info("disconnected from edgeHub (shutting down)")
            else:
                log.warning("disconnected from edgeHub (%d so far); the SDK retries", self.disconnects)

    def attach(self, on_method: Callable[..., None], on_desired_patch: Callable[..., None]) -> None:
        """Receive direct methods and desired-property patches (subscribing needs the link)."""
        self._handlers = {
            "on_method_request_received": on_method,
            "on_twin_desired_properties_patch_received": on_desired_patch,
        }
        if not self._subscribe(renew=False):
            self.suspect("subscribing failed")

    def renew_subscriptions(self) -> bool:
        """Subscribe again to methods, desired patches and twin responses.

        The SDK connects with a persistent session and never re-subscribes, but edgeHub can lose
        a module's subscriptions when it restarts (Azure/iotedge#4050): methods and twin patches
        would then stop arriving until the module restarts. Unsubscribing and subscribing again
        after every reconnect is harmless when the subscriptions survived. Each step has a
        timeout (the SDK can wait forever for an acknowledgement); if one fails, the link is
        suspect and the watchdog builds a new client, which renews again.
        """
        client = self.client
        ok = self._subscribe(renew=True)
        # SDK 2.x (pinned below 3): twin responses have no public handler to toggle.
        if ok and getattr(getattr(client, "_mqtt_pipeline", None), "feature_enabled", {}).get("twin"):
            try:
                call_with_timeout(lambda: client._disable_feature("twin"), _STEP_TIMEOUT_S)
                call_with_timeout(lambda: client._enable_feature("twin"), _STEP_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001
                log.warning("renewing the twin subscription failed: %s", exc)
                ok = False
        if not ok:
            # A fresh client subscribes reliably where the reconnected one may not.
            self.suspect("subscriptions could not be renewed")
            return False
        if client is self.client and client.connected:
            self.ready.set()
        log.info("subscriptions renewed after reconnecting")
        return True

    def _subscribe(self, renew: bool) -> bool:
        """Set the handlers (each subscribes); False at the first step that fails or hangs."""
        client = self.client
        for attribute, handler in self._handlers.items():
            name = attribute.removeprefix("on_").removesuffix("_received")
            try:
                if renew:
                    # Unsubscribes if subscribed.
                    call_with_timeout(lambda a=attribute: setattr(client, a, None), _STEP_TIMEOUT_S)
                call_with_timeout(lambda a=attribute, h=handler: setattr(client, a, h), _STEP_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - a new client will subscribe afresh
                log.warning("subscribing for %s failed: %s", name, exc)
                return False
        return True

    def stats(self) -> dict[str, int | bool]:
        return {
            "connected": self.client.connected,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "client_rebuilds": self.rebuilds,
        }

    def shutdown(self) -> None:
        self._stop.set()
        try:
            self.client.shutdown()
        except Exception as exc:  # noqa: BLE001
            log.debug("client shutdown: %s", exc)


def _quietly_shutdown(client: IoTHubModuleClient) -> None:
    try:
        client.shutdown()
    except Exception as exc:  # noqa: BLE001 - the old client may be wedged; it is abandoned
        log.debug("old client shutdown: %s", exc)
