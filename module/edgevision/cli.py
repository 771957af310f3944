"""Command line: `edgevision gpu | detect | models`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from edgevision import __version__

log = logging.getLogger("edgevision")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: scripts and log collectors read the last line.
        raise UsageError(f"{message} (see {self.prog} --help)")


def _build_parser() -> argparse.ArgumentParser:
    from edgevision.engine import PROVIDER_CHOICES

    parser = _Parser(prog="edgevision", description="GPU vision inference module for Azure IoT Edge.")
    parser.add_argument("--version", action="version", version=f"edgevision {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gpu = sub.add_parser("gpu", help="describe the GPU passed through to this container, as JSON")
    gpu.add_argument("--timeout", type=float, default=10.0, help="seconds allowed for the driver probe")

    detect = sub.add_parser("detect", help="detect objects in images; one JSON document per image")
    detect.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    detect.add_argument("--model", default="yolox-nano", help="model name (see `models list`) or .onnx path")
    detect.add_argument("--manifest", help="manifest for a model path: a model name or a manifest JSON file")
    detect.add_argument("--provider", default="auto", choices=PROVIDER_CHOICES)
    detect.add_argument("--strict-provider", action="store_true", help="fail instead of falling back to the CPU")
    detect.add_argument("--threshold", type=_unit_float, default=0.3, help="minimum score (default 0.3)")
    detect.add_argument("--nms", type=_unit_float, default=0.45, help="NMS IoU threshold (default 0.45)")
    detect.add_argument("--batch", type=_positive_int, default=1, help="images per inference call")
    detect.add_argument(
        "--preprocess",
        choices=("host", "graph"),
        default="host",
        help="letterbox on the host (OpenCV) or inside the model graph",
    )
    detect.add_argument("--no-download", action="store_true", help="never download the model")

    run = sub.add_parser("run", help="run inference on cameras until stopped (the module's main job)")
    run.add_argument("--config", type=Path, help="YAML or JSON configuration file")
    run.add_argument(
        "--source",
        action="append",
        metavar="[ID=]URI",
        help="camera: rtsp://, http(s)://, file path, image folder, /dev/videoN, synthetic:WxH@FPS",
    )
    run.add_argument("--sink", help="stdout (default) or jsonl:PATH")
    run.add_argument("--max-frames", type=_positive_int, help="stop each camera after N frames")
    run.add_argument("--every-frame", action="store_true", help="files: process every frame, no dropping")
    run.add_argument("--loop", action="store_true", help="files: start again at the end")
    run.add_argument("--target-fps", type=_positive_float, help="frames per second per camera sent to inference")
    run.add_argument("--model", help="model name or .onnx path")
    run.add_argument("--manifest", help="manifest for a model path")
    run.add_argument("--provider", choices=PROVIDER_CHOICES)
    run.add_argument("--threshold", type=_unit_float)
    run.add_argument("--max-batch", type=_positive_int)
    run.add_argument("--workers", type=_positive_int, help="inference workers")
    run.add_argument(
        "--preprocess",
        choices=("host", "graph"),
        help="letterbox on the host (OpenCV) or inside the model graph, on its provider",
    )
    run.add_argument("--fp16", action="store_true", default=None, help="GPU: half-precision copy of the model")
    run.add_argument("--cuda-graph", action="store_true", default=None, help="GPU: capture CUDA graphs (experimental)")
    run.add_argument("--metrics-interval", type=_positive_float, help="seconds between metrics snapshots")
    run.add_argument("--duration", type=_positive_float, help="stop after this many seconds")
    run.add_argument(
        "--status",
        choices=("auto", "on", "off"),
        default="auto",
        help="live status line on stderr (auto: when it is a terminal)",
    )

    manifest = sub.add_parser("manifest", help="render a deployment manifest for IoT Hub")
    manifest.add_argument(
        "--gpu",
        required=True,
        choices=("dda", "gpu-pv", "cpu"),
        help="GPU passthrough of the EFLOW VM: dda, gpu-pv, or cpu (no GPU)",
    )
    manifest.add_argument("--registry", required=True, help="container registry address, e.g. myacr.azurecr.io")
    manifest.add_argument("--image", default="edgevision", help="image name (default edgevision)")
    manifest.add_argument("--tag", default=__version__, help=f"image tag (default {__version__})")
    manifest.add_argument("--registry-username", default="")
    manifest.add_argument("--registry-password", default="")
    manifest.add_argument("--camera", action="append", metavar="ID=URI", help="a camera (repeatable)")
    manifest.add_argument("--desired", type=Path, help="JSON or YAML file of the module's desired properties")
    manifest.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        dest="settings",
        help="a desired property by dotted path, e.g. model.score_threshold=0.5",
    )
    manifest.add_argument("--template", type=Path, help="template (default: the packaged deployment.template.json)")
    manifest.add_argument("--out", type=Path, help="write here instead of stdout")

    bench = sub.add_parser("benchmark", help="measure fps against the limit and a naive loop on this machine")
    bench.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    bench.add_argument(
        "--video", type=Path, help="video to decode (default: the test assets' clip, or a generated one)"
    )
    bench.add_argument(
        "--providers", nargs="+", default=["cpu", "cuda", "tensorrt"], choices=("cpu", "cuda", "tensorrt")
    )
    bench.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder for JSON, Markdown, PNG")
    bench.add_argument(
        "--soak",
        type=_positive_float,
        metavar="MINUTES",
        help="instead: two cameras at full speed for MINUTES, reporting RSS, GPU memory, threads, "
        "file descriptors and fps with their slopes",
    )

    models = sub.add_parser("models", help="list, locate or download models")
    models_sub = models.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    models_sub.add_parser("list", help="the built-in model manifests")
    fetch = models_sub.add_parser("fetch", help="make sure a model is in the model directory (download if not)")
    fetch.add_argument("name")
    path = models_sub.add_parser("path", help="print a model's file path (no download)")
    path.add_argument("name")
    return parser


def _unit_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is outside [0, 1]")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="edgevision: %(levelname)s: %(message)s", stream=sys.stderr)
    # The SDK logs every publish at INFO; its warnings are what operators need.
    for noisy in ("azure.iot.device", "paho"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbosity > 2 else logging.WARNING)


def _print_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


def cmd_gpu(args: argparse.Namespace) -> int:
    from edgevision.accel import ProbeTargets, discover

    _print_json(discover(ProbeTargets(timeout_s=args.timeout)).to_dict())
    return EXIT_OK


def cmd_detect(args: argparse.Namespace) -> int:
    import onnxruntime

    from edgevision.detector import Detector, DetectorConfig, StageTimes
    from edgevision.engine import EngineConfig
    from edgevision.imageio import ImageReadError, read_image
    from edgevision.models import resolve_model

    # ORT's own logger would repeat on stderr what the engine already reports in one line.
    onnxruntime.set_default_logger_severity(3)
    model = resolve_model(args.model, manifest=args.manifest, download=not args.no_download)
    detector = Detector(
        model,
        EngineConfig(provider=args.provider, strict=args.strict_provider),
        DetectorConfig(
            score_threshold=args.threshold, nms_iou=args.nms, max_batch=args.batch, preprocess=args.preprocess
        ),
    )
    failed = 0
    pending: list[tuple[Path, Any]] = []

    def flush() -> None:
        times = StageTimes()
        results = detector.detect([frame for _, frame in pending], times)
        for (image, _), detections in zip(pending, results):
            _print_json(
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


def _run_overrides(args: argparse.Namespace, file_cameras: Any) -> dict[str, Any]:
    """Command-line flags as a configuration document laid over the file and environment."""
    from edgevision.sources import split_named_source

    overrides: dict[str, Any] = {}
    camera_flags: dict[str, Any] = {}
    if args.every_frame:
        camera_flags["every_frame"] = True
    if args.loop:
        camera_flags["loop"] = True
    if args.max_frames:
        camera_flags["max_frames"] = args.max_frames
    if args.target_fps:
        camera_flags["target_fps"] = args.target_fps
    if args.source:
        cameras = []
        for index, text in enumerate(args.source):
            name, uri = split_named_source(text)
            cameras.append({"id": name or f"cam{index}", "uri": uri, **camera_flags})
        overrides["cameras"] = cameras
    elif camera_flags and file_cameras:
        items = file_cameras.items() if isinstance(file_cameras, dict) else ((c.get("id"), c) for c in file_cameras)
        overrides["cameras"] = [{**c, "id": i, **camera_flags} for i, c in items]
    model = {
        k: v
        for k, v in (("name", args.model), ("manifest", args.manifest), ("score_threshold", args.threshold))
        if v is not None
    }
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
    return overrides


def cmd_run(args: argparse.Namespace) -> int:
    import os
    import signal
    import time

    import onnxruntime

    from edgevision import config as configuration
    from edgevision.accel import discover
    from edgevision.module import Module
    from edgevision.status_line import StatusLine, summary_lines
    from edgevision.upstream.connection import edge_mode

    onnxruntime.set_default_logger_severity(3)
    file_document = configuration.read_file(args.config) if args.config else {}
    document = configuration.merge(file_document, configuration.from_environment(os.environ))
    document = configuration.merge(document, _run_overrides(args, document.get("cameras")))
    if not document.get("cameras") and edge_mode(os.environ) is None:
        raise UsageError("no camera: give --source URI or cameras in --config")

    show_status = args.status == "on" or (args.status == "auto" and sys.stderr.isatty())
    status_line = StatusLine(sys.stderr) if show_status else None
    accelerator = discover()
    module = Module(document, accelerator=accelerator, on_tick=status_line)
    module.start()

    def stop(signum: int, _frame: Any) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        module.request_stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    deadline = time.monotonic() + args.duration if args.duration else None
    while not module.wait(0.2):
        if deadline is not None and time.monotonic() >= deadline:
            module.request_stop()
            deadline = None
    if status_line is not None:
        status_line.clear()
    assert module.pipeline is not None
    final = module.pipeline.metrics_snapshot()
    for line in summary_lines(final):
        print(line, file=sys.stderr)
    cameras = final["cameras"].values()
    if cameras and all(c["state"] == "failed" and c["inferred"] == 0 for c in cameras):
        print("edgevision: error: no camera could be read", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_manifest(args: argparse.Namespace) -> int:
    from edgevision import config as configuration
    from edgevision.deploy import ManifestRenderError, render_file
    from edgevision.sources import split_named_source

    desired: dict[str, Any] = configuration.read_file(args.desired) if args.desired else {}
    for text in args.camera or []:
        name, uri = split_named_source(text)
        if name is None:
            raise UsageError(f"--camera {text!r}: give it as ID=URI")
        desired = configuration.merge(desired, {"cameras": {name: {"uri": uri}}})
    for text in args.settings or []:
        key, sep, raw = text.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {text!r}: give it as KEY=VALUE")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        for part in reversed(key.split(".")):
            value = {part: value}
        desired = configuration.merge(desired, value)
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
    try:
        document = render_file(args.template, gpu=args.gpu, variables=variables, desired=desired)
    except ManifestRenderError as exc:
        raise UsageError(str(exc)) from None
    text = json.dumps(document, indent=2) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"edgevision: wrote {args.out} ({args.gpu})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if any(k.startswith("createOptions0") for m in _modules(document) for k in m["settings"]):
        log.warning("createOptions were split into createOptions01...; IoT Central does not accept the split form")
    return EXIT_OK


def _modules(document: dict[str, Any]) -> list[dict[str, Any]]:
    agent = document["modulesContent"]["$edgeAgent"]["properties.desired"]
    return list(agent["systemModules"].values()) + list(agent["modules"].values())


def cmd_benchmark(args: argparse.Namespace) -> int:
    import os
    import tempfile

    from edgevision.benchmark import Plan, run_benchmark, sample_video, write_report

    video = args.video
    if video is None and os.environ.get("EDGEVISION_ASSETS"):
        candidate = Path(os.environ["EDGEVISION_ASSETS"]) / "video" / "pedestrians-720p.avi"
        video = candidate if candidate.is_file() else None
    with tempfile.TemporaryDirectory() as scratch:
        if video is None:
            video = sample_video(Path(scratch))
        elif not video.is_file():
            raise UsageError(f"--video {video}: no such file")
        if args.soak:
            from edgevision.soak import run_soak, write_soak

            soak = run_soak(video, args.soak)
            for path in write_soak(soak, args.out):
                print(f"edgevision: wrote {path}", file=sys.stderr)
            print(json.dumps({k: soak[k] for k in ("results", "slopes_per_hour", "fps", "threads", "fds")}))
            return EXIT_OK
        report = run_benchmark(video, args.providers, Plan.quick() if args.quick else Plan(), progress=True)
    for path in write_report(report, args.out):
        print(f"edgevision: wrote {path}", file=sys.stderr)
    print(
        json.dumps(
            {
                name: {
                    "available": e["available"],
                    **(
                        {"best_limit_fps": max(r["fps"] for r in e["limit"]), "naive_fps": e["naive"]["fps"]}
                        if e.get("limit") and "naive" in e
                        else {}
                    ),
                }
                for name, e in report["providers"].items()
            }
        )
    )
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from edgevision.models import available_manifests, default_model_dir, resolve_model

    if args.models_command == "list":
        directory = default_model_dir()
        for manifest in available_manifests().values():
            present = (directory / manifest.file).is_file()
            _print_json(
                {
                    "name": manifest.name,
                    "file": manifest.file,
                    "input": [manifest.input.width, manifest.input.height],
                    "classes": manifest.num_classes,
                    "license": manifest.license,
                    "present": present,
                    "path": str(directory / manifest.file),
                }
            )
        return EXIT_OK
    model = resolve_model(args.name, download=args.models_command == "fetch")
    _print_json({"name": model.name, "path": str(model.path), "sha256": model.sha256, "verified": model.verified})
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    from edgevision.engine import EngineError
    from edgevision.models import (
        DynamicBatchError,
        ManifestError,
        ModelIntegrityError,
        ModelUnavailableError,
        VariantError,
    )

    try:
        args = _build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"edgevision: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _configure_logging(args.verbose)
    from edgevision.config import ConfigError

    handlers = {
        "gpu": cmd_gpu,
        "detect": cmd_detect,
        "run": cmd_run,
        "manifest": cmd_manifest,
        "benchmark": cmd_benchmark,
        "models": cmd_models,
    }
    try:
        return handlers[args.command](args)
    except (UsageError, ConfigError) as exc:
        print(f"edgevision: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (
        ManifestError,
        ModelUnavailableError,
        ModelIntegrityError,
        EngineError,
        DynamicBatchError,
        VariantError,
    ) as exc:
        print(f"edgevision: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.verbose > 1:
            raise
        print(f"edgevision: error: unexpected {type(exc).__name__}: {exc} (run with -vv for details)", file=sys.stderr)
        return EXIT_FAILED
