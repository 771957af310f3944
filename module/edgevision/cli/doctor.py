"""`edgevision doctor`: every inference path checked on this machine; non-zero on any failure."""

from __future__ import annotations

import argparse
import json
import sys

from edgevision.errors import EXIT_FAILED, EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    import onnxruntime

    from edgevision.accel.discover import discover
    from edgevision.detector.resolve import resolve_model
    from edgevision.doctor.run import as_json, as_table, run_checks
    from edgevision.imageio import read_image

    onnxruntime.set_default_logger_severity(3)
    model = resolve_model(args.model, manifest=args.manifest, family=args.family, labels=args.labels)
    images = [read_image(path) for path in args.images or []]
    accelerator = discover()
    results = run_checks(
        model,
        accelerator,
        images,
        max_batch=args.max_batch,
        skip_tensorrt=args.skip_tensorrt,
        limit_s=args.time_limit,
        tensorrt_limit_s=args.tensorrt_time_limit,
    )
    if args.json:
        print(json.dumps(as_json(results, model, accelerator), indent=2))
    else:
        print(f"edgevision doctor: {model.name} on {accelerator.summary()}")
        print(as_table(results))
    sys.stdout.flush()
    return EXIT_FAILED if any(r.status == "fail" for r in results) else EXIT_OK
