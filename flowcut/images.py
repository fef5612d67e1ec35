"""Opening images with a clear error instead of a decoder traceback."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import FlowcutError


def open_image(source: str | Path | bytes, field: str = "image") -> Image.Image:
    """Decode a path or raw bytes into an RGB image; any failure is a FlowcutError on ``field``."""
    try:
        if isinstance(source, bytes):
            img = Image.open(io.BytesIO(source))
        else:
            img = Image.open(Path(source))
        img.load()
        return img.convert("RGB")
    except FileNotFoundError:
        raise FlowcutError(field, f"no such file: {source}") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        name = "uploaded bytes" if isinstance(source, bytes) else str(source)
        raise FlowcutError(field, f"cannot decode {name} as an image ({type(err).__name__})") from None
