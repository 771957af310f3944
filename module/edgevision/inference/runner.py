"""A runner: fixed-size batches through buffers allocated once, IO-bound where the engine binds.

Each input shape a runner is fed (a frames model: each frame size) has its own slot: the session
the engine made for that shape, the host buffer it is filled through, its device copy and its
binding. A runner of a model that takes a preprocessed tensor has exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from edgevision.inference.feeds import Feeds
from edgevision.inference.options import EngineConfig
from edgevision.inference.sessions import SessionFactory
from edgevision.inference.status import EngineError, EngineStatus


class RunnerEngine(Protocol):
    """What a runner needs of its engine (edgevision.inference.engine.Engine)."""

    config: EngineConfig
    runtime: SessionFactory
    status: EngineStatus
    feeds: Feeds
    input_name: str
    input_shape: list[int | str | None]
    output_names: list[str]
    output_types: list[type]
    output_shapes: list[list[int | str | None]]

    @property
    def on_gpu(self) -> bool: ...
    @property
    def takes_frames(self) -> bool: ...
    @property
    def dynamic_batch(self) -> bool: ...
    def session_for(self, shape: tuple[int, ...]) -> Any: ...
    def next_graph_id(self) -> int: ...


@dataclass
class _Slot:
    """One input shape of a runner. Its session is taken (on a GPU: made) at its first run, on
    the inference thread, where a GPU that fails is failed over; until then it is a buffer."""

    host: np.ndarray
    session: Any = None
    device: ort.OrtValue | None = None
    binding: Any = None
    # A captured CUDA graph per slot: its id travels in the run options.
    graph: ort.RunOptions | None = None


class BoundRunner:
    """Runs fixed-size batches through preallocated input and output buffers.

    Fill `input` in place (or, for a model that takes uint8 frames, the array `frames(h, w)`
    returns), then call `run()`. The returned arrays are overwritten by the next run.
    """

    def __init__(self, engine: RunnerEngine, batch_size: int) -> None:
        if not engine.dynamic_batch and engine.input_shape[0] != batch_size:
            raise EngineError(f"model has a fixed batch of {engine.input_shape[0]}, not {batch_size}")
        self.batch_size = batch_size
        self.takes_frames = engine.takes_frames
        self._engine = engine
        self._bound = engine.status.io_binding
        # A captured CUDA graph replays fixed device addresses: outputs stay on the device and
        # each input shape gets its own graph id.
        self._graph = engine.status.cuda_graph
        self._slots: dict[tuple[int, ...], _Slot] = {}
        self._current: _Slot | None = None
        # Inputs besides the image hold the same values every run: made (and copied to the GPU) once.
        self._extra = engine.feeds.others(batch_size)
        device_id = engine.config.device_id
        self._extra_values = {
            name: engine.runtime.to_device(values, device_id) if engine.on_gpu else None
            for name, values in self._extra.items()
        }
        self.outputs: list[np.ndarray] = []
        self._output_values: list[ort.OrtValue] = []
        if self._bound:
            for name, dims, dtype in zip(engine.output_names, engine.output_shapes, engine.output_types, strict=True):
                shape = [batch_size] + [_static_dim(d, name) for d in dims[1:]]
                if self._graph:
                    self._output_values.append(engine.runtime.device_buffer(shape, dtype, device_id))
                    continue
                out = np.empty(shape, dtype=dtype)
                self.outputs.append(out)
                # Outputs land in host buffers allocated once; on a GPU, ORT copies into them.
                self._output_values.append(ort.OrtValue.ortvalue_from_numpy(out))
        if not self.takes_frames:
            self._select([batch_size] + [_static_dim(d, "input") for d in engine.input_shape[1:]], np.float32)

    @property
    def input(self) -> np.ndarray:
        """The input buffer of the next run."""
        assert self._current is not None, "frames(h, w) selects the input of a frame model"
        return self._current.host

    def frame_size(self, height: int, width: int) -> tuple[int, int]:
        """The frame size a batch whose first frame is this size is fed at (see Engine.frame_size_for)."""
        return self._engine.frame_size_for(height, width)

    def frames(self, height: int, width: int) -> np.ndarray:
        """The uint8 [batch, height, width, 3] buffer for frames of this size; the next run's input."""
        if not self.takes_frames:
            raise EngineError("this model takes a preprocessed tensor, not frames")
        return self._select([self.batch_size, height, width, 3], np.uint8)

    def _select(self, shape: list[int], dtype: type) -> np.ndarray:
        key = tuple(shape)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(host=np.zeros(key, dtype=dtype))
        self._current = slot
        return slot.host

    def _open(self, slot: _Slot) -> None:
        """The slot's session, device buffer and binding, made once at its first run."""
        engine = self._engine
        shape = slot.host.shape
        session = engine.session_for(tuple(shape))
        if not self._bound:
            slot.session = session
            return
        slot.binding = binding = session.io_binding()
        if engine.on_gpu:
            slot.device = engine.runtime.device_buffer(list(shape), slot.host.dtype.type, engine.config.device_id)
            binding.bind_ortvalue_input(engine.input_name, slot.device)
        else:
            # On the CPU the session reads the host buffer directly: no copy at all.
            binding.bind_cpu_input(engine.input_name, slot.host)
        for name, values in self._extra.items():
            device = self._extra_values[name]
            if device is not None:
                binding.bind_ortvalue_input(name, device)
            else:
                binding.bind_cpu_input(name, values)
        for name, value in zip(engine.output_names, self._output_values, strict=True):
            binding.bind_ortvalue_output(name, value)
        if self._graph:
            slot.graph = ort.RunOptions()
            slot.graph.add_run_config_entry("gpu_graph_id", str(engine.next_graph_id()))
        slot.session = session

    def run(self) -> list[np.ndarray]:
        slot = self._current
        assert slot is not None, "frames(h, w) selects the input of a frame model"
        if slot.session is None:
            self._open(slot)
        if not self._bound:
            return slot.session.run(self._engine.output_names, {self._engine.input_name: slot.host} | self._extra)
        if slot.device is not None:
            slot.device.update_inplace(slot.host)
        if slot.graph is None:
            slot.session.run_with_iobinding(slot.binding)
            return self.outputs
        slot.session.run_with_iobinding(slot.binding, slot.graph)
        # OrtValue has no in-place copy to host; this is the one allocation per run CUDA graphs cost.
        return [value.numpy() for value in self._output_values]


def _static_dim(dim: Any, what: str) -> int:
    if not isinstance(dim, int):
        raise EngineError(f"{what} has a non-static dimension {dim!r}; only the batch may vary")
    return dim
