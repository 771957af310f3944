"""Reading JSON and YAML files, with one error that says which file and what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from edgevision.errors import EdgevisionError


class DocumentError(EdgevisionError, ValueError):
    """A file that cannot be read or parsed."""


def read_document(path: Path, what: str, yaml_allowed: bool = False) -> Any:
    """The parsed file; YAML unless its suffix is .json when `yaml_allowed`, else JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DocumentError(f"cannot read {what} {path}: {exc.strerror}") from None
    as_yaml = yaml_allowed and path.suffix != ".json"
    try:
        return yaml.safe_load(text) if as_yaml else json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise DocumentError(f"{what} {path} is not valid {'YAML' if as_yaml else 'JSON'}: {exc}") from None
