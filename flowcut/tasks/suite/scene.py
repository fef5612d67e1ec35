"""Procedural scenes for the generated benchmark suite: a seed in, a 336x336 image and its facts out.

Every scene is a function of its seed alone (``random.Random(seed)`` and
``numpy.random.default_rng(seed)``, never global state), so a sample can always be rebuilt
from the seed it records. A scene is a low-contrast textured background, a little grey
clutter (thin lines and dots, much smaller than any object), 1-5 objects in distinct cells
of a 3x3 layout and, in about half the scenes, one white box with a black word or number.

The layout echoes CLEVR (Johnson et al., 2017) and the POPE-style probes of Li et al. (2023),
but is drawn flat so that object positions and the patches they cover are exact: that is
what lets ``object_mask`` say where [CLS] attention *should* land.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 336  # LLaVA-1.5's CLIP ViT-L/14-336 input: no resize between us and the encoder
CELL = SIZE // 3  # 112 px cells of the 3x3 layout
PATCH = 14  # ViT-L/14 patch side: a 24x24 grid at 336 px

SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow")
SIZES = ("small", "large")
ROWS = ("top", "middle", "bottom")
COLS = ("left", "center", "right")
SIDE = {"small": 40, "large": 80}  # object side in px; large still leaves 32 px of jitter in a cell

RGB = {"red": (215, 40, 40), "green": (35, 160, 60), "blue": (40, 80, 215), "yellow": (240, 205, 25)}

# Colour-shape combos, most frequent first. Sampling weights fall with rank so that POPE's
# "popular" negatives (the most frequent absent object, as in Li et al. 2023) are meaningful.
POPULAR = (
    ("red", "circle"),
    ("blue", "square"),
    ("green", "triangle"),
    ("yellow", "circle"),
    ("red", "square"),
    ("blue", "circle"),
    ("green", "square"),
    ("yellow", "triangle"),
    ("red", "triangle"),
    ("blue", "triangle"),
    ("green", "circle"),
    ("yellow", "square"),
)
_WEIGHTS = tuple(1.0 / (1 + 0.25 * i) for i in range(len(POPULAR)))  # rank 0 is ~3.75x rank 11

WORDS = (
    "cat", "dog", "sun", "car", "tree", "fish", "bird", "book", "cake", "door",
    "milk", "rain", "ship", "star", "frog", "lamp", "rose", "kite", "moon", "bell",
)  # fmt: skip
TEXT_P = 0.5  # share of scenes with a text box; textvqa samples skip the others
FONT_PX = 30  # cap height ~21 px: 1.5 patches, legible to a 14 px-patch encoder


@dataclass
class Obj:
    """One drawn object.

    Attributes:
        shape: one of ``SHAPES``. colour: one of ``COLOURS``. size: one of ``SIZES``.
        row, col: cell indices 0-2 (``ROWS[row]``, ``COLS[col]`` name them).
        box: half-open pixel bounds ``(x0, y0, x1, y1)`` of the object.
    """

    shape: str
    colour: str
    size: str
    row: int
    col: int
    box: tuple[int, int, int, int]

    @property
    def where(self) -> str:
        """Position words as answers use them, e.g. ``"top left"``, ``"middle center"``."""
        return f"{ROWS[self.row]} {COLS[self.col]}"

    @property
    def name(self) -> str:
        """E.g. ``"large red circle"``."""
        return f"{self.size} {self.colour} {self.shape}"


@dataclass
class Scene:
    """The facts of one rendered image.

    Attributes:
        seed: the only input the scene depends on.
        objects: 1-5 objects, each in its own cell, no two with the same colour and shape.
        text: the word or number in the text box, or None.
        text_box: half-open pixel bounds of the white box, or None.
    """

    seed: int
    objects: list[Obj]
    text: str | None
    text_box: tuple[int, int, int, int] | None

    @property
    def text_where(self) -> str | None:
        """Position words of the text box's cell, or None without text."""
        if self.text_box is None:
            return None
        r, c = cell_of(self.text_box)
        return f"{ROWS[r]} {COLS[c]}"


