"""Bouncing shapes: the course's procedural video dataset (lesson 00 onwards).

Coloured circles, squares and triangles fly across a black canvas at constant velocity and bounce
elastically off the walls. Everything is computed in closed form, so a whole batch of clips is a
few tensor operations:

* motion: a shape starts at ``p0`` with velocity ``v`` (pixels/frame). Without walls it would be at
  ``p0 + v t``; walls at ``lo`` and ``hi`` fold that line back and forth (a triangle wave),

      u = (p0 + v t - lo) mod 2L,   p(t) = lo + L - |u - L|,   L = hi - lo,

  which is exactly an elastic bounce (speed kept, direction reversed) -- see :func:`bounce`;
* rendering: each shape is a signed distance function ``d(x, y)`` (negative inside, in pixels) on
  the pixel grid, and a pixel's coverage ``clamp(0.5 - d, 0, 1)`` anti-aliases the edge.

Pixel ``(row i, column j)`` has its centre at ``(x, y) = (j, i)``; trajectories use the same
coordinates, so ``clip[:, t, round(y), round(x)]`` is the centre of the shape in frame ``t``.

Every clip is a pure function of ``(seed, index)``: its few random parameters come from a generator
seeded with a hash of the two, and the pixels are then batched tensor math.
"""
from __future__ import annotations

import math
import operator
from typing import Sequence

import torch
from torch.utils.data import Dataset

__all__ = [
    "SHAPE_KINDS",
    "PALETTE",
    "COLOR_NAMES",
    "bounce",
    "render_shapes",
    "BouncingShapes",
    "ShapeImages",
]

#: The shapes the renderer knows.
SHAPE_KINDS = ("circle", "square", "triangle")

#: Six distinct saturated colours (RGB in [0, 1]) used when ``colors=None``.
PALETTE = (
    (0.95, 0.20, 0.20),  # red
    (0.20, 0.85, 0.30),  # green
    (0.25, 0.45, 1.00),  # blue
    (1.00, 0.85, 0.10),  # yellow
    (0.90, 0.30, 0.90),  # magenta
    (0.10, 0.85, 0.90),  # cyan
)

#: The names of the :data:`PALETTE` colours.
COLOR_NAMES = dict(zip(PALETTE, ("red", "green", "blue", "yellow", "magenta", "cyan")))

# How far each kind reaches from its centroid, in units of its radius r: (left, right, up, down).
# The square has half-side 0.9 r, the (apex-up, equilateral) triangle has circumradius 1.4 r, so the
# three kinds cover about the same area.
_SQUARE_HALF = 0.9
_TRIANGLE_R = 1.4
_EXTENTS = {
    "circle": (1.0, 1.0, 1.0, 1.0),
    "square": (_SQUARE_HALF,) * 4,
    "triangle": (_TRIANGLE_R * math.sqrt(3) / 2,) * 2 + (_TRIANGLE_R, _TRIANGLE_R / 2),
}


# ---------------------------------------------------------------------------------------------
# helpers shared with digits.py
# ---------------------------------------------------------------------------------------------
def _item_generator(seed: int, index: int, salt: int = 0) -> torch.Generator:
    """A CPU generator for item ``index`` of a dataset seeded ``seed`` (splitmix64 of both)."""
    mask = (1 << 64) - 1
    x = (seed * 0x9E3779B97F4A7C15 + index * 0xD1B54A32D192ED03 + salt * 0x2545F4914F6CDD1D) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    x ^= x >> 31
    return torch.Generator().manual_seed(x & ((1 << 63) - 1))


def _item_uniforms(seed: int, indices: torch.Tensor, shape: tuple[int, ...], salt: int = 0) -> torch.Tensor:
    """Uniform numbers of ``shape`` for each item, stacked: (B, *shape) float64, one generator per item."""
    draws = [torch.rand(shape, generator=_item_generator(seed, int(i), salt), dtype=torch.float64) for i in indices]
    return torch.stack(draws) if draws else torch.empty((0, *shape), dtype=torch.float64)


