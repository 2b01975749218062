"""A causal 3D video VAE: space *and* time compressed, the first frame alone (lesson 09).

A :class:`~vdlearn.vae.FrameVAE` compresses each frame by itself, so a clip of T frames keeps T latent
frames and neighbouring latents repeat what barely changed. The autoencoders of today's video
generators (CogVideoX, HunyuanVideo, Wan 2.1, LTX-Video) compress time as well, with three ideas:

1. **Causal convolutions in time.** A 3D convolution sees only the present and the past: the
   time axis is padded with :math:`k_t-1` frames *in front* and none behind (:func:`causal_pad`,
   :class:`CausalConv3d`), so output frame :math:`t` depends on input frames :math:`\\le t` only.
2. **The first frame alone.** With temporal stride :math:`s` the windows of a strided layer end at
   frames :math:`0, s, 2s, \\dots`, so a clip of :math:`T = 1 + s\\,k` frames gives :math:`1 + k`
   latent frames: latent 0 sees frame 0 only (an *image* latent), latent :math:`j \\ge 1` sees frames
   :math:`\\le js` and summarises frames :math:`(j-1)s+1 \\dots js`. An image is a one-frame video, so
   one model encodes images and videos (and a video model can start from an image).
3. **A feature cache.** Because nothing looks into the future, a long clip can be encoded chunk by
   chunk: each causal convolution keeps the last few frames of its input (its *context*) and puts
   them in front of the next chunk instead of padding. The result equals the whole-clip result
   (:func:`encode_chunked`, :func:`decode_chunked`), at the memory cost of one chunk.

Normalisation is per frame (:class:`FrameGroupNorm`): a GroupNorm over time would mix the
statistics of later frames into earlier ones, which breaks causality and makes chunked and
whole-clip results differ.

- :class:`CausalVideoVAE`: the model, with the interface of every course VAE (``encode``,
  ``decode``, ``forward -> VAEOutput``, ``scaling_factor``, ``encode_video``/``decode_video``).
  It says ``takes_video = True``, so :func:`~vdlearn.vae.vae_loss`, :func:`~vdlearn.vae.evaluate_elbo`
  and :func:`~vdlearn.vae.calibrate_scaling_factor` give it whole clips (a FrameVAE gets their frames).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.blocks import ResBlock, group_norm
from .models import LOGVAR_RANGE, VAE, VAEOutput
from .objectives import reparameterize

__all__ = [
    "causal_pad",
    "CausalConv3d",
    "FrameGroupNorm",
    "CausalResBlock",
    "TimeDownsample",
    "TimeUpsample",
    "CausalVideoVAE",
    "chunk_lengths",
    "encode_chunked",
    "decode_chunked",
    "inflate_frame_vae",
]

FeatureCache = dict  # a CausalConv3d -> the last frames of its (padded) input; {} starts a new clip


# -- causal convolution ---------------------------------------------------------------------------------
def causal_pad(x: torch.Tensor, frames: int, past: torch.Tensor | None = None) -> torch.Tensor:
    """Put the past in front of ``x`` (B, C, T, H, W) along time, nothing behind it.

    ``past`` given (a later chunk of a clip): :math:`[\\text{past}, x]`. No past (the clip's first
    chunk): ``frames`` copies of the first frame, :math:`[x_0, \\dots, x_0, x_0, x_1, \\dots]`.
    """
    if past is not None:
        return torch.cat([past, x], dim=2)
    return torch.cat([x[:, :, :1].expand(-1, -1, frames, -1, -1), x], dim=2)


class CausalConv3d(nn.Conv3d):
    """A 3D convolution that is causal in time: output frame :math:`t` sees input frames :math:`\\le t`.

    Kernel :math:`(k_t, k_h, k_w)` (odd :math:`k_h, k_w`), stride :math:`(s_t, 1, 1)`. Space is padded
    symmetrically with zeros as usual; time gets :math:`k_t - 1` frames in front only. Those are copies
    of the first frame (as CogVideoX and HunyuanVideo do; Wan 2.1 pads zeros): a still image then looks
    like a clip that has always been still, which is what the one-frame latent of an image should
    mean, and the first frame is not flanked by "black frames" (zero *features*, which no real frame
    produces) that the network would have to learn to ignore.

    With stride :math:`s_t`, output :math:`j` is the window that ends at input frame :math:`j s_t`,

    .. math:: y_j = \\sum_{i=0}^{k_t-1} W_i\\, x_{j s_t - (k_t-1) + i},\\qquad
              x_{t<0} := x_0\\ \\text{(first chunk)},

    so :math:`T` frames give :math:`\\lfloor (T-1)/s_t \\rfloor + 1` outputs, and :math:`1 + s_t k` give
    :math:`1 + k` (the first frame alone).

    **The cache.** Pass a :data:`FeatureCache` (a dict, ``{}`` for a clip's first chunk) to process
    a clip chunk by chunk. The layer then pads with what it stored for this clip instead of copies of
    frame 0, and stores the last :math:`k_t - s_t` frames of its padded input for the next chunk: the
    next window ends :math:`s_t` frames after this chunk's last one and reaches :math:`k_t` frames
    back (for :math:`s_t = 1`: the last :math:`k_t - 1` input frames). Chunks give exactly the
    whole clip's output when every chunk ends where a window ends: the first chunk holds
    :math:`1 + s_t m` frames, every later one a multiple of :math:`s_t`.
    """

    takes_cache = True

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int | tuple[int, int, int] = 3, stride: int | tuple[int, int, int] = 1):
        kt, kh, kw = (kernel_size,) * 3 if isinstance(kernel_size, int) else tuple(kernel_size)
        st, sh, sw = (stride, 1, 1) if isinstance(stride, int) else tuple(stride)
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"spatial kernel sizes must be odd for symmetric padding; got {(kh, kw)}")
        if (sh, sw) != (1, 1):
            raise ValueError(f"CausalConv3d strides time only, stride=(s_t, 1, 1); got {(st, sh, sw)}. "
                             "Downsample space with a per-frame convolution (kernel (1, k, k)).")
        if not 1 <= st <= kt:
            raise ValueError(f"the time stride must be between 1 and the time kernel {kt}; got {st} "
                             "(a stride longer than the kernel would skip frames)")
        super().__init__(in_channels, out_channels, (kt, kh, kw), stride=(st, 1, 1),
                         padding=(0, kh // 2, kw // 2))
        self.time_pad = kt - 1    # copies of frame 0 in front of a clip's first chunk
        self.context = kt - st    # frames of real past that the next chunk needs

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        past = cache.get(self) if cache is not None else None
        x = causal_pad(x, self.time_pad, past)
        if cache is not None:
            kt, st = self.kernel_size[0], self.stride[0]
            if (x.shape[2] - kt) % st:
                raise ValueError(
                    f"a chunk of {x.shape[2] - (past.shape[2] if past is not None else self.time_pad)} "
                    f"frames does not end where a window of this stride-{st} convolution ends: the first "
                    f"chunk must hold 1 + {st}m frames, later chunks a multiple of {st}")
            cache[self] = x[:, :, x.shape[2] - self.context:]
        return super().forward(x)


class CausalSequential(nn.Sequential):
    """``nn.Sequential`` that hands the feature cache to every layer that takes one."""

    takes_cache = True

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        for layer in self:
            x = layer(x, cache) if getattr(layer, "takes_cache", False) else layer(x)
        return x


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm of each frame separately: statistics over (channels of a group, H, W), never time.

    The frames are folded into the batch, (B, C, T, H, W) -> (B·T, C, H, W). A GroupNorm over the
    whole clip (PyTorch's on a 5-D tensor) would let frame 10 change how frame 0 is normalised:
    not causal, and a chunk would be normalised differently from the whole clip.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = super().forward(x.transpose(1, 2).reshape(b * t, c, h, w))
        return y.reshape(b, t, c, h, w).transpose(1, 2)


def frame_group_norm(channels: int) -> FrameGroupNorm:
    """A :class:`FrameGroupNorm` with the course's group rule (:func:`vdlearn.nn.blocks.group_norm`, groups of >= 4)."""
    return FrameGroupNorm(group_norm(channels, min_group_size=4).num_groups, channels)


class CausalResBlock(nn.Module):
    """:class:`~vdlearn.nn.blocks.ResBlock` in space-time: (norm → SiLU → causal 3×3×3 conv) twice, and a skip."""

    takes_cache = True

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1, self.conv1 = frame_group_norm(in_channels), CausalConv3d(in_channels, out_channels, 3)
        self.norm2, self.conv2 = frame_group_norm(out_channels), CausalConv3d(out_channels, out_channels, 3)
        self.skip = nn.Conv3d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)), cache)
        h = self.conv2(F.silu(self.norm2(h)), cache)
        return self.skip(x) + h


def frame_downsample(in_channels: int, out_channels: int) -> nn.Conv3d:
    """Halve H and W, frame by frame: a stride-2 3×3 convolution (kernel (1, 3, 3), no time)."""
    return nn.Conv3d(in_channels, out_channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))


def frame_upsample(in_channels: int, out_channels: int) -> nn.Sequential:
    """Double H and W, frame by frame: nearest-neighbour upsampling, then a 3×3 convolution."""
    return nn.Sequential(nn.Upsample(scale_factor=(1, 2, 2), mode="nearest"),
                         nn.Conv3d(in_channels, out_channels, (1, 3, 3), padding=(0, 1, 1)))


class TimeDownsample(nn.Module):
    """Halve (``factor`` s) the frame rate causally: 1 + s·k frames -> 1 + k, the first frame alone.

    A :class:`CausalConv3d` with kernel (s + 1, 1, 1) and stride (s, 1, 1). It starts as the mean of
    the s frames each output summarises, :math:`y_j = \\frac1s\\sum_{i=0}^{s-1} x_{js-i}`
    (:math:`y_0 = x_0`, thanks to the replicated padding), and learns from there.
    """

    takes_cache = True

    def __init__(self, channels: int, factor: int = 2):
        super().__init__()
        self.conv = CausalConv3d(channels, channels, (factor + 1, 1, 1), stride=(factor, 1, 1))
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            eye = torch.eye(channels) / factor
            for i in range(1, factor + 1):
                self.conv.weight[:, :, i, 0, 0] = eye

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        return self.conv(x, cache)


