"""What a remote source (the module twin, a direct method) may name on the device's disk: only
the module's own folders. Anyone who can write the twin could otherwise have the module create
files anywhere it may write, load any file as a model, or read any file as a camera's password
and send it to an address of their choosing.

The local base (file, environment, command line) is the device owner's and may name any path.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgevision.errors import ConfigError

SECRETS_DIR_ENV = "EDGEVISION_SECRETS_DIR"
DEFAULT_SECRETS_DIR = "/run/secrets"
# Model names that are paths (the rest are manifest names, looked up among the known manifests).
_MODEL_SUFFIXES = (".onnx", ".json")


@dataclass(frozen=True)
class Folders:
    """Where a remote source may point: files written go to `state`; models are read from
    `models`; camera credentials files from `secrets`."""

    state: Path
    models: Path
    secrets: Path


def confine(document: Mapping[str, Any], folders: Folders) -> dict[str, Any]:
    """The remote document with its paths made absolute inside their folder (a relative one is
    taken from that folder); ConfigError naming every path that leads elsewhere."""
    confined = copy.deepcopy(dict(document))
    problems: list[str] = []

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
    cameras = confined.get("cameras")
    entries = cameras.items() if isinstance(cameras, dict) else enumerate(cameras) if isinstance(cameras, list) else ()
    for key, camera in entries:
        reference = camera.get("credentials") if isinstance(camera, dict) else None
        if isinstance(reference, str) and reference.startswith("file:"):
            inside = _inside(reference[len("file:") :], folders.secrets)
            if inside is None:
                name = camera.get("id", key) if isinstance(camera, dict) else key
                problems.append(f"cameras.{name}.credentials: a credentials file must be inside {folders.secrets}")
            else:
                camera["credentials"] = f"file:{inside}"
    if problems:
        raise ConfigError(problems)
    return confined


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
