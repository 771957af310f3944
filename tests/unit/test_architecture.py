"""The package's shape: imports that point down a stated layering, no import cycles, one place for
message shapes, endpoints that see only the control interface."""

from __future__ import annotations

import ast
import re

from tests.support.imports import PACKAGE, cycles, import_graph, module_name
from tests.support.processes import REPO

ROOT = REPO / "module"
SOURCES = sorted((ROOT / PACKAGE).rglob("*.py"))

# Which package (or top-level module) may import which: each row imports only from the rows above
# it, never from its own row or a row below. A new package or module gets a row here.
LAYERS: tuple[tuple[str, ...], ...] = (
    # The ground: nothing of the package.
    ("edgevision", "accel", "control", "detections", "download", "geometry", "outcomes", "redaction", "state"),
    ("errors", "metrics", "status_line"),
    ("documents", "imageio"),
    # Manifests, model files and their derived copies.
    ("models",),
    ("config", "preprocess", "samples"),
    # The data path's parts: sessions, decoders, cameras, message shapes; and the endpoints.
    ("inference", "families", "sources", "publish", "deployment", "endpoints"),
    # A loaded detector; analytics on its boxes; IoT Hub; the endpoints' lifecycle.
    ("detector", "analytics", "upstream", "http_service"),
    ("doctor", "preview_frames", "convergence"),
    # Snapshots and clips of events: drawn as the preview draws, fed by the pipeline.
    ("evidence",),
    ("pipeline",),
    ("benchmark", "module"),
    ("cli",),
    ("__main__",),
)


def _unit(module: str) -> str:
    """The package or top-level module a module belongs to (`edgevision.pipeline.build` -> pipeline)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_imports_point_down_the_layering() -> None:
    layer = {name: row for row, names in enumerate(LAYERS) for name in names}
    graph = import_graph(ROOT)
    units = {_unit(m) for m in graph}
    assert units <= layer.keys(), f"not in LAYERS: {sorted(units - layer.keys())}"
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if _unit(module) != _unit(target) and layer[_unit(target)] >= layer[_unit(module)]
    )
    assert upward == [], "imports that do not point down LAYERS"


def test_no_import_cycles_type_only_imports_included() -> None:
    assert cycles(import_graph(ROOT)) == []


def test_package_init_files_hold_no_imports() -> None:
    for path in SOURCES:
        if path.name == "__init__.py":
            tree = ast.parse(path.read_text())
            imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
            assert not imports, f"{path.relative_to(REPO)}: import from the defining module instead"


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
