"""A small time-conditioned MLP denoiser for 2-D toy data (lesson 05).

Each hidden layer adds the timestep embedding before its activation (a "FiLM-lite"):

.. math:: h_{k+1} = \\mathrm{SiLU}\\bigl(W_k h_k + b_k + U_k\\,\\mathrm{emb}(t)\\bigr)
"""
from __future__ import annotations

import torch
from torch import nn

from .embeddings import TimestepEmbedding

__all__ = ["DenoisingMLP"]


class DenoisingMLP(nn.Module):
    """``DenoisingMLP(dim)(x, t)`` -> prediction (B, dim) for points x (B, dim) at timesteps t (B,)."""

    def __init__(self, dim: int = 2, hidden: int = 128, num_layers: int = 3, emb_dim: int = 64):
        super().__init__()
        self.dim = dim
        self.time_embed = TimestepEmbedding(emb_dim)
        self.inp = nn.Linear(dim, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(num_layers - 1))
        self.emb = nn.ModuleList(nn.Linear(emb_dim, hidden) for _ in range(num_layers))
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"DenoisingMLP expects points (B, {self.dim}), got {tuple(x.shape)}")
        e = self.time_embed(torch.as_tensor(t, device=x.device).expand(x.shape[0]))
        h = nn.functional.silu(self.inp(x) + self.emb[0](e))
        for layer, emb in zip(self.layers, self.emb[1:]):
            h = nn.functional.silu(layer(h) + emb(e))
        return self.out(h)
