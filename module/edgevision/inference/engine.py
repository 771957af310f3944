"""A model on a verified execution provider: its ONNX Runtime sessions, and runners for them.

The provider plan (edgevision.inference.providers) decides what to try; this module creates the
sessions, drops a GPU provider that fails at creation, and records what really runs.

On a GPU provider every session runs one input shape, and each input shape (batch size, and frame
size for a model that takes frames) gets its own session. The CUDA provider plans its kernels
again whenever a session's input shape differs from its previous run: on an H200 the same batch
size at every run gave 1,000-1,600 fps, batch sizes mixed among 1, 2, 4 and 8 in one session gave
4 fps (about 1 s a run; README, "One input shape per GPU session"). The CPU provider does not
re-plan, so a CPU engine keeps one session for every shape.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgevision.errors import first_line
from edgevision.inference.feeds import NUMPY_TYPES, ExtraInputs, Feeds
from edgevision.inference.options import EngineConfig, memory_share, provider_options, session_options
from edgevision.inference.providers import (
    CPU,
    CUDA,
    GPU_PROVIDERS,
    TENSORRT,
    ort_reason,
    plan_providers,
    requested_providers,
)
from edgevision.inference.runner import BoundRunner
from edgevision.inference.sessions import SessionFactory
from edgevision.inference.status import EngineError, EngineStatus, Once, ProviderUnavailableError

log = logging.getLogger(__name__)

Shape = tuple[int, ...]
# The frame sizes a model that takes frames (preprocess: graph) is fed at; frames of further sizes
# are fitted into the nearest of them on the host.
MAX_FRAME_SIZES = 4


class Engine:
    """A model's sessions; `run` is thread-safe, each `runner` belongs to one thread."""

    def __init__(
        self,
        model: Path | bytes,
        config: EngineConfig | None = None,
        fp16_model: Callable[[], Path] | None = None,
        extra_inputs: ExtraInputs | None = None,
        input_hw: tuple[int, int] | None = None,
        sessions: SessionFactory | None = None,
        batch_sizes: Sequence[int] = (1,),
        said: Once | None = None,
    ) -> None:
        """`fp16_model` builds the half-precision copy; used only when `config.fp16` and a GPU runs.
        `extra_inputs` gives the values of inputs other than the image (one row per frame, from the
        family); `input_hw` fixes an image input whose height and width the export left open;
        `sessions` creates the ONNX Runtime sessions; `batch_sizes` are the batches the engine
        will run (its GPU memory limit is shared among their sessions); `said` remembers the
        warnings already given for this model by its other engines."""
        self.config = config or EngineConfig()
        self.runtime = sessions or SessionFactory()
        self._extras = extra_inputs or (lambda names: {})
        self._input_hw = input_hw
        self._batch = min(batch_sizes)
        # Each session's share of the memory limit is in proportion to its batch; a frames model
        # also has the session that probed the provider (at a small frame size).
        self._planned = [*batch_sizes, *([self._batch] if self.config.frames_in else [])]
        requested = requested_providers(self.config.provider, self.config.use_tensorrt)
        plan = plan_providers(
            requested,
            self.runtime.load_errors(requested),
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
        # The graph the sessions run (the fp16 copy, or the model given).
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
            one_shape_per_session=provider in GPU_PROVIDERS,
        )
        self._graph_ids = itertools.count(1)
        # Said once per model, however many sessions and engines it has.
        said = said or Once()
        for name, reason in self.status.dropped.items():
            if said.first(("dropped", name, reason)):
                log.warning("%s not used, running on %s: %s", name, provider, reason)
        for name, reason in declined.items():
            if said.first(("declined", name, reason)):
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
        probe = feeds.zeros(self._batch)
        if any(not isinstance(d, int) for shape in self.output_shapes for d in shape[1:]):
            # A dynamic export leaves output sizes open; one run (at the shape the session was
            # warmed up with) tells them, so the runners can allocate their buffers once.
            produced = self.session.run(None, probe)
            self.output_shapes = [[s[0], *r.shape[1:]] for s, r in zip(self.output_shapes, produced, strict=True)]
        self._lock = threading.Lock()
        # On a GPU: the session of each input shape; the first one serves the shape it probed with.
        self._sessions: dict[Shape, Any] = {tuple(probe[self.input_name].shape): self.session}
        self._frame_sizes: set[tuple[int, int]] = set()

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

    @property
    def path(self) -> Path | bytes:
        return self.source

    def session_for(self, shape: Shape) -> Any:
        """The session that runs this image input shape: on a GPU, the one made for it (made now,
        and warmed up, if it is new); on the CPU, the engine's one session."""
        if not self.status.one_shape_per_session:
            return self.session
        with self._lock:
            session = self._sessions.get(shape)
            if session is None:
                session = self._sessions[shape] = self._shape_session(shape)
                self.status.sessions = len(self._sessions)
        return session

    def _shape_session(self, shape: Shape) -> Any:
        batch = shape[0]
        providers = [
            (p, provider_options(self.config, p, self._cuda_graph, batch, self._memory(batch)))
            for p in self.status.in_use
        ]
        try:
            session = self.runtime.create(self.source, session_options(self.config), providers)
            if session.get_providers()[0] != self.provider:
                raise EngineError(f"ONNX Runtime made a session on {session.get_providers()[0]}, not {self.provider}")
            self._warm_up(session, shape)
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"{self.provider} session for input shape {list(shape)}: {ort_reason(exc)}") from exc
        return session

    def _memory(self, batch: int) -> int | None:
        """A GPU session's share of the engine's memory limit, in bytes."""
        return memory_share(self.config.gpu_mem_limit_mb, batch, self._planned)

    @property
    def frame_sizes(self) -> list[tuple[int, int]]:
        """The frame sizes (height, width) a frames model has been fed at."""
        with self._lock:
            return sorted(self._frame_sizes)

    def frame_size_for(self, height: int, width: int) -> tuple[int, int]:
        """The frame size a frames model is fed a batch at: the batch's own while the engine takes
        fewer than MAX_FRAME_SIZES sizes, else the size it has nearest in shape and area (each
        frame size costs a session per batch size on a GPU and buffers in every runner: a camera
        that keeps changing its resolution must not make them without bound)."""
        size = (height, width)
        with self._lock:
            if size in self._frame_sizes:
                return size
            if len(self._frame_sizes) < MAX_FRAME_SIZES:
                self._frame_sizes.add(size)
                self._note_memory_plan()
                return size
            nearest = min(
                self._frame_sizes,
                key=lambda s: (
                    abs(math.log(s[0] * width / (s[1] * height))),
                    abs(math.log(s[0] * s[1] / (height * width))),
                ),
            )
            if "frame_sizes" not in self.status.declined:
                reason = (
                    f"frames of more than {MAX_FRAME_SIZES} sizes (the first refused: {width}x{height}): each is "
                    f"fitted on the host into the nearest size the model has (here {nearest[1]}x{nearest[0]})"
                )
                self.status.declined["frame_sizes"] = reason
                log.warning("%s", reason)
        return nearest

    def _note_memory_plan(self) -> None:
        """A frames model's memory shares are planned for one frame size: a second one is said."""
        if self.config.gpu_mem_limit_mb is None or not self.on_gpu or len(self._frame_sizes) < 2:
            return
        sizes = ", ".join(f"{w}x{h}" for h, w in sorted(self._frame_sizes))
        reason = (
            f"planned for one frame size; frames of {len(self._frame_sizes)} sizes ({sizes}) each need their own "
            f"GPU sessions, so this model may hold up to {len(self._frame_sizes)} x its share "
            "(use preprocess: host, or one resolution per model)"
        )
        self.status.declined["gpu_mem_limit_mb"] = reason
        log.warning("gpu_mem_limit_mb: %s", reason)

    def _create_session(
        self, model: Path | bytes, providers: list[str], dropped: dict[str, str], declined: dict[str, str]
    ) -> Any:
        """A session on the first provider that can create it and run once; each one that cannot
        is dropped with its reason (or, for CUDA with graphs, first retried without them)."""
        while True:
            stage = "session creation failed"
            try:
                memory = self._memory(self._batch) if providers[0] in GPU_PROVIDERS else None
                session = self.runtime.create(
                    model,
                    session_options(self.config),
                    [(p, provider_options(self.config, p, self._cuda_graph, self._batch, memory)) for p in providers],
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

    def _warm_up(self, session: Any, shape: Shape | None = None) -> None:
        """One run on zeros: at `shape`, else at the engine's smallest batch."""
        feeds = Feeds.of(session, self._extras, self._input_hw)
        batch = shape[0] if shape is not None else self._batch
        inputs = feeds.zeros(batch)
        if shape is not None:
            inputs[feeds.image] = np.zeros(shape, dtype=inputs[feeds.image].dtype)
        options = ort.RunOptions()
        if self._cuda_graph:
            options.add_run_config_entry("gpu_graph_id", "-1")  # not captured: its buffers are temporary
        session.run(None, inputs, options)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run one batch; allocates its outputs (use a runner on the hot path)."""
        session = self.session_for(tuple(batch.shape))
        return session.run(self.output_names, {self.input_name: batch, **self.feeds.others(len(batch))})

    def next_graph_id(self) -> int:
        """A fresh CUDA graph id: each runner and input shape captures its own graph."""
        return next(self._graph_ids)

    def runner(self, batch_size: int) -> BoundRunner:
        """A runner with preallocated buffers for one batch size; not shared between threads."""
        return BoundRunner(self, batch_size)
