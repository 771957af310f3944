"""The `edgevision` command line: its arguments, each checked into a one-line error."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from edgevision import __version__
from edgevision.config.model import PROVIDER_CHOICES
from edgevision.errors import UsageError
from edgevision.models.manifest import FAMILY_NAMES


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: scripts and log collectors read the last line.
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgevision", description="GPU vision inference module for Azure IoT Edge.")
    parser.add_argument("--version", action="version", version=f"edgevision {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    health = sub.add_parser("health", help="exit 0 if the running module is healthy (the image's HEALTHCHECK)")
    health.add_argument("--path", default="/healthz", choices=("/healthz", "/readyz"))
    health.add_argument("--socket", type=Path, help="the module's probe socket (default: STATE/http.sock)")
    health.add_argument("--timeout", type=float, default=4.0)

    config = sub.add_parser("config", help="the configuration's JSON Schema, or a document checked against it")
    config_sub = config.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    config_sub.add_parser("schema", help="print the JSON Schema a ConfigMap or twin editor validates against")
    check = config_sub.add_parser("check", help="validate a configuration file (YAML or JSON); exit 2 if invalid")
    check.add_argument("file", type=Path)

    gpu = sub.add_parser("gpu", help="describe the GPU passed through to this container, as JSON")
    gpu.add_argument("--timeout", type=float, default=10.0, help="seconds allowed for the driver probe")

    detect = sub.add_parser("detect", help="detect objects in images; one JSON document per image")
    detect.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    _model_arguments(detect, default="yolox-nano")
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
    run.add_argument(
        "--detection",
        choices=("every_frame", "interval", "motion"),
        help="which frames the detector sees (default motion: the tracker carries the boxes between)",
    )
    run.add_argument("--loop", action="store_true", help="files: start again at the end")
    run.add_argument("--target-fps", type=_positive_float, help="frames per second per camera sent to inference")
    _model_arguments(run, default=None)
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
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        dest="settings",
        help="any configuration field by dotted path, e.g. inference.max_batch_wait_ms=2",
    )
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
    manifest.add_argument(
        "--runtime",
        choices=("1.6", "1.5"),
        default="1.6",
        help="IoT Edge runtime the system modules run (default 1.6 LTS; 1.5 left support on 2026-11-10)",
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
    _model_arguments(bench, default="yolox-nano")
    bench.add_argument(
        "--video", type=Path, help="video to decode (default: the test assets' clip, or a generated one)"
    )
    bench.add_argument(
        "--providers", nargs="+", default=["cpu", "cuda", "tensorrt"], choices=("cpu", "cuda", "tensorrt")
    )
    bench.add_argument(
        "--out",
        type=Path,
        default=Path("benchmark-results"),
        help="folder for JSON, Markdown, PNG (default: ./benchmark-results; --out benchmarks/results records "
        "them in the repository)",
    )
    bench.add_argument(
        "--soak",
        type=_positive_float,
        metavar="MINUTES",
        help="instead: two cameras at full speed for MINUTES, reporting RSS, GPU memory, threads, "
        "file descriptors and fps with their slopes",
    )

    bench.add_argument(
        "--capacity",
        action="store_true",
        help="instead: cameras per core in each detection mode (every_frame, interval, motion) and the counts "
        "against every-frame detection, each clip played as a live camera",
    )
    bench.add_argument(
        "--clips",
        type=Path,
        help="with --capacity: a JSON file {name: {path, lines, zones}} (default: the test assets' two clips)",
    )
    bench.add_argument("--fps", type=_positive_float, default=15.0, help="with --capacity: each camera's fps (15)")
    bench.add_argument("--repeats", type=_positive_int, default=1, help="with --capacity: runs per clip and mode")

    doctor = sub.add_parser("doctor", help="check every inference path on this machine's GPU (CPU ones without)")
    doctor.add_argument("--json", action="store_true", help="print the results as JSON")
    _model_arguments(doctor, default="yolox-nano")
    doctor.add_argument("--images", nargs="+", type=Path, metavar="IMAGE", help="compare detections on these too")
    doctor.add_argument("--max-batch", type=_positive_int, default=8, help="largest batch to check (default 8)")
    doctor.add_argument("--skip-tensorrt", action="store_true", help="skip the TensorRT build (it takes minutes)")
    doctor.add_argument("--time-limit", type=_positive_float, default=120.0, help="seconds per check (default 120)")
    doctor.add_argument(
        "--tensorrt-time-limit", type=_positive_float, default=900.0, help="seconds for the TensorRT check (900)"
    )

    models = sub.add_parser("models", help="list, locate or download models")
    models_sub = models.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    models_sub.add_parser("list", help="the built-in model manifests")
    fetch = models_sub.add_parser("fetch", help="make sure a model is in the model directory (download if not)")
    fetch.add_argument("name")
    path = models_sub.add_parser("path", help="print a model's file path (no download)")
    path.add_argument("name")
    inspect = models_sub.add_parser(
        "inspect", help="say which detector family a model file is (and why), its input, classes and batch"
    )
    inspect.add_argument("file", type=Path)
    inspect.add_argument("--family", choices=FAMILY_NAMES, help="check the file against this family only")
    inspect.add_argument("--labels", type=Path, help="class names, one a line")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _model_arguments(parser: argparse.ArgumentParser, default: str | None) -> None:
    where = f" (default {default})" if default else ""
    parser.add_argument("--model", default=default, help=f"model name (see `models list`) or .onnx file{where}")
    parser.add_argument("--manifest", help="manifest for a model file: a model name or a manifest JSON file")
    parser.add_argument(
        "--family",
        choices=FAMILY_NAMES,
        help="the detector family of a model file, when `models inspect` cannot tell it from the file",
    )
    parser.add_argument("--labels", type=Path, help="class names for a model file, one a line")


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
