"""Tiny RGB images of one coloured shape, with captions and questions (the tiny VLM's data).

Each image (default 24 x 24) shows one shape (:data:`SHAPES`) in one colour (:data:`COLOURS`,
with a little colour jitter) in one quadrant (:data:`POSITIONS`, random size and offset inside
the quadrant) on a noisy dark background. Labels are kept as integer arrays, and the pixel mask
of the shape is returned too (to check where a model looks).

Book: seed-7.
"""
from __future__ import annotations

import dataclasses

import numpy as np

COLOURS = {"red": (0.9, 0.15, 0.15), "green": (0.2, 0.8, 0.25), "blue": (0.2, 0.35, 0.95),
           "yellow": (0.95, 0.85, 0.15), "purple": (0.65, 0.25, 0.85), "white": (0.95, 0.95, 0.95)}
SHAPES = ("circle", "square", "triangle", "cross")
POSITIONS = ("top left", "top right", "bottom left", "bottom right")

#: Question kinds: the prompt text and how the answer is made from (colour, shape, position) names.
QUESTIONS = {
    "colour": "What colour is it?",
    "shape": "What shape is it?",
    "position": "Where is it?",
    "caption": "What do you see?",
}


def answer_for(kind: str, colour: str, shape: str, position: str) -> str:
    """The answer text for a question ``kind`` about an image with these labels."""
    if kind == "colour":
        return colour
    if kind == "shape":
        return shape
    if kind == "position":
        return position
    if kind == "caption":
        return f"a {colour} {shape} at the {position}"
    raise ValueError(f"kind must be one of {list(QUESTIONS)}, got {kind!r}")


@dataclasses.dataclass
class ShapesDataset:
    """``images`` (n, H, W, 3) float32 in [0, 1]; ``colour``/``shape``/``position`` (n,) int
    indices into :data:`COLOURS`/:data:`SHAPES`/:data:`POSITIONS`; ``masks`` (n, H, W) bool."""

    images: np.ndarray
    colour: np.ndarray
    shape: np.ndarray
    position: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def labels(self, i: int) -> tuple[str, str, str]:
        """(colour, shape, position) names of image ``i``."""
        return list(COLOURS)[int(self.colour[i])], SHAPES[int(self.shape[i])], POSITIONS[int(self.position[i])]

    def answer(self, i: int, kind: str) -> str:
        return answer_for(kind, *self.labels(i))

    def caption(self, i: int) -> str:
        return self.answer(i, "caption")


def _shape_mask(kind: int, yy, xx, cy: float, cx: float, r: float) -> np.ndarray:
    dy, dx = yy - cy, xx - cx
    if kind == 0:    # circle
        return dy ** 2 + dx ** 2 <= r ** 2
    if kind == 1:    # square
        return (np.abs(dy) <= r * 0.85) & (np.abs(dx) <= r * 0.85)
    if kind == 2:    # triangle, apex up
        return (dy >= -r) & (dy <= r * 0.8) & (np.abs(dx) <= (dy + r) * 0.6)
    # cross (plus sign)
    w = max(1.0, r * 0.35)
    return ((np.abs(dx) <= w) & (np.abs(dy) <= r)) | ((np.abs(dy) <= w) & (np.abs(dx) <= r))


def make_shapes(n: int, seed: int = 0, size: int = 24, noise: float = 0.04) -> ShapesDataset:
    """``n`` random images (deterministic in ``seed``); labels uniform over colours, shapes and
    quadrants. ``size`` must be a multiple of 4 and at least 16."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16 or size % 4:
        raise ValueError(f"size must be an int >= 16 and a multiple of 4, got {size!r}")
    if not 0 <= noise < 0.5:
        raise ValueError(f"noise must be in [0, 0.5), got {noise!r}")
    rng = np.random.default_rng(seed)
    rgb = np.array(list(COLOURS.values()), dtype=np.float32)
    colour = rng.integers(len(COLOURS), size=n)
    shape = rng.integers(len(SHAPES), size=n)
    position = rng.integers(len(POSITIONS), size=n)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    half = size / 2
    images = np.empty((n, size, size, 3), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=bool)
    for i in range(n):
        r = rng.uniform(0.32, 0.44) * half
        top, left = position[i] in (0, 1), position[i] in (0, 2)
        cy = rng.uniform(r + 0.5, half - r - 0.5) + (0 if top else half)
        cx = rng.uniform(r + 0.5, half - r - 0.5) + (0 if left else half)
        m = _shape_mask(int(shape[i]), yy, xx, cy, cx, r)
        col = np.clip(rgb[colour[i]] + rng.normal(0, 0.05, 3), 0, 1)
        bg = rng.uniform(0.0, 0.15)
        img = np.full((size, size, 3), bg, dtype=np.float32)
        img[m] = col
        img += rng.normal(0, noise, img.shape).astype(np.float32)
        images[i] = np.clip(img, 0, 1)
        masks[i] = m
    return ShapesDataset(images, colour, shape, position, masks)


def chance_accuracy(labels: np.ndarray) -> float:
    """Accuracy of always answering the most frequent label (the majority baseline)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("labels must be a non-empty 1-D array")
    _, counts = np.unique(labels, return_counts=True)
    return float(counts.max() / labels.size)


__all__ = ["COLOURS", "SHAPES", "POSITIONS", "QUESTIONS", "ShapesDataset", "answer_for", "make_shapes",
           "chance_accuracy"]
