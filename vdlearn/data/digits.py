"""Handwritten digits that need no download, and Moving-MNIST-style clips made from them.

Why this source: the course must run offline (Colab without Drive, a laptop on a train, CI), and MNIST
needs a download. scikit-learn ships, inside its wheel, 1797 real handwritten digits (the test part
of the UCI "optical recognition of handwritten digits" set) as 8x8 images with 17 grey levels.
They are real handwriting, just coarse. We bring them to MNIST's look:

1. bicubic upsampling to 80x80, then a steep sigmoid ``sigmoid(20 (x - 0.45))`` that turns the
   blurry blobs into strokes with crisp edges (a pen, not a smudge);
2. area downsampling to 20x20 (anti-aliased edges, as MNIST's), centred in a 28x28 black canvas --
   MNIST's layout: a 20x20 box, white strokes on black;
3. a random affine "jitter" per item (rotation, scale, shear, translation), so the 1437 training
   digits become as many distinct images as you ask for.

The last 20% of scikit-learn's digits are held out: ``train=False`` only ever shows those (other
samples, though possibly by the same writers).
``source="mnist"`` uses the real MNIST through torchvision instead (a download; fails fast, with a
message naming ``source="offline"``, when there is no network).

All geometry is one batched ``F.grid_sample``: the jitter and the placement on the canvas are a single
affine map per (item, frame). Items are pure functions of ``(seed, index)``.
"""
from __future__ import annotations

import functools
import math
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .shapes import _check_index, _check_indices, _item_uniforms, _speed_range, _velocities, bounce

__all__ = ["DIGIT_SOURCES", "load_digit_source", "DigitImages", "MovingDigits"]

#: Where digits can come from.
DIGIT_SOURCES = ("offline", "mnist")

_TEST_FRACTION = 0.2


