"""`edgevision`: one entry point, one error handler."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
from collections.abc import Sequence

from edgevision.cli.parser import build_parser
from edgevision.errors import EXIT_FAILED, EdgevisionError
from edgevision.redaction import RedactingFilter, RepeatFilter, redact_text

log = logging.getLogger("edgevision")

# ONNX Runtime 1.29+ starts a telemetry uploader on Linux when it is imported: a device id and an
# event store under XDG_CACHE_HOME (the state volume in the image) and connections out of the
# device. A module on a camera network sends nothing its user did not configure; a user who wants
# it sets ORT_DISABLE_TELEMETRY=0. Read by the library at import, so set before any import of it.
_TELEMETRY_SWITCH = "ORT_DISABLE_TELEMETRY"


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("edgevision: %(levelname)s: %(message)s"))
    # Whoever logs (the module, the SDK, a library quoting a URL), no camera password is written.
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=level, handlers=[handler])
    # The SDK logs every publish at INFO; its warnings are what operators need.
    repeats = RepeatFilter()
    for noisy in ("azure.iot.device", "paho"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbosity > 2 else logging.WARNING)
    # Their records reach the handler from many child loggers: the filter sits on the handler.
    handler.addFilter(lambda record: not record.name.startswith(("azure.", "paho")) or repeats.filter(record))


def _handler(command: str):  # a command function
    if command == "run":
        from edgevision.cli.run import cmd_run

        return cmd_run
    if command == "manifest":
        from edgevision.cli.deployment import cmd_manifest

        return cmd_manifest
    if command == "doctor":
        from edgevision.cli.doctor import cmd_doctor

        return cmd_doctor
    if command == "benchmark":
        from edgevision.cli.bench import cmd_benchmark

        return cmd_benchmark
    if command == "health":
        from edgevision.cli.health import cmd_health

        return cmd_health
    if command == "config":
        from edgevision.cli.config import cmd_config

        return cmd_config
    from edgevision.cli import commands

    return {"gpu": commands.cmd_gpu, "detect": commands.cmd_detect, "models": commands.cmd_models}[command]


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault(_TELEMETRY_SWITCH, "1")
    args = None
    try:
        args = build_parser().parse_args(argv)
        _configure_logging(args.verbose)
        # `kill -USR1 <pid>`: every thread's stack to stderr, for a module that hangs in the field.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        return _handler(args.command)(args)
    except EdgevisionError as exc:
        print(f"edgevision: error: {redact_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a one-line report beats a traceback for operators
        if args is not None and args.verbose > 1:
            raise
        detail = redact_text(str(exc))
        print(
            f"edgevision: error: unexpected {type(exc).__name__}: {detail} (run with -vv for details)", file=sys.stderr
        )
        return EXIT_FAILED
