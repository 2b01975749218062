"""A video diffusion transformer (DiT) with full space-time attention (lessons 07-09).

A clip (B, C, T, H, W) is cut into *tubelets* of ``tubelet`` frames × ``patch`` × ``patch`` pixels;
each becomes one token by a linear map, as in Latte and Open-Sora. With ``tubelet = T`` a token holds
one place of the whole clip: every frame of the clip is drawn by the same token, so the frames agree
by construction, and the tokens attend to each other over space.

Blocks follow DiT (Peebles & Xie 2023): LayerNorm without affine, then shift, scale and a gate from
the timestep embedding (adaLN-Zero), gates at zero so each block starts as the identity:

.. math:: h \\leftarrow h + g_1 \\odot \\mathrm{Attn}\\bigl(\\mathrm{LN}(h)(1 + a_1) + b_1\\bigr), \\qquad
          h \\leftarrow h + g_2 \\odot \\mathrm{MLP}\\bigl(\\mathrm{LN}(h)(1 + a_2) + b_2\\bigr)

Positions: learned factorised embeddings (time + row + column) added to the tokens, and rotary
embeddings (RoPE, Su et al. 2021) on queries and keys, the head's channels split between t, y and x.

``VideoDiT(...)(x, t)`` with t (B,) in [0, 1] returns a tensor shaped like x: a flow-matching
velocity (:mod:`vdlearn.diffusion.flow_matching`). ``cond_channels`` > 0 adds channels that are
concatenated to x before patching (known frames and their mask, for prediction).

``num_classes`` > 0 makes it class-conditional, as DiT is: ``model(x, t, cond, y)`` adds a learned
embedding of label ``y`` (B,) to the timestep embedding that drives every adaLN, so the label reaches
every token of every frame. Label ``num_classes`` is the *null* label of classifier-free guidance
(:mod:`vdlearn.diffusion.guidance`), used when ``y`` is omitted.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .embeddings import timestep_embedding

__all__ = ["VideoDiT", "DiTBlock", "rope_angles", "apply_rope"]


def rope_angles(n: int, dim: int, base: float = 100.0) -> torch.Tensor:
    """Angles (n, dim/2) of positions 0..n-1 for a rotary embedding of ``dim`` channels:
    angle[p, i] = p · base^(-2i/dim)."""
    inv = base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    return torch.arange(n, dtype=torch.float32)[:, None] * inv[None]


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (x_2i, x_2i+1) of x (..., N, d) by angles (N, d/2)."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    cos, sin = angles.cos(), angles.sin()
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


class DiTBlock(nn.Module):
    """Attention and MLP, each wrapped in adaLN-Zero conditioning on c (B, dim)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        b1, a1, g1, b2, a2, g2 = self.ada(c).unsqueeze(1).chunk(6, dim=-1)
        h = self.norm1(x) * (1 + a1) + b1
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        x = x + g1 * self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))
        return x + g2 * self.mlp(self.norm2(x) * (1 + a2) + b2)