class TimeUpsample(nn.Module):
    """Multiply the frame rate by ``factor`` s causally: 1 + k frames -> 1 + s·k.

    A causal (3, 1, 1) convolution makes s·C channels per frame; they become s frames of C channels
    (a "pixel shuffle" in time), so latent frame :math:`j` yields frames :math:`(j-1)s+1 \\dots js`.
    Latent 0 would yield s frames too; only the last is kept (the first frame alone), so a clip's
    first chunk drops its first :math:`s-1` frames. It starts as a repetition of each frame s times.
    """

    takes_cache = True

    def __init__(self, channels: int, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.conv = CausalConv3d(channels, factor * channels, (3, 1, 1))
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            for i in range(factor):
                self.conv.weight[i * channels:(i + 1) * channels, :, -1, 0, 0] = torch.eye(channels)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        first_chunk = cache is None or self.conv not in cache
        y = self.conv(x, cache)
        b, _, t, h, w = y.shape
        s = self.factor
        y = y.reshape(b, s, -1, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, -1, t * s, h, w)
        return y[:, :, s - 1:] if first_chunk else y


# -- the model ------------------------------------------------------------------------------------------
class CausalVideoVAE(VAE):
    """A causal 3D VAE: videos (B, C, T, H, W) in [-1, 1] -> latents (B, c, 1 + (T-1)/s, H/f, W/f) (lesson 09).

    ``spatial_down`` f (2, 4 or 8) halves H and W per level; ``temporal_down`` s (1, 2 or 4) halves
    time at the deepest log2(s) levels (cheapest there). Each level is a :class:`CausalResBlock` and a
    stride-2 per-frame convolution, the widths those of a FrameVAE: ``width`` ·(1, 2, 4, 4, ...).
    The decoder mirrors it, with :class:`TimeUpsample` in place of :class:`TimeDownsample`.

    **Frame counts.** :math:`T = 1 + s k` frames give :math:`1 + k` latent frames and decode back to
    :math:`1 + s k` frames; T = 1 is an image (one latent frame). Any other T is padded at the end by
    repeating its last frame up to the next count that fits (16 -> 17 for s = 2), and
    ``decode(z, frames=T)`` crops back; ``forward`` and ``reconstruct`` do both, so a 16-frame clip
    comes back with 16 frames. :meth:`latent_frames`, :meth:`latent_shape_for` give the sizes.

    ``scaling_factor`` (a buffer, saved with the weights) multiplies latents in ``encode_video`` and
    divides them in ``decode_video``; :func:`~vdlearn.vae.calibrate_scaling_factor` sets it.
    ``image_size`` and ``frames`` only fix what :meth:`sample` draws (``latent_shape``).

    ``latent_channels=8`` with s = 2 keeps as many latent numbers per pixel as a FrameVAE with 4 (a
    compression of 12 for RGB). A training step on 16 clips of 17 frames of 32×32 takes about 3 s on
    one CPU core at ``width=16`` (0.7 M parameters) and about 15 s at ``width=32`` (2.7 M): 3×3×3
    convolutions cost three times a FrameVAE's 3×3 ones.
    """

    takes_video = True  # vae_loss & co. must not cut its input into frames

    def __init__(self, in_channels: int = 3, latent_channels: int = 8, width: int = 32,
                 spatial_down: int = 4, temporal_down: int = 2, likelihood: str = "gaussian",
                 image_size: int = 32, frames: int = 17):
        super().__init__(likelihood)
        if spatial_down not in (2, 4, 8):
            raise ValueError(f"spatial_down must be 2, 4 or 8; got {spatial_down}")
        if temporal_down not in (1, 2, 4) or temporal_down > spatial_down:
            raise ValueError(f"temporal_down must be 1, 2 or 4 and at most spatial_down={spatial_down} "
                             f"(one halving of time per level); got {temporal_down}")
        if image_size % spatial_down or frames < 1:
            raise ValueError(f"image_size must be a multiple of spatial_down={spatial_down} and frames >= 1; "
                             f"got {image_size} and {frames}")
        self.in_channels, self.latent_channels, self.width = in_channels, latent_channels, width
        self.spatial_down, self.temporal_down = spatial_down, temporal_down
        self.downsample = spatial_down  # the name FrameVAE (and lesson 09's latent code) uses
        self.image_size, self.frames = image_size, frames
        self.register_buffer("scaling_factor", torch.tensor(1.0))

        levels, time_levels = int(math.log2(spatial_down)), int(math.log2(temporal_down))
        chans = [width * min(2**i, 4) for i in range(levels + 1)]
        halves_time = [i >= levels - time_levels for i in range(levels)]  # the deepest levels

        enc: list[nn.Module] = [CausalConv3d(in_channels, chans[0], 3)]
        for i in range(levels):
            enc += [CausalResBlock(chans[i], chans[i]), frame_downsample(chans[i], chans[i + 1])]
            enc += [TimeDownsample(chans[i + 1])] if halves_time[i] else []
        enc += [CausalResBlock(chans[-1], chans[-1]), frame_group_norm(chans[-1]), nn.SiLU(),
                CausalConv3d(chans[-1], 2 * latent_channels, 3)]
        self.encoder = CausalSequential(*enc)

        dec: list[nn.Module] = [CausalConv3d(latent_channels, chans[-1], 3), CausalResBlock(chans[-1], chans[-1])]
        for i in reversed(range(levels)):
            dec += [TimeUpsample(chans[i + 1])] if halves_time[i] else []
            dec += [frame_upsample(chans[i + 1], chans[i]), CausalResBlock(chans[i], chans[i])]
        dec += [frame_group_norm(chans[0]), nn.SiLU(), CausalConv3d(chans[0], in_channels, 3)]
        self.decoder = CausalSequential(*dec)

    # -- sizes ---------------------------------------------------------------------------------------
    def latent_frames(self, frames: int) -> int:
        """Latent frames for a clip of ``frames`` frames: :math:`1 + \\lceil (T-1)/s \\rceil`."""
        if int(frames) != frames or frames < 1:
            raise ValueError(f"a clip has at least one frame; got frames={frames!r}")
        return 1 + math.ceil((frames - 1) / self.temporal_down)

    def video_frames(self, latent_frames: int) -> int:
        """Frames that ``latent_frames`` latents decode to: :math:`1 + s\\,(t-1)`."""
        return 1 + self.temporal_down * (latent_frames - 1)

    def latent_shape_for(self, frames: int, height: int | None = None,
                         width: int | None = None) -> tuple[int, int, int, int]:
        """(c, t, h, w) of the latent of one clip of ``frames`` frames of height × width pixels."""
        height = self.image_size if height is None else height
        width = height if width is None else width
        if height % self.spatial_down or width % self.spatial_down:
            raise ValueError(f"height and width must be multiples of spatial_down={self.spatial_down}; "
                             f"got {height}x{width}")
        return (self.latent_channels, self.latent_frames(frames),
                height // self.spatial_down, width // self.spatial_down)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """(c, t, h, w) of the latent of a ``frames``-frame, ``image_size`` clip (what :meth:`sample` draws)."""
        return self.latent_shape_for(self.frames, self.image_size)

    def compression_ratio(self) -> float:
        """Pixel values per latent value: :math:`C f^2 s / c` (for long clips)."""
        return self.in_channels * self.spatial_down**2 * self.temporal_down / self.latent_channels

    # -- checks --------------------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        name, c, f = type(self).__name__, self.in_channels, self.spatial_down
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} encodes a tensor of videos (B, {c}, T, H, W); got {type(x).__name__}")
        if x.ndim == 4:
            raise ValueError(
                f"{name} encodes videos (B, {c}, T, H, W); got a 4-D tensor {tuple(x.shape)}. Images "
                f"(B, {c}, H, W) are one-frame videos: pass x.unsqueeze(2); one clip (C, T, H, W) needs "
                "x.unsqueeze(0).")
        if x.ndim != 5:
            raise ValueError(f"{name} encodes videos (B, {c}, T, H, W); got a {x.ndim}-D tensor {tuple(x.shape)}")
        if x.shape[1] != c:
            raise ValueError(
                f"{name}(in_channels={c}) got videos with {x.shape[1]} channels, shape {tuple(x.shape)}; "
                f"the channel axis is the second, (B, C, T, H, W) (a (B, T, C, H, W) tensor needs "
                f"x.transpose(1, 2)); for {x.shape[1]}-channel clips build the model with in_channels={x.shape[1]}")
        if x.shape[-1] % f or x.shape[-2] % f or x.shape[-1] == 0 or x.shape[-2] == 0:
            raise ValueError(f"{name} needs frame height and width that are multiples of spatial_down={f}; "
                             f"got {x.shape[-2]}x{x.shape[-1]}. Crop or resize the frames "
                             f"(e.g. F.interpolate) to a multiple of {f}.")
        if x.shape[2] < 1 or x.shape[0] < 1:
            raise ValueError(f"{name} got an empty batch or clip: shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"{name} expects float videos in [-1, 1]; got dtype {x.dtype}. Map uint8 "
                             "pixels with x.float() / 127.5 - 1.")
        if not torch.compiler.is_compiling():
            lo, hi = torch.stack(torch.aminmax(x)).float().tolist()  # one device sync, not two
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"{name} got videos with NaN or inf values")
            if lo < -1 - 1e-3 or hi > 1 + 1e-3:
                raise ValueError(f"{name} expects values in [-1, 1], but these range over [{lo:.3g}, {hi:.3g}]; "
                                 "map 0..255 pixels with x / 127.5 - 1 and [0, 1] values with 2 * x - 1")

    def _check_latents(self, z: torch.Tensor) -> None:
        if not isinstance(z, torch.Tensor) or z.ndim != 5 or z.shape[1] != self.latent_channels:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"{type(self).__name__} decodes latents (B, {self.latent_channels}, t, h, w); "
                             f"got {shape}" + (" (one latent clip? add a batch axis with z.unsqueeze(0))"
                                               if isinstance(z, torch.Tensor) and z.ndim == 4 else ""))

    def pad_frames(self, video: torch.Tensor) -> torch.Tensor:
        """``video`` with its last frame repeated up to the next count :math:`1 + s k` (unchanged if it fits)."""
        missing = self.video_frames(self.latent_frames(video.shape[2])) - video.shape[2]
        if missing == 0:
            return video
        return torch.cat([video, video[:, :, -1:].expand(-1, -1, missing, -1, -1)], dim=2)

    def crop_frames(self, video: torch.Tensor, frames: int | None) -> torch.Tensor:
        """The first ``frames`` frames of a decoded clip, or an error if its latent count cannot give them."""
        if frames is None:
            return video
        t = 1 + (video.shape[2] - 1) // self.temporal_down
        if int(frames) != frames or self.latent_frames(frames) != t:
            lo = 1 if t == 1 else self.video_frames(t - 1) + 1
            raise ValueError(f"{t} latent frames decode to {video.shape[2]} frames and can be cropped to "
                             f"{lo}..{video.shape[2]} frames; frames={frames!r} needs "
                             f"{self.latent_frames(max(int(frames), 1))} latent frames")
        return video[:, :, :frames]

    # -- the VAE interface ---------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Videos (B, C, T, H, W) -> :math:`(\\mu, \\log\\sigma^2)`, each (B, c, 1 + ⌈(T-1)/s⌉, H/f, W/f)."""
        self._check_input(x)
        mu, logvar = self.encoder(self.pad_frames(x)).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, z: torch.Tensor, frames: int | None = None) -> torch.Tensor:
        """Latents (B, c, t, h, w) -> the decoder's output (B, C, 1 + s(t-1), h·f, w·f), cropped to ``frames``."""
        self._check_latents(z)
        return self.crop_frames(self.decoder(z), frames)

    def decode_mean(self, z: torch.Tensor, frames: int | None = None) -> torch.Tensor:
        """The decoder's mean in data range (see :meth:`VAE.decode_mean`), cropped to ``frames``."""
        out = self.decode(z, frames)
        return torch.sigmoid(out) * 2 - 1 if self.likelihood == "bernoulli" else out

    def forward(self, x: torch.Tensor) -> VAEOutput:
        """Encode, draw one :math:`z = \\mu + \\sigma\\epsilon`, decode to as many frames as ``x`` has."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        return VAEOutput(self.decode(z, frames=x.shape[2]), mu, logvar, z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean of each clip, to as many frames as it has."""
        mu, _ = self.encode(x)
        return self.decode_mean(mu, frames=x.shape[2])

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """``n`` clips of ``frames`` frames decoded from :math:`z\\sim\\mathcal N(0, T^2 I)`."""
        return super().sample(n, generator=generator, temperature=temperature)[:, :, :self.frames]

    # -- what latent diffusion uses (as FrameVAE's) --------------------------------------------------
    def encode_video(self, video: torch.Tensor, *, sample: bool = False, scaled: bool = True,
                     chunk_frames: int | None = None, chunk_size: int | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """Videos (B, C, T, H, W) -> latents (B, c, 1 + ⌈(T-1)/s⌉, H/f, W/f), scaled by ``scaling_factor``.

        ``sample=False`` returns the posterior means. ``chunk_frames`` N encodes each clip in chunks
        (frame 0, then N frames at a time, N a multiple of s; :func:`encode_chunked`): the same
        latents, with the memory of N frames. ``chunk_size`` bounds the frames per forward pass by
        encoding ⌊chunk_size / T⌋ clips at a time (at least one), like FrameVAE's.
        """
        self._check_input(video)
        per_pass = len(video) if chunk_size is None else max(1, chunk_size // video.shape[2])
        outs = []
        for clips in video.split(per_pass):
            mu, logvar = (self.encode(clips) if chunk_frames is None
                          else encode_chunked(self, clips, chunk_frames))
            outs.append(reparameterize(mu, logvar, generator=generator) if sample else mu)
        z = torch.cat(outs)
        return z * self.scaling_factor if scaled else z

    def decode_video(self, latents: torch.Tensor, *, scaled: bool = True, frames: int | None = None,
                     chunk_frames: int | None = None, chunk_size: int | None = None) -> torch.Tensor:
        """Latents (B, c, t, h, w) -> videos (B, C, 1 + s(t-1), h·f, w·f) in [-1, 1], cropped to ``frames``.

        ``chunk_frames`` decodes in chunks of that many *video* frames (:func:`decode_chunked`);
        ``chunk_size`` bounds the frames per forward pass as in :meth:`encode_video`.
        """
        self._check_latents(latents)
        z = latents / self.scaling_factor if scaled else latents
        per_pass = len(z) if chunk_size is None else max(1, chunk_size // self.video_frames(z.shape[2]))
        outs = []
        for part in z.split(per_pass):
            out = self.decode(part) if chunk_frames is None else decode_chunked(self, part, chunk_frames)
            if self.likelihood == "bernoulli":
                out = torch.sigmoid(out) * 2 - 1
            outs.append(out)
        return self.crop_frames(torch.cat(outs), frames).clamp(-1, 1)


# -- chunked encoding and decoding ----------------------------------------------------------------------
def chunk_lengths(num_frames: int, chunk_frames: int) -> list[int]:
    """Chunk lengths for a clip of ``num_frames`` frames: the first frame alone, then ``chunk_frames`` at a time.

    ``[1, N, N, ..., r]`` with ``r`` the remainder, e.g. ``chunk_lengths(17, 8) == [1, 8, 8]``.
    """
    if int(chunk_frames) != chunk_frames or chunk_frames < 1:
        raise ValueError(f"chunk_frames must be a positive integer, got {chunk_frames!r}")
    rest = num_frames - 1
    return [1] + [chunk_frames] * (rest // chunk_frames) + ([rest % chunk_frames] if rest % chunk_frames else [])


def encode_chunked(vae: CausalVideoVAE, video: torch.Tensor,
                   chunk_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``vae.encode(video)`` computed chunk by chunk, with a feature cache: the same :math:`(\\mu, \\log\\sigma^2)`.

    The (padded) clip is cut into frame 0, then ``chunk_frames`` N frames at a time
    (:func:`chunk_lengths`). One cache (a dict) goes along the whole clip: each causal convolution
    pads a chunk with the last frames it saw of the previous one (:class:`CausalConv3d`). Chunk
    :math:`i` gives latents :math:`z_{\\text{chunk } i}`, and

    .. math:: [E(x_{0}),\\ E(x_{1..N} \\mid \\text{cache}),\\ E(x_{N+1..2N} \\mid \\text{cache}), \\dots] = E(x)

    because each output depends only on its own and earlier frames. N must be a multiple of
    ``temporal_down`` so that every chunk ends where a strided window ends.
    """
    s = vae.temporal_down
    if int(chunk_frames) != chunk_frames or chunk_frames < 1 or chunk_frames % s:
        raise ValueError(f"chunk_frames must be a positive multiple of temporal_down={s} (each chunk "
                         f"must end where a latent frame ends); got {chunk_frames!r}")
    vae._check_input(video)
    video = vae.pad_frames(video)
    cache: FeatureCache = {}
    h = torch.cat([vae.encoder(chunk, cache)
                   for chunk in video.split(chunk_lengths(video.shape[2], chunk_frames), dim=2)], dim=2)
    mu, logvar = h.chunk(2, dim=1)
    return mu, logvar.clamp(*LOGVAR_RANGE)


def decode_chunked(vae: CausalVideoVAE, z: torch.Tensor, chunk_frames: int) -> torch.Tensor:
    """``vae.decode(z)`` computed chunk by chunk with a feature cache: the same output.

    Latent frame 0 alone, then ``chunk_frames / temporal_down`` latent frames at a time, i.e.
    ``chunk_frames`` video frames per chunk (a multiple of ``temporal_down``).
    """
    s = vae.temporal_down
    if int(chunk_frames) != chunk_frames or chunk_frames < 1 or chunk_frames % s:
        raise ValueError(f"chunk_frames must be a positive multiple of temporal_down={s} (a whole number "
                         f"of latent frames per chunk); got {chunk_frames!r}")
    vae._check_latents(z)
    cache: FeatureCache = {}
    return torch.cat([vae.decoder(chunk, cache)
                      for chunk in z.split(chunk_lengths(z.shape[2], chunk_frames // s), dim=2)], dim=2)


# -- starting from a trained FrameVAE -------------------------------------------------------------------
def _layers(module: nn.Module) -> list[nn.Module]:
    """The layers with weights of a FrameVAE or CausalVideoVAE half, in the order they run.

    Time resampling (:class:`TimeDownsample`, :class:`TimeUpsample`) has no 2D counterpart and is
    skipped; a residual block gives its norm, conv, norm, conv, skip.
    """
    out: list[nn.Module] = []
    for layer in module.children():
        if isinstance(layer, (TimeDownsample, TimeUpsample)):
            continue
        if isinstance(layer, ResBlock):
            out += [layer.block[0], layer.block[2], layer.block[3], layer.block[5], layer.skip]
        elif isinstance(layer, CausalResBlock):
            out += [layer.norm1, layer.conv1, layer.norm2, layer.conv2, layer.skip]
        elif isinstance(layer, nn.Sequential):
            out += _layers(layer)
        elif isinstance(layer, (nn.Conv2d, nn.Conv3d, nn.GroupNorm)):
            out.append(layer)
    return out


@torch.no_grad()
def _inflate_conv(conv3d: nn.Conv3d, conv2d: nn.Conv2d, out_index: torch.Tensor | None = None,
                  in_channels: int | None = None) -> None:
    """Put a 3×3 kernel in the *present* frame of a (k_t, 3, 3) one, zeros in the past frames.

    Output channels ``out_index`` (default: all) get the 2D filters in order; input channels past
    ``in_channels`` (latent channels the 2D model does not have) get zero weights.
    """
    w2 = conv2d.weight
    out_index = torch.arange(w2.shape[0]) if out_index is None else out_index
    cin = w2.shape[1] if in_channels is None else in_channels
    conv3d.weight[out_index] = 0
    conv3d.weight[out_index, :cin, -1] = w2[:, :cin]
    if conv2d.bias is not None:
        conv3d.bias[out_index] = conv2d.bias


@torch.no_grad()
def inflate_frame_vae(video_vae: CausalVideoVAE, frame_vae: nn.Module) -> CausalVideoVAE:
    """Start ``video_vae`` from a trained :class:`~vdlearn.vae.FrameVAE` of the same width and depth.

    Each 2D kernel becomes a 3D kernel that looks at the present frame only (the past frames'
    weights zero: "inflation", Carreira & Zisserman 2017, as CogVideoX and Wan start their 3D VAEs
    from image VAEs). The inflated model then computes exactly the FrameVAE of each frame, except
    that time downsampling averages frames :math:`2j-1, 2j` and upsampling repeats them: its
    reconstructions start near the FrameVAE's and training only has to learn what time adds.

    The causal VAE may have more latent channels :math:`c' \\ge c` than the FrameVAE (it keeps two
    frames in one latent frame): latent channels :math:`0..c-1` come from the FrameVAE's, the others
    start from the default initialisation in the encoder and with zero weights in the decoder.
    Returns ``video_vae``, changed in place.
    """
    if not isinstance(video_vae, CausalVideoVAE):
        raise TypeError(f"inflate_frame_vae starts a CausalVideoVAE; got {type(video_vae).__name__}")
    c2, c3 = frame_vae.latent_channels, video_vae.latent_channels
    if (frame_vae.downsample, frame_vae.in_channels) != (video_vae.spatial_down, video_vae.in_channels) or c2 > c3:
        raise ValueError(
            f"the FrameVAE (downsample {frame_vae.downsample}, {frame_vae.in_channels} channels, {c2} latent "
            f"channels) and the causal VAE (spatial_down {video_vae.spatial_down}, {video_vae.in_channels} "
            f"channels, {c3} latent channels) must downsample space alike, take the same channels, and the "
            "causal VAE must have at least as many latent channels")
    for half in ("encoder", "decoder"):
        flat, deep = _layers(getattr(frame_vae, half)), _layers(getattr(video_vae, half))
        if len(flat) != len(deep) or any(
                isinstance(a, nn.GroupNorm) != isinstance(b, nn.GroupNorm) or
                (isinstance(a, nn.Conv2d) and a.weight.shape[0] != b.weight.shape[0] and b is not deep[-1])
                for a, b in zip(flat, deep)):
            raise ValueError(f"the FrameVAE's {half} does not match the causal VAE's layer for layer: build "
                             "CausalVideoVAE(width=...) with the FrameVAE's width "
                             f"({frame_vae.decoder[-1].in_channels})")
        for k, (a, b) in enumerate(zip(flat, deep)):
            if isinstance(a, nn.GroupNorm):
                b.load_state_dict(a.state_dict())
            elif isinstance(a, nn.Conv2d):
                if half == "encoder" and k == len(flat) - 1:       # [mu, logvar]: c of each into c' of each
                    index = torch.cat([torch.arange(c2), c3 + torch.arange(c2)])
                    _inflate_conv(b, a, out_index=index)
                elif half == "decoder" and k == 0:                 # c latent channels in, c' - c extra at zero
                    b.weight.zero_()
                    _inflate_conv(b, a, in_channels=c2)
                else:
                    _inflate_conv(b, a)
    return video_vae
