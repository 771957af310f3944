"""`edgevision config schema` is what the module accepts, and the README's configuration reference
stays in step with it: the reference validates against the schema and the model, names every
field the schema has, and no field the schema lacks."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import yaml

from edgevision.config.load import validate
from edgevision.config.model import json_schema
from tests.support.processes import REPO, run_cli


def _reference() -> tuple[str, dict[str, Any]]:
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("### Configuration") :].split("```yaml\n", 1)[1].split("```", 1)[0]
    return block, yaml.safe_load(block)


def _properties(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any] | None:
    definitions = schema["$defs"]
    if "$ref" in node:
        return _properties(schema, definitions[node["$ref"].rsplit("/", 1)[1]])
    if "properties" in node:
        return node["properties"]
    for option in node.get("anyOf", []):
        found = _properties(schema, option)
        if found is not None:
            return found
    return None


def test_the_readme_reference_validates_and_names_every_field() -> None:
    schema = json_schema()
    block, document = _reference()
    jsonschema.Draft202012Validator(schema).validate(document)
    validate(document)
    assert set(document) == set(schema["properties"])
    sections = {name: _properties(schema, node) for name, node in schema["properties"].items()}
    sections["camera"] = schema["$defs"]["CameraByKey"]["properties"]
    for section, fields in sections.items():
        if fields is None:
            continue
        missing = [f for f in fields if not re.search(rf"\b{f}\b", block)]
        assert not missing, f"{section}: {missing} not in the README's configuration reference"
    for section, value in document.items():
        fields = sections.get(section)
        if isinstance(value, dict) and fields is not None:
            assert set(value) <= set(fields), f"{section}: {set(value) - set(fields)} not in the schema"


def test_the_schema_command_prints_it_and_the_check_command_uses_the_model(tmp_path) -> None:
    done = run_cli("config", "schema")
    assert done.returncode == 0 and json.loads(done.stdout) == json_schema()
    good = tmp_path / "good.yaml"
    good.write_text("cameras:\n  door: {uri: 'rtsp://10.0.0.9/s'}\nreplicas: {count: 2, ordinal: 1}\n")
    assert run_cli("config", "check", str(good)).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  door: {uri: 'rtsp://user:hunter2@10.0.0.9/s', target_fps: -1}\n")
    done = run_cli("config", "check", str(bad))
    assert done.returncode == 2 and "target_fps" in done.stderr and "hunter2" not in done.stderr
    assert "Traceback" not in done.stderr


def test_the_schema_explains_every_field() -> None:
    """The descriptions live in the model (not in comments), so a ConfigMap or twin editor shows
    them: every field of every section, the top level's included."""
    schema = json_schema()
    sections = {"AppConfig": schema, **schema["$defs"]}
    unexplained = [
        f"{name}.{field}"
        for name, section in sections.items()
        for field, spec in section.get("properties", {}).items()
        if len(spec.get("description", "")) < 20
    ]
    assert sum(len(s.get("properties", {})) for s in sections.values()) > 100
    assert unexplained == []
