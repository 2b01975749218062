"""A U-Net that predicts noise from a noisy image, a timestep and optionally a class (lesson 06).

The architecture of DDPM / improved-diffusion, kept small: an input convolution, then per level
``num_res_blocks`` :class:`~vdlearn.nn.blocks.TimestepResBlock` (with self-attention at the levels in
``attention_levels``) and a downsampling; a middle of ResBlock-attention-ResBlock; the mirror path
up with skip connections from the way down; GroupNorm, SiLU and a zero-initialised output
convolution. The time embedding (plus a learned class embedding when ``num_classes`` is set) feeds
every ResBlock. Class ``num_classes`` is the *null* label of classifier-free guidance.

Fast on a GPU: attention through ``F.scaled_dot_product_attention``; :func:`prepare_model` puts the
weights in ``channels_last`` memory format (the layout of tensor-core convolutions) and optionally
compiles the model; :func:`vdlearn.runtime.autocast` runs it in bf16.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .attention import SpatialSelfAttention
from .blocks import Downsample, TimestepResBlock, Upsample, group_norm, zero_module
from .embeddings import TimestepEmbedding

__all__ = ["UNet2D", "prepare_model", "count_parameters"]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class UNet2D(nn.Module):
    """``UNet2D(in_channels, base_channels, channel_mults, ...)(x, t, y=None)`` -> a tensor shaped like x.

    - ``base_channels`` × ``channel_mults[i]`` channels at level i (resolution divided by 2**i);
    - ``num_res_blocks`` ResBlocks per level on the way down (one more on the way up);
    - ``attention_levels``: the levels with self-attention (the middle always has it);
    - ``num_classes``: class-conditional with labels ``y`` in [0, num_classes) and the null label
      ``num_classes`` (also used when ``y`` is None).
    """

    def __init__(self, in_channels: int = 1, out_channels: int | None = None, base_channels: int = 64,
                 channel_mults: Sequence[int] = (1, 2, 2), num_res_blocks: int = 2,
                 attention_levels: Sequence[int] = (2,), num_heads: int = 4,
                 num_classes: int | None = None, dropout: float = 0.0):
        super().__init__()
        if not channel_mults:
            raise ValueError("channel_mults needs at least one level, e.g. (1, 2, 2)")
        for name, value in (("in_channels", in_channels), ("base_channels", base_channels),
                            ("num_res_blocks", num_res_blocks), ("num_heads", num_heads)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r} (e.g. base_channels=64)")
        if any(not isinstance(m, int) or m < 1 for m in channel_mults):
            raise ValueError(f"channel_mults must be positive ints, one per level, e.g. (1, 2, 2); got {tuple(channel_mults)}")
        bad = [lvl for lvl in attention_levels if not 0 <= lvl < len(channel_mults)]
        if bad:
            raise ValueError(f"attention_levels {bad} do not exist; levels are 0..{len(channel_mults) - 1}")
        self.in_channels = in_channels
        self.out_channels = out_channels or in_channels
        self.num_classes = num_classes
        self.null_label = num_classes
        self.num_levels = len(channel_mults)
        emb_dim = 4 * base_channels

        self.time_embed = TimestepEmbedding(emb_dim, base_channels)
        self.label_embed = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        self.input_conv = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        # the way down: remember the width of every skip connection
        self.down = nn.ModuleList()
        skips, ch = [base_channels], base_channels
        for level, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                self.down.append(self._block(ch, base_channels * mult, emb_dim, dropout,
                                             level in attention_levels, num_heads))
                ch = base_channels * mult
                skips.append(ch)
            if level < self.num_levels - 1:
                self.down.append(Downsample(ch))
                skips.append(ch)

        self.mid = nn.ModuleList([TimestepResBlock(ch, ch, emb_dim, dropout), SpatialSelfAttention(ch, num_heads),
                                  TimestepResBlock(ch, ch, emb_dim, dropout)])

        # the way up: each block eats one skip connection
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mults))):
            for i in range(num_res_blocks + 1):
                self.up.append(self._block(ch + skips.pop(), base_channels * mult, emb_dim, dropout,
                                           level in attention_levels, num_heads))
                ch = base_channels * mult
            if level > 0:
                self.up.append(Upsample(ch))

        self.out = nn.Sequential(group_norm(ch), nn.SiLU(),
                                 zero_module(nn.Conv2d(ch, self.out_channels, 3, padding=1)))

    @staticmethod
    def _block(cin: int, cout: int, emb_dim: int, dropout: float, attention: bool,
               num_heads: int) -> nn.ModuleList:
        layers = [TimestepResBlock(cin, cout, emb_dim, dropout)]
        if attention:
            layers.append(SpatialSelfAttention(cout, num_heads))
        return nn.ModuleList(layers)

    def _check(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet2D expects images (B, {self.in_channels}, H, W), got shape "
                             f"{tuple(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape ({x.shape[0]},), one timestep per image; got "
                             f"{tuple(t.shape)}")
        if y is not None:
            if self.num_classes is None:
                raise ValueError("labels y were given but this UNet2D is unconditional; build it "
                                 "with num_classes=... to condition on a class")
            if y.shape != (x.shape[0],):
                raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
            if y.device.type == "cpu" and y.numel() and not torch.compiler.is_compiling() and (
                    y.min() < 0 or y.max() > self.num_classes):
                raise ValueError(f"labels must lie in [0, {self.num_classes}] ({self.num_classes} is "
                                 f"the null label), got {y.min().item()}..{y.max().item()}")

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        self._check(x, t, y)
        emb = self.time_embed(t)
        if self.label_embed is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.null_label, device=x.device, dtype=torch.long)
            emb = emb + self.label_embed(y)

        h = self.input_conv(x)
        hs = [h]
        for layer in self.down:
            h = layer(h) if isinstance(layer, Downsample) else self._run(layer, h, emb)
            hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, emb)), emb)
        for layer in self.up:
            if isinstance(layer, Upsample):
                h = layer(h, size=hs[-1].shape[-2:])
            else:
                h = self._run(layer, torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)

    @staticmethod
    def _run(block: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = block[0](h, emb)
        for attn in block[1:]:
            h = attn(h)
        return h


def prepare_model(model: nn.Module, device: torch.device | str, *, channels_last: bool | None = None,
                  compile: bool = False) -> nn.Module:
    """Move ``model`` to ``device`` and make it fast there.

    ``channels_last`` (default: on CUDA) stores conv weights as NHWC, the layout tensor-core
    convolutions use; inputs in NCHW still work (PyTorch converts), and are fastest passed as
    ``x.contiguous(memory_format=torch.channels_last)``. ``compile=True`` returns
    ``torch.compile(model)`` on CUDA and the model unchanged elsewhere (compiling on a CPU costs
    more time than a short lesson saves). Use bf16 with ``with vdlearn.runtime.autocast(device):``.
    """
    device = torch.device(device)
    model = model.to(device)
    if channels_last is None:
        channels_last = device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile and device.type == "cuda":
        return torch.compile(model)
    return model

