"""Reading JSON and YAML files, bounded before they are parsed, with one error that says which
file and what is wrong.

A file is read only if it is a regular file (a ConfigMap's symbolic link to one is), at most
MAX_FILE_BYTES of it; it must be UTF-8. YAML aliases (`*name`, and so `<<: *name` merges) are
refused: a 473-byte alias bomb expanded to over 3 GB. Documents may nest at most MAX_DEPTH
levels. A configuration document is further held to 32 KB once parsed (config/load.py: the
module twin's limit, whatever the document came from).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from edgevision.errors import EdgevisionError

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 32


class DocumentError(EdgevisionError, ValueError):
    """A file that cannot be read or parsed."""


class _BoundedLoader(yaml.SafeLoader):
    """Safe YAML without aliases, nested at most MAX_DEPTH levels."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted", mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_bounded(path: Path, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """At most `limit` bytes of a regular file; DocumentError for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise DocumentError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DocumentError(f"cannot read {what} {path}: not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise DocumentError(f"cannot read {what} {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise DocumentError(f"{what} {path} is over {limit} bytes: refused before reading it")
    return data


def read_document(path: Path, what: str, yaml_allowed: bool = False) -> Any:
    """The parsed file; YAML unless its suffix is .json when `yaml_allowed`, else JSON."""
    data = read_bounded(path, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None
    as_yaml = yaml_allowed and path.suffix != ".json"
    try:
        document = yaml.load(text, Loader=_BoundedLoader) if as_yaml else json.loads(text)
    except RecursionError:
        raise DocumentError(f"{what} {path} is nested deeper than {MAX_DEPTH} levels") from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise DocumentError(f"{what} {path} is not valid {'YAML' if as_yaml else 'JSON'}: {_one_line(exc)}") from None
    if depth(document) > MAX_DEPTH:
        raise DocumentError(f"{what} {path} is nested deeper than {MAX_DEPTH} levels")
    return document


def _one_line(exc: Exception) -> str:
    """A parser's error in one line: what is wrong and where (PyYAML's span several lines)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem or exc.context} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())


def depth(value: Any) -> int:
    """How deeply a JSON-like document nests (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list | tuple) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest
