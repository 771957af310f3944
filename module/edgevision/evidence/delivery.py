"""Evidence leaves the box: a background sender takes the oldest file not yet delivered and puts
it in Azure Blob Storage (azure-storage-blob) or a folder (one that Azure Container Storage
enabled by Arc syncs to Blob), with retries and backoff; each delivery is an `evidence` event."""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from edgevision.config.evidence import EvidenceConfig
from edgevision.errors import first_line
from edgevision.evidence.store import EvidenceStore, Item

log = logging.getLogger(__name__)

_CONTENT_TYPES = {"jpg": "image/jpeg", "mp4": "video/mp4"}


class DeliveryError(Exception):
    """Why a delivery failed, in words that hold no secret."""


class Destination(Protocol):
    def locate(self, name: str) -> str: ...
    def deliver(self, path: Path, name: str, meta: dict[str, Any]) -> str: ...


class Nowhere:
    """destination: none: the state volume is where evidence stays."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def locate(self, name: str) -> str:
        return str(self.root / name)

    def deliver(self, path: Path, name: str, meta: dict[str, Any]) -> str:
        return str(path)


class FolderDestination:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def locate(self, name: str) -> str:
        return str(self.folder / name)

    def deliver(self, path: Path, name: str, meta: dict[str, Any]) -> str:
        target = self.folder / name
        part = target.with_name(target.name + ".part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, part)
            part.replace(target)  # a syncing agent never sees half a file
        except OSError as exc:
            with contextlib.suppress(OSError):  # the folder may not even be one
                part.unlink(missing_ok=True)
            raise DeliveryError(f"cannot write into {self.folder}: {exc.strerror or type(exc).__name__}") from None
        return str(target)


def read_credential(config: EvidenceConfig) -> str:
    if config.blob_credential is not None:
        return config.blob_credential.get_secret_value().strip()
    if config.blob_credential_file is not None:
        try:
            with open(config.blob_credential_file, encoding="utf-8") as handle:
                value = handle.read(8192).strip()
        except OSError as exc:
            raise DeliveryError(
                f"evidence.blob_credential_file {config.blob_credential_file}: {exc.strerror or type(exc).__name__}"
            ) from None
        if value:
            return value
        raise DeliveryError(f"evidence.blob_credential_file {config.blob_credential_file} is empty")
    raise DeliveryError("evidence.destination is blob, and no blob_credential (or blob_credential_file) is set")


def _plain_url(url: str) -> str:
    """A URL without its query (a SAS token is a secret) and without user information."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


class BlobDestination:
    """A container per deployment, blobs named camera/date/event-id.(jpg|mp4) with the event's
    metadata. The credential is read again at each round (a rotated Secret is taken)."""

    def __init__(self, config: EvidenceConfig) -> None:
        self.config = config
        self._client: Any = None
        self._credential: str | None = None
        self._container_url: str | None = None
        self._created = False

    def _container(self) -> Any:
        from azure.storage.blob import BlobServiceClient, ContainerClient

        credential = read_credential(self.config)
        if self._client is not None and credential == self._credential:
            return self._client
        # The SDK retries inside each call; this sender retries on its own schedule instead.
        options = {
            "connection_timeout": self.config.timeout_s,
            "read_timeout": self.config.timeout_s,
            "retry_total": 0,
        }
        try:
            if credential.lower().startswith(("https://", "http://")):
                client = ContainerClient.from_container_url(credential, **options)
            else:
                service = BlobServiceClient.from_connection_string(credential, **options)
                client = service.get_container_client(self.config.container)
        except (ValueError, TypeError) as exc:
            # The SDK's message may quote the credential: say what it is not, never what it is.
            raise DeliveryError(
                f"the blob credential is neither a connection string nor a container SAS URL ({type(exc).__name__})"
            ) from None
        self._client, self._credential, self._created = client, credential, False
        self._container_url = _plain_url(client.url)
        return client

    def locate(self, name: str) -> str:
        if self._container_url is None:  # the credential is read once here, not per event
            try:
                self._container()
            except DeliveryError:
                pass
        base = self._container_url or f"blob:{self.config.container}"
        return f"{base.rstrip('/')}/{urllib.parse.quote(name)}"

    def deliver(self, path: Path, name: str, meta: dict[str, Any]) -> str:
        from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
        from azure.storage.blob import ContentSettings

        client = self._container()
        suffix = name.rsplit(".", 1)[-1]
        metadata = {k: _metadata_value(v) for k, v in meta.items() if v is not None and k.isidentifier()}
        try:
            for attempt in range(2):
                try:
                    with open(path, "rb") as data:
                        client.upload_blob(
                            name,
                            data,
                            overwrite=True,
                            metadata=metadata,
                            content_settings=ContentSettings(content_type=_CONTENT_TYPES.get(suffix)),
                            timeout=int(self.config.timeout_s),
                        )
                    break
                except ResourceNotFoundError as exc:
                    if attempt or getattr(exc, "error_code", None) != "ContainerNotFound" or self._created:
                        raise
                    self._make_container(client)
        except HttpResponseError as exc:
            raise DeliveryError(_say(exc, self._container_url)) from None
        except AzureError as exc:
            raise DeliveryError(f"cannot reach {self._container_url}: {type(exc).__name__}") from None
        except OSError as exc:
            raise DeliveryError(f"cannot read {path.name}: {exc.strerror or type(exc).__name__}") from None
        return f"{self._container_url}/{urllib.parse.quote(name)}"

    def _make_container(self, client: Any) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        try:
            client.create_container()
            log.info("evidence: made the container %s", self._container_url)
        except ResourceExistsError:
            pass
        except HttpResponseError as exc:
            raise DeliveryError(
                f"container {self._container_url} does not exist, and the credential may not make it ({_code(exc)})"
            ) from None
        self._created = True


