"""Self-attention through ``F.scaled_dot_product_attention`` (lessons 06-07).

.. math:: \\mathrm{Attention}(Q, K, V) = \\mathrm{softmax}\\!\\bigl(QK^\\top/\\sqrt{d}\\bigr)V
          \\qquad (\\text{Vaswani et al. 2017, eq. 1})

:class:`SelfAttention` works on token sequences (B, N, C), so the same layer serves attention over
the pixels of an image (:class:`SpatialSelfAttention`, N = H·W) and, in lesson 07, over the frames
of a video (N = T: :class:`~vdlearn.nn.spacetime_unet.TemporalAttention`, with a relative position
bias). PyTorch picks a fused kernel (FlashAttention or memory-efficient) on a GPU.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import group_norm

__all__ = ["SelfAttention", "SpatialSelfAttention"]


class SelfAttention(nn.Module):
    """Multi-head self-attention over tokens (B, N, C); the output projection starts at zero."""

    def __init__(self, channels: int, num_heads: int = 4):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, C/heads)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class SpatialSelfAttention(nn.Module):
    """Residual self-attention between all H·W positions of a feature map (B, C, H, W)."""

    def __init__(self, channels: int, num_heads: int = 4):
        super().__init__()
        self.norm = group_norm(channels)
        self.attn = SelfAttention(channels, num_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, H*W, C); free for channels_last
        out = self.attn(tokens).transpose(1, 2).reshape(b, c, h, w)
        return x + out
