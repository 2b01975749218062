"""A factorised space-time U-Net for video diffusion (lesson 07).

"Video Diffusion Models" (Ho et al. 2022, sec. 3) turn an image U-Net into a video U-Net by
*factorising* space and time: every 2-D layer runs on all frames at once, as a batch of images
(B·T, C, H, W), and after each block a few layers mix information *across frames only*, at every
pixel position. Here those temporal layers are

- a temporal convolution over 3 neighbouring frames (Make-A-Video's "pseudo-3D" convolution,
  Singer et al. 2022, sec. 3.2):

  .. math:: h_t \\leftarrow h_t + \\sum_{k=-1}^{1} W_k\\,\\mathrm{SiLU}(\\mathrm{GN}(h))_{t+k};

- temporal self-attention over the T frames of each pixel, with a learned *relative position
  bias* :math:`b_{i-j}` per head (Shaw et al. 2018; Ho et al. 2022 use the same):

  .. math:: \\mathrm{Attn}(Q, K, V)_i = \\sum_j \\mathrm{softmax}_j\\!\\Bigl(\\frac{q_i\\cdot k_j}{\\sqrt d} + b_{i-j}\\Bigr) v_j .

Both end in a zero-initialised projection, so a fresh :class:`SpaceTimeUNet` computes *exactly*
its image U-Net applied to every frame; :meth:`SpaceTimeUNet.from_unet2d` starts from a trained
lesson-06 :class:`~vdlearn.nn.unet2d.UNet2D` and the video model learns only how frames relate.
Spatial attention stays at the low resolutions the image model has it; time is never
downsampled, so any number of frames up to ``max_frames`` works.

Joint image-and-video training (Ho et al. 2022, sec. 3.2): clips flagged ``independent`` skip
the temporal layers, so their frames are denoised as unrelated images
(:func:`vdlearn.video.loss.video_diffusion_loss` mixes such stacks of images into a batch of clips).

Fast by construction: no Python loop over frames, attention through
``F.scaled_dot_product_attention``, and the frame axis folded into the batch so channels_last
convolutions, bf16 autocast and ``torch.compile`` (:func:`vdlearn.nn.unet2d.prepare_model`) apply
as for images.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.clips import batch_to_frames, frames_to_batch
from .attention import SpatialSelfAttention
from .blocks import Downsample, Upsample, group_norm
from .unet2d import UNet2D

__all__ = [
    "frames_to_sequences",
    "sequences_to_frames",
    "relative_positions",
    "TemporalConv",
    "TemporalAttention",
    "TemporalLayers",
    "SpaceTimeUNet",
]


# ---------------------------------------------------------------------------------------------
# the reshapes that factorise space and time (frames_to_batch is in vdlearn.data.clips)
# ---------------------------------------------------------------------------------------------
def frames_to_sequences(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(B·T, C, H, W) frames -> (B·H·W, T, C): one sequence over time for every pixel of every clip."""
    bt, c, h, w = x.shape
    return x.unflatten(0, (-1, frames)).permute(0, 3, 4, 1, 2).reshape(-1, frames, c)