def _code(exc: Any) -> str:
    code = getattr(exc, "error_code", None)
    code = getattr(code, "value", code)  # an enum member in some SDK versions
    return " ".join(str(x) for x in (getattr(exc, "status_code", None), code) if x)


def _say(exc: Any, where: str | None) -> str:
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        return f"the storage account refused the credential ({_code(exc)})"
    if "ContainerNotFound" in _code(exc):
        return f"container {where} does not exist ({_code(exc)}); a container SAS URL cannot make it"
    return f"the storage account answered {_code(exc) or type(exc).__name__}"


def _metadata_value(value: Any) -> str:
    # Blob metadata is ASCII; keep it short and printable.
    text = str(value).encode("ascii", "replace").decode()[:256]
    return "".join(c if c.isprintable() else "?" for c in text)


def destination_for(config: EvidenceConfig, root: Path) -> Destination:
    if config.destination == "blob":
        return BlobDestination(config)
    if config.destination == "folder":
        assert config.folder is not None
        return FolderDestination(config.folder)
    return Nowhere(root)


class EvidenceSender:
    """Delivers the store's files oldest first; a failure waits retry_initial_s, doubling to
    retry_max_s, and keeps the file (an outage of hours loses nothing within the store's caps)."""

    def __init__(
        self,
        store: EvidenceStore,
        destination: Destination,
        config: EvidenceConfig,
        on_delivered: Callable[[Item, str], None],
    ) -> None:
        self.store = store
        self.destination = destination
        self.config = config
        self._on_delivered = on_delivered
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evidence-sender", daemon=True)
        self.attempts = 0
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.store.wake()
        if self._thread.is_alive():  # never started where the pipeline did not start
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff, said = self.config.retry_initial_s, None
        while not self._stop.is_set():
            item = self.store.next_pending(timeout=1.0)
            if item is None:
                self.store.enforce()  # files age out while nothing new comes
                continue
            self.attempts += 1
            try:
                location = self.destination.deliver(self.store.path(item), item.name, item.meta)
            except (DeliveryError, OSError) as exc:
                self.failures += 1
                message = str(exc) if isinstance(exc, DeliveryError) else first_line(exc)
                self.store.last_error = message
                if message != said:
                    log.error("evidence delivery failed: %s; retrying", message)
                    said = message
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.config.retry_max_s)
                continue
            backoff, said = self.config.retry_initial_s, None
            self.store.mark_delivered(item, location)
            try:
                self._on_delivered(item, location)
            except Exception as exc:  # noqa: BLE001 - the event is news; the file is delivered
                log.warning("evidence event not published: %s", first_line(exc))

    def stats(self) -> dict[str, Any]:
        return {"destination": self.config.destination, "attempts": self.attempts, "failures": self.failures}
