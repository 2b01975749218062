"""Procedural, offline datasets of the course: bouncing shapes, handwritten digits, 2-D toys.

Every dataset makes its items from ``(seed, index)`` alone and has a vectorised ``get_batch(indices)``
that returns what stacking the items would. Videos are (C, T, H, W) and images (C, H, W) in [-1, 1].
"""
from .digits import DIGIT_SOURCES, DigitImages, MovingDigits, load_digit_source
from .shapes import PALETTE, SHAPE_KINDS, BouncingShapes, ShapeImages, bounce, render_shapes
from .toy2d import TOY2D_NAMES, Toy2D, mixture_modes, mixture_std, mode_coverage, sample_toy2d

__all__ = [
    "BouncingShapes",
    "ShapeImages",
    "PALETTE",
    "SHAPE_KINDS",
    "bounce",
    "render_shapes",
    "DigitImages",
    "MovingDigits",
    "DIGIT_SOURCES",
    "load_digit_source",
    "Toy2D",
    "TOY2D_NAMES",
    "sample_toy2d",
    "mixture_modes",
    "mixture_std",
    "mode_coverage",
]