class VideoDiT(nn.Module):
    """Full space-time attention over tubelet tokens; x (B, C, T, H, W), t (B,) in [0, 1] -> like x."""

    def __init__(self, in_channels: int = 4, frames: int = 8, size: int = 8, patch: int = 1, tubelet: int = 8,
                 dim: int = 96, depth: int = 6, heads: int = 4, mlp_ratio: float = 4.0, cond_channels: int = 0,
                 num_classes: int = 0):
        super().__init__()
        if frames % tubelet or size % patch:
            raise ValueError(f"frames ({frames}) must be divisible by tubelet ({tubelet}) and size ({size}) by "
                             f"patch ({patch})")
        if dim % heads or (dim // heads) % 2:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads}) into an even head size")
        if int(num_classes) != num_classes or num_classes < 0:
            raise ValueError(f"num_classes must be an int >= 0 (0: unconditional), got {num_classes!r}")
        self.in_channels, self.cond_channels = in_channels, cond_channels
        self.num_classes = int(num_classes)
        self.null_label = self.num_classes if num_classes else None
        self.frames, self.size, self.patch, self.tubelet = frames, size, patch, tubelet
        self.grid_t, self.grid_s = frames // tubelet, size // patch
        token = tubelet * patch * patch
        self.embed = nn.Linear((in_channels + cond_channels) * token, dim)
        self.pos_t = nn.Parameter(0.02 * torch.randn(self.grid_t, 1, 1, dim))
        self.pos_y = nn.Parameter(0.02 * torch.randn(1, self.grid_s, 1, dim))
        self.pos_x = nn.Parameter(0.02 * torch.randn(1, 1, self.grid_s, dim))
        self.t_embed = nn.Sequential(nn.Linear(256, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.label_embed = nn.Embedding(num_classes + 1, dim) if num_classes else None
        if self.label_embed is not None:
            nn.init.normal_(self.label_embed.weight, std=0.02)
        self.blocks = nn.ModuleList([DiTBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.out = nn.Linear(dim, in_channels * token)
        for layer in (self.ada_out[1], self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        head = dim // heads                      # a quarter of each head for time, the rest for y and x
        d_t = (head // 4) // 2 * 2
        d_y = ((head - d_t) // 2) // 2 * 2
        d_x = head - d_t - d_y
        gt, gs = self.grid_t, self.grid_s
        a_t, a_y, a_x = rope_angles(gt, d_t), rope_angles(gs, d_y), rope_angles(gs, d_x)
        grid = torch.cat([a_t[:, None, None].expand(-1, gs, gs, -1), a_y[None, :, None].expand(gt, -1, gs, -1),
                          a_x[None, None, :].expand(gt, gs, -1, -1)], dim=-1)
        self.register_buffer("rope", grid.reshape(-1, head // 2), persistent=False)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, tokens, C·tubelet·patch²), tokens ordered (t, y, x)."""
        b, c, t, h, w = x.shape
        pt, p = self.tubelet, self.patch
        x = x.reshape(b, c, t // pt, pt, h // p, p, w // p, p).permute(0, 2, 4, 6, 1, 3, 5, 7)
        return x.reshape(b, (t // pt) * (h // p) * (w // p), c * pt * p * p)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`patchify` for ``in_channels`` channels."""
        pt, p, c, gs = self.tubelet, self.patch, self.in_channels, self.grid_s
        x = x.reshape(x.shape[0], self.grid_t, gs, gs, c, pt, p, p).permute(0, 4, 1, 5, 2, 6, 3, 7)
        return x.reshape(x.shape[0], c, self.frames, self.size, self.size)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None,
                y: torch.Tensor | None = None) -> torch.Tensor:
        expected = (self.in_channels, self.frames, self.size, self.size)
        if x.ndim != 5 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"VideoDiT expects clips (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        if (cond is None) != (self.cond_channels == 0):
            raise ValueError(f"this VideoDiT was built with cond_channels={self.cond_channels}: pass cond "
                             f"(B, {self.cond_channels}, T, H, W) exactly when cond_channels > 0")
        if y is not None and self.label_embed is None:
            raise ValueError("labels y were given but this VideoDiT is unconditional; build it with "
                             "num_classes=... to condition on a class")
        if y is not None and (y.shape != (x.shape[0],) or (y.device.type == "cpu" and y.numel() and (
                y.min() < 0 or y.max() > self.num_classes))):
            raise ValueError(f"y must be ({x.shape[0]},) labels in [0, {self.num_classes}] ({self.num_classes} "
                             f"is the null label), got shape {tuple(y.shape)}")
        if cond is not None:
            x = torch.cat([x, cond.to(x.dtype)], dim=1)
        h = self.embed(self.patchify(x)) + (self.pos_t + self.pos_y + self.pos_x).reshape(1, -1, self.pos_t.shape[-1])
        c = self.t_embed(timestep_embedding(torch.as_tensor(t, device=x.device).expand(x.shape[0]) * 1000, 256))
        if self.label_embed is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.null_label, device=x.device, dtype=torch.long)
            c = c + self.label_embed(y)
        for block in self.blocks:
            h = block(h, c, self.rope)
        shift, scale = self.ada_out(c).unsqueeze(1).chunk(2, dim=-1)
        return self.unpatchify(self.out(self.norm(h) * (1 + scale) + shift))
