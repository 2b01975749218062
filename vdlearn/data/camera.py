"""A virtual camera moving through a photograph: clips whose truth is known (lesson 08).

The camera looks at a square window of a larger photograph. Frame pixel :math:`(u, v) \\in [-1, 1]^2`
(pixel centres, x to the right, y down) of frame :math:`t` shows photograph point

.. math:: p_t(u, v) = c_t + h_t\\, R(\\theta_t) \\begin{pmatrix} u \\\\ v \\end{pmatrix},

with :math:`c_t` the window's centre and :math:`h_t` its half-width, both in photograph pixels, and
:math:`R(\\theta_t)` a rotation. Frames are drawn by bilinear resampling (``grid_sample``), so motion
is sub-pixel, from a copy of the photograph shrunk with antialiasing to about the window's scale.

A **camera motion** is one of :data:`CAMERA_MOTIONS`, with fixed strengths (:data:`PAN_SPEED`
frame pixels a frame for pans, :data:`ZOOM_RATE` for zooms), so that a motion name says everything
about the path:

- ``pan_right``: :math:`c_{t+1} = c_t + \\tfrac{2 h}{S} s\\,(1, 0)`: the camera moves right, so the
  content moves *left* by :math:`s` pixels a frame (S the frame size), and new content comes in at
  the right edge; ``pan_left``, ``pan_up``, ``pan_down`` alike;
- ``zoom_in``: :math:`h_{t+1} = h_t (1 - r)`: the content grows about the centre; ``zoom_out``:
  :math:`h_{t+1} = h_t / (1 - r)`, new content comes in at every edge;
- ``static``: the camera does not move.

Every window of a clip lies inside the photograph, so what comes into view is the real photograph
beyond the first frame's crop: the truth an image-to-video model's invention is scored against.
:func:`warp_from_first` maps each frame's pixels to the first frame's (for the Ken Burns baselines
and the metrics), and its ``visible`` mask says which pixels the first frame shows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .photos import load_photo

__all__ = ["CAMERA_MOTIONS", "PAN_SPEED", "ZOOM_RATE", "CameraPath", "camera_path", "shrink_factor", "photo_points",
           "render_path", "warp_from_first", "motion_warp", "CameraClips"]

CAMERA_MOTIONS = ("pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out", "static")
#: Frame pixels a frame that a pan moves the content, at frame size 64 (scaled with the size).
PAN_SPEED = 2.0
#: The fraction by which a zoom shrinks (in) or grows (out) the window each frame.
ZOOM_RATE = 0.04
_PAN = {"pan_left": (-1, 0), "pan_right": (1, 0), "pan_up": (0, -1), "pan_down": (0, 1)}


@dataclass
class CameraPath:
    """The windows of B clips of T frames: ``centre`` (B, T, 2) as (x, y), ``half`` (B, T) and ``angle`` (B, T)
    radians, in pixels of a photograph of ``photo_size`` (H, W)."""

    centre: torch.Tensor
    half: torch.Tensor
    angle: torch.Tensor
    photo_size: tuple[int, int]

    def corners(self) -> torch.Tensor:
        """(B, T, 4, 2): the photograph points of each window's corners."""
        uv = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=self.centre.dtype)
        cos, sin = self.angle.cos()[..., None], self.angle.sin()[..., None]
        x = cos * uv[:, 0] - sin * uv[:, 1]
        y = sin * uv[:, 0] + cos * uv[:, 1]
        return self.centre[:, :, None] + self.half[..., None, None] * torch.stack([x, y], -1)

    def inside(self) -> torch.Tensor:
        """(B,) bool: every window of the clip lies inside the photograph."""
        c = self.corners()
        h, w = self.photo_size
        return ((c[..., 0] >= 0) & (c[..., 0] <= w) & (c[..., 1] >= 0) & (c[..., 1] <= h)).flatten(1).all(1)


def _motion_index(motion: str | int) -> int:
    if isinstance(motion, str):
        if motion not in CAMERA_MOTIONS:
            raise ValueError(f"unknown camera motion {motion!r}; the motions are {', '.join(CAMERA_MOTIONS)}")
        return CAMERA_MOTIONS.index(motion)
    if not 0 <= int(motion) < len(CAMERA_MOTIONS):
        raise ValueError(f"camera motion index {motion} is not in 0..{len(CAMERA_MOTIONS) - 1} ({CAMERA_MOTIONS})")
    return int(motion)


