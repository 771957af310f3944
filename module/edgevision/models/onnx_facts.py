"""What an ONNX file says about itself: inputs, outputs, opset and metadata, read without running it.

Model files come from users and from the twin's model folder: everything read here is bounded
(metadata sizes, class counts, label lengths), and a file that is not a model is a clear error.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto

from edgevision.errors import BuildError

# Beyond these, metadata is ignored rather than parsed: a names literal of a few thousand classes
# is a few hundred kilobytes.
MAX_METADATA_VALUE = 1 << 20
MAX_CLASSES = 10_000
MAX_LABEL_CHARS = 128

_TYPES = {
    TensorProto.FLOAT: "float32",
    TensorProto.FLOAT16: "float16",
    TensorProto.DOUBLE: "float64",
    TensorProto.UINT8: "uint8",
    TensorProto.INT32: "int32",
    TensorProto.INT64: "int64",
    TensorProto.BOOL: "bool",
}

Dim = int | str


class ModelFileError(BuildError):
    """The file is not an ONNX model this module can read."""


@dataclass(frozen=True)
class TensorFacts:
    name: str
    dtype: str
    # A fixed size, or the symbolic name ("batch", "height", "?" when unnamed).
    shape: tuple[Dim, ...]

    def describe(self) -> str:
        return f"{self.name} {self.dtype} [{', '.join(str(d) for d in self.shape)}]"


@dataclass(frozen=True)
class ModelFacts:
    path: Path
    inputs: tuple[TensorFacts, ...]
    outputs: tuple[TensorFacts, ...]
    opset: int
    producer: str
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def image_input(self) -> TensorFacts | None:
        """The 4-D float or uint8 input (the image); other inputs are sizes and such."""
        return next((i for i in self.inputs if len(i.shape) == 4 and i.dtype in ("float32", "float16", "uint8")), None)

    def with_output_shapes(self, measured: Sequence[Sequence[object]]) -> ModelFacts:
        """These facts with the output sizes the file leaves open filled in from a run's outputs
        (`measured`, one shape per output; the batch stays open): a dynamic export's sizes are
        known only once it has run."""
        outputs = []
        for output, shape in zip(self.outputs, measured, strict=True):
            dims = tuple(
                d if axis == 0 or isinstance(d, int) or not isinstance(m, int) else m
                for axis, (d, m) in enumerate(zip(output.shape, shape, strict=True))
            )
            outputs.append(dataclasses.replace(output, shape=dims))
        return dataclasses.replace(self, outputs=tuple(outputs))


def read_facts(path: Path) -> ModelFacts:
    """The file's inputs, outputs, opset and metadata (weights are not kept)."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise ModelFileError(f"model file not found: {path}") from None
    except (OSError, DecodeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path.name}: not an ONNX model ({type(exc).__name__})") from None
    graph = model.graph
    if not graph.output:
        raise ModelFileError(f"{path.name}: not an ONNX model (no graph outputs)")
    initializers = {i.name for i in graph.initializer}
    inputs = tuple(_tensor(v) for v in graph.input if v.name not in initializers)
    outputs = tuple(_tensor(v) for v in graph.output)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    metadata = {
        p.key: p.value for p in model.metadata_props if len(p.key) <= 256 and len(p.value) <= MAX_METADATA_VALUE
    }
    producer = f"{model.producer_name} {model.producer_version}".strip()
    return ModelFacts(path, inputs, outputs, opset, producer, metadata)


def _tensor(value: onnx.ValueInfoProto) -> TensorFacts:
    tensor = value.type.tensor_type
    dims: list[Dim] = []
    for d in tensor.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(d.dim_value)
        else:
            dims.append(d.dim_param or "?")
    return TensorFacts(value.name, _TYPES.get(tensor.elem_type, f"type {tensor.elem_type}"), tuple(dims))


def literal(text: str) -> Any:
    """A Python literal from metadata (Ultralytics writes `str(dict)`), or None: never code."""
    if len(text) > MAX_METADATA_VALUE:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def class_names(value: Any) -> tuple[str, ...] | None:
    """Names from `{0: 'person', 1: 'bicycle'}` or a list; gaps named `class N`; None if unusable."""
    if isinstance(value, (list, tuple)):
        value = dict(enumerate(value))
    if not isinstance(value, dict) or not value or len(value) > MAX_CLASSES:
        return None
    if not all(isinstance(k, int) and 0 <= k < MAX_CLASSES for k in value):
        return None
    count = max(value) + 1
    return tuple(_label(value.get(i), i) for i in range(count))


def _label(name: Any, index: int) -> str:
    if not isinstance(name, str) or not name.strip():
        return f"class {index}"
    return "".join(c for c in name.strip() if c.isprintable())[:MAX_LABEL_CHARS] or f"class {index}"


def read_labels_file(path: Path) -> tuple[str, ...]:
    """One class name a line (blank lines skipped), bounded in size and count."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_METADATA_VALUE + 1)
    except OSError as exc:
        raise ModelFileError(f"cannot read labels file {path}: {exc.strerror}") from None
    if len(data) > MAX_METADATA_VALUE:
        raise ModelFileError(f"labels file {path} is over {MAX_METADATA_VALUE} bytes")
    names = [line.strip() for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if not names or len(names) > MAX_CLASSES:
        raise ModelFileError(f"labels file {path}: 1 to {MAX_CLASSES} names expected, {len(names)} found")
    return tuple(_label(n, i) for i, n in enumerate(names))
