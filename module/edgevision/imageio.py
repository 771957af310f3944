"""Read still images from disk with errors that name the file and the reason."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgevision.errors import EdgevisionError


class ImageReadError(EdgevisionError, ValueError):
    """The file is missing, unreadable, or not an image OpenCV can decode."""


def read_image(path: Path) -> np.ndarray:
    """Decode an image file to a BGR uint8 array."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageReadError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise ImageReadError(f"not a file: {path}") from None
    except OSError as exc:
        raise ImageReadError(f"cannot read image {path}: {exc.strerror}") from None
    if data.size == 0:
        raise ImageReadError(f"empty file: {path}")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageReadError(f"not a decodable image: {path}")
    return image
