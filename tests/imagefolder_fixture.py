"""A generated image folder (ImageFolder layout) of coloured shapes, small and learnable.

Each class is one shape drawn with PIL: a filled circle, square, triangle,
cross, diamond, ring, horizontal or vertical bar, in a random bright colour
on a dark background, with jittered centre and size, in one of several
image sizes.  The bytes depend only on the arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

Box = tuple[float, float, float, float]  # left, top, right, bottom


def _circle(draw: ImageDraw.ImageDraw, box: Box, fill: tuple[int, ...]) -> None:
    draw.ellipse(box, fill=fill)


def _square(draw: ImageDraw.ImageDraw, box: Box, fill: tuple[int, ...]) -> None:
    draw.rectangle(box, fill=fill)


def _triangle(draw: ImageDraw.ImageDraw, box: Box, fill: tuple[int, ...]) -> None:
    left, top, right, bottom = box
    draw.polygon([((left + right) / 2, top), (right, bottom), (left, bottom)], fill=fill)


def _cross(draw: ImageDraw.ImageDraw, box: Box, fill: tuple[int, ...]) -> None:
    left, top, right, bottom = box
    arm = (right - left) / 6
    middle_x, middle_y = (left + right) / 2, (top + bottom) / 2
    draw.rectangle((middle_x - arm, top, middle_x + arm, bottom), fill=fill)
    draw.rectangle((left, middle_y - arm, right, middle_y + arm), fill=fill)


def _diamond(draw: ImageDraw.ImageDraw, box: Box, fill: tuple[int, ...]) -> None:
    left, top, right, bottom = box
    middle_x, middle_y = (left + right) / 2, (top + bottom) / 2
    draw.polygon(
        [(middle_x, top), (right, middle_y), (middle_x, bottom), (left, middle_y)], fill=fill
    )


def _ring(draw: ImageDraw.ImageDraw, box: Box, fill: tuple[int, ...]) -> None:
    draw.ellipse(box, outline=fill, width=max(2, round((box[2] - box[0]) / 6)))


def _hbar(draw: ImageDraw.ImageDraw, box: Box, fill: tuple[int, ...]) -> None:
    left, top, right, bottom = box
    middle_y, half = (top + bottom) / 2, (bottom - top) / 6
    draw.rectangle((left, middle_y - half, right, middle_y + half), fill=fill)


def _vbar(draw: ImageDraw.ImageDraw, box: Box, fill: tuple[int, ...]) -> None:
    left, top, right, bottom = box
    middle_x, half = (left + right) / 2, (right - left) / 6
    draw.rectangle((middle_x - half, top, middle_x + half, bottom), fill=fill)


Shape = Callable[[ImageDraw.ImageDraw, Box, tuple[int, ...]], None]
SHAPES: dict[str, Shape] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "diamond": _diamond,
    "ring": _ring,
    "hbar": _hbar,
    "vbar": _vbar,
}


def shapes_for(classes: Sequence[str]) -> list[str]:
    """Return the shape each class draws: its own name if a shape, else the shape at its index."""
    names = list(SHAPES)
    if len(classes) > len(names):
        raise ValueError(f"at most {len(names)} classes, one per shape ({', '.join(names)})")
    chosen = [name if name in SHAPES else names[index] for index, name in enumerate(classes)]
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"classes {list(classes)} would draw one shape twice: {chosen}")
    return chosen


def draw_shape(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    """Return one RGB image of ``shape``: jittered centre, extent and colours from ``rng``."""
    background = tuple(int(v) for v in rng.integers(0, 50, size=3))
    colour = [int(v) for v in rng.integers(60, 256, size=3)]
    colour[int(rng.integers(0, 3))] = 255  # one channel full, so the shape is always bright
    half = size * rng.uniform(0.28, 0.42)
    centre_x, centre_y = size / 2 + size * rng.uniform(-0.1, 0.1, size=2)
    image = Image.new("RGB", (size, size), background)
    box = (centre_x - half, centre_y - half, centre_x + half, centre_y + half)
    SHAPES[shape](ImageDraw.Draw(image), box, tuple(colour))
    return image


def make_image_folder(
    root: Path,
    *,
    classes: Sequence[str] = ("circle", "square", "triangle", "cross"),
    per_class_train: int = 30,
    per_class_test: int = 10,
    seed: int = 0,
    sizes: Sequence[int] = (20, 24, 28),
    val: bool = False,
) -> Path:
    """Write ``root/{train,test[,val]}/<class>/NNN.png`` and return ``root``.

    ``val`` holds ``per_class_test`` images per class.  Splits are drawn in
    the order train, test, val from one generator, so asking for ``val``
    leaves train and test unchanged.
    """
    rng = np.random.default_rng(seed)
    shapes = shapes_for(classes)
    counts = {"train": per_class_train, "test": per_class_test}
    if val:
        counts["val"] = per_class_test
    for split, per_class in counts.items():
        width = max(3, len(str(per_class - 1)))
        for name, shape in zip(classes, shapes, strict=True):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(per_class):
                size = int(sizes[int(rng.integers(0, len(sizes)))])
                draw_shape(shape, size, rng).save(folder / f"{index:0{width}d}.png", format="PNG")
    return root


def make_many_class_folder(
    root: Path, *, classes: int, per_class_train: int = 4, per_class_test: int = 2, size: int = 8
) -> Path:
    """Write ``root/{train,test}/c<NNN>/NNN.png``: ``classes`` classes of small grey images.

    Each class has its own mean grey level plus noise, so that a model learns
    something; the shapes above are too few for many classes.
    """
    rng = np.random.default_rng(0)
    for split, per_class in (("train", per_class_train), ("test", per_class_test)):
        for label in range(classes):
            folder = root / split / f"c{label:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            level = 255 * label / max(classes - 1, 1)
            for index in range(per_class):
                pixels = np.clip(level + rng.normal(0, 20, (size, size)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8), mode="L").save(
                    folder / f"{index:03d}.png", format="PNG"
                )
    return root
