"""Faults injected into the real pipeline: a GPU that fails or hangs at run time."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgevision.config import load as configuration
from edgevision.detector.loader import DetectorLoader
from edgevision.inference.engine import Engine
from edgevision.inference.options import EngineConfig
from edgevision.inference.providers import CPU, CUDA
from edgevision.pipeline.build import Seams
from edgevision.pipeline.pipeline import Pipeline
from tests.support.sinks import CollectingSink

CUDA_FAILURE = "[ONNXRuntimeError] : 1 : FAIL : CUDA failure 700: an illegal memory access was encountered"


class FlakyGpu:
    """Injected provider: a real engine that reports CUDA and, after `fail_after` runs, fails as
    a GPU does when it is lost (or hangs for `hang_s`). Everything else is the real engine."""

    def __init__(self, engine: Engine, fail_after: int, hang_s: float | None = None) -> None:
        self._engine = engine
        self.fail_after = fail_after
        self.hang_s = hang_s
        self.runs = 0
        self._lock = threading.Lock()
        self.status = dataclasses.replace(engine.status, provider=CUDA, in_use=[CUDA, CPU])

    provider = CUDA
    on_gpu = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def runner(self, batch_size: int) -> Any:
        return _FlakyRunner(self._engine.runner(batch_size), self)

    def count(self) -> int:
        with self._lock:
            self.runs += 1
            return self.runs


class _FlakyRunner:
    def __init__(self, runner: Any, gpu: FlakyGpu) -> None:
        self._runner = runner
        self._gpu = gpu

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)

    def run(self) -> list[Any]:
        if self._gpu.count() > self._gpu.fail_after:
            if self._gpu.hang_s is None:
                raise RuntimeError(CUDA_FAILURE)
            time.sleep(self._gpu.hang_s)
        return self._runner.run()


class FlakyLoader(DetectorLoader):
    """A detector loader for Pipeline: CPU requests get the real CPU detector, GPU ones the same
    detector on a FlakyGpu engine."""

    def __init__(self, fail_after: int, hang_s: float | None = None, built: list[FlakyGpu] | None = None) -> None:
        super().__init__()
        self._fail_after, self._hang_s, self._built = fail_after, hang_s, built

    def load(self, model, config=None, max_batch=1, in_graph=False):
        config = config or EngineConfig()
        real = super().load(model, dataclasses.replace(config, provider="cpu"), max_batch, in_graph)
        if config.provider == "cpu":
            return real
        gpu = FlakyGpu(real.engine, self._fail_after, self._hang_s)
        if self._built is not None:
            self._built.append(gpu)
        return dataclasses.replace(real, engine=gpu)


@pytest.fixture(autouse=True)
def _model_dir(model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEVISION_MODEL_DIR", str(model_path.parent))


def _events(sink: CollectingSink, name: str) -> list[dict[str, Any]]:
    return [m for m in sink.of_type("event") if m["event"] == name]


@pytest.mark.slow
def test_gpu_failure_switches_to_cpu_loses_nothing_and_retries_with_backoff() -> None:
    frames = 900
    built: list[FlakyGpu] = []
    document = {
        "cameras": {"cam": {"uri": "synthetic:320x240@0", "max_frames": frames}},
        "inference": {"provider": "cuda", "gpu_retry_initial_s": 0.5, "gpu_retry_max_s": 4},
        "metrics_interval_s": 3600,
    }
    sink = CollectingSink()
    pipeline = Pipeline(
        configuration.validate(document), sink, seams=Seams(detector_loader=FlakyLoader(60, built=built))
    )
    pipeline.start()
    assert pipeline.wait(180)

    results = sink.of_type("result")
    # Nothing lost: the batches that met the failure ran again on the CPU.
    assert sorted(r["seq"] for r in results) == list(range(frames))
    assert not [r for r in results if r.get("error")]
    switched = _events(sink, "provider_switched")
    restored = _events(sink, "provider_restored")
    assert len(switched) >= 2 and len(restored) >= 1, [m["event"] for m in sink.of_type("event")]
    first, second = switched[:2]
    assert first["previous"] == CUDA and first["provider"] == CPU and "CUDA failure 700" in first["reason"]
    # Capped exponential backoff between GPU retries.
    assert first["retry_gpu_in_s"] == 0.5 and second["retry_gpu_in_s"] == 1.0
    assert restored[0]["provider"] == CUDA
    providers = {r["provider"] for r in results}
    assert providers == {CUDA, CPU}
    assert len(built) >= 2 and all(g.runs > g.fail_after for g in built[:2])
    status = pipeline.status()["failover"]
    assert status["switches"] >= 2 and status["restores"] >= 1 and "CUDA failure" in status["last_failure"]
    assert pipeline.metrics_snapshot()["provider_switches"] == len(switched) + len(restored)


@pytest.mark.slow
def test_hung_gpu_run_is_abandoned_and_the_cpu_takes_over() -> None:
    document = {
        "cameras": {"cam": {"uri": "synthetic:320x240@0", "max_frames": 400}},
        "inference": {"provider": "cuda", "inference_timeout_s": 1.0, "gpu_retry_initial_s": 3600},
        "metrics_interval_s": 3600,
    }
    sink = CollectingSink()
    pipeline = Pipeline(
        configuration.validate(document), sink, seams=Seams(detector_loader=FlakyLoader(20, hang_s=30.0))
    )
    started = time.monotonic()
    pipeline.start()
    assert pipeline.wait(120)
    assert time.monotonic() - started < 60  # not held up by the hung run
    (switch,) = _events(sink, "provider_switched")
    assert "has not returned" in switch["reason"] and switch["provider"] == CPU
    results = sink.of_type("result")
    seqs = [r["seq"] for r in results]
    assert len(seqs) == len(set(seqs))
    # Only the frames in the hung runs (one per worker) are lost, and they are counted as such;
    # the batches queued behind them ran on the CPU, and results kept flowing in order.
    layout = pipeline.status()["layout"]
    lost = 400 - len(seqs)
    assert 0 < lost == switch["frames_abandoned"] <= layout["workers"] * layout["max_batch"]
    assert seqs == sorted(seqs)
    camera = pipeline.metrics_snapshot()["cameras"]["cam"]
    assert camera["dropped_by_reason"].get("error") == lost
    assert pipeline.status()["failover"]["on_fallback"]


def _bad_models(model_path: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Model files that must be refused at load, with the words the error must contain."""
    import onnx
    from onnx import helper

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(model_path.read_bytes()[:200_000])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all\n" * 100)
    # A valid graph with the wrong input: a 1x3x224x224 identity.
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 224, 224])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 224, 224])
    wrong_input = tmp_path / "wrong-input.onnx"
    onnx.save(
        helper.make_model(
            helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]),
            opset_imports=[helper.make_opsetid("", 11)],
            ir_version=6,
        ),
        wrong_input,
    )
    # The real YOLOX graph, but its output cut to fewer classes than the manifest names.
    model = onnx.load(str(model_path))
    out = model.graph.output[0]
    sliced = helper.make_node("Slice", [out.name, "starts", "ends", "axes"], ["cut"])
    model.graph.initializer.extend(
        [
            onnx.numpy_helper.from_array(np.asarray(v, np.int64), n)
            for n, v in (("starts", [0]), ("ends", [50]), ("axes", [2]))
        ]
    )
    model.graph.node.append(sliced)
    dims = [d.dim_value for d in out.type.tensor_type.shape.dim]
    model.graph.output.remove(out)
    model.graph.output.append(helper.make_tensor_value_info("cut", onnx.TensorProto.FLOAT, [dims[0], dims[1], 50]))
    wrong_output = tmp_path / "wrong-output.onnx"
    onnx.save(model, wrong_output)
    return {
        "corrupt": (corrupt, "cannot load model"),
        "garbage": (garbage, "cannot load model"),
        "wrong-input": (wrong_input, "does not match the manifest"),
        "wrong-output": (wrong_output, "does not match the manifest"),
    }


