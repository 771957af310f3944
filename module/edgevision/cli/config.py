"""`edgevision config schema|check`: the configuration's JSON Schema (what a Kubernetes ConfigMap
author or a twin editor validates against), and a file checked the way the module checks it."""

from __future__ import annotations

import argparse
import json
import sys

from edgevision.errors import EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    from edgevision.config.load import read_file, validate
    from edgevision.config.model import json_schema

    if args.config_command == "check":
        validate(read_file(args.file))  # ConfigError: one line naming each bad field, exit 2
        print(f"edgevision: {args.file}: valid", file=sys.stderr)
        return EXIT_OK
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return EXIT_OK
