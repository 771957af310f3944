"""Render a ready IoT Edge deployment (manifest) from deployment.template.json."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import jsonschema

from edgevision.config.load import merge, validate
from edgevision.config.model import AppConfig
from edgevision.documents import DocumentError, read_document
from edgevision.errors import EXIT_USAGE, ConfigError, EdgevisionError

GpuMode = Literal["dda", "gpu-pv", "cpu"]
# IoT Edge runtimes a manifest can target: its system modules' image tags. The template names
# 1.6 LTS (supported to 2028-11-14); 1.5 LTS left support on 2026-11-10 and stays renderable for
# devices (EFLOW 1.5) not yet moved.
RUNTIMES: tuple[str, ...] = ("1.6", "1.5")
_SYSTEM_IMAGE = re.compile(r"^(mcr\.microsoft\.com/azureiotedge-(?:agent|hub)):[0-9.]+$")
GPU_MODES: tuple[str, ...] = ("dda", "gpu-pv", "cpu")
MODULE = "edgevision"
# IoT Edge limits each createOptions string; longer ones go on in createOptions01..07.
CREATE_OPTIONS_CHUNK = 512
CREATE_OPTIONS_MAX_CHUNKS = 8
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class DeploymentError(EdgevisionError, ValueError):
    """The template, the variables or the desired properties do not make a valid deployment."""

    exit_code = EXIT_USAGE


def template_path() -> Path:
    """The packaged template, or the repository's when running from a checkout."""
    packaged = Path(__file__).resolve().parent / "_deploy" / "deployment.template.json"
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "deployment.template.json"


def deployment_schema() -> dict[str, Any]:
    text = resources.files("edgevision").joinpath("schemas/deployment-manifest.schema.json").read_text()
    return json.loads(text)


def render(
    template: Mapping[str, Any],
    *,
    gpu: GpuMode,
    variables: Mapping[str, str],
    desired: Mapping[str, Any] | None = None,
    runtime: str = RUNTIMES[0],
) -> dict[str, Any]:
    """Fill placeholders, add the GPU access of one passthrough mode, validate the module's
    desired properties with the module's own configuration model, and serialise createOptions."""
    document = copy.deepcopy(dict(template))
    extensions = document.pop("$edgevision", {})
    document.pop("$schema-template", None)
    modes = extensions.get("gpu", {})
    if gpu not in modes:
        raise DeploymentError(f"--gpu {gpu!r}: the template describes {', '.join(sorted(modes)) or 'no GPU mode'}")

    variables = dict(variables)
    credentials = ("CONTAINER_REGISTRY_USERNAME", "CONTAINER_REGISTRY_PASSWORD")
    agent = document["modulesContent"]["$edgeAgent"]["properties.desired"]
    if not any(variables.get(name) for name in credentials):
        # A public registry: no credentials block rather than empty ones.
        agent["runtime"]["settings"].pop("registryCredentials", None)
    document = _substitute(document, variables)
    agent = document["modulesContent"]["$edgeAgent"]["properties.desired"]

    if runtime not in RUNTIMES:
        raise DeploymentError(f"--runtime {runtime!r}: one of {', '.join(RUNTIMES)}")
    for name, entry in agent.get("systemModules", {}).items():
        settings = entry.get("settings", {})
        match = _SYSTEM_IMAGE.match(str(settings.get("image", "")))
        if match is None:
            raise DeploymentError(f"system module {name}: image {settings.get('image')!r} is not an IoT Edge image")
        settings["image"] = f"{match.group(1)}:{runtime}"

    module = agent["modules"].get(MODULE)
    if module is None:
        raise DeploymentError(f"the template has no module {MODULE!r}")
    module["settings"]["createOptions"] = _merge_lists(module["settings"].get("createOptions", {}), modes[gpu])

    twin = document["modulesContent"].setdefault(MODULE, {"properties.desired": {}})
    properties = merge(twin.get("properties.desired", {}), dict(desired or {}))
    if gpu == "cpu":
        properties = merge(properties, {"inference": {"provider": "cpu"}})
    if "remote" in properties:
        raise DeploymentError(
            f"desired properties of {MODULE}: remote: set only by the module's local configuration "
            "(the module refuses it from the twin)"
        )
    _check_twin(properties)
    try:
        config = validate(properties)
    except ConfigError as exc:
        raise DeploymentError(f"desired properties of {MODULE}: {exc}") from None
    twin["properties.desired"] = properties
    # What the twin names that only the local configuration may allow (config/remote.py): the
    # module's own environment allows exactly that, no more.
    options = module["settings"]["createOptions"]
    options["Env"] = [*options.get("Env", []), *allowances(config)]

    for name, entry in all_modules(agent):
        settings = entry.setdefault("settings", {})
        settings.update(split_create_options(settings.pop("createOptions", {}), name))
    _check_schema(document)
    return document