@pytest.mark.parametrize("name", ["corrupt", "garbage", "wrong-input", "wrong-output"])
def test_bad_model_files_are_refused_with_a_clear_error(model_path: Path, tmp_path: Path, name: str) -> None:
    from tests.support.processes import run_cli

    path, words = _bad_models(model_path, tmp_path)[name]
    image = tmp_path / "grey.png"
    import cv2

    cv2.imwrite(str(image), np.full((48, 64), 128, np.uint8))
    proc = run_cli("detect", str(image), "--model", str(path), "--manifest", "yolox-nano", "--provider", "cpu")
    assert proc.returncode == 1  # EXIT_FAILED: the input was well-formed, the model is not
    lines = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def test_a_bad_model_in_a_patch_is_rejected_and_the_cameras_keep_running(
    model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgevision.errors import ConfigError
    from edgevision.module import Module

    # A twin may only name files in the model folder: the bad ones are put there.
    models = tmp_path / "models"
    models.mkdir()
    (models / model_path.name).write_bytes(model_path.read_bytes())
    monkeypatch.setenv("EDGEVISION_MODEL_DIR", str(models))
    module = Module(
        {
            "cameras": {"a": {"uri": "synthetic:160x120@20"}, "b": {"uri": "synthetic:320x240@20"}},
            "sink": {"kind": "jsonl", "path": str(tmp_path / "out.jsonl")},
            "http": {"enabled": False},
        },
        environ={},
    )
    module.start()
    try:
        for path, words in _bad_models(model_path, models).values():
            before = {c: module.pipeline.metrics.camera(c).inferred for c in ("a", "b")}
            with pytest.raises(ConfigError, match=words):
                module.apply_patch({"model": {"name": str(path), "manifest": "yolox-nano"}})
            assert module.config.model.name == "yolox-nano"
            deadline = time.monotonic() + 10
            while any(module.pipeline.metrics.camera(c).inferred <= before[c] for c in before):
                assert time.monotonic() < deadline, "a camera stopped after a rejected model"
                time.sleep(0.05)
        assert "does not match" in module.config_status["last_error"]
    finally:
        module.request_stop()
        assert module.wait(15)


class _FaultyCameras:
    """HTTP 'cameras' on 127.0.0.1: one answers 401, one sends a frame and then nothing (a stall)."""

    def __init__(self, jpeg: bytes) -> None:
        import http.server

        self.attempts: dict[str, list[float]] = {"/auth.mjpg": [], "/stall.mjpg": []}
        attempts = self.attempts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                attempts.setdefault(self.path, []).append(time.monotonic())
                if self.path == "/auth.mjpg":
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n"
                try:
                    for _ in range(3):
                        self.wfile.write(part)
                        self.wfile.flush()
                    time.sleep(30)  # still connected, nothing more: a stalled camera
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_camera_faults_are_reported_retried_and_never_block_the_others(images: dict[str, Path]) -> None:
    import socket

    import cv2

    jpeg = cv2.imencode(".jpg", cv2.imread(str(images["astronaut"])))[1].tobytes()
    cameras = _FaultyCameras(jpeg)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    document = {
        "cameras": {
            "good": {"uri": "synthetic:160x120@20"},
            "dns": {"uri": "http://no-such-camera.invalid/stream.mjpg"},
            "refused": {"uri": f"http://127.0.0.1:{closed_port}/stream.mjpg"},
            "auth": {"uri": f"http://user:wrong@127.0.0.1:{cameras.port}/auth.mjpg"},
            "stall": {"uri": f"http://127.0.0.1:{cameras.port}/stall.mjpg"},
        },
        "sources": {"reconnect_initial_s": 0.2, "reconnect_max_s": 1.0, "stall_timeout_s": 1.5, "open_timeout_s": 2.0},
        "metrics_interval_s": 3600,
    }
    sink = CollectingSink()
    pipeline = Pipeline(configuration.validate(document), sink)
    pipeline.start()
    try:
        time.sleep(8)
        snapshot = pipeline.metrics_snapshot()["cameras"]
        status = pipeline.status()["cameras"]
    finally:
        pipeline.request_stop()
        assert pipeline.wait(20)
        cameras.close()
    # The healthy camera ran at its rate throughout.
    assert snapshot["good"]["inferred"] >= 20 * 8 * 0.7 and snapshot["good"]["state"] == "streaming"
    for camera in ("dns", "refused", "auth"):
        assert snapshot[camera]["state"] == "reconnecting", (camera, snapshot[camera])
        assert snapshot[camera]["last_error"] and snapshot[camera]["outages"] == 1
        assert status[camera]["last_error"] == snapshot[camera]["last_error"]
    assert "wrong" not in status["auth"]["uri"]  # credentials never reported
    # Retried with capped backoff: 0.2, 0.4, 0.8, then every 1.0 s (plus the time each try takes).
    tries = cameras.attempts["/auth.mjpg"]
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert len(tries) >= 4 and max(gaps) < 1.0 + 2.0 + 0.5
    # The stalled camera was noticed and reopened, more than once.
    assert snapshot["stall"]["stalls"] >= 2 and len(cameras.attempts["/stall.mjpg"]) >= 2
    assert snapshot["stall"]["inferred"] >= 1
