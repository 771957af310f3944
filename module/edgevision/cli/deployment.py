"""`edgevision manifest`: a deployment manifest for IoT Hub, rendered from the template."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from edgevision.errors import EXIT_OK, UsageError

log = logging.getLogger("edgevision")


def cmd_manifest(args: argparse.Namespace) -> int:
    from edgevision.config.load import merge, parse_setting, read_file
    from edgevision.deployment import all_modules, render_file
    from edgevision.sources.uri import split_named_source

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
    document = render_file(args.template, gpu=args.gpu, variables=variables, desired=desired)
    text = json.dumps(document, indent=2) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"edgevision: wrote {args.out} ({args.gpu})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    agent = document["modulesContent"]["$edgeAgent"]["properties.desired"]
    if any(k.startswith("createOptions0") for _, m in all_modules(agent) for k in m["settings"]):
        log.warning("createOptions were split into createOptions01...; IoT Central does not accept the split form")
    return EXIT_OK
