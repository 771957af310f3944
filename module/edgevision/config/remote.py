"""What a remote source (the module twin, a direct method) may name: on the device's disk only the
module's own folders, as cameras no local source the local configuration has not allowed, and a
camera's credentials only to the hosts the local configuration allows. Anyone who can write the
twin could otherwise have the module create files anywhere it may write, load any file as a model,
play any file it can read as a camera (and see it in a snapshot), or send a camera's password to
an address of their choosing.

The local base (file, environment, command line) is the device owner's and may name anything.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgevision.config.model import AppConfig
from edgevision.config.source_uri import parse_source_uri
from edgevision.errors import ConfigError

SECRETS_DIR_ENV = "EDGEVISION_SECRETS_DIR"
DEFAULT_SECRETS_DIR = "/run/secrets"
# URIs of network streams (everything else a camera may name is on the device).
_STREAMS = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://")
# Model names that are paths (the rest are manifest names, looked up among the known manifests).
_MODEL_SUFFIXES = (".onnx", ".json")


@dataclass(frozen=True)
class Folders:
    """Where a remote source may point: files written go to `state`; models are read from
    `models`; camera credentials files from `secrets`."""

    state: Path
    models: Path
    secrets: Path


@dataclass(frozen=True)
class Policy:
    """What the local configuration lets a remote one point cameras at (its `remote` section)."""

    # Folders, device paths or `synthetic:` a remote camera may name.
    local_sources: tuple[str, ...] = ()
    # Hosts a camera's credentials reference may be sent to (lower case).
    credential_hosts: frozenset[str] = frozenset()
    # URIs the local configuration names itself: a remote camera may repeat them.
    local_uris: frozenset[str] = frozenset()

    @classmethod
    def of(cls, local: AppConfig) -> Policy:
        hosts = local.remote.credential_hosts
        if hosts is None:
            hosts = tuple(h for c in local.cameras if c.spec.kind == "stream" and (h := _host(c.uri)))
        return cls(
            local_sources=local.remote.local_sources,
            credential_hosts=frozenset(h.lower() for h in hosts),
            local_uris=frozenset(c.uri for c in local.cameras),
        )


def confine(
    document: Mapping[str, Any],
    folders: Folders,
    policy: Policy | None = None,
    under: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The remote document with its paths made absolute inside their folder (a relative one is
    taken from that folder) and its cameras held to `policy` (`under`: the document it will be
    merged over); ConfigError naming every path, source or host that leads elsewhere."""
    confined = copy.deepcopy(dict(document))
    problems: list[str] = []
    if "remote" in confined:
        problems.append("remote: set only by the local configuration (a twin or method may not widen its own reach)")
    # Files read as credentials: a remote document naming one could make a known file the token.
    for section, fields in (
        ("http", ("token_file",)),
        ("mqtt", ("ca_file", "cert_file", "key_file", "sat_token_file")),
    ):
        node = confined.get(section)
        if isinstance(node, dict):
            for field in fields:
                if node.get(field) is not None:
                    problems.append(
                        f"{section}.{field}: set only by the local configuration (a twin or method may not "
                        "choose which file is a credential)"
                    )

    # Where evidence goes: a remote document could send the cameras' video to its own account.
    evidence = confined.get("evidence")
    if isinstance(evidence, dict):
        for field in ("destination", "folder", "container", "blob_credential", "blob_credential_file"):
            if field in evidence:
                problems.append(
                    f"evidence.{field}: set only by the local configuration (a twin or method may not "
                    "choose where the cameras' video goes)"
                )

    def place(section: str, field: str, folder: Path, what: str) -> None:
        node = confined.get(section)
        if isinstance(node, dict) and isinstance(node.get(field), str):
            inside = _inside(node[field], folder)
            if inside is None:
                problems.append(
                    f"{section}.{field}: {what} must be inside {folder} (a twin or method may not name other places)"
                )
            else:
                node[field] = str(inside)

    place("sink", "path", folders.state, "the results file")
    place("upstream", "outbox_path", folders.state, "the outbox file")
    place("inference", "tensorrt_cache_dir", folders.state, "the TensorRT cache")
    models = confined.get("models")
    sections = [("model", confined.get("model"))]
    if isinstance(models, dict):
        sections += [(f"models.{key}", value) for key, value in models.items()]
    for where, model in sections:
        if not isinstance(model, dict):
            continue
        for field in ("name", "path", "manifest", "labels"):
            value = model.get(field)
            if not isinstance(value, str):
                continue
            if field in ("path", "labels") or value.endswith(_MODEL_SUFFIXES) or "/" in value or value.startswith("."):
                inside = _inside(value, folders.models)
                if inside is None:
                    problems.append(
                        f"{where}.{field}: a model file must be inside {folders.models} "
                        "(a twin or method may not name other places)"
                    )
                else:
                    model[field] = str(inside)
    existing = _cameras(under or {})
    for name, camera in _cameras(confined).items():
        reference = camera.get("credentials")
        if isinstance(reference, str) and reference.startswith("file:"):
            inside = _inside(reference[len("file:") :], folders.secrets)
            if inside is None:
                problems.append(f"cameras.{name}.credentials: a credentials file must be inside {folders.secrets}")
            else:
                camera["credentials"] = f"file:{inside}"
        if policy is not None:
            problems += _camera_problems(name, camera, existing.get(name, {}), policy, folders)
    if problems:
        raise ConfigError(problems)
    return confined


