"""Telling a network *when* it is: sinusoidal timestep embeddings (lesson 06).

A denoiser must know the noise level. DDPM feeds the timestep through the Transformer's
sinusoidal encoding (Vaswani et al. 2017, sec. 3.5; Ho et al. 2020, appendix B) and an MLP:

.. math:: \\mathrm{emb}(t)_i = \\cos(t\\,\\omega_i),\\quad \\mathrm{emb}(t)_{i+d/2} = \\sin(t\\,\\omega_i),
          \\qquad \\omega_i = P^{-i/(d/2)},\\ P = 10000,

so nearby timesteps get similar vectors and every scale of t is represented by some frequency.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["timestep_embedding", "TimestepEmbedding"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (B, dim) of timesteps ``t`` (B,) (integers or floats), in float32.

    The first half holds the cosines, the second the sines (a zero column is added for odd ``dim``).
    """
    if dim < 2:
        raise ValueError(f"dim must be at least 2, got {dim}")
    t = torch.as_tensor(t)
    if t.ndim == 0:
        t = t[None]
    if t.ndim != 1:
        raise ValueError(f"t must have shape (B,), got {tuple(t.shape)}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedding(nn.Module):
    """Sinusoid of ``t`` → Linear → SiLU → Linear: the (B, emb_dim) vector every ResBlock receives."""

    def __init__(self, emb_dim: int, freq_dim: int | None = None):
        super().__init__()
        self.freq_dim = freq_dim or emb_dim
        self.mlp = nn.Sequential(nn.Linear(self.freq_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.freq_dim))
