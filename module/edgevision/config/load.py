"""Where configuration comes from (file, environment, flags, twin) and how it is validated.

Every entry point builds its document with `load_document` and validates it with `validate`;
the module twin's desired properties are merged over that document with `merge`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgevision.config.model import AppConfig
from edgevision.documents import MAX_DEPTH, DocumentError, depth, read_document
from edgevision.errors import ConfigError

ENV_PREFIX = "EDGEVISION_"
CONFIG_ENV = "EDGEVISION_CONFIG"
# Environment variables the module reads for other purposes, not configuration fields.
_NOT_CONFIG = {
    "EDGEVISION_MODEL_DIR",
    "EDGEVISION_MANIFEST_DIR",
    "EDGEVISION_ASSETS",
    "EDGEVISION_REQUIRE_ASSETS",
    "EDGEVISION_CUDA_LIBS",
    CONFIG_ENV,
    "EDGEVISION_STATE_DIR",
    "EDGEVISION_SECRETS_DIR",
    "EDGEVISION_DOWNLOAD_BASE_URL",
    "EDGEVISION_DOWNLOAD_ALLOW_HTTP",
    "EDGEVISION_DOWNLOAD_TIMEOUT_S",
    "EDGEVISION_SAMPLES_DIR",
}
# IoT Hub caps a module twin's desired properties at 32 KB; a larger document is a mistake.
MAX_DOCUMENT_BYTES = 32 * 1024


def validate(document: Mapping[str, Any]) -> AppConfig:
    """Validate a whole configuration document; every problem is named in the error."""
    if not isinstance(document, Mapping):
        raise ConfigError([f"document: a JSON object expected, not {type(document).__name__}"])
    if depth(document) > MAX_DEPTH:
        raise ConfigError([f"document: nested deeper than {MAX_DEPTH} levels"])
    try:
        size = len(json.dumps(document, default=str))
    except (TypeError, ValueError) as exc:
        raise ConfigError([f"document: not JSON-serialisable ({exc})"]) from exc
    if size > MAX_DOCUMENT_BYTES:
        raise ConfigError([f"document: {size} bytes; at most {MAX_DOCUMENT_BYTES} (the module twin's limit)"])
    try:
        return AppConfig.model_validate(document)
    except ValidationError as exc:
        cameras = document.get("cameras")
        # Cameras given as a mapping (twins) are named by id in errors, not by list position.
        ids = list(cameras) if isinstance(cameras, Mapping) else None
        raise ConfigError([_describe(e, ids) for e in exc.errors()]) from None


def _describe(error: Any, camera_ids: list[str] | None = None) -> str:
    loc = list(error["loc"])
    if camera_ids and len(loc) > 1 and loc[0] == "cameras" and isinstance(loc[1], int) and loc[1] < len(camera_ids):
        loc[1] = camera_ids[loc[1]]
    where = ".".join(str(p) for p in loc) or "configuration"
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}"


def merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `patch` into `base` by JSON merge-patch rules (RFC 7386): None deletes a key,
    also inside a mapping `base` does not have yet (it is merged into an empty one), so a null
    never reaches the result."""
    merged = dict(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            under = merged.get(key)
            merged[key] = merge(under if isinstance(under, Mapping) else {}, value)
        else:
            merged[key] = value
    return merged


def read_file(path: Path) -> dict[str, Any]:
    """A YAML or JSON configuration file as a document (not yet validated)."""
    try:
        document = read_document(path, "configuration", yaml_allowed=True)
    except DocumentError as exc:
        raise ConfigError([str(exc)]) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError([f"{path}: the top level must be a mapping"])
    return document


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """EDGEVISION_SECTION__FIELD=value pairs as a document; values parse as JSON when they can."""
    document: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_CONFIG:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        node = document
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError([f"{name}: conflicts with another variable"])
        node[path[-1]] = _scalar(raw)
    return document


def parse_setting(text: str) -> dict[str, Any]:
    """`section.field=value` (a command line's --set) as a document; the value parses as JSON
    when it can, else it is a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError([f"--set {text!r}: give it as KEY=VALUE, e.g. model.score_threshold=0.5"])
    value: Any = _scalar(raw)
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def _scalar(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def config_file(path: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The configuration file: the one given, else EDGEVISION_CONFIG, else none."""
    if path is not None:
        return path
    named = environ.get(CONFIG_ENV)
    return Path(named) if named else None


def load_document(
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The file (or EDGEVISION_CONFIG), then environment variables, then `overrides`, merged in
    that order; not yet validated (the twin's desired properties still go over it)."""
    environ = os.environ if environ is None else environ
    file = config_file(path, environ)
    document = read_file(file) if file is not None else {}
    document = merge(document, from_environment(environ))
    return merge(document, overrides or {})


def load(
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> AppConfig:
    """`load_document`, validated."""
    return validate(load_document(path, overrides, environ))
