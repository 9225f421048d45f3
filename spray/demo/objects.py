"""The objects of the demo world, drawn as coloured shapes in side view.

Each drawer paints one object into a PIL ``ImageDraw`` of an RGBA layer, inside a box given
as (left, top, width, height) in pixels; the shapes are written in unit coordinates of that
box (x right, y down) and mirrored when the object faces left. ``ASPECT`` gives each
object's box height per unit width.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import ImageDraw

Colour = tuple[int, int, int]
Box = tuple[float, float, float, float]

ASPECT = {"aeroplane": 0.45, "bird": 0.6, "boat": 0.9, "car": 0.5, "cat": 0.75, "dog": 0.8, "horse": 0.9}

PALETTES: dict[str, Sequence[Colour]] = {
    "aeroplane": ((235, 235, 240), (200, 200, 210), (170, 40, 40), (40, 60, 130), (245, 245, 245)),
    "bird": ((110, 75, 40), (40, 40, 45), (200, 60, 40), (230, 200, 60), (150, 150, 155)),
    "boat": ((240, 240, 240), (180, 40, 40), (30, 50, 110), (200, 160, 60), (90, 60, 40)),
    "car": ((190, 30, 30), (30, 60, 160), (220, 220, 220), (30, 30, 30), (230, 190, 40), (120, 125, 130)),
    "cat": ((120, 120, 125), (215, 140, 60), (35, 35, 35), (235, 230, 220), (150, 110, 80)),
    "dog": ((140, 95, 50), (35, 30, 30), (215, 175, 100), (240, 235, 225), (100, 70, 50)),
    "horse": ((120, 70, 35), (60, 40, 25), (30, 25, 25), (225, 220, 210), (150, 140, 130)),
}


class Painter:
    """Maps unit box coordinates to pixels and draws filled shapes with a darker outline."""

    def __init__(self, draw: ImageDraw.ImageDraw, box: Box, facing_left: bool) -> None:
        self.draw, self.box, self.flip = draw, box, facing_left

    def point(self, x: float, y: float) -> tuple[float, float]:
        left, top, width, height = self.box
        return left + width * ((1 - x) if self.flip else x), top + height * y

    def polygon(self, points: Sequence[tuple[float, float]], colour: Sequence[int]) -> None:
        self.draw.polygon([self.point(x, y) for x, y in points], fill=_rgba(colour), outline=_rgba(_darker(colour)))

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, colour: Sequence[int]) -> None:
        (ax, ay), (bx, by) = self.point(x0, y0), self.point(x1, y1)
        box = (min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))
        self.draw.ellipse(box, fill=_rgba(colour), outline=_rgba(_darker(colour)))

    def line(self, points: Sequence[tuple[float, float]], colour: Sequence[int], width: float) -> None:
        pixels = max(1, round(width * self.box[2]))
        self.draw.line([self.point(x, y) for x, y in points], fill=_rgba(colour), width=pixels)


def _rgba(colour: Sequence[int]) -> tuple[int, int, int, int]:
    red, green, blue = (int(c) for c in colour[:3])
    return red, green, blue, 255


def _darker(colour: Sequence[int], factor: float = 0.6) -> tuple[int, int, int]:
    red, green, blue = (int(c * factor) for c in colour[:3])
    return red, green, blue


def _lighter(colour: Sequence[int], amount: int = 60) -> tuple[int, int, int]:
    red, green, blue = (min(255, int(c) + amount) for c in colour[:3])
    return red, green, blue


def aeroplane(p: Painter, colour: Colour, rng: np.random.Generator) -> None:
    """Fuselage, swept wing, tail plane and fin; the nose faces right."""
    p.polygon([(0.05, 0.05), (0.18, 0.05), (0.28, 0.45), (0.12, 0.45)], colour)  # fin
    p.ellipse(0.0, 0.38, 1.0, 0.62, colour)  # fuselage
    p.polygon([(0.38, 0.5), (0.58, 0.5), (0.42, 0.98), (0.32, 0.98)], _darker(colour, 0.85))  # wing
    p.polygon([(0.04, 0.5), (0.16, 0.5), (0.1, 0.7), (0.03, 0.7)], _darker(colour, 0.85))  # tail plane
    if rng.random() < 0.6:
        p.line([(0.2, 0.5), (0.8, 0.5)], _darker(colour, 0.5), 0.015)  # livery stripe


def bird(p: Painter, colour: Colour, rng: np.random.Generator) -> None:
    """Body, head, beak, tail and a raised or folded wing."""
    p.polygon([(0.0, 0.35), (0.25, 0.5), (0.25, 0.62), (0.0, 0.7)], _darker(colour, 0.8))  # tail
    p.ellipse(0.15, 0.35, 0.75, 0.85, colour)
    p.ellipse(0.6, 0.15, 0.9, 0.5, colour)
    p.polygon([(0.88, 0.28), (1.0, 0.34), (0.88, 0.4)], (235, 170, 40))  # beak
    p.ellipse(0.76, 0.25, 0.81, 0.31, (10, 10, 10))  # eye
    if rng.random() < 0.5:
        p.polygon([(0.3, 0.5), (0.55, 0.5), (0.25, 0.0)], _darker(colour, 0.7))  # raised wing
    else:
        p.polygon([(0.3, 0.5), (0.6, 0.55), (0.2, 0.72)], _darker(colour, 0.7))


def boat(p: Painter, colour: Colour, rng: np.random.Generator) -> None:
    """A hull with a sail on a mast, or with a cabin."""
    p.polygon([(0.0, 0.72), (1.0, 0.72), (0.85, 1.0), (0.12, 1.0)], colour)
    p.line([(0.0, 0.78), (1.0, 0.78)], _darker(colour, 0.5), 0.02)
    if rng.random() < 0.6:
        p.line([(0.5, 0.0), (0.5, 0.72)], (70, 50, 30), 0.025)
        p.polygon([(0.52, 0.03), (0.52, 0.68), (0.92, 0.68)], _lighter((200, 200, 195), 40))
        p.polygon([(0.48, 0.1), (0.48, 0.68), (0.15, 0.68)], (230, 230, 225))
    else:
        p.polygon([(0.25, 0.45), (0.7, 0.45), (0.75, 0.72), (0.2, 0.72)], (235, 235, 235))
        for x in (0.3, 0.45, 0.6):
            p.ellipse(x, 0.52, x + 0.08, 0.62, (60, 80, 110))


def car(p: Painter, colour: Colour, rng: np.random.Generator) -> None:
    """Body, cabin with windows, lights and two wheels."""
    p.polygon([(0.22, 0.38), (0.72, 0.38), (0.85, 0.6), (0.1, 0.6)], colour)  # cabin
    p.polygon([(0.27, 0.42), (0.46, 0.42), (0.46, 0.58), (0.18, 0.58)], (150, 190, 220))
    p.polygon([(0.5, 0.42), (0.69, 0.42), (0.79, 0.58), (0.5, 0.58)], (150, 190, 220))
    p.polygon([(0.0, 0.58), (1.0, 0.6), (1.0, 0.85), (0.0, 0.85)], colour)  # body
    p.ellipse(0.94, 0.63, 1.0, 0.7, (250, 240, 180))  # head light
    for x in (0.15, 0.7):
        p.ellipse(x, 0.72, x + 0.18, 1.0, (20, 20, 20))
        p.ellipse(x + 0.05, 0.79, x + 0.13, 0.93, (170, 170, 175))


def _quadruped(p: Painter, colour: Colour, legs: float, neck: float, head: Box, tail: float) -> None:
    """Shared body plan of horse, dog and cat: body, four legs, neck, head and tail."""
    dark = _darker(colour, 0.75)
    for x in (0.18, 0.3, 0.62, 0.74):
        p.polygon([(x, 0.45), (x + 0.07, 0.45), (x + 0.065, 1.0), (x + 0.01, 1.0)], dark)
    p.ellipse(0.1, 0.3, 0.82, 1.0 - legs, colour)  # body
    p.polygon([(0.7, 0.5), (0.78, 0.35), (0.75 + neck * 0.1, 0.5 - neck), (0.88, 0.5 - neck), (0.85, 0.55)], colour)
    p.ellipse(*head, colour)
    p.line([(0.12, 0.42), (0.12 - tail * 0.1, 0.42 + tail)], dark, 0.035)


def horse(p: Painter, colour: Colour, rng: np.random.Generator) -> None:
    """Long legs, a long raised neck, an elongated head and a mane."""
    _quadruped(p, colour, legs=0.45, neck=0.4, head=(0.8, 0.05, 1.0, 0.22), tail=0.4)
    p.polygon([(0.78, 0.1), (0.84, 0.08), (0.74, 0.45), (0.7, 0.45)], _darker(colour, 0.5))  # mane


def dog(p: Painter, colour: Colour, rng: np.random.Generator) -> None:
    """Medium legs, a short neck, a round head with a snout and a floppy ear."""
    _quadruped(p, colour, legs=0.35, neck=0.25, head=(0.74, 0.1, 0.94, 0.36), tail=0.25)
    p.ellipse(0.88, 0.2, 1.0, 0.32, _lighter(colour, 30))  # snout
    p.ellipse(0.74, 0.12, 0.8, 0.36, _darker(colour, 0.6))  # ear


def cat(p: Painter, colour: Colour, rng: np.random.Generator) -> None:
    """Short legs, a round head with pointed ears and a long raised tail."""
    _quadruped(p, colour, legs=0.25, neck=0.15, head=(0.72, 0.18, 0.96, 0.46), tail=-0.4)
    p.polygon([(0.73, 0.24), (0.76, 0.08), (0.82, 0.2)], colour)
    p.polygon([(0.86, 0.2), (0.92, 0.08), (0.95, 0.26)], colour)
    p.ellipse(0.86, 0.26, 0.89, 0.3, (60, 160, 60))  # eye


DRAWERS: dict[str, Callable[[Painter, Colour, np.random.Generator], None]] = {
    "aeroplane": aeroplane,
    "bird": bird,
    "boat": boat,
    "car": car,
    "cat": cat,
    "dog": dog,
    "horse": horse,
}
