"""`edgevision gpu`, `detect` and `models`: the one-shot commands."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from edgevision.errors import EXIT_FAILED, EXIT_OK

log = logging.getLogger("edgevision")


def print_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


def cmd_gpu(args: argparse.Namespace) -> int:
    from edgevision.accel.discover import ProbeTargets, discover

    print_json(discover(ProbeTargets(timeout_s=args.timeout)).to_dict())
    return EXIT_OK


def cmd_detect(args: argparse.Namespace) -> int:
    import onnxruntime

    from edgevision.detector.detector import Detector, DetectorConfig, StageTimes
    from edgevision.detector.loader import DetectorLoader
    from edgevision.detector.resolve import resolve_model
    from edgevision.imageio import ImageReadError, read_image
    from edgevision.inference.options import EngineConfig

    # ORT's own logger would repeat on stderr what the engine already reports in one line.
    onnxruntime.set_default_logger_severity(3)
    model = resolve_model(
        args.model, manifest=args.manifest, download=not args.no_download, family=args.family, labels=args.labels
    )
    loaded = DetectorLoader().load(
        model, EngineConfig(provider=args.provider, strict=args.strict_provider), args.batch, args.preprocess == "graph"
    )
    detector = Detector(loaded, DetectorConfig(score_threshold=args.threshold, nms_iou=args.nms))
    failed = 0
    pending: list[tuple[Path, Any]] = []

    def flush() -> None:
        times = StageTimes()
        results = detector.detect([frame for _, frame in pending], times)
        for (image, _), detections in zip(pending, results, strict=True):
            print_json(
                {
                    "image": str(image),
                    "model": model.name,
                    "provider": detector.engine.provider,
                    "width": detections.width,
                    "height": detections.height,
                    "detections": detections.to_json(detector.labels),
                    "timings_ms": times.per_frame(),
                }
            )
        pending.clear()

    for image in args.images:
        try:
            pending.append((image, read_image(image)))
        except ImageReadError as exc:
            failed += 1
            log.error("%s", exc)
            continue
        if len(pending) == args.batch:
            flush()
    if pending:
        flush()
    return EXIT_FAILED if failed else EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from edgevision.detector.resolve import resolve_model
    from edgevision.models.manifest import available_manifests
    from edgevision.models.store import default_model_dir

    if args.models_command == "inspect":
        from edgevision.detector.inspect import as_text, inspect_model

        report = inspect_model(args.file, args.family, args.labels)
        if args.json:
            print_json(report)
        else:
            sys.stdout.write(as_text(report) + "\n")
        return EXIT_OK if report["recognised"] else EXIT_FAILED
    if args.models_command == "list":
        directory = default_model_dir()
        for manifest in available_manifests().values():
            present = (directory / manifest.file).is_file()
            print_json(
                {
                    "name": manifest.name,
                    "file": manifest.file,
                    "input": [manifest.input.width, manifest.input.height],
                    "family": manifest.family,
                    "classes": manifest.num_classes,
                    "license": manifest.license,
                    "present": present,
                    "path": str(directory / manifest.file),
                }
            )
        return EXIT_OK
    model = resolve_model(args.name, download=args.models_command == "fetch")
    print_json({"name": model.name, "path": str(model.path), "sha256": model.sha256, "verified": model.verified})
    return EXIT_OK
