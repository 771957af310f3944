"""The package's shape: no import cycles, small modules, one place for message shapes, endpoints
that see only the control interface."""

from __future__ import annotations

import ast
import re

from tests.support.imports import PACKAGE, cycles, import_graph, module_name
from tests.support.processes import REPO

ROOT = REPO / "module"
SOURCES = sorted((ROOT / PACKAGE).rglob("*.py"))
MAX_LINES = 300
# A module may be longer only with a note near its top saying why.
LONGER_NOTE = re.compile(r"^# Longer than \d+ lines: .+", re.MULTILINE)


def test_no_import_cycles_type_only_imports_included() -> None:
    assert cycles(import_graph(ROOT)) == []


def test_package_init_files_hold_no_imports() -> None:
    for path in SOURCES:
        if path.name == "__init__.py":
            tree = ast.parse(path.read_text())
            imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
            assert not imports, f"{path.relative_to(REPO)}: import from the defining module instead"


def test_modules_stay_small() -> None:
    for path in SOURCES:
        text = path.read_text()
        lines = text.count("\n")
        if lines > MAX_LINES:
            assert LONGER_NOTE.search(text[:2000]), f"{path.relative_to(REPO)}: {lines} lines, no note saying why"


def test_endpoints_depend_on_the_control_interface_alone() -> None:
    graph = import_graph(ROOT)
    # Their own configuration section (plain data) is all they may know of the rest.
    allowed = {
        "edgevision.control",
        "edgevision.errors",
        "edgevision.publish.messages",
        "edgevision.publish",
        "edgevision.config",
        "edgevision.config.model",
    }
    for endpoint in ("edgevision.endpoints.http", "edgevision.endpoints.prometheus", "edgevision.upstream.methods"):
        reached = {m for m in graph[endpoint] if not m.startswith("edgevision.endpoints")}
        assert reached <= allowed, f"{endpoint} imports {sorted(reached - allowed)}"


def test_message_shapes_are_built_in_the_publish_package() -> None:
    shape = re.compile(r"[\"']schema[\"']\s*:|[\"']type[\"']\s*:\s*[\"'](result|metrics|event|summary)[\"']")
    for path in SOURCES:
        name = module_name(ROOT, path)
        if name.startswith("edgevision.publish."):
            continue
        assert not shape.search(path.read_text()), f"{name} builds a message; use edgevision.publish.messages"
