"""A session's inputs as the engine feeds them: the image, and the values of any other input
(a DETR deployment export's sizes), with the sizes an export left open filled in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from edgevision.inference.status import EngineError

NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(uint8)": np.uint8,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}
# A warm-up frame's height and width for a model that takes frames of any size.
WARM_UP_SIDE = 64
# The family's values for inputs other than the image, by input name, one row per frame.
ExtraInputs = Callable[[list[str]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Feeds:
    image: str
    # The image input's type and shape; an open height and width are the model's own size.
    image_type: str
    image_shape: list[int | str | None]
    # Inputs besides the image, one row per frame (the same for every frame).
    rows: dict[str, np.ndarray]

    @classmethod
    def of(cls, session: ort.InferenceSession, extras: ExtraInputs, input_hw: tuple[int, int] | None) -> Feeds:
        inputs = session.get_inputs()
        images = [i for i in inputs if len(i.shape) == 4]
        if len(images) != 1:
            raise EngineError(f"model has {len(images)} 4-D inputs among {len(inputs)}; one image input is expected")
        image = images[0]
        others = [i.name for i in inputs if i is not image]
        rows = extras(others) if others else {}
        missing = [name for name in others if name not in rows]
        if missing:
            raise EngineError(f"model input(s) {missing} are not the image, and its family gives no value for them")
        shape = list(image.shape)
        if input_hw is not None and image.type != "tensor(uint8)":
            for axis, size in zip((2, 3), input_hw, strict=True):
                if not isinstance(shape[axis], int):
                    shape[axis] = size
        return cls(image.name, image.type, shape, rows)

    def others(self, batch_size: int) -> dict[str, np.ndarray]:
        return {name: np.ascontiguousarray(np.tile(row, (batch_size, 1))) for name, row in self.rows.items()}

    def zeros(self, batch_size: int) -> dict[str, np.ndarray]:
        """A feed of zeros at `batch_size`: every input, open sizes filled (frames: 64 x 64)."""
        frames = self.image_type == "tensor(uint8)"
        dims = [batch_size]
        for axis, d in enumerate(self.image_shape[1:], start=1):
            dims.append(d if isinstance(d, int) else WARM_UP_SIDE if frames or axis in (2, 3) else 1)
        image = np.zeros(dims, dtype=NUMPY_TYPES.get(self.image_type, np.float32))
        return {self.image: image, **self.others(batch_size)}
