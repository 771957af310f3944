"""`edgevision run`: the module's main job, stand-alone or inside IoT Edge."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from edgevision.errors import EXIT_FAILED, EXIT_OK, UsageError

log = logging.getLogger("edgevision")


def run_overrides(args: argparse.Namespace, base_cameras: Any) -> dict[str, Any]:
    """Command-line flags as a configuration document laid over the file and environment; the
    per-camera flags apply to every camera, the file's ones included."""
    from edgevision.config.load import merge, parse_setting
    from edgevision.config.source_uri import split_named_source

    overrides: dict[str, Any] = {}
    camera_flags = _camera_flags(args)
    if args.source:
        cameras = []
        for index, text in enumerate(args.source):
            name, uri = split_named_source(text)
            cameras.append({"id": name or f"cam{index}", "uri": uri, **camera_flags})
        overrides["cameras"] = cameras
    elif camera_flags and base_cameras:
        items = base_cameras.items() if isinstance(base_cameras, dict) else ((c.get("id"), c) for c in base_cameras)
        overrides["cameras"] = [{**c, "id": i, **camera_flags} for i, c in items]
    model = {
        k: v
        for k, v in (
            # A file is the model's path; a name, a built-in model.
            ("path" if args.model and _is_file_spec(args.model) else "name", args.model),
            ("manifest", args.manifest),
            ("family", args.family),
            ("labels", str(args.labels) if args.labels else None),
            ("score_threshold", args.threshold),
        )
        if v is not None
    }
    if args.model:
        # The flag replaces whichever of the two the file named (None removes a key in a merge).
        model["name" if "path" in model else "path"] = None
    if model:
        overrides["model"] = model
    options = (
        ("provider", args.provider),
        ("max_batch", args.max_batch),
        ("workers", args.workers),
        ("preprocess", args.preprocess),
        ("fp16", args.fp16),
        ("cuda_graph", args.cuda_graph),
    )
    inference = {k: v for k, v in options if v is not None}
    if inference:
        overrides["inference"] = inference
    if args.sink:
        if args.sink == "stdout":
            overrides["sink"] = {"kind": "stdout"}
        elif args.sink.startswith("jsonl:") and len(args.sink) > 6:
            overrides["sink"] = {"kind": "jsonl", "path": args.sink[6:]}
        else:
            raise UsageError(f"--sink {args.sink!r}: use stdout or jsonl:PATH")
    if args.metrics_interval:
        overrides["metrics_interval_s"] = args.metrics_interval
    for setting in args.settings or []:
        overrides = merge(overrides, parse_setting(setting))
    return overrides


def _camera_flags(args: argparse.Namespace) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if args.every_frame:
        flags["every_frame"] = True
    if args.loop:
        flags["loop"] = True
    if args.max_frames:
        flags["max_frames"] = args.max_frames
    if args.target_fps:
        flags["target_fps"] = args.target_fps
    if args.detection:
        flags["detection"] = {"mode": args.detection}
    return flags


def cmd_run(args: argparse.Namespace) -> int:
    import onnxruntime

    from edgevision.accel.discover import discover
    from edgevision.config.load import config_file, load_document, merge, validate
    from edgevision.config.watch import FileWatch
    from edgevision.module import Module
    from edgevision.status_line import StatusLine, summary_lines
    from edgevision.upstream.connection import edge_mode

    onnxruntime.set_default_logger_severity(3)
    base = load_document(args.config, environ=os.environ)
    document = merge(base, run_overrides(args, base.get("cameras")))
    validate(document)  # a bad flag or file fails here, before anything starts
    if not document.get("cameras") and edge_mode(os.environ) is None:
        document = merge(document, {"cameras": [_sample_camera(_camera_flags(args))]})

    # Installed first: a stop asked for while the module starts (a slow twin read) is kept.
    stop_requested = threading.Event()
    module: Module | None = None

    def stop(signum: int, _frame: Any) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        stop_requested.set()
        if module is not None:
            module.request_stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    show_status = args.status == "on" or (args.status == "auto" and sys.stderr.isatty())
    status_line = StatusLine(sys.stderr) if show_status else None
    module = Module(document, accelerator=discover(), on_tick=status_line)
    module.start()
    # A configuration file that changes (a Kubernetes ConfigMap) is taken while running.
    watched = config_file(args.config, os.environ)
    watch = None
    if watched is not None:

        def local_base() -> dict[str, Any]:
            fresh = load_document(args.config, environ=os.environ)
            return merge(fresh, run_overrides(args, fresh.get("cameras")))

        watch = FileWatch(watched, lambda: module.reload_base(local_base))
        watch.start()
    # Always said, whatever the log level: which mode, which configuration, cameras, provider.
    print(module.startup_summary(), file=sys.stderr, flush=True)
    if stop_requested.is_set():
        module.request_stop()
    deadline = time.monotonic() + args.duration if args.duration else None
    while not module.wait(0.2):
        if deadline is not None and time.monotonic() >= deadline:
            module.request_stop()
            deadline = None
    if watch is not None:
        watch.stop()
    if status_line is not None:
        status_line.clear()
    final = module.metrics_snapshot()
    for line in summary_lines(final):
        print(line, file=sys.stderr)
    return exit_status(final)


def exit_status(final: dict[str, Any]) -> int:
    """Non-zero, with one line saying why, when the run did not do its job: no camera could be
    read, inference failed for every frame, or results were lost to the sink."""
    cameras = final["cameras"].values()
    inference, written = final.get("inference", {}), final.get("results_written", {})
    problem = None
    if cameras and all(c["state"] == "failed" and c["inferred"] == 0 for c in cameras):
        problem = "no camera could be read"
    elif inference.get("failed_total") and not sum(c["inferred"] for c in cameras):
        problem = f"inference failed for every frame ({inference['failed_total']}): {inference['last_error']}"
    elif written.get("failed_total"):
        problem = f"{written['failed_total']} result(s) could not be written: {written['last_error']}"
    if problem is None:
        return EXIT_OK
    print(f"edgevision: error: {problem}", file=sys.stderr)
    return EXIT_FAILED


def _sample_camera(flags: dict[str, Any]) -> dict[str, Any]:
    """No camera given: the sample clip, played in real time like a camera, and one line saying so."""
    from edgevision.samples import SampleUnavailable, sample_clip

    try:
        path, sample = sample_clip()
    except SampleUnavailable as exc:
        raise UsageError(
            f"no camera: give one with --source URI (make run SOURCE=URI; rtsp://..., http://..., a video file, "
            f"an image folder, /dev/video0) or cameras in --config; the sample clip could not be fetched ({exc})"
        ) from None
    print(
        f"edgevision: no camera given: playing the sample clip {path} ({sample.credit}); "
        "pass --source URI for your own camera",
        file=sys.stderr,
        flush=True,
    )
    return {"id": "sample", "uri": str(path), **flags}


def _is_file_spec(model: str) -> bool:
    return model.endswith(".onnx") or "/" in model or model.startswith(".")
