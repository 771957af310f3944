"""Derived copies of a model graph (dynamic batch, letterbox in the graph, fp16), built once and cached."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx
import platformdirs

from edgevision.errors import BuildError
from edgevision.models.dynbatch import make_dynamic_batch
from edgevision.models.ingraph import add_preprocessing
from edgevision.models.manifest import InputSpec

log = logging.getLogger(__name__)


# Part of every derived file's name: a change to how copies are built must not reuse old ones.
# 2: the in-graph letterbox casts to float before it resizes and pads.
# 3: the in-graph preprocessing follows the family's (stretch, channel order, scaling); fp16
#    copies keep float32-only ops (NMS, TopK) in float32.
BUILDER_VERSION = 3


class VariantError(BuildError):
    """A derived copy of the model cannot be built or stored."""


@dataclass(frozen=True)
class Variant:
    dynamic_batch: bool = False
    # The letterbox runs in the graph; the model takes uint8 [N, H, W, 3] BGR frames.
    frames_in: bool = False
    # Weights and activations in half precision, inputs and outputs still float32 (for the CUDA EP).
    fp16: bool = False

    @property
    def tag(self) -> str:
        parts = [
            name
            for name, on in (("dynbatch", self.dynamic_batch), ("frames", self.frames_in), ("fp16", self.fp16))
            if on
        ]
        return ".".join(parts)

    def build(self, model: onnx.ModelProto, spec: InputSpec) -> onnx.ModelProto:
        if self.dynamic_batch:
            model = make_dynamic_batch(model)
        if self.frames_in:
            model = add_preprocessing(model, spec)
        if self.fp16:
            model = to_fp16(model)
        return model


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Half-precision weights and compute; float32 inputs and outputs so callers do not change."""
    # onnxruntime ships the converter it maintains for its own fp16 models; no extra dependency.
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # The converter keeps the ops it lists as float32-only (NonMaxSuppression, TopK, ... in NMS-free
    # and `nms=True` exports) in float32 by casting around them, but only where it knows a value's
    # type: without inferred types their inputs were left float16 and the session refused the graph.
    # It converts the model it is given in place; callers keep theirs.
    typed = onnx.shape_inference.infer_shapes(onnx.ModelProto.FromString(model.SerializeToString()))
    converted = convert_float_to_float16(typed, keep_io_types=True, disable_shape_infer=True)
    # The converter appends its input casts after the nodes that read them.
    _sort_nodes(converted.graph)
    onnx.checker.check_model(converted)
    return converted


def _sort_nodes(graph: onnx.GraphProto) -> None:
    """Order nodes so each comes after the producers of its inputs (stable otherwise)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [node for node in pending if all(name in available for name in node.input)]
        if not ready:
            raise VariantError("the converted graph has a cycle or an input nothing produces")
        for node in ready:
            available.update(node.output)
        ordered.extend(ready)
        pending = [node for node in pending if all(name not in available for name in node.output)]
    del graph.node[:]
    graph.node.extend(ordered)


def _spec_digest(spec: InputSpec) -> str:
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:8]


def _writable(directory: Path) -> bool:
    """Writable, and not marked read-only: root may write anywhere, but should not there."""
    return os.access(directory, os.W_OK) and bool(directory.stat().st_mode & 0o222)


def variant_path(
    source: Path, sha256: str, variant: Variant, spec: InputSpec | None = None, cache_dir: Path | None = None
) -> Path:
    """The derived copy's file: beside the original, or in the user cache if that is read-only."""
    if not variant.tag:
        return source
    # The in-graph preprocessing follows the input spec: one file per spec (a family named by
    # configuration may read the same file differently).
    spec_tag = f"-{_spec_digest(spec)}" if variant.frames_in and spec is not None else ""
    name = f"{source.stem}.{variant.tag}-v{BUILDER_VERSION}-{sha256[:12]}{spec_tag}.onnx"
    candidates = [
        source.parent / name,
        (cache_dir or Path(platformdirs.user_cache_dir("edgevision")) / "models") / name,
    ]
    for path in candidates:
        if path.is_file():
            return path
    if variant.frames_in and spec is None:
        raise VariantError("the letterbox-in-graph copy needs the model's input spec")
    try:
        converted = variant.build(onnx.load(str(source)), spec or InputSpec(width=1, height=1)).SerializeToString()
    except Exception as exc:
        raise VariantError(f"cannot build the {variant.tag} copy of {source.name}: {exc}") from exc
    for path in candidates:
        if path.parent.exists() and not _writable(path.parent):
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".part")
        except OSError:
            continue
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(converted)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        log.info("%s copy of %s written to %s", variant.tag, source.name, path)
        return path
    raise VariantError(f"no writable place for the {variant.tag} copy of {source} (tried {candidates})")


def dynamic_batch_path(source: Path, sha256: str, cache_dir: Path | None = None) -> Path:
    return variant_path(source, sha256, Variant(dynamic_batch=True), cache_dir=cache_dir)
