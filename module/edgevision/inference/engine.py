"""One ONNX Runtime session on a verified execution provider, and IO-bound runners for it.

The provider plan (edgevision.inference.providers) decides what to try; this module creates
the session, drops a GPU provider that fails at creation, and records what really runs.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgevision.errors import first_line
from edgevision.inference.feeds import NUMPY_TYPES, ExtraInputs, Feeds
from edgevision.inference.options import EngineConfig, provider_options, session_options
from edgevision.inference.providers import (
    CPU,
    CUDA,
    GPU_PROVIDERS,
    TENSORRT,
    load_errors,
    ort_reason,
    plan_providers,
    requested_providers,
)
from edgevision.inference.sessions import SessionFactory, create_session
from edgevision.inference.status import EngineError, EngineStatus, ProviderUnavailableError

log = logging.getLogger(__name__)


class Engine:
    """One ONNX Runtime session; `run` is thread-safe, each `runner` belongs to one thread."""

    def __init__(
        self,
        model: Path | bytes,
        config: EngineConfig | None = None,
        fp16_model: Callable[[], Path] | None = None,
        extra_inputs: ExtraInputs | None = None,
        input_hw: tuple[int, int] | None = None,
        sessions: SessionFactory = create_session,
    ) -> None:
        """`fp16_model` builds the half-precision copy; used only when `config.fp16` and a GPU runs.
        `extra_inputs` gives the values of inputs other than the image (one row per frame, from the
        family); `input_hw` fixes an image input whose height and width the export left open;
        `sessions` creates the ONNX Runtime sessions."""
        self.config = config or EngineConfig()
        self._sessions = sessions
        self._extras = extra_inputs or (lambda names: {})
        self._input_hw = input_hw
        requested = requested_providers(self.config.provider, self.config.use_tensorrt)
        plan = plan_providers(
            requested,
            load_errors(requested),
            fp16=self.config.fp16,
            cuda_graph=self.config.cuda_graph,
            fp16_available=fp16_model is not None,
            frames_in=self.config.frames_in,
        )
        dropped, declined = dict(plan.dropped), dict(plan.declined)
        source: Path | bytes = fp16_model() if plan.fp16 and fp16_model is not None else model
        self._cuda_graph = plan.cuda_graph
        self.session = self._create_session(source, plan.candidates, dropped, declined)
        if source is not model and self.session.get_providers()[0] not in GPU_PROVIDERS:
            declined["fp16"] = "the GPU provider was dropped; the CPU runs the float32 model"
            source = model
            self.session = self._create_session(model, [CPU], dropped, declined)
        # The graph the session runs (the fp16 copy, or the model given).
        self.source: Path | bytes = source
        in_use = self.session.get_providers()
        for provider in plan.candidates:
            if provider not in in_use and provider not in dropped:
                # ORT logs the cause on its own stderr logger only; say at least that it happened.
                dropped[provider] = "ONNX Runtime did not enable it when creating the session (see its log)"
        provider = in_use[0]
        cuda_graph = self._cuda_graph and provider == CUDA
        io_binding = self.config.io_binding if self.config.io_binding is not None else provider in GPU_PROVIDERS
        self.status = EngineStatus(
            requested=requested,
            in_use=in_use,
            provider=provider,
            dropped={p: r for p, r in dropped.items() if requested.index(p) < requested.index(provider)},
            io_binding=cuda_graph or io_binding,
            precision="fp16" if source is not model and provider in GPU_PROVIDERS else "fp32",
            cuda_graph=cuda_graph,
            declined=declined,
        )
        self._graph_ids = itertools.count(1)
        for name, reason in self.status.dropped.items():
            log.warning("%s not used, running on %s: %s", name, provider, reason)
        for name, reason in declined.items():
            log.warning("%s not in effect: %s", name, reason)
        forced = {"cuda": CUDA, "tensorrt": TENSORRT}.get(self.config.provider)
        if self.config.strict and forced and provider != forced:
            raise ProviderUnavailableError(f"{forced} required but unavailable: {self.status.dropped.get(forced)}")

        feeds = Feeds.of(self.session, self._extras, self._input_hw)
        self.input_name: str = feeds.image
        self.input_shape: list[int | str | None] = feeds.image_shape
        self.input_type: str = feeds.image_type
        # Inputs besides the image, one row per frame (sizes for a DETR deployment export).
        self.extra_rows: dict[str, np.ndarray] = feeds.rows
        self.feeds = feeds
        outputs = self.session.get_outputs()
        self.output_names: list[str] = [o.name for o in outputs]
        self.output_types: list[type] = [NUMPY_TYPES.get(o.type, np.float32) for o in outputs]
        self.output_shapes: list[list[int | str | None]] = [list(o.shape) for o in outputs]
        if any(not isinstance(d, int) for shape in self.output_shapes for d in shape[1:]):
            # A dynamic export leaves output sizes open; one run at batch 1 tells them, so the
            # runners can allocate their buffers once.
            produced = self.session.run(None, feeds.zeros(1))
            self.output_shapes = [[s[0], *r.shape[1:]] for s, r in zip(self.output_shapes, produced, strict=True)]

    @property
    def provider(self) -> str:
        return self.status.provider

    @property
    def on_gpu(self) -> bool:
        return self.status.provider in GPU_PROVIDERS

    @property
    def takes_frames(self) -> bool:
        """The graph letterboxes by itself: it takes uint8 [N, H, W, 3] frames."""
        return self.input_type == "tensor(uint8)"

    @property
    def dynamic_batch(self) -> bool:
        return not isinstance(self.input_shape[0], int)

    def _create_session(
        self, model: Path | bytes, providers: list[str], dropped: dict[str, str], declined: dict[str, str]
    ) -> ort.InferenceSession:
        """A session on the first provider that can create it and run once; each one that cannot
        is dropped with its reason (or, for CUDA with graphs, first retried without them)."""
        while True:
            stage = "session creation failed"
            try:
                session = self._sessions(
                    model,
                    session_options(self.config),
                    [(p, provider_options(self.config, p, self._cuda_graph)) for p in providers],
                )
                stage = "warm-up run failed"
                if session.get_providers()[0] in GPU_PROVIDERS:
                    # cuDNN is loaded at the first convolution, TensorRT may build its engine at
                    # the first run: a provider is only in use once it has run.
                    self._warm_up(session)
                return session
            except Exception as exc:
                gpu = [p for p in providers if p in GPU_PROVIDERS]
                if not gpu:
                    name = model if isinstance(model, Path) else "from memory"
                    raise EngineError(f"cannot load model {name}: {first_line(exc)}") from exc
                reason = f"{stage}: {ort_reason(exc)}"
                if gpu[0] == CUDA and self._cuda_graph:
                    # The likelier culprit: a graph that cannot be captured. CUDA may still serve.
                    declined["cuda_graph"] = f"CUDA with CUDA graphs {reason}; running without them"
                    self._cuda_graph = False
                    continue
                # A GPU provider that loads but cannot create or run (no device, out of memory,
                # a library missing at run time): dropped, so the fallback is ours and reported.
                dropped[gpu[0]] = reason
                providers = [p for p in providers if p != gpu[0]]

    def _warm_up(self, session: ort.InferenceSession) -> None:
        """One run on zeros, at the smallest batch the model takes."""
        feeds = Feeds.of(session, self._extras, self._input_hw)
        batch = feeds.image_shape[0] if isinstance(feeds.image_shape[0], int) else 1
        options = ort.RunOptions()
        if self._cuda_graph:
            options.add_run_config_entry("gpu_graph_id", "-1")  # not captured: its buffers are temporary
        session.run(None, feeds.zeros(batch), options)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run one batch; allocates its outputs (use a runner on the hot path)."""
        return self.session.run(self.output_names, {self.input_name: batch, **self.feeds.others(len(batch))})

    def next_graph_id(self) -> int:
        """A fresh CUDA graph id: each runner and input shape captures its own graph."""
        return next(self._graph_ids)

    def runner(self, batch_size: int) -> BoundRunner:
        """A runner with preallocated buffers for one batch size; not shared between threads."""
        return BoundRunner(self, batch_size)