def camera_path(motions: Sequence[str | int] | torch.Tensor, start: torch.Tensor, half: torch.Tensor, frames: int,
                size: int, photo_size: tuple[int, int], angle: torch.Tensor | None = None) -> CameraPath:
    """The path of each clip's window from its first one (``start`` (B, 2) centre, ``half`` (B,)), for motions (B,)."""
    idx = [_motion_index(m) for m in (motions.tolist() if torch.is_tensor(motions) else motions)]
    b = len(idx)
    t = torch.arange(frames, dtype=torch.float64)
    start, half = start.double().view(b, 2), half.double().view(b)
    angle = torch.zeros(b, dtype=torch.float64) if angle is None else angle.double().view(b)
    speed = PAN_SPEED * size / 64                     # frame pixels a frame
    centres, halves = [], []
    for i, m in enumerate(idx):
        name = CAMERA_MOTIONS[m]
        step = torch.tensor(_PAN.get(name, (0, 0)), dtype=torch.float64) * speed * 2 * half[i] / size
        cos, sin = math.cos(angle[i]), math.sin(angle[i])
        step = torch.stack([cos * step[0] - sin * step[1], sin * step[0] + cos * step[1]])   # along the window's axes
        centres.append(start[i] + t[:, None] * step)
        factor = {"zoom_in": 1 - ZOOM_RATE, "zoom_out": 1 / (1 - ZOOM_RATE)}.get(name, 1.0)
        halves.append(half[i] * factor ** t)
    return CameraPath(torch.stack(centres).float(), torch.stack(halves).float(),
                      angle[:, None].expand(b, frames).float(), tuple(photo_size))


def _shrunk(photo: torch.Tensor, factor: float) -> torch.Tensor:
    """The photograph shrunk by ``factor`` <= 1 with antialiasing (so that resampling does not alias)."""
    if factor >= 1:
        return photo
    h, w = photo.shape[-2:]
    return F.interpolate(photo[None], size=(max(round(h * factor), 1), max(round(w * factor), 1)), mode="bilinear",
                         antialias=True, align_corners=False)[0]


def shrink_factor(size: int, half: float) -> float:
    """How much to shrink a photograph before drawing a window of half-width ``half`` at ``size`` pixels:
    the power of :math:`2^{-1/4}` just above ``size / (2 half)`` (at most 1), so that shrunk copies can be
    kept and reused."""
    need = size / (2 * half)
    if need >= 1:
        return 1.0
    return 2 ** (-math.floor(-4 * math.log2(need)) / 4)