def _substitute(value: Any, variables: dict[str, str], used: set[str] | None = None) -> Any:
    top = used is None
    used = set() if used is None else used
    if isinstance(value, dict):
        result: Any = {k: _substitute(v, variables, used) for k, v in value.items()}
    elif isinstance(value, list):
        result = [_substitute(v, variables, used) for v in value]
    elif isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in variables or variables[name] == "":
                raise DeploymentError(f"placeholder ${{{name}}} has no value (give it with --set {name}=...)")
            used.add(name)
            return variables[name]

        result = _PLACEHOLDER.sub(replace, value)
    else:
        result = value
    if top:
        unknown = sorted(set(variables) - used)
        if unknown:
            raise DeploymentError(f"no placeholder in the template for: {', '.join(unknown)}")
    return result


def _merge_lists(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge where lists are joined (Binds, Devices, Env accumulate)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge_lists(merged[key], value)
        elif isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + value
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def all_modules(agent: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return list(agent["systemModules"].items()) + list(agent["modules"].items())


def split_create_options(options: Mapping[str, Any] | str, module: str = MODULE) -> dict[str, str]:
    """createOptions as the manifest wants it: a JSON string, split every 512 characters."""
    text = options if isinstance(options, str) else json.dumps(options, separators=(",", ":"))
    chunks = [text[i : i + CREATE_OPTIONS_CHUNK] for i in range(0, len(text), CREATE_OPTIONS_CHUNK)] or ["{}"]
    if len(chunks) > CREATE_OPTIONS_MAX_CHUNKS:
        raise DeploymentError(
            f"{module}: createOptions is {len(text)} characters; IoT Edge takes at most "
            f"{CREATE_OPTIONS_CHUNK * CREATE_OPTIONS_MAX_CHUNKS}"
        )
    return {("createOptions" if i == 0 else f"createOptions{i:02d}"): chunk for i, chunk in enumerate(chunks)}


def join_create_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of split_create_options (what edgeAgent does)."""
    keys = sorted(k for k in settings if re.fullmatch(r"createOptions(0[1-7])?", k))
    return json.loads("".join(settings[k] for k in keys)) if keys else {}


def allowances(config: AppConfig) -> list[str]:
    """Environment entries (local configuration) that let the module take these cameras from its
    twin: the local sources they name, and the hosts their credentials references go to."""
    local = {"synthetic": lambda t: "synthetic:", "usb": lambda t: f"/dev/video{t}"}
    sources = sorted({local.get(c.spec.kind, str)(c.spec.target) for c in config.cameras if c.spec.kind != "stream"})
    hosts = sorted({h for c in config.cameras if c.credentials and (h := urlsplit(c.uri).hostname)})
    entries = []
    if sources:
        entries.append(f"EDGEVISION_REMOTE__LOCAL_SOURCES={json.dumps(sources)}")
    if hosts:
        entries.append(f"EDGEVISION_REMOTE__CREDENTIAL_HOSTS={json.dumps(hosts)}")
    return entries


def _check_twin(properties: Mapping[str, Any], where: str = "") -> None:
    for key, value in properties.items():
        path = f"{where}.{key}" if where else key
        if isinstance(value, list):
            raise DeploymentError(
                f"desired property {path}: module twins cannot hold arrays (cameras are a mapping by id)"
            )
        if any(c in key for c in ".$ "):
            raise DeploymentError(f"desired property {path}: names cannot contain '.', '$' or spaces")
        if isinstance(value, Mapping):
            _check_twin(value, path)


def _check_schema(document: Mapping[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(deployment_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        problems = "; ".join(f"{'/'.join(map(str, e.absolute_path)) or 'manifest'}: {e.message}" for e in errors[:5])
        raise DeploymentError(f"the rendered manifest is not valid: {problems}")


def render_file(template_file: Path | None, **kwargs: Any) -> dict[str, Any]:
    path = template_file or template_path()
    try:
        template = read_document(path, "template")
    except DocumentError as exc:
        raise DeploymentError(str(exc)) from None
    return render(template, **kwargs)