@functools.lru_cache(maxsize=2)
def _offline_digits(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits made MNIST-like: images (N, 1, 28, 28) in [0, 1], labels (N,)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    up = F.interpolate(x, size=(80, 80), mode="bicubic", align_corners=False).clamp(0, 1)
    low, high = torch.sigmoid(torch.tensor(-0.45 * 20)), torch.sigmoid(torch.tensor(0.55 * 20))
    strokes = ((torch.sigmoid(20 * (up - 0.45)) - low) / (high - low)).clamp(0, 1)
    digits = F.pad(F.interpolate(strokes, size=(20, 20), mode="area"), (4, 4, 4, 4))
    split = int(round(len(y) * (1 - _TEST_FRACTION)))
    return (digits[:split], y[:split]) if train else (digits[split:], y[split:])


def _mnist_root(root) -> Path:
    if root is not None:
        return Path(root)
    from vdlearn.runtime import cache_dir

    return Path(cache_dir()) / "mnist"


def _can_reach(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """True when a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


@functools.lru_cache(maxsize=4)
def _mnist_digits(train: bool, root: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST through torchvision (downloaded into ``root`` once): images (N, 1, 28, 28) in [0, 1], labels."""
    from torchvision.datasets import MNIST

    try:
        ds = MNIST(root, train=train, download=False)  # already downloaded
    except RuntimeError:
        host = urlparse(MNIST.mirrors[0]).hostname
        hint = ('use the bundled handwritten digits instead: source="offline" '
                "(no download needed), or put the MNIST files in root= yourself")
        if not _can_reach(host):
            raise RuntimeError(
                f"MNIST could not be downloaded: {host} cannot be reached (no network?); {hint}"
            ) from None
        try:
            ds = MNIST(root, train=train, download=True)
        except Exception as err:  # torchvision raises several kinds on network failures
            raise RuntimeError(f"MNIST could not be downloaded into {root!r}: {err}; {hint}") from err
    return ds.data.unsqueeze(1).float() / 255.0, ds.targets.clone()


def load_digit_source(source: str = "offline", train: bool = True, root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """All digits of a source, un-jittered: images (N, 1, 28, 28) in [0, 1] (white on black) and labels (N,)."""
    if source == "offline":
        return _offline_digits(bool(train))
    if source == "mnist":
        return _mnist_digits(bool(train), str(_mnist_root(root)))
    raise ValueError(f"unknown digit source {source!r}; choose from {DIGIT_SOURCES}")


def _jitter(u: torch.Tensor, degrees: float, scale: float, shear: float) -> torch.Tensor:
    """Random 2x2 maps from output to source (normalised coords) built from uniforms u (..., 3).

    A = R(theta) Sh(s) / k,  theta ~ U(+-degrees), s ~ U(+-shear), log k ~ U(+-log scale).
    """
    theta = math.radians(degrees) * (2 * u[..., 0] - 1)
    sh = shear * (2 * u[..., 1] - 1)
    k = torch.exp(math.log(scale) * (2 * u[..., 2] - 1))
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    shear_m = torch.stack([torch.stack([torch.ones_like(sh), sh], -1),
                           torch.stack([torch.zeros_like(sh), torch.ones_like(sh)], -1)], -2)
    return rot @ shear_m / k[..., None, None]


def _place(patches: torch.Tensor, centres: torch.Tensor, size: int, jitter: torch.Tensor) -> torch.Tensor:
    """Draw square patches (N, 1, D, D) with their centres at ``centres`` (N, T, 2) pixels (x, y), after the
    output->source maps ``jitter`` (N, 2, 2), on black canvases: (N, T, size, size).

    In grid_sample's normalised coordinates (align_corners=False) a canvas point u lands on the patch at
    v = A (size/D u + (size - 1 - 2c)/D).
    """
    N, _, D, _ = patches.shape
    T = centres.shape[1]
    A = jitter.to(centres.dtype)[:, None].expand(N, T, 2, 2)
    b = (size - 1 - 2 * centres) / D  # (N, T, 2)
    theta = torch.cat([A * (size / D), (A @ b.unsqueeze(-1))], dim=-1).reshape(N * T, 2, 3).float()
    src = patches.unsqueeze(1).expand(N, T, 1, D, D).reshape(N * T, 1, D, D)
    grid = F.affine_grid(theta, [N * T, 1, size, size], align_corners=False)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(N, T, size, size)


def _resized(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


class DigitImages(Dataset):
    """Handwritten digits: items (image (1, size, size) in [-1, 1], white on black, label int).

    ``source="offline"`` (default): scikit-learn's digits made MNIST-like, each item a random affine
    jitter of one of them (``train=False``: of the held-out 20%); any ``num_images`` is allowed.
    ``source="mnist"``: the first ``num_images`` images of torchvision's MNIST (download into ``root``).
    """

    def __init__(self, num_images: int = 10000, size: int = 28, source: str = "offline", train: bool = True,
                 seed: int = 0, root: str | Path | None = None):
        if int(num_images) != num_images or num_images < 1 or int(size) != size or size < 4:
            raise ValueError(f"num_images must be >= 1 and size >= 4 (integers), got {num_images!r}, {size!r}")
        self.images, self.labels = load_digit_source(source, train, root)
        self.source, self.train, self.seed, self.size = source, bool(train), int(seed), int(size)
        self.num_images = int(num_images) if source == "offline" else min(int(num_images), len(self.labels))
        self.classes = [str(d) for d in range(10)]
        g = torch.Generator().manual_seed(self.seed)
        self._order = torch.randperm(len(self.labels), generator=g) if source == "offline" else None
        self._patches = _resized(self.images, self.size)

    def __len__(self) -> int:
        return self.num_images

    def get_batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 1, size, size) in [-1, 1] and labels (B,) long for ``indices``."""
        idx = _check_indices(indices, len(self), type(self).__name__)
        if self._order is None:  # MNIST: the real images, as they are
            return self._patches[idx] * 2 - 1, self.labels[idx].clone()
        base = self._order[idx % len(self._order)]
        u = _item_uniforms(self.seed, idx, (5,), salt=3)
        jitter = _jitter(u[:, :3], degrees=12.0, scale=1.12, shear=0.2)
        centre = (self.size - 1) / 2 + (2 * u[:, None, 3:5] - 1) * 1.5 * self.size / 28  # +-1.5 px at 28x28
        images = _place(self._patches[base], centre, self.size, jitter)
        return images * 2 - 1, self.labels[base].clone()

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        images, labels = self.get_batch([_check_index(index, "DigitImages")])
        return images[0], int(labels[0])

    def __repr__(self) -> str:
        return (f"DigitImages(num_images={len(self)}, size={self.size}, source={self.source!r}, "
                f"train={self.train}, seed={self.seed})")


class MovingDigits(Dataset):
    """Moving-MNIST-style clips: ``num_digits`` digits bouncing in a ``size`` x ``size`` box, combined
    with a pixel-wise max. Items (1, frames, size, size) in [-1, 1].

    Each digit is a (jittered, for the offline source) ``digit_size`` x ``digit_size`` patch moving at a
    constant speed drawn from ``speed`` (pixels/frame) in a random direction, bouncing off the walls
    (see :func:`vdlearn.data.shapes.bounce`). Its centre stays in [(D - 1)/2, size - 1 - (D - 1)/2],
    D = ``digit_size``, so D must be smaller than ``size``; by default D keeps Moving MNIST's
    proportion, 28 px digits in 64 px frames: ``D = max(4, 7 * size // 16)`` (28 at size 64, 12 at 28).
    With ``return_trajectory=True`` an item is ``(clip, traj)``, ``traj`` (num_digits, frames, 2) the
    patch centres (x, y) in pixels.
    """

    def __init__(self, num_clips: int = 1024, frames: int = 16, size: int = 64, num_digits: int = 2,
                 source: str = "offline", seed: int = 0, digit_size: int | None = None,
                 speed: float | tuple[float, float] = (1.5, 3.5), train: bool = True,
                 return_trajectory: bool = False, root: str | Path | None = None):
        if digit_size is None:
            digit_size = max(4, 7 * int(size) // 16)  # Moving MNIST's 28 px digits in 64 px frames
        for name, value in (("num_clips", num_clips), ("frames", frames), ("size", size),
                            ("num_digits", num_digits), ("digit_size", digit_size)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if digit_size >= size:
            raise ValueError(f"digit_size={digit_size} leaves no room to move in size={size} frames: a digit's "
                             "centre moves between (digit_size - 1)/2 and size - 1 - (digit_size - 1)/2, so digit_size "
                             f"must be smaller than size; use e.g. digit_size={max(1, 7 * int(size) // 16)} (Moving "
                             "MNIST's proportion) or a larger size")
        self.images, self.labels = load_digit_source(source, train, root)
        self.num_clips, self.frames, self.size = int(num_clips), int(frames), int(size)
        self.num_digits = int(num_digits)
        self.digit_size, self.speed, self.source = int(digit_size), _speed_range(speed), source
        self.seed, self.train, self.return_trajectory = int(seed), bool(train), bool(return_trajectory)
        self._patches = _resized(self.images, self.digit_size)

    def __len__(self) -> int:
        return self.num_clips

    def _params(self, indices) -> dict[str, torch.Tensor]:
        idx = _check_indices(indices, len(self), type(self).__name__)
        u = _item_uniforms(self.seed, idx, (self.num_digits, 8), salt=4)
        base = (u[..., 0] * len(self.labels)).long().clamp(max=len(self.labels) - 1)  # (B, D)
        lo, hi = (self.digit_size - 1) / 2, self.size - 1 - (self.digit_size - 1) / 2
        start = lo + (hi - lo) * u[..., 1:3]
        velocity = _velocities(u[..., 3], u[..., 4], self.speed)
        if self.source == "offline":
            jitter = _jitter(u[..., 5:8], degrees=12.0, scale=1.12, shear=0.2)
        else:
            jitter = torch.eye(2, dtype=torch.float64).expand(*base.shape, 2, 2)
        return dict(base=base, start=start, velocity=velocity, jitter=jitter, lo=lo, hi=hi)

    def _trajectories(self, p: dict) -> torch.Tensor:
        t = torch.arange(self.frames, dtype=torch.float64).view(1, 1, -1, 1)
        return bounce(p["start"][:, :, None], p["velocity"][:, :, None], t,
                      torch.tensor(p["lo"], dtype=torch.float64), torch.tensor(p["hi"], dtype=torch.float64))

    def trajectories(self, indices) -> torch.Tensor:
        """Digit centres of clips ``indices``: (B, num_digits, frames, 2) as (x, y) pixels."""
        return self._trajectories(self._params(indices)).float()

    def get_batch(self, indices) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Clips ``indices`` rendered together: (B, 1, T, size, size) (and trajectories if asked)."""
        p = self._params(indices)
        traj = self._trajectories(p)  # (B, D, T, 2)
        B, D, T, _ = traj.shape
        frames = _place(self._patches[p["base"].reshape(-1)], traj.reshape(B * D, T, 2), self.size,
                        p["jitter"].reshape(B * D, 2, 2))
        clips = frames.view(B, D, T, self.size, self.size).amax(dim=1).unsqueeze(1) * 2 - 1
        return (clips, traj.float()) if self.return_trajectory else clips

    def __getitem__(self, index: int):
        batch = self.get_batch([_check_index(index, "MovingDigits")])
        return (batch[0][0], batch[1][0]) if self.return_trajectory else batch[0]

    def clip_labels(self, indices) -> torch.Tensor:
        """The class (0-9) of each digit in clips ``indices``: (B,) for one digit a clip, else
        (B, num_digits) -- what a class-conditional video model is told to draw."""
        y = self.labels[self._params(indices)["base"]].long()
        return y[:, 0] if self.num_digits == 1 else y

    def describe(self, index: int) -> list[dict]:
        """Label, start (x, y) and velocity (vx, vy) px/frame of each digit in clip ``index``."""
        p = self._params([index])
        return [dict(label=int(self.labels[p["base"][0, d]]), start=tuple(p["start"][0, d].tolist()),
                     velocity=tuple(p["velocity"][0, d].tolist())) for d in range(self.num_digits)]

    def __repr__(self) -> str:
        return (f"MovingDigits(num_clips={self.num_clips}, frames={self.frames}, size={self.size}, "
                f"num_digits={self.num_digits}, source={self.source!r}, digit_size={self.digit_size}, "
                f"seed={self.seed})")
