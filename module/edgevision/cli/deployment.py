"""`edgevision manifest`: a deployment manifest for IoT Hub, rendered from the template."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from edgevision.errors import EXIT_OK, UsageError

log = logging.getLogger("edgevision")


def cmd_manifest(args: argparse.Namespace) -> int:
    from edgevision.config.load import merge, parse_setting, read_file
    from edgevision.config.source_uri import split_named_source
    from edgevision.deployment import all_modules, render_file

    desired: dict[str, Any] = read_file(args.desired) if args.desired else {}
    for text in args.camera or []:
        name, uri = split_named_source(text)
        if name is None:
            raise UsageError(f"--camera {text!r}: give it as ID=URI")
        desired = merge(desired, {"cameras": {name: {"uri": uri}}})
    for text in args.settings or []:
        desired = merge(desired, parse_setting(text))
    variables = {
        "CONTAINER_REGISTRY_ADDRESS": args.registry,
        "IMAGE_NAME": args.image,
        "IMAGE_TAG": args.tag,
        "CONTAINER_REGISTRY_USERNAME": args.registry_username,
        "CONTAINER_REGISTRY_PASSWORD": args.registry_password,
    }
    if bool(args.registry_username) != bool(args.registry_password):
        raise UsageError("give both --registry-username and --registry-password, or neither")
    variables = {k: v for k, v in variables.items() if v}
    document = render_file(args.template, gpu=args.gpu, variables=variables, desired=desired, runtime=args.runtime)
    text = json.dumps(document, indent=2) + "\n"
    secrets = _secrets_in(desired) + (["the registry password"] if args.registry_password else [])
    for camera in _cameras_with_passwords(desired):
        log.warning(
            "camera %s: its password goes into the module twin; keep it out with credentials: env:NAME "
            "or file:/path (README, Secrets)",
            camera,
        )
    if args.out:
        _write(args.out, text, private=bool(secrets))
        held = f"; it holds {', '.join(secrets)}: readable by you only (0600)" if secrets else ""
        print(f"edgevision: wrote {args.out} ({args.gpu}){held}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    agent = document["modulesContent"]["$edgeAgent"]["properties.desired"]
    if any(k.startswith("createOptions0") for _, m in all_modules(agent) for k in m["settings"]):
        log.warning("createOptions were split into createOptions01...; IoT Central does not accept the split form")
    return EXIT_OK


def _cameras_with_passwords(desired: dict[str, Any]) -> list[str]:
    from edgevision.redaction import redact_uri

    cameras = desired.get("cameras") or {}
    items = cameras.items() if isinstance(cameras, dict) else ((c.get("id"), c) for c in cameras if isinstance(c, dict))
    return [
        str(name)
        for name, camera in items
        if isinstance(camera, dict)
        and isinstance(camera.get("uri"), str)
        and redact_uri(camera["uri"]) != camera["uri"]
    ]


def _secrets_in(desired: dict[str, Any]) -> list[str]:
    found = [f"camera {name}'s password" for name in _cameras_with_passwords(desired)]
    if isinstance(desired.get("http"), dict) and desired["http"].get("token"):
        found.append("the HTTP token")
    return found


def _write(path: Path, text: str, private: bool) -> None:
    """Written whole; with secrets in it, created (or narrowed to) owner-only before a byte lands."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if private else 0o644)
    try:
        if private:
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            fd = -1
            f.write(text)
    finally:
        if fd >= 0:
            os.close(fd)
