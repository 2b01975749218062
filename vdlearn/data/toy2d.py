"""2-D toy distributions: where GANs collapse (lesson 03) and diffusion samplers are drawn (lesson 05).

Each distribution is scaled to roughly unit variance per axis, so one network and one learning rate
fit them all:

* ``gaussian_mixture``: 8 Gaussians (std 0.1) evenly on a circle of radius sqrt(2);
* ``grid``: 25 Gaussians (std 0.05) on a 5x5 grid with spacing 1/sqrt(2);
* ``rings``: 3 concentric circles (radii 0.65, 1.31, 1.96) with Gaussian noise 0.05, equal mass each;
* ``swiss_roll``: the 2-D swiss roll (t cos t, t sin t), t in [1.5 pi, 4.5 pi], centred, divided by 6.8;
* ``moons``: scikit-learn's two interleaving half-moons, centred, divided by 0.7, noise 0.05.

:func:`mode_coverage` measures mode collapse on the two mixtures.
"""
from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

from .shapes import _check_index, _check_indices

__all__ = ["TOY2D_NAMES", "sample_toy2d", "mixture_modes", "mixture_std", "mode_coverage", "Toy2D"]

#: The names :func:`sample_toy2d` knows.
TOY2D_NAMES = ("gaussian_mixture", "grid", "rings", "swiss_roll", "moons")
_MIXTURES = {"gaussian_mixture": 0.1, "grid": 0.05}  # name -> std of each component
_RING_RADII = (0.655, 1.31, 1.965)


def _check_name(name: str, allowed=TOY2D_NAMES) -> None:
    if name not in allowed:
        raise ValueError(f"unknown 2-D toy distribution {name!r}; choose from {allowed}")


def mixture_modes(name: str) -> torch.Tensor:
    """The K mode centres (K, 2) of a mixture: 8 on a circle for "gaussian_mixture", 25 for "grid"."""
    _check_name(name, tuple(_MIXTURES))
    if name == "gaussian_mixture":
        angle = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
        return math.sqrt(2) * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    ticks = (torch.arange(5, dtype=torch.float32) - 2) / math.sqrt(2)
    return torch.cartesian_prod(ticks, ticks)


def mixture_std(name: str) -> float:
    """The standard deviation of each (isotropic) component of a mixture."""
    _check_name(name, tuple(_MIXTURES))
    return _MIXTURES[name]


def sample_toy2d(name: str, n: int, seed: int | None = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` samples (n, 2) float32 of a 2-D toy distribution (see the module docstring for each).

    ``generator`` wins over ``seed``; ``seed=None`` and no generator uses torch's global generator.
    """
    _check_name(name)
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    g = generator if generator is not None else (torch.Generator().manual_seed(seed) if seed is not None else None)
    n = int(n)
    u = torch.rand(n, generator=g)
    noise = torch.randn(n, 2, generator=g)
    if name in _MIXTURES:
        modes = mixture_modes(name)
        pick = (u * len(modes)).long().clamp(max=len(modes) - 1)
        return modes[pick] + _MIXTURES[name] * noise
    if name == "rings":
        radius = torch.tensor(_RING_RADII)[(u * 3).long().clamp(max=2)]
        angle = 2 * math.pi * torch.rand(n, generator=g)
        return radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1) + 0.05 * noise
    if name == "swiss_roll":
        t = 1.5 * math.pi * (1 + 2 * u)
        roll = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1)
        return (roll - torch.tensor([2.0, 0.2])) / 6.8 + 0.05 * noise
    angle = math.pi * torch.rand(n, generator=g)  # moons: upper half-circle or the shifted lower one
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    lower = torch.stack([1 - torch.cos(angle), 0.5 - torch.sin(angle)], 1)
    moons = torch.where((u < 0.5)[:, None], upper, lower)
    return (moons - torch.tensor([0.5, 0.25])) / 0.7 + 0.05 * noise


def mode_coverage(samples: torch.Tensor, name: str, max_std: float = 3.0, min_fraction: float = 0.1) -> dict:
    """How many modes of a mixture ``samples`` (N, 2) cover: dict(modes_hit, num_modes, high_quality).

    A sample is *high quality* when it lies within ``max_std`` component stds of its nearest mode
    (``high_quality`` is their fraction). A mode is *hit* when it is the nearest mode of at least
    ``max(1, min_fraction * N / K)`` high-quality samples: 10% of its fair share by default.
    """
    samples = torch.as_tensor(samples).detach().float().cpu()
    if samples.ndim != 2 or samples.shape[1] != 2 or len(samples) == 0:
        raise ValueError(f"samples must be a non-empty (N, 2) tensor, got shape {tuple(samples.shape)}")
    modes = mixture_modes(name)
    dist, nearest = torch.cdist(samples, modes).min(dim=1)
    good = dist <= max_std * mixture_std(name)
    counts = torch.bincount(nearest[good], minlength=len(modes))
    threshold = max(1.0, min_fraction * len(samples) / len(modes))
    return dict(modes_hit=int((counts >= threshold).sum()), num_modes=len(modes),
                high_quality=float(good.float().mean()))


class Toy2D(Dataset):
    """``n`` fixed samples of a 2-D toy distribution as a dataset: items (2,) float32."""

    def __init__(self, name: str = "gaussian_mixture", n: int = 10000, seed: int = 0):
        self.name, self.seed = name, seed
        self.data = sample_toy2d(name, n, seed=seed)

    def __len__(self) -> int:
        return len(self.data)

    def get_batch(self, indices) -> torch.Tensor:
        """Points ``indices`` stacked: (B, 2)."""
        return self.data[_check_indices(indices, len(self), "Toy2D")]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.get_batch([_check_index(index, "Toy2D")])[0]

    def __repr__(self) -> str:
        return f"Toy2D(name={self.name!r}, n={len(self)}, seed={self.seed})"
