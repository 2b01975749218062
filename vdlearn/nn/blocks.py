"""The building blocks of the course's convolutional networks: residual blocks, the group-norm rule,
down- and upsampling (lessons 02, 06, 09).

:class:`ResBlock` is the plain block of the VAEs. :class:`TimestepResBlock` is a diffusion
U-Net's (improved-diffusion's, with "scale-shift" conditioning, Dhariwal & Nichol 2021, sec. 3):

.. math:: h = \\mathrm{Conv}(\\mathrm{SiLU}(\\mathrm{GN}(x))),\\quad
          h = \\mathrm{GN}(h)\\,(1 + s) + b,\\ (s, b) = \\mathrm{Linear}(\\mathrm{SiLU}(e)),\\quad
          \\mathrm{out} = \\mathrm{skip}(x) + \\mathrm{Conv}(\\mathrm{SiLU}(h))

where e is the time (and class) embedding. The last convolution starts at zero, so every block
starts as the identity and a deep network trains from the first step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["group_norm", "zero_module", "ResBlock", "TimestepResBlock", "Downsample", "Upsample"]


def group_norm(channels: int, max_groups: int = 32, min_group_size: int = 1) -> nn.GroupNorm:
    """GroupNorm with the most groups (at most ``max_groups``) that divide ``channels`` evenly and
    hold at least ``min_group_size`` channels each (the course's one rule; the VAEs ask for 4)."""
    if channels < 1 or max_groups < 1 or min_group_size < 1:
        raise ValueError(f"group_norm needs channels, max_groups and min_group_size >= 1, got "
                         f"{channels}, {max_groups} and {min_group_size}")
    groups = max(g for g in range(1, min(max_groups, channels) + 1)
                 if channels % g == 0 and (channels // g >= min_group_size or g == 1))
    return nn.GroupNorm(groups, channels)


def zero_module(module: nn.Module) -> nn.Module:
    """Set every parameter of ``module`` to zero and return it."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def _as_map(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, C) -> (B, C, 1, 1, ...) to broadcast over the spatial (and temporal) axes of ``like``."""
    return v.reshape(v.shape + (1,) * (like.ndim - 2))


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv3×3, twice, plus a (1×1 when needed) skip connection: no conditioning (the VAEs)."""

    def __init__(self, in_channels: int, out_channels: int, min_group_size: int = 4):
        super().__init__()
        self.block = nn.Sequential(
            group_norm(in_channels, min_group_size=min_group_size), nn.SiLU(),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            group_norm(out_channels, min_group_size=min_group_size), nn.SiLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.block(x)


class TimestepResBlock(nn.Module):
    """A :class:`ResBlock` that listens to the timestep: scale-shift conditioning on an embedding (B, emb_dim)."""

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_channels)
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = (nn.Identity() if in_channels == out_channels
                     else nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb)).chunk(2, dim=1)
        h = self.norm2(h) * (1 + _as_map(scale, h)) + _as_map(shift, h)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Halve the resolution with a stride-2 3×3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling to ``size`` (default: twice as large), then a 3×3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        if size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=size, mode="nearest")
        return self.conv(x)