def sequences_to_frames(x: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
    """(B·H·W, T, C) -> (B·T, C, H, W): the inverse of :func:`frames_to_sequences`."""
    c = x.shape[-1]
    return x.reshape(-1, height, width, frames, c).permute(0, 3, 4, 1, 2).reshape(-1, c, height, width)


def relative_positions(frames: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) matrix of frame offsets i - j, in [-(T-1), T-1]: the index of the bias :math:`b_{i-j}`."""
    idx = torch.arange(frames, device=device)
    return idx[:, None] - idx[None, :]


# ---------------------------------------------------------------------------------------------
# temporal layers
# ---------------------------------------------------------------------------------------------
class TemporalConv(nn.Module):
    """Residual convolution over ``kernel_size`` neighbouring frames at every pixel; it starts at zero.

    The weight is a :class:`~torch.nn.Conv1d`'s, (C, C, k): a 1-D convolution over time, run as a
    (k, 1, 1) 3-D convolution on (B, C, T, H, W) so that every pixel is done in one call.
    """

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd so every frame has a centre tap, got {kernel_size}")
        self.norm = group_norm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """The temporal update (B·T, C, H, W) of frames x (not yet added to x)."""
        h = batch_to_frames(F.silu(self.norm(x)), frames)  # (B, C, T, H, W): channels_last_3d if x is channels_last
        weight = self.conv.weight[..., None, None]  # (C, C, k, 1, 1)
        out = F.conv3d(h, weight, self.conv.bias, padding=(self.conv.padding[0], 0, 0))
        return frames_to_batch(out)


class TemporalAttention(nn.Module):
    """Multi-head self-attention across the frames at each pixel, with a relative position bias.

    The bias table holds one learned number per head and offset i - j in [-(max_frames-1),
    max_frames-1]; the output projection starts at zero.
    """

    def __init__(self, channels: int, num_heads: int = 4, max_frames: int = 16):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.num_heads, self.max_frames = num_heads, max_frames
        self.norm = group_norm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.position_bias = nn.Parameter(torch.zeros(2 * max_frames - 1, num_heads))
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def bias(self, frames: int, device: torch.device | None = None) -> torch.Tensor:
        """The additive attention bias (heads, T, T): ``bias[h, i, j] = table[i - j, h]``."""
        offsets = relative_positions(frames, device) + self.max_frames - 1
        return self.position_bias[offsets].permute(2, 0, 1)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """The temporal update (B·T, C, H, W) of frames x (not yet added to x)."""
        _, c, h, w = x.shape
        tokens = frames_to_sequences(self.norm(x), frames)  # (N = B·H·W, T, C)
        n = tokens.shape[0]
        q, k, v = self.qkv(tokens).view(n, frames, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        bias = self.bias(frames, x.device).to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (N, heads, T, C/heads)
        out = self.proj(out.transpose(1, 2).reshape(n, frames, c))
        return sequences_to_frames(out, frames, h, w)


class TemporalLayers(nn.Module):
    """The temporal half of a factorised block: ``x + conv_t(x)``, then (optionally) ``x + attn_t(x)``.

    ``keep`` (B·T, 1, 1, 1) multiplies both updates: 0 for frames of clips that are to be treated
    as independent images (joint training), so those frames pass through unchanged.
    """

    def __init__(self, channels: int, num_heads: int, max_frames: int, attention: bool):
        super().__init__()
        self.conv = TemporalConv(channels)
        self.attn = TemporalAttention(channels, num_heads, max_frames) if attention else None

    def forward(self, x: torch.Tensor, frames: int, keep: torch.Tensor | None = None) -> torch.Tensor:
        for layer in (self.conv, self.attn):
            if layer is None:
                continue
            update = layer(x, frames)
            x = x + (update if keep is None else update * keep)
        return x


# ---------------------------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------------------------
def _block_channels(block: nn.Module) -> int:
    """Output width of a UNet2D block: a ResBlock, or a ModuleList [ResBlock, attention...]."""
    resblock = block[0] if isinstance(block, nn.ModuleList) else block
    return resblock.conv2.out_channels


class SpaceTimeUNet(nn.Module):
    """``SpaceTimeUNet(in_channels, ...)(x, t, y=None, independent=None)`` -> a tensor shaped like x.

    ``x`` is a batch of clips (B, C, T, H, W), ``t`` (B,) one diffusion timestep per clip, ``y``
    (B,) class labels for a class-conditional model, ``independent`` (B,) bool: clips whose frames
    are unrelated images (their temporal layers are skipped).

    The spatial layers are a :class:`~vdlearn.nn.unet2d.UNet2D` (attribute ``image``, built from
    the same keyword arguments); a :class:`TemporalLayers` follows each of its ResBlocks (after
    the spatial attention where there is one). ``temporal_attention_levels`` (default: every
    level) says where the temporal layers include attention; ``max_frames`` is the longest clip
    the relative position bias covers. ``patch_size`` p > 1 folds p×p pixel patches into
    channels first (``F.pixel_unshuffle``, as DiT and "simple diffusion" do): the U-Net then runs at
    1/p the resolution, about p² times cheaper, and ``F.pixel_shuffle`` unfolds its output.
    """

    def __init__(self, in_channels: int = 3, out_channels: int | None = None, base_channels: int = 64,
                 channel_mults: Sequence[int] = (1, 2, 2), num_res_blocks: int = 2,
                 attention_levels: Sequence[int] = (2,), num_heads: int = 4,
                 num_classes: int | None = None, dropout: float = 0.0, *, max_frames: int = 16,
                 temporal_attention_levels: Sequence[int] | None = None, patch_size: int = 1):
        super().__init__()
        p2 = patch_size ** 2
        image = UNet2D(in_channels * p2, (out_channels or in_channels) * p2, base_channels, channel_mults,
                       num_res_blocks, attention_levels, num_heads, num_classes, dropout)
        self._add_temporal_layers(image, num_heads, max_frames, temporal_attention_levels, patch_size)

    @classmethod
    def from_unet2d(cls, unet2d: UNet2D, *, max_frames: int = 16,
                    temporal_attention_levels: Sequence[int] | None = None,
                    num_heads: int | None = None, patch_size: int = 1) -> "SpaceTimeUNet":
        """A video U-Net whose spatial layers are a copy of the trained ``unet2d``.

        Its temporal layers start at zero, so until it is trained it denoises every frame as
        ``unet2d`` denoises an image. ``num_heads`` of the temporal attention defaults to the
        image model's; ``patch_size`` must be the one ``unet2d`` was trained with (its inputs
        were ``F.pixel_unshuffle(image, patch_size)``).
        """
        if not isinstance(unet2d, UNet2D):
            raise TypeError(f"from_unet2d needs a vdlearn UNet2D, got {type(unet2d).__name__}")
        if num_heads is None:
            attn = next((m for m in unet2d.modules() if isinstance(m, SpatialSelfAttention)), None)
            num_heads = attn.attn.num_heads if attn is not None else 4
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        device = next(unet2d.parameters()).device
        model._add_temporal_layers(copy.deepcopy(unet2d), num_heads, max_frames, temporal_attention_levels,
                                   patch_size)
        return model.to(device)

    def _add_temporal_layers(self, image: UNet2D, num_heads: int, max_frames: int,
                             temporal_attention_levels: Sequence[int] | None, patch_size: int) -> None:
        if int(max_frames) != max_frames or max_frames < 1:
            raise ValueError(f"max_frames must be a positive integer, got {max_frames!r}")
        p2 = patch_size ** 2
        if int(patch_size) != patch_size or patch_size < 1 or image.in_channels % p2 or image.out_channels % p2:
            raise ValueError(f"patch_size must be a positive integer whose square divides the image U-Net's "
                             f"channels ({image.in_channels} in, {image.out_channels} out), got {patch_size!r}")
        levels = range(image.num_levels)
        attn_levels = set(levels if temporal_attention_levels is None else temporal_attention_levels)
        bad = sorted(attn_levels - set(levels))
        if bad:
            raise ValueError(f"temporal_attention_levels {bad} do not exist; levels are 0..{image.num_levels - 1}")
        self.image = image
        self.patch_size = int(patch_size)
        self.in_channels, self.out_channels = image.in_channels // p2, image.out_channels // p2
        self.num_classes, self.null_label = image.num_classes, image.null_label
        self.max_frames, self.num_levels = int(max_frames), image.num_levels

        def temporal(block: nn.Module, level: int) -> nn.Module:
            if isinstance(block, (Downsample, Upsample)):
                return nn.Identity()  # placeholder: no temporal layer after resampling
            return TemporalLayers(_block_channels(block), num_heads, self.max_frames, level in attn_levels)

        self.temporal_down, level = nn.ModuleList(), 0
        for block in image.down:
            self.temporal_down.append(temporal(block, level))
            level += isinstance(block, Downsample)
        deepest = image.num_levels - 1
        self.temporal_mid = nn.ModuleList([temporal(image.mid[0], deepest), temporal(image.mid[2], deepest)])
        self.temporal_up, level = nn.ModuleList(), deepest
        for block in image.up:
            self.temporal_up.append(temporal(block, level))
            level -= isinstance(block, Upsample)

    # ---- input checks ------------------------------------------------------------------------
    def _check(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None,
               independent: torch.Tensor | None) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 5:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"SpaceTimeUNet expects clips (B, C, T, H, W) = (B, {self.in_channels}, frames, height, "
                f"width), got {shape}; for images (B, C, H, W) add a frame axis with x.unsqueeze(2)")
        b, c, frames, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(
                f"SpaceTimeUNet was built for {self.in_channels}-channel clips but got {c} channels "
                f"(shape {tuple(x.shape)}); clips are (B, C, T, H, W) with the channel axis second "
                f"(permute (B, T, C, H, W) data with x.transpose(1, 2)), or build the model with "
                f"in_channels={c}")
        if not 1 <= frames <= self.max_frames:
            raise ValueError(
                f"this SpaceTimeUNet takes clips of 1 to {self.max_frames} frames (its relative position "
                f"bias covers offsets up to {self.max_frames - 1}), got {frames} frames; build it with "
                f"max_frames={frames}, or generate longer videos window by window (lesson 08)")
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f"frames of {h}x{w} pixels cannot be cut into {p}x{p} patches (patch_size={p}); "
                             f"crop or pad them to a multiple of {p}")
        smallest = p * 2 ** (self.num_levels - 1)
        if h < smallest or w < smallest:
            raise ValueError(
                f"frames of {h}x{w} pixels are too small for a U-Net with {self.num_levels} levels and "
                f"patch_size {p}: it halves the size {self.num_levels - 1} times, so frames need at least "
                f"{smallest}x{smallest} pixels; use fewer channel_mults or larger frames")
        if t.shape != (b,):
            raise ValueError(f"t must have shape ({b},), one diffusion timestep per clip; got {tuple(t.shape)}")
        if y is not None and self.num_classes is None:
            raise ValueError("labels y were given but this SpaceTimeUNet is unconditional; build it with "
                             "num_classes=... to condition on a class")
        if y is not None and y.shape != (b,):
            raise ValueError(f"y must have shape ({b},), one label per clip; got {tuple(y.shape)}")
        if independent is not None and (independent.shape != (b,) or independent.dtype != torch.bool):
            raise ValueError(f"independent must be a bool tensor of shape ({b},) (True: the clip's frames "
                             f"are unrelated images), got {independent.dtype} {tuple(independent.shape)}")

    # ---- forward -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                independent: torch.Tensor | None = None) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device if isinstance(x, torch.Tensor) else None)
        if t.ndim == 0 and isinstance(x, torch.Tensor) and x.ndim == 5:
            t = t.expand(x.shape[0])
        self._check(x, t, y, independent)
        b, _, frames, _, _ = x.shape
        net = self.image
        emb = net.time_embed(t)
        if net.label_embed is not None:
            if y is None:
                y = torch.full((b,), self.null_label, device=x.device, dtype=torch.long)
            emb = emb + net.label_embed(y)
        emb = emb.repeat_interleave(frames, dim=0)  # every frame of a clip shares its t (and y)
        keep = None
        if independent is not None:
            keep = (~independent).to(emb.dtype).repeat_interleave(frames).view(-1, 1, 1, 1)

        h = frames_to_batch(x)
        if self.patch_size > 1:  # (B·T, C, H, W) -> (B·T, C·p², H/p, W/p)
            h = F.pixel_unshuffle(h, self.patch_size)
        h = net.input_conv(h)
        hs = [h]
        for layer, temporal in zip(net.down, self.temporal_down):
            if isinstance(layer, Downsample):
                h = layer(h)
            else:
                h = temporal(net._run(layer, h, emb), frames, keep)
            hs.append(h)
        h = self.temporal_mid[0](net.mid[0](h, emb), frames, keep)
        h = self.temporal_mid[1](net.mid[2](net.mid[1](h), emb), frames, keep)
        for layer, temporal in zip(net.up, self.temporal_up):
            if isinstance(layer, Upsample):
                h = layer(h, size=hs[-1].shape[-2:])
            else:
                h = temporal(net._run(layer, torch.cat([h, hs.pop()], dim=1), emb), frames, keep)
        out = net.out(h)
        if self.patch_size > 1:
            out = F.pixel_shuffle(out, self.patch_size)
        return batch_to_frames(out, frames)

    def temporal_parameters(self) -> list[nn.Parameter]:
        """The parameters of the temporal layers only (to train them alone on a frozen image model)."""
        return [p for m in (self.temporal_down, self.temporal_mid, self.temporal_up) for p in m.parameters()]