def photo_points(path: CameraPath, size: int, clip: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """:math:`p_t(u, v)` of the module docstring: the photograph's x and y (T, S, S) that each pixel of each
    frame of clip ``clip`` shows."""
    u = (torch.arange(size, dtype=torch.float32) * 2 + 1) / size - 1
    vv, uu = torch.meshgrid(u, u, indexing="ij")
    cos, sin = path.angle[clip].cos()[:, None, None], path.angle[clip].sin()[:, None, None]
    half = path.half[clip][:, None, None]
    return (path.centre[clip, :, 0, None, None] + half * (cos * uu - sin * vv),
            path.centre[clip, :, 1, None, None] + half * (sin * uu + cos * vv))


def render_path(photo: torch.Tensor, path: CameraPath, size: int, clip: int = 0,
                small: torch.Tensor | None = None) -> torch.Tensor:
    """Clip ``clip`` of ``path`` seen in ``photo`` (3, H, W): (3, T, size, size) in [-1, 1].

    ``small`` is the photograph already shrunk by :func:`shrink_factor` (to reuse it between clips)."""
    h_p, w_p = photo.shape[-2:]
    if (h_p, w_p) != tuple(path.photo_size):
        raise ValueError(f"the path was made for a photograph of {path.photo_size}, got {(h_p, w_p)}")
    if small is None:
        small = _shrunk(photo, shrink_factor(size, float(path.half[clip].min())))
    sy, sx = small.shape[-2] / h_p, small.shape[-1] / w_p
    x, y = photo_points(path, size, clip)
    grid = torch.stack([2 * x * sx / small.shape[-1] - 1, 2 * y * sy / small.shape[-2] - 1], -1)   # (T, S, S, 2)
    frames = F.grid_sample(small[None].expand(len(grid), -1, -1, -1), grid, mode="bilinear",
                           padding_mode="border", align_corners=False)
    return frames.transpose(0, 1).clamp(-1, 1)


def warp_from_first(path: CameraPath, size: int, clip: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each pixel of each frame was in the first frame: ``grid`` (T, S, S, 2) in the first frame's
    [-1, 1] coordinates (for ``grid_sample``), and ``visible`` (T, S, S) bool, True where the first frame
    shows that point of the photograph (the rest is *revealed* by the camera's motion)."""
    x, y = photo_points(path, size, clip)
    x, y = x - path.centre[clip, 0, 0], y - path.centre[clip, 0, 1]
    c0, s0, h0 = path.angle[clip, 0].cos(), path.angle[clip, 0].sin(), path.half[clip, 0]
    grid = torch.stack([(c0 * x + s0 * y) / h0, (-s0 * x + c0 * y) / h0], -1)
    edge = 1 - 1 / size                                # the outermost pixel centres of the first frame
    visible = (grid.abs() <= edge + 1e-4).all(-1)
    return grid, visible


@lru_cache(maxsize=64)
def motion_warp(motion: int, frames: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`warp_from_first` of camera motion ``motion`` (an index into :data:`CAMERA_MOTIONS`) on frames of
    ``size`` pixels (or latents): the same for every photograph, since the motions are fixed."""
    path = camera_path([motion], torch.zeros(1, 2), torch.tensor([size / 2]), frames, size, (size, size))
    return warp_from_first(path, size)


class CameraClips(Dataset):
    """Clips of a virtual camera moving through photographs: items ``(clip (3, T, S, S), motion)``.

    ``photos``: names of bundled photographs (default: the training split,
    :data:`vdlearn.data.photos.TRAIN_PHOTOS`) or (3, H, W) tensors in [-1, 1]. Each clip draws a
    photograph, a motion of ``motions`` (default all of :data:`CAMERA_MOTIONS`), a window whose half-width
    is a fraction ``scale`` of the photograph's shorter side, a position such that the whole path stays
    inside, and (``max_angle`` degrees) a small rotation of the camera. ``motion`` indexes
    :data:`CAMERA_MOTIONS`. Everything comes from ``(seed, index)``.
    """

    def __init__(self, num_clips: int = 1024, frames: int = 8, size: int = 64,
                 photos: Sequence[str | torch.Tensor] | None = None, motions: Sequence[str] = CAMERA_MOTIONS,
                 scale: tuple[float, float] = (0.15, 0.35), max_angle: float = 5.0, seed: int = 0):
        from .photos import TRAIN_PHOTOS
        photos = TRAIN_PHOTOS if photos is None else photos
        if not photos:
            raise ValueError("CameraClips needs at least one photograph")
        self.photos = [load_photo(p) if isinstance(p, str) else _check_photo(p) for p in photos]
        self.photo_names = [p if isinstance(p, str) else f"photo {i}" for i, p in enumerate(photos)]
        self.motions = tuple(CAMERA_MOTIONS[_motion_index(m)] for m in motions)
        if not 0 < scale[0] <= scale[1] < 0.5:
            raise ValueError(f"scale is a (low, high) fraction of the photograph's shorter side in (0, 0.5), got {scale}")
        self.num_clips, self.frames, self.size = int(num_clips), int(frames), int(size)
        self.scale, self.max_angle, self.seed = tuple(scale), float(max_angle), int(seed)
        self._shrunk: dict[tuple[int, float], torch.Tensor] = {}     # shrunk copies of the photographs
        for p in self.photos:
            if min(p.shape[-2:]) < size:
                raise ValueError(f"a photograph of {tuple(p.shape[-2:])} pixels is smaller than the frame size {size}")

    def __len__(self) -> int:
        return self.num_clips

    def path(self, index: int) -> tuple[int, int, CameraPath]:
        """(photograph index, motion index, path) of clip ``index``."""
        if not 0 <= index < self.num_clips:
            raise IndexError(f"clip {index} is out of range for {self.num_clips} clips")
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        u = torch.rand(6, generator=g, dtype=torch.float64)
        photo = int(u[0] * len(self.photos)) % len(self.photos)
        motion = CAMERA_MOTIONS.index(self.motions[int(u[1] * len(self.motions)) % len(self.motions)])
        h, w = self.photos[photo].shape[-2:]
        half = (self.scale[0] + (self.scale[1] - self.scale[0]) * u[2]) * min(h, w)
        angle = math.radians(self.max_angle) * (2 * u[3] - 1)
        for shrink in (1.0, 0.8, 0.64, 0.5, 0.4, 0.3):     # a smaller window when the path does not fit
            centre0 = torch.tensor([[w / 2, h / 2]], dtype=torch.float64)
            trial = camera_path([motion], centre0, torch.tensor([half * shrink]), self.frames, self.size,
                                (h, w), torch.tensor([angle]))
            corners = (trial.corners()[0].reshape(-1, 2).double() - centre0).numpy()
            lo = -corners.min(0)                 # how far the path reaches left/up and right/down of its start
            hi = np.array([w, h]) - corners.max(0)
            if (hi >= lo).all():
                start = torch.from_numpy(lo + (hi - lo) * u[4:6].numpy())
                path = camera_path([motion], start[None], torch.tensor([half * shrink]), self.frames, self.size,
                                   (h, w), torch.tensor([angle]))
                return photo, motion, path
        raise ValueError(f"photograph {self.photo_names[photo]} is too small for a {self.frames}-frame "
                         f"{CAMERA_MOTIONS[motion]}; use fewer frames or a smaller scale")

    def _small(self, photo: int, factor: float) -> torch.Tensor:
        key = (photo, factor)
        if key not in self._shrunk:
            self._shrunk[key] = _shrunk(self.photos[photo], factor)
        return self._shrunk[key]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        photo, motion, path = self.path(int(index))
        small = self._small(photo, shrink_factor(self.size, float(path.half[0].min())))
        return render_path(self.photos[photo], path, self.size, small=small), motion

    def get_batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        items = [self[int(i)] for i in indices]
        return torch.stack([c for c, _ in items]), torch.tensor([m for _, m in items])


def _check_photo(photo: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(photo) or photo.ndim != 3 or photo.shape[0] != 3:
        raise ValueError(f"a photograph is a (3, H, W) tensor in [-1, 1] (read a file with "
                         f"vdlearn.videoio.read_image), got {getattr(photo, 'shape', type(photo))}")
    return photo.float()