def _cameras(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A document's cameras by id, whichever form they take (a mapping of id to camera or URI, or
    a list of cameras with ids); entries are the document's own dicts (edited in place)."""
    cameras = document.get("cameras")
    found: dict[str, dict[str, Any]] = {}
    if isinstance(cameras, Mapping):
        for key, camera in cameras.items():
            if isinstance(camera, str) and isinstance(cameras, dict):
                camera = cameras[key] = {"uri": camera}
            if isinstance(camera, dict):
                found[str(key)] = camera
    elif isinstance(cameras, list):
        for index, camera in enumerate(cameras):
            if isinstance(camera, dict):
                found[str(camera.get("id", index))] = camera
    return found


def _camera_problems(
    name: str, camera: Mapping[str, Any], before: Mapping[str, Any], policy: Policy, folders: Folders
) -> list[str]:
    """A remote camera's source (a local one only where allowed) and where its credentials would go."""
    problems = []
    uri = camera.get("uri")
    if isinstance(uri, str) and uri not in policy.local_uris and not uri.lower().startswith(_STREAMS):
        try:
            spec = parse_source_uri(uri)
            allowed = _allowed_local(spec.kind, spec.target, policy)
        except ValueError:
            allowed = False  # not even a source it could name; validation says more
        if not allowed:
            problems.append(
                f"cameras.{name}.uri: a twin or method may not name a local source (a file, folder, device or "
                "synthetic:) unless remote.local_sources in the local configuration allows it"
            )
    if "uri" in camera or "credentials" in camera:
        merged = {**before, **camera}
        reference, target = merged.get("credentials"), merged.get("uri")
        if isinstance(reference, str) and isinstance(target, str):
            host = _host(target)
            if host is None or host.lower() not in policy.credential_hosts:
                problems.append(
                    f"cameras.{name}.credentials: a credentials reference is sent only to the camera hosts the "
                    f"local configuration allows (remote.credential_hosts; by default the hosts of its own "
                    f"cameras), not to {host or 'this address'}"
                )
    return problems


def _allowed_local(kind: str, target: str, policy: Policy) -> bool:
    for allowed in policy.local_sources:
        if kind == "synthetic" and allowed == "synthetic:":
            return True
        if kind == "usb" and target in (allowed, allowed.removeprefix("/dev/video")):
            return True
        if kind in ("file", "folder") and os.path.isabs(allowed):
            real, folder = os.path.realpath(target), os.path.realpath(allowed)
            if real == folder or os.path.commonpath([real, folder]) == folder:
                return True
    return False


def _host(uri: str) -> str | None:
    """A stream URI's host name or address, without user part or port (None if it has none)."""
    try:
        return urlsplit(uri).hostname
    except ValueError:
        return None


def _inside(value: str, folder: Path) -> Path | None:
    """The path, absolute, if it stays inside `folder` once `..` and symbolic links are followed."""
    if "\x00" in value:
        return None
    candidate = Path(value) if os.path.isabs(value) else folder / value
    real_folder = os.path.realpath(folder)
    real = os.path.realpath(candidate)
    if os.path.commonpath([real, real_folder]) != real_folder or real == real_folder:
        return None
    return Path(real)


def secrets_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(SECRETS_DIR_ENV) or DEFAULT_SECRETS_DIR)