def _index_error(name: str, what) -> TypeError:
    many = isinstance(what, torch.Tensor) or getattr(what, "ndim", 0) > 0
    shown = f"a {type(what).__name__} of dtype {what.dtype}" if many else f"{what!r} ({type(what).__name__})"
    return TypeError(f"{name} indices must be integers (an int, or for get_batch a list, range, array or tensor "
                     f"of ints), got {shown}; pass int(i) for item i (a float is never rounded, a string never parsed)")


def _check_index(index, name: str) -> int:
    """One item's index as an int: Python, NumPy and torch integers pass; 1.7, "1" and True are a TypeError."""
    if isinstance(index, bool) or (isinstance(index, torch.Tensor) and index.dtype == torch.bool):
        raise _index_error(name, index)
    try:
        return operator.index(index)
    except TypeError:
        raise _index_error(name, index) from None


def _check_indices(indices, length: int, name: str) -> torch.Tensor:
    """Turn an int, list, range, array or tensor of integer indices into a 1-D LongTensor in [0, length);
    negative ones count from the end. Non-integers (floats, strings, bools) are a TypeError, never truncated."""
    if isinstance(indices, (str, bytes)):
        raise _index_error(name, indices)
    try:
        idx = torch.as_tensor(indices)
    except (TypeError, ValueError, RuntimeError):
        raise _index_error(name, indices) from None
    if idx.numel() and (idx.dtype == torch.bool or idx.is_floating_point() or idx.is_complex()):
        raise _index_error(name, indices)
    idx = idx.to(torch.long).reshape(-1)
    bad = (idx < -length) | (idx >= length)
    if bad.any():
        raise IndexError(
            f"index {int(idx[bad][0])} is out of range for {name} of length {length}; "
            f"valid indices are 0..{length - 1} (or -{length}..-1)"
        )
    return torch.where(idx < 0, idx + length, idx)


def _speed_range(speed) -> tuple[float, float]:
    """Validate ``speed`` (a number or a (low, high) pair, pixels/frame)."""
    lo, hi = (speed, speed) if isinstance(speed, (int, float)) else tuple(speed)
    if not 0 <= lo <= hi:
        raise ValueError(f"speed must be a (low, high) pair with 0 <= low <= high (pixels/frame), got {speed!r}")
    return float(lo), float(hi)


def _velocities(u_speed: torch.Tensor, u_angle: torch.Tensor, speed: tuple[float, float]) -> torch.Tensor:
    """Velocities (..., 2) with magnitude uniform in ``speed`` and a uniformly random direction."""
    magnitude = speed[0] + (speed[1] - speed[0]) * u_speed
    angle = 2 * math.pi * u_angle
    return torch.stack([magnitude * torch.cos(angle), magnitude * torch.sin(angle)], dim=-1)