def cell_of(box: tuple[int, int, int, int]) -> tuple[int, int]:
    """(row, col) of the cell holding a box's centre; jitter never moves a centre out of its cell."""
    x0, y0, x1, y1 = box
    return min(2, (y0 + y1) // 2 // CELL), min(2, (x0 + x1) // 2 // CELL)


@lru_cache(maxsize=4)
def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=px)  # Pillow >= 10.1 ships a scalable default font


def _background(rng: random.Random, gen: np.random.Generator) -> Image.Image:
    """A light, low-saturation texture: smooth noise or soft stripes, 336x336 RGB."""
    base = np.float32(rng.uniform(150, 210)) + np.array([rng.uniform(-10, 10) for _ in range(3)], np.float32)
    if rng.random() < 0.5:
        # low-res noise upsampled: texture without the PNG cost of per-pixel noise
        coarse = Image.fromarray((gen.random((SIZE // 16, SIZE // 16)) * 255).astype(np.uint8))
        field = np.asarray(coarse.resize((SIZE, SIZE), Image.Resampling.BILINEAR), np.float32) / 127.5 - 1
        tex = field * np.float32(rng.uniform(6, 14))
    else:
        angle, period = rng.uniform(0, np.pi), rng.uniform(14, 40)
        axis = np.arange(SIZE, dtype=np.float32) * np.float32(2 * np.pi / period)
        # phase = (x cos + y sin) * 2 pi / period, as an outer sum of two 336-vectors
        phase = axis[None, :] * np.float32(np.cos(angle)) + axis[:, None] * np.float32(np.sin(angle))
        tex = np.sin(phase) * np.float32(rng.uniform(5, 12))
    return Image.fromarray(np.clip(tex[..., None] + base, 0, 255).astype(np.uint8))


def _clutter(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    """3-9 thin grey lines and dots, at most ~16 px: distractors far smaller than a 40 px object."""
    for _ in range(rng.randint(3, 9)):
        grey = rng.randint(85, 165)
        x, y = rng.uniform(4, SIZE - 4), rng.uniform(4, SIZE - 4)
        if rng.random() < 0.5:
            length, angle = rng.uniform(6, 16), rng.uniform(0, 2 * np.pi)
            end = (x + length * np.cos(angle), y + length * np.sin(angle))
            draw.line([(x, y), end], fill=(grey,) * 3, width=1)
        else:
            r = rng.uniform(1, 2.5)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(grey,) * 3)


def _place(rng: random.Random, cell: int, w: int, h: int) -> tuple[int, int, int, int]:
    """A w x h box jittered inside a cell, 4 px clear of the cell border."""
    row, col = divmod(cell, 3)
    x0 = col * CELL + rng.randint(4, CELL - 4 - w)
    y0 = row * CELL + rng.randint(4, CELL - 4 - h)
    return x0, y0, x0 + w, y0 + h


def _draw_obj(draw: ImageDraw.ImageDraw, obj: Obj) -> None:
    x0, y0, x1, y1 = obj.box
    fill = RGB[obj.colour]
    edge = tuple(int(v * 0.6) for v in fill)  # darker rim so yellow stays visible on light grounds
    if obj.shape == "circle":
        draw.ellipse([x0, y0, x1 - 1, y1 - 1], fill=fill, outline=edge, width=2)
    elif obj.shape == "square":
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=fill, outline=edge, width=2)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=fill, outline=edge, width=2)


def _sample_combos(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """n distinct colour-shape combos, drawn without replacement with the ``POPULAR`` weights."""
    pool, weights, out = list(POPULAR), list(_WEIGHTS), []
    for _ in range(n):
        i = rng.choices(range(len(pool)), weights=weights)[0]
        out.append(pool.pop(i))
        weights.pop(i)
    return out


def _text_image(text: str) -> Image.Image:
    """Black text on a white box with 6 px padding, tight to the glyphs' ink."""
    font = _font(FONT_PX)
    left, top, right, bottom = font.getbbox(text)
    pad = 6
    box = Image.new("RGB", (int(right - left) + 2 * pad, int(bottom - top) + 2 * pad), (255, 255, 255))
    ImageDraw.Draw(box).text((pad - left, pad - top), text, fill=(0, 0, 0), font=font)
    return box


def make_scene(seed: int) -> Scene:
    """The facts of the scene for ``seed`` without drawing it (~0.1 ms; ``render`` draws the same scene)."""
    return _layout(random.Random(seed), seed)


def _layout(rng: random.Random, seed: int) -> Scene:
    # the layout takes the first draws of the seed's stream, so facts need no pixels
    n = rng.randint(1, 5)
    has_text = rng.random() < TEXT_P
    cells = rng.sample(range(9), n + has_text)
    objects = []
    for cell, (colour, shape) in zip(cells, _sample_combos(rng, n), strict=False):
        size = rng.choice(SIZES)
        side = SIDE[size] + rng.randint(-3, 3)
        objects.append(Obj(shape, colour, size, cell // 3, cell % 3, _place(rng, cell, side, side)))
    text = text_box = None
    if has_text:
        text = rng.choice(WORDS) if rng.random() < 0.7 else str(rng.randint(0, 99))
        text_box = _place(rng, cells[-1], *_text_image(text).size)
    return Scene(seed, objects, text, text_box)


def render(seed: int, scene: Scene | None = None) -> tuple[Image.Image, Scene]:
    """Draw the scene for ``seed``.

    Args:
        scene: draw these facts instead of the seed's own, over the seed's background and
            clutter (``edit`` makes such scenes: a pair that differs in one fact and nothing else).

    Returns:
        A 336x336 RGB image and its ``Scene``; the same seed gives identical pixels.
    """
    rng, gen = random.Random(seed), np.random.default_rng(seed)
    own = _layout(rng, seed)  # always drawn: it advances the stream the background reads next
    scene = own if scene is None else scene
    img = _background(rng, gen)
    draw = ImageDraw.Draw(img)
    _clutter(draw, rng)  # under the objects: clutter never hides them
    for obj in scene.objects:
        _draw_obj(draw, obj)
    if scene.text is not None and scene.text_box is not None:
        img.paste(_text_image(scene.text), scene.text_box[:2])
    return img, scene


EDITS = ("shape", "colour", "size", "move", "swap", "text")


def _in_cell(box: tuple[int, int, int, int], row: int, col: int, w: int, h: int) -> tuple[int, int, int, int]:
    """A w x h box centred where ``box`` was, clamped 4 px inside cell (row, col)."""
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    x0 = min(max(cx - w // 2, col * CELL + 4), (col + 1) * CELL - 4 - w)
    y0 = min(max(cy - h // 2, row * CELL + 4), (row + 1) * CELL - 4 - h)
    return x0, y0, x0 + w, y0 + h


def edit(scene: Scene, kind: str, rng: random.Random) -> Scene | None:
    """A copy of ``scene`` with one fact changed, or None when ``kind`` does not apply.

    The hard negatives of the ViT's contrastive stage: drawn by ``render(scene.seed, edited)``
    the two images share background and clutter, so only the named fact tells them apart.
    Kinds (``EDITS``): shape or colour of one object (the colour-shape pair stays unique),
    size of one object, move one object to a free cell, swap the cells of two objects, and
    another word or number in the text box.
    """
    if kind not in EDITS:
        raise ValueError(f"unknown edit {kind!r}; known: {', '.join(EDITS)}")
    objs = [replace(o) for o in scene.objects]
    text, text_box = scene.text, scene.text_box
    o = rng.choice(objs)
    taken = {(p.colour, p.shape) for p in objs}
    if kind in ("shape", "colour"):
        options = [(o.colour, s) for s in SHAPES] if kind == "shape" else [(c, o.shape) for c in COLOURS]
        options = [c for c in options if c not in taken]
        if not options:
            return None
        o.colour, o.shape = rng.choice(options)
    elif kind == "size":
        jitter = o.box[2] - o.box[0] - SIDE[o.size]
        o.size = "large" if o.size == "small" else "small"
        o.box = _in_cell(o.box, o.row, o.col, SIDE[o.size] + jitter, SIDE[o.size] + jitter)
    elif kind == "move":
        used = {(p.row, p.col) for p in objs} | ({cell_of(text_box)} if text_box else set())
        free = [(r, c) for r in range(3) for c in range(3) if (r, c) not in used]
        if not free:
            return None
        r, c = rng.choice(free)
        dx, dy = (c - o.col) * CELL, (r - o.row) * CELL  # same offset inside the new cell
        o.row, o.col, o.box = r, c, (o.box[0] + dx, o.box[1] + dy, o.box[2] + dx, o.box[3] + dy)
    elif kind == "swap":
        if len(objs) < 2:
            return None
        a, b = rng.sample(objs, 2)
        wa, wb = a.box[2] - a.box[0], b.box[2] - b.box[0]
        a.box, b.box = _in_cell(b.box, b.row, b.col, wa, wa), _in_cell(a.box, a.row, a.col, wb, wb)
        a.row, a.col, b.row, b.col = b.row, b.col, a.row, a.col
    else:  # text
        if text is None or text_box is None:
            return None
        others = [str(k) for k in range(100)] if text.isdigit() else list(WORDS)
        text = rng.choice([t for t in others if t != text])
        w, h = _text_image(text).size
        r, c = cell_of(text_box)
        x0 = min(text_box[0], (c + 1) * CELL - 4 - w)
        y0 = min(text_box[1], (r + 1) * CELL - 4 - h)
        text_box = (x0, y0, x0 + w, y0 + h)
    return Scene(scene.seed, objs, text, text_box)


def caption(scene: Scene, rng: random.Random, raster: bool = False) -> str:
    """A short English description of every object (size, colour, shape, position) and the text.

    Args:
        rng: picks the order and phrasing, so captions vary while the facts stay exact.
        raster: objects row by row instead, the order in which their patches reach an LM.

    Example: ``"a large red circle at top left. the word cat is written at middle right."``
    """
    parts = []
    order = (
        sorted(scene.objects, key=lambda o: (o.row, o.col)) if raster else rng.sample(scene.objects, len(scene.objects))
    )
    for obj in order:
        template = rng.choice(("a {n} at {w}.", "there is a {n} at the {w}.", "a {n} in the {w}."))
        parts.append(template.format(n=obj.name, w=obj.where))
    if scene.text is not None:
        kind = "number" if scene.text.isdigit() else "word"
        parts.append(f"the {kind} {scene.text} is written at {scene.text_where}.")
    return " ".join(parts)


def box_patches(box: tuple[int, int, int, int], grid: int = 24) -> tuple[slice, slice]:
    """(rows, cols) slices of the ``grid`` x ``grid`` patches that overlap a half-open pixel box."""
    x0, y0, x1, y1 = box
    step = SIZE / grid
    # patch j spans [j*step, (j+1)*step); it overlaps [x0, x1) iff j*step < x1 and (j+1)*step > x0
    return slice(int(y0 // step), int(np.ceil(y1 / step))), slice(int(x0 // step), int(np.ceil(x1 / step)))


def object_mask(scene: Scene, grid: int = 24) -> np.ndarray:
    """Which patches of a ``grid`` x ``grid`` layout overlap an object or the text box.

    Returns:
        bool [grid, grid], row-major like the ViT's patch order (14 px patches at grid=24).
    """
    mask = np.zeros((grid, grid), dtype=bool)
    for box in [o.box for o in scene.objects] + ([scene.text_box] if scene.text_box else []):
        mask[box_patches(box, grid)] = True
    return mask