class BoundRunner:
    """Runs fixed-size batches through preallocated input and output buffers.

    Fill `input` in place (or, for a model that takes uint8 frames, the array `frames(h, w)`
    returns), then call `run()`. The returned arrays are overwritten by the next run.
    """

    def __init__(self, engine: Engine, batch_size: int) -> None:
        if not engine.dynamic_batch and engine.input_shape[0] != batch_size:
            raise EngineError(f"model has a fixed batch of {engine.input_shape[0]}, not {batch_size}")
        self.batch_size = batch_size
        self.takes_frames = engine.takes_frames
        self._engine = engine
        self._bound = engine.status.io_binding
        # Per input shape, allocated once: (host array, device copy or None).
        self._inputs: dict[tuple[int, ...], tuple[np.ndarray, ort.OrtValue | None]] = {}
        self._current: tuple[int, ...] | None = None
        self._bound_shape: tuple[int, ...] | None = None
        if self._bound:
            self._binding = engine.session.io_binding()
        if not self.takes_frames:
            self._select([batch_size] + [_static_dim(d, "input") for d in engine.input_shape[1:]], np.float32)
        # Inputs besides the image hold the same values every run: made and bound once.
        self._extra = engine.feeds.others(batch_size)
        self.outputs: list[np.ndarray] = []
        # A captured CUDA graph replays fixed device addresses: outputs stay on the device and
        # each input shape gets its own graph id.
        self._graph = engine.status.cuda_graph
        self._graph_options: dict[tuple[int, ...], ort.RunOptions] = {}
        self._device_outputs: list[ort.OrtValue] = []
        if not self._bound:
            return
        for name, values in self._extra.items():
            if engine.on_gpu:
                device = ort.OrtValue.ortvalue_from_numpy(values, "cuda", engine.config.device_id)
                self._binding.bind_ortvalue_input(name, device)
            else:
                self._binding.bind_cpu_input(name, values)
        for name, dims, dtype in zip(engine.output_names, engine.output_shapes, engine.output_types, strict=True):
            shape = [batch_size] + [_static_dim(d, name) for d in dims[1:]]
            if self._graph:
                value = ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, "cuda", engine.config.device_id)
                self._device_outputs.append(value)
                self._binding.bind_ortvalue_output(name, value)
                continue
            out = np.empty(shape, dtype=dtype)
            self.outputs.append(out)
            # Outputs land in host buffers allocated once; on a GPU, ORT copies into them.
            self._binding.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(out))

    @property
    def input(self) -> np.ndarray:
        """The input buffer of the next run."""
        assert self._current is not None, "frames(h, w) selects the input of a frame model"
        return self._inputs[self._current][0]

    def frames(self, height: int, width: int) -> np.ndarray:
        """The uint8 [batch, height, width, 3] buffer for frames of this size; the next run's input."""
        if not self.takes_frames:
            raise EngineError("this model takes a preprocessed tensor, not frames")
        return self._select([self.batch_size, height, width, 3], np.uint8)

    def _select(self, shape: list[int], dtype: type) -> np.ndarray:
        key = tuple(shape)
        if key not in self._inputs:
            host = np.zeros(shape, dtype=dtype)
            device = None
            if self._bound and self._engine.on_gpu:
                device = ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, "cuda", self._engine.config.device_id)
            self._inputs[key] = (host, device)
        self._current = key
        return self._inputs[key][0]

    def run(self) -> list[np.ndarray]:
        host, device = self._inputs[self._current]
        if not self._bound:
            return self._engine.session.run(self._engine.output_names, {self._engine.input_name: host} | self._extra)
        if self._bound_shape != self._current:
            if device is not None:
                self._binding.bind_ortvalue_input(self._engine.input_name, device)
            else:
                # On the CPU the session reads the host buffer directly: no copy at all.
                self._binding.bind_cpu_input(self._engine.input_name, host)
            self._bound_shape = self._current
        if device is not None:
            device.update_inplace(host)
        if not self._graph:
            self._engine.session.run_with_iobinding(self._binding)
            return self.outputs
        options = self._graph_options.get(self._current)
        if options is None:
            options = self._graph_options[self._current] = ort.RunOptions()
            options.add_run_config_entry("gpu_graph_id", str(self._engine.next_graph_id()))
        self._engine.session.run_with_iobinding(self._binding, options)
        # OrtValue has no in-place copy to host; this is the one allocation per run CUDA graphs cost.
        return [value.numpy() for value in self._device_outputs]


def _static_dim(dim: Any, what: str) -> int:
    if not isinstance(dim, int):
        raise EngineError(f"{what} has a non-static dimension {dim!r}; only the batch may vary")
    return dim
