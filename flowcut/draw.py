"""Draw the kept patches over an image: kept patches as they are, pruned ones dimmed."""

from __future__ import annotations

from PIL import Image, ImageDraw


def overlay(image: Image.Image, kept: list[int], grid: tuple[int, int], size: int = 336) -> Image.Image:
    """The image resized to ``size`` x ``size`` with the patches not in ``kept`` darkened.

    Args:
        kept: kept positions in the row-major (rows, cols) patch grid.
        grid: (rows, cols) of the grid the positions refer to.
    """
    base = image.convert("RGB").resize((size, size))
    shade = Image.new("RGBA", base.size, (0, 0, 0, 0))
    pen = ImageDraw.Draw(shade)
    rows, cols = grid
    ph, pw = size / rows, size / cols
    keep = set(kept)
    for r in range(rows):
        for c in range(cols):
            box = (c * pw, r * ph, (c + 1) * pw - 1, (r + 1) * ph - 1)
            if r * cols + c in keep:
                pen.rectangle(box, outline=(255, 210, 0, 160))
            else:
                pen.rectangle(box, fill=(0, 0, 0, 170))
    return Image.alpha_composite(base.convert("RGBA"), shade).convert("RGB")