def bounce(p0: torch.Tensor, v: torch.Tensor, t: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Position at times ``t`` of a point bouncing elastically between walls ``lo`` and ``hi``.

    u = (p0 + v t - lo) mod 2L,  p(t) = lo + L - |u - L|,  L = hi - lo   (a triangle wave).
    All arguments broadcast; where ``hi == lo`` the point stays at ``lo``.
    """
    length = hi - lo
    safe = torch.where(length > 0, length, torch.ones_like(length))
    u = torch.remainder(p0 + v * t - lo, 2 * safe)
    return torch.where(length > 0, lo + safe - (u - safe).abs(), lo + 0 * u)


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------
def _signed_distance(kind: int, radius: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Signed distance (pixels, < 0 inside) of a circle / square / triangle (kind 0 / 1 / 2) at offsets (dx, dy)."""
    if kind == 0:
        return torch.sqrt(dx**2 + dy**2) - radius
    if kind == 1:  # distance to the nearest edge line: exact near the edges, which is all anti-aliasing needs
        return torch.maximum(dx.abs(), dy.abs()) - _SQUARE_HALF * radius
    # apex-up equilateral triangle (y points down): the largest distance to its three edge lines
    c, s = math.sqrt(3) / 2, 0.5
    edges = torch.maximum(torch.maximum(dy, c * dx - s * dy), -c * dx - s * dy)
    return edges - _TRIANGLE_R * radius / 2  # the inradius is half the circumradius


def render_shapes(
    kinds: torch.Tensor, colors: torch.Tensor, radius: torch.Tensor, positions: torch.Tensor, size: int
) -> torch.Tensor:
    """Render anti-aliased shapes on black: (B, S) kinds, (B, S, 3) colours in [0, 1], (B, S) radii,
    (B, S, T, 2) centroid positions (x, y) in pixels -> clips (B, 3, T, size, size) in [-1, 1].

    coverage a = clamp(0.5 - d(x, y), 0, 1);  later shapes are painted over earlier ones:
    pixel = sum_k colour_k a_k prod_{j > k} (1 - a_j).
    """
    B, S, T, _ = positions.shape
    grid = torch.arange(size, dtype=torch.float32, device=positions.device)
    alpha = torch.empty(B, S, T, size, size, device=positions.device)
    for kind in range(len(SHAPE_KINDS)):  # each kind drawn for all its shapes at once
        sel = kinds == kind
        if sel.any():
            pos = positions[sel].float()  # (N, T, 2)
            dx = grid.view(1, 1, 1, size) - pos[..., 0, None, None]  # (N, T, 1, W)
            dy = grid.view(1, 1, size, 1) - pos[..., 1, None, None]  # (N, T, H, 1)
            r = radius[sel].float().view(-1, 1, 1, 1)
            alpha[sel] = (0.5 - _signed_distance(kind, r, dx, dy)).clamp(0, 1)
    # what shows of shape k: its coverage times the transparency of the shapes painted above it
    visible, clear = torch.empty_like(alpha), torch.ones_like(alpha[:, 0])
    for k in reversed(range(S)):
        visible[:, k] = alpha[:, k] * clear
        clear = clear * (1 - alpha[:, k])
    canvas = torch.bmm(colors.float().transpose(1, 2), visible.view(B, S, -1))  # (B, 3, T*H*W), on black
    return canvas.view(B, 3, T, size, size) * 2 - 1


# ---------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------
class BouncingShapes(Dataset):
    """Clips of coloured shapes bouncing in a box: items (3, frames, size, size) in [-1, 1].

    ``speed`` is the range of speeds in pixels/frame, ``shape_size`` the radius in pixels (a number or
    a (low, high) range; default about 12-18% of ``size``). ``colors`` is a list of RGB triples in
    [0, 1] (default :data:`PALETTE`). Each shape's kind, colour, radius, start and direction are random.
    With ``return_trajectory=True`` an item is ``(clip, traj)``, ``traj`` (num_shapes, frames, 2) the
    centroids (x, y) = (column, row) in pixels.
    """

    _salt = 1

    def __init__(
        self,
        num_clips: int = 1024,
        frames: int = 16,
        size: int = 32,
        num_shapes: int = 1,
        kinds: Sequence[str] = SHAPE_KINDS,
        colors: Sequence[Sequence[float]] | None = None,
        speed: float | tuple[float, float] = (1.0, 2.5),
        shape_size: float | tuple[float, float] | None = None,
        seed: int = 0,
        return_trajectory: bool = False,
    ):
        if isinstance(kinds, str):
            kinds = (kinds,)
        unknown = [k for k in kinds if k not in SHAPE_KINDS]
        if unknown or not kinds:
            raise ValueError(f"unknown shape kind(s) {unknown or list(kinds)}; choose from {SHAPE_KINDS}")
        colors = PALETTE if colors is None else tuple(tuple(float(v) for v in c) for c in colors)
        if not colors or any(len(c) != 3 or min(c) < 0 or max(c) > 1 for c in colors):
            raise ValueError(f"colors must be a non-empty list of (r, g, b) triples in [0, 1], got {colors!r}")
        for name, value in (("num_clips", num_clips), ("frames", frames), ("size", size), ("num_shapes", num_shapes)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if shape_size is None:
            shape_size = (0.12 * size, 0.18 * size)
        r_lo, r_hi = (shape_size, shape_size) if isinstance(shape_size, (int, float)) else tuple(shape_size)
        if not 0 < r_lo <= r_hi:
            raise ValueError(f"shape_size must be a radius > 0 or a (low, high) range of radii, got {shape_size!r}")
        widest = max(max(e[0] + e[1], e[2] + e[3]) for k, e in _EXTENTS.items() if k in kinds)
        if size < widest * r_hi + 1:
            raise ValueError(
                f"size={size} is too small for shapes of radius up to {r_hi:g} px: they need "
                f"{widest * r_hi + 1:.1f} px (shape plus 1 px to move); use size >= "
                f"{math.ceil(widest * r_hi + 1)} or a smaller shape_size"
            )
        self.num_clips, self.frames, self.size = int(num_clips), int(frames), int(size)
        self.num_shapes = int(num_shapes)
        self.kinds, self.colors = tuple(kinds), colors
        self.speed, self.shape_size = _speed_range(speed), (float(r_lo), float(r_hi))
        self.seed, self.return_trajectory = int(seed), bool(return_trajectory)

    def __len__(self) -> int:
        return self.num_clips

    def _params(self, indices) -> dict[str, torch.Tensor]:
        """The random parameters of the shapes in clips ``indices``, each (B, num_shapes, ...)."""
        idx = _check_indices(indices, len(self), type(self).__name__)
        u = _item_uniforms(self.seed, idx, (self.num_shapes, 7), self._salt)
        kind_ids = (u[..., 0] * len(self.kinds)).long().clamp(max=len(self.kinds) - 1)
        kinds = torch.tensor([SHAPE_KINDS.index(k) for k in self.kinds])[kind_ids]  # index into SHAPE_KINDS
        color_ids = (u[..., 1] * len(self.colors)).long().clamp(max=len(self.colors) - 1)
        radius = self.shape_size[0] + (self.shape_size[1] - self.shape_size[0]) * u[..., 2]
        ext = torch.tensor([_EXTENTS[k] for k in SHAPE_KINDS], dtype=torch.float64)[kinds] * radius[..., None]
        lo = torch.stack([ext[..., 0], ext[..., 2]], -1) - 0.5  # (B, S, 2): walls for x and y
        hi = self.size - 0.5 - torch.stack([ext[..., 1], ext[..., 3]], -1)
        start = lo + (hi - lo) * u[..., 3:5]
        velocity = _velocities(u[..., 5], u[..., 6], self.speed)
        return dict(kinds=kinds, colors=torch.tensor(self.colors)[color_ids], color_ids=color_ids, radius=radius,
                    start=start, velocity=velocity, lo=lo, hi=hi)

    @staticmethod
    def _positions(p: dict[str, torch.Tensor], frames: int) -> torch.Tensor:
        t = torch.arange(frames, dtype=torch.float64).view(1, 1, frames, 1)
        return bounce(p["start"][:, :, None], p["velocity"][:, :, None], t, p["lo"][:, :, None], p["hi"][:, :, None])

    def trajectories(self, indices) -> torch.Tensor:
        """Centroids of every shape in clips ``indices``: (B, num_shapes, frames, 2) as (x, y) pixels."""
        return self._positions(self._params(indices), self.frames).float()

    @property
    def num_classes(self) -> int:
        """How many (kind, colour) classes a shape can be: ``len(kinds) * len(colors)``."""
        return len(self.kinds) * len(self.colors)

    def class_names(self) -> list[str]:
        """The name of each class of :meth:`labels`, e.g. ``"red triangle"`` (colours of :data:`PALETTE`
        by name, others as ``"colour 6"``)."""
        names = [COLOR_NAMES.get(tuple(c), f"colour {i}") for i, c in enumerate(self.colors)]
        return [f"{colour} {kind}" for kind in self.kinds for colour in names]

    def labels(self, indices) -> torch.Tensor:
        """The class of each shape in clips ``indices``: ``kind * len(colors) + colour`` with ``kind``
        indexing ``kinds`` and ``colour`` indexing ``colors``; (B,) for one shape a clip, else (B, num_shapes)."""
        p = self._params(indices)
        kind_ids = torch.tensor([self.kinds.index(SHAPE_KINDS[int(k)]) for k in p["kinds"].flatten()])
        y = kind_ids.view_as(p["kinds"]) * len(self.colors) + p["color_ids"]
        return y[:, 0] if self.num_shapes == 1 else y

    def get_batch(self, indices) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Clips ``indices`` rendered together: (B, 3, T, H, W) (and (B, S, T, 2) trajectories if asked)."""
        p = self._params(indices)
        traj = self._positions(p, self.frames)
        clips = render_shapes(p["kinds"], p["colors"], p["radius"], traj, self.size)
        return (clips, traj.float()) if self.return_trajectory else clips

    def __getitem__(self, index: int):
        batch = self.get_batch([_check_index(index, type(self).__name__)])
        return (batch[0][0], batch[1][0]) if self.return_trajectory else batch[0]

    def describe(self, index: int) -> list[dict]:
        """Kind, colour, radius, start (x, y) and velocity (vx, vy) px/frame of each shape in clip ``index``."""
        p = self._params([index])
        return [
            dict(kind=SHAPE_KINDS[int(p["kinds"][0, s])], color=tuple(p["colors"][0, s].tolist()),
                 radius=float(p["radius"][0, s]), start=tuple(p["start"][0, s].tolist()),
                 velocity=tuple(p["velocity"][0, s].tolist()))
            for s in range(self.num_shapes)
        ]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_clips={self.num_clips}, frames={self.frames}, size={self.size}, "
                f"num_shapes={self.num_shapes}, kinds={self.kinds}, speed={self.speed}, seed={self.seed})")


class ShapeImages(Dataset):
    """Single shapes on black with their kind as label: items (image (3, size, size) in [-1, 1], label).

    ``label`` indexes ``classes`` (= ``kinds``). Same renderer as :class:`BouncingShapes`, one frame.
    """

    def __init__(
        self,
        num_images: int = 4096,
        size: int = 32,
        seed: int = 0,
        kinds: Sequence[str] = SHAPE_KINDS,
        colors: Sequence[Sequence[float]] | None = None,
        shape_size: float | tuple[float, float] | None = None,
    ):
        if shape_size is None:
            shape_size = (0.18 * size, 0.3 * size)
        self._clips = BouncingShapes(num_images, frames=1, size=size, num_shapes=1, kinds=kinds, colors=colors,
                                     speed=0.0, shape_size=shape_size, seed=seed)
        self._clips._salt = 2  # images are not the first frames of the clips with the same seed
        self.classes = list(self._clips.kinds)
        self._label_of = {SHAPE_KINDS.index(k): i for i, k in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self._clips)

    def get_batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 3, H, W) in [-1, 1] and labels (B,) long for ``indices``."""
        p = self._clips._params(indices)
        images = render_shapes(p["kinds"], p["colors"], p["radius"], p["start"][:, :, None], self._clips.size)
        labels = torch.tensor([self._label_of[int(k)] for k in p["kinds"][:, 0]], dtype=torch.long)
        return images[:, :, 0], labels

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        images, labels = self.get_batch([_check_index(index, "ShapeImages")])
        return images[0], int(labels[0])

    def __repr__(self) -> str:
        c = self._clips
        return f"ShapeImages(num_images={len(self)}, size={c.size}, kinds={c.kinds}, seed={c.seed})"
