"""Video GANs (lesson 04; the baseline of lesson 10).

- :class:`VideoGenerator`, :class:`VideoDiscriminator`: DCGAN's recipe for clips
  ``(B, C, T, H, W)``, with full 3-D convolutions (VGAN, Vondrick et al. 2016) or factorised
  "(2+1)-D" ones, a spatial convolution followed by a temporal one (Tran et al. 2018).
- :class:`MotionContentGenerator`, :class:`FrameAndClipDiscriminator`: MoCoGAN's split of a clip
  into content and motion, with a frame critic and a clip critic.
- :class:`MovingImageGenerator`, :class:`FrameDiscriminator`: draw *one* image per clip and move
  it along a learned path; judge every frame with an image critic. The pair that lesson 04 trains.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .models import Discriminator, Generator, MinibatchStd, _Sampler, _base_and_steps, _check_input, _check_latent, _maybe_sn, dcgan_init

__all__ = ["VideoGenerator", "VideoDiscriminator", "MotionContentGenerator", "FrameAndClipDiscriminator",
           "MovingImageGenerator", "FrameDiscriminator"]


def _time_steps(frames: int, steps: int) -> tuple[int, int]:
    """Split ``frames = t0 * 2**n`` with ``n <= steps`` doublings (16 frames, 3 steps -> (2, 3))."""
    if not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be a positive int, got {frames!r}")
    t0, n = frames, 0
    while t0 % 2 == 0 and n < steps:
        t0, n = t0 // 2, n + 1
    return t0, n


def _up3d(c_in: int, c_out: int, up_t: bool, factorized: bool, bias: bool) -> list[nn.Module]:
    """Double H and W (and T when ``up_t``): one 3-D transposed conv, or spatial then temporal."""
    kt, st, pt = (4, 2, 1) if up_t else (3, 1, 1)
    if not factorized:
        return [nn.ConvTranspose3d(c_in, c_out, (kt, 4, 4), (st, 2, 2), (pt, 1, 1), bias=bias)]
    mid = max(c_out, c_in // 2)  # the last block keeps some width between its two halves
    temporal = (nn.ConvTranspose3d(mid, c_out, (kt, 1, 1), (st, 1, 1), (pt, 0, 0), bias=bias)
                if up_t else nn.Conv3d(mid, c_out, (3, 1, 1), 1, (1, 0, 0), bias=bias))
    return [nn.ConvTranspose3d(c_in, mid, (1, 4, 4), (1, 2, 2), (0, 1, 1), bias=False),
            nn.BatchNorm3d(mid), nn.ReLU(True), temporal]


def _down3d(c_in: int, c_out: int, down_t: bool, factorized: bool, sn: bool) -> list[nn.Module]:
    """Halve H and W (and T when ``down_t``) with a 3-D conv, or a spatial then a temporal one."""
    kt, st, pt = (4, 2, 1) if down_t else (3, 1, 1)
    if not factorized:
        return [_maybe_sn(nn.Conv3d(c_in, c_out, (kt, 4, 4), (st, 2, 2), (pt, 1, 1)), sn)]
    return [_maybe_sn(nn.Conv3d(c_in, c_out, (1, 4, 4), (1, 2, 2), (0, 1, 1)), sn), nn.LeakyReLU(0.2, True),
            _maybe_sn(nn.Conv3d(c_out, c_out, (kt, 1, 1), (st, 1, 1), (pt, 0, 0)), sn)]


class VideoGenerator(_Sampler):
    """A DCGAN for clips: :math:`z \\to` ``(C0, t0, b, b)``, then doublings of (T,) H, W to ``(C, T, H, W)``.

    ``factorized=True`` uses a spatial (1x4x4) then a temporal (4x1x1 or 3x1x1) transposed
    convolution per block, ``False`` one full 4x4x4 transposed 3-D convolution. With
    ``two_stream=True`` (VGAN, Vondrick et al. 2016) the 3-D stream makes a foreground video
    :math:`f` and a mask :math:`m \\in [0, 1]`, a 2-D DCGAN makes one static background image
    :math:`b` from the same :math:`z`, and the clip is

    .. math:: v = m \\odot f + (1 - m) \\odot b,

    so a still background costs the network nothing and only what moves needs the 3-D stream.
    Activations are kept channels-last (``torch.channels_last_3d``): 3-D convolutions run several
    times faster that way, on CPUs as on GPUs.
    """

    def __init__(self, latent_dim: int = 64, channels: int = 3, frames: int = 16, image_size: int = 32,
                 width: int = 32, factorized: bool = True, two_stream: bool = True):
        super().__init__()
        base, steps = _base_and_steps(image_size)
        t0, t_steps = _time_steps(frames, steps)
        self.latent_dim, self.channels, self.frames, self.image_size = latent_dim, channels, frames, image_size
        self.factorized, self.two_stream = factorized, two_stream
        c = width * 2 ** (steps - 1)
        self.project = nn.Sequential(nn.Linear(latent_dim, c * t0 * base * base, bias=False),
                                     nn.Unflatten(1, (c, t0, base, base)), nn.BatchNorm3d(c), nn.ReLU(True))
        blocks: list[nn.Module] = []
        for i in range(steps):
            c_out = max(c // 2, 8)
            blocks += _up3d(c, c_out, up_t=i < t_steps, factorized=factorized, bias=False)
            blocks += [nn.BatchNorm3d(c_out), nn.ReLU(True)]
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Conv3d(c, channels, 3, 1, 1)
        self.to_mask = nn.Conv3d(c, 1, 3, 1, 1) if two_stream else None
        self.background = (Generator(latent_dim, channels, image_size, width=max(width // 2, 8))
                           if two_stream else None)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_latent(z, self.latent_dim, "VideoGenerator")
        h = self.blocks(self.project(z).contiguous(memory_format=torch.channels_last_3d))
        foreground = torch.tanh(self.to_rgb(h))
        if not self.two_stream:
            return foreground
        mask = torch.sigmoid(self.to_mask(h))
        return mask * foreground + (1 - mask) * self.background(z).unsqueeze(2)


class VideoDiscriminator(nn.Module):
    """Strided 3-D (or factorised) convolutions down to ``(C, t0, b, b)``, then a linear logit."""

    def __init__(self, channels: int = 3, frames: int = 16, image_size: int = 32, width: int = 32,
                 factorized: bool = True, spectral_norm: bool = False, minibatch_std: bool = False):
        super().__init__()
        base, steps = _base_and_steps(image_size)
        t0, t_steps = _time_steps(frames, steps)
        self.channels, self.frames, self.image_size = channels, frames, image_size
        layers: list[nn.Module] = []
        c_in, c = channels, width
        for i in range(steps):
            layers += _down3d(c_in, c, down_t=i < t_steps, factorized=factorized, sn=spectral_norm)
            layers += [nn.LeakyReLU(0.2, True)]
            c_in, c = c, c * 2
        self.features = nn.Sequential(*layers, nn.Flatten(), *([MinibatchStd()] if minibatch_std else []))
        self.head = _maybe_sn(nn.Linear(c_in * t0 * base * base + int(minibatch_std), 1), spectral_norm)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, (self.channels, self.frames, self.image_size, self.image_size), "VideoDiscriminator",
                     "Clips are (batch, C, T, H, W); build the generator and discriminator with the same "
                     "channels, frames and image_size.")
        return self.head(self.features(x.contiguous(memory_format=torch.channels_last_3d))).squeeze(1)


class MotionContentGenerator(_Sampler):
    r"""MoCoGAN (Tulyakov et al. 2018): one image generator for every frame, a recurrent net for motion.

    The latent :math:`z` of width ``content_dim + frames * motion_dim`` is split into a *content*
    code :math:`z_c` (what is in the clip: shape, colour) and one motion innovation
    :math:`\epsilon_t` per frame. A GRU turns the innovations into a path of motion codes
    :math:`m_t = \mathrm{GRU}(\epsilon_t, m_{t-1})`, and every frame is drawn by the same DCGAN
    :class:`Generator`:

    .. math:: x_t = G_{\rm img}([z_c, m_t]), \qquad t = 1, \dots, T .

    Content stays fixed along a clip by construction; only the motion codes change, one small
    step at a time. All frames go through the image generator as one batch of ``B*T`` images.
    """

    def __init__(self, content_dim: int = 48, motion_dim: int = 16, channels: int = 3, frames: int = 16,
                 image_size: int = 32, width: int = 32):
        super().__init__()
        for name, value in [("content_dim", content_dim), ("motion_dim", motion_dim), ("frames", frames)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.content_dim, self.motion_dim, self.frames = content_dim, motion_dim, frames
        self.latent_dim = content_dim + frames * motion_dim
        self.channels, self.image_size = channels, image_size
        self.motion = nn.GRUCell(motion_dim, motion_dim)
        self.frame_generator = Generator(content_dim + motion_dim, channels, image_size, width)
        self.frame_generator.apply(dcgan_init)

    def motion_codes(self, z: torch.Tensor) -> torch.Tensor:
        r"""The motion path :math:`m_1, \dots, m_T` of latents ``z``: ``(B, T, motion_dim)``."""
        eps = z[:, self.content_dim:].reshape(len(z), self.frames, self.motion_dim)
        m = torch.zeros(len(z), self.motion_dim, device=z.device, dtype=z.dtype)
        path = []
        for t in range(self.frames):  # a recurrence over T (16) small steps; the frames are one batch
            m = self.motion(eps[:, t], m)
            path.append(m)
        return torch.stack(path, dim=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_latent(z, self.latent_dim, "MotionContentGenerator")
        b, t = len(z), self.frames
        content = z[:, :self.content_dim, None].expand(b, self.content_dim, t).transpose(1, 2)
        codes = torch.cat([content, self.motion_codes(z)], dim=-1).reshape(b * t, -1)
        frames = self.frame_generator(codes)                                  # (B*T, C, H, W)
        return frames.reshape(b, t, *frames.shape[1:]).transpose(1, 2)        # (B, C, T, H, W)


class FrameAndClipDiscriminator(nn.Module):
    """Two critics in one module (MoCoGAN): a DCGAN :class:`Discriminator` judges single frames,
    a :class:`VideoDiscriminator` judges whole clips. The output is both logits, ``(B, 2)``:
    column 0 the frame critic's (averaged over ``frames_per_clip`` random frames of each clip),
    column 1 the clip critic's. Every loss of :mod:`vdlearn.gan.losses` averages over all logits,
    so the two critics' losses are averaged too.
    """

    def __init__(self, channels: int = 3, frames: int = 16, image_size: int = 32, width: int = 32,
                 frames_per_clip: int = 4, spectral_norm: bool = False, minibatch_std: bool = False):
        super().__init__()
        if not isinstance(frames_per_clip, int) or not 1 <= frames_per_clip <= frames:
            raise ValueError(f"frames_per_clip must be an int in [1, frames={frames}], got {frames_per_clip!r}")
        self.channels, self.frames, self.image_size, self.frames_per_clip = channels, frames, image_size, frames_per_clip
        self.frame_critic = Discriminator(channels, image_size, width, spectral_norm=spectral_norm,
                                          minibatch_std=minibatch_std)
        self.clip_critic = VideoDiscriminator(channels, frames, image_size, width, factorized=True,
                                              spectral_norm=spectral_norm, minibatch_std=minibatch_std)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.ndim != 5 or clips.shape[1:] != (self.channels, self.frames, self.image_size, self.image_size):
            raise ValueError(f"expected clips (B, {self.channels}, {self.frames}, {self.image_size}, "
                             f"{self.image_size}), got {tuple(clips.shape)}")
        b, k = len(clips), self.frames_per_clip
        pick = torch.rand(b, self.frames, device=clips.device).argsort(dim=1)[:, :k]   # k distinct frames
        frames = clips.transpose(1, 2)[torch.arange(b, device=clips.device)[:, None], pick]  # (B, k, C, H, W)
        frame_logits = self.frame_critic(frames.flatten(0, 1)).reshape(b, k).mean(dim=1)
        return torch.stack([frame_logits, self.clip_critic(clips)], dim=1)


def _motion_path(cell: nn.GRUCell, eps: torch.Tensor) -> torch.Tensor:
    """Run ``cell`` over innovations ``eps`` ``(B, T, d)`` from a zero state: ``(B, T, d)`` states."""
    m = torch.zeros(eps.shape[0], cell.hidden_size, device=eps.device, dtype=eps.dtype)
    path = []
    for t in range(eps.shape[1]):  # a recurrence over T small steps
        m = cell(eps[:, t], m)
        path.append(m)
    return torch.stack(path, dim=1)


class MovingImageGenerator(_Sampler):
    r"""Draw one image per clip, then move it: :math:`x_t = \mathrm{shift}(G_{\rm img}(z_c), o_t)`.

    The latent has MoCoGAN's layout (:class:`MotionContentGenerator`): a content code :math:`z_c`
    of width ``content_dim``, then one motion innovation :math:`\epsilon_t` of width ``motion_dim``
    per frame. The content code alone goes through a DCGAN :class:`Generator`, **once per clip**
    (a batch of ``B`` images, not ``B*T``). A GRU turns the innovations into motion states
    :math:`m_t = \mathrm{GRU}(\epsilon_t, m_{t-1})`, a linear layer and ``tanh`` into offsets
    :math:`o_t = \tanh(W m_t + b) \in (-1, 1)^2` (fractions of half the frame, ``affine_grid``'s
    units: 1 moves by half a frame), and frame :math:`t` is the image resampled bilinearly at
    :math:`p - o_t`, i.e. moved by :math:`o_t`, with black (-1) entering at the borders:

    .. math:: x_t(p) = I(p - o_t), \qquad I = G_{\rm img}(z_c).

    Why (lesson 04): the appearance part of the problem is then exactly an image GAN's, with one
    image per latent, and every frame is a copy of the same drawing, so shape and colour cannot
    change along the clip; only the path is left to the motion code. The offsets start small
    (``offset_init_std``), so training starts from nearly still clips. Learned this way, motion is
    rigid translation: shapes cannot rotate or deform, and a shape pushed past the border is cut off
    (real shapes bounce) -- a clip critic would have to teach that.
    """

    def __init__(self, content_dim: int = 48, motion_dim: int = 16, channels: int = 3, frames: int = 16,
                 image_size: int = 32, width: int = 32, offset_init_std: float = 0.02):
        super().__init__()
        for name, value in [("content_dim", content_dim), ("motion_dim", motion_dim), ("frames", frames)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if offset_init_std < 0:
            raise ValueError(f"offset_init_std is a standard deviation and must be >= 0, got {offset_init_std}")
        self.content_dim, self.motion_dim, self.frames = content_dim, motion_dim, frames
        self.latent_dim = content_dim + frames * motion_dim
        self.channels, self.image_size = channels, image_size
        self.image_generator = Generator(content_dim, channels, image_size, width)
        self.image_generator.apply(dcgan_init)
        self.motion = nn.GRUCell(motion_dim, motion_dim)
        self.to_offset = nn.Linear(motion_dim, 2)
        nn.init.normal_(self.to_offset.weight, 0.0, offset_init_std)
        nn.init.zeros_(self.to_offset.bias)

    def offsets(self, z: torch.Tensor) -> torch.Tensor:
        r"""The path :math:`o_1, \dots, o_T` of latents ``z``: ``(B, T, 2)`` as (x, y), in (-1, 1)."""
        _check_latent(z, self.latent_dim, "MovingImageGenerator")
        eps = z[:, self.content_dim:].reshape(len(z), self.frames, self.motion_dim)
        return torch.tanh(self.to_offset(_motion_path(self.motion, eps)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_latent(z, self.latent_dim, "MovingImageGenerator")
        b, t = len(z), self.frames
        image = (self.image_generator(z[:, :self.content_dim]) + 1) / 2          # (B, C, H, W), black = 0
        offsets = self.offsets(z).reshape(b * t, 2)
        theta = torch.zeros(b * t, 2, 3, device=z.device, dtype=image.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, :, 2] = -offsets.to(image.dtype)                                # sample at p - o_t
        source = image.repeat_interleave(t, dim=0)                                # (B*T, C, H, W)
        grid = F.affine_grid(theta, list(source.shape), align_corners=False)
        frames = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return (frames * 2 - 1).reshape(b, t, *frames.shape[1:]).transpose(1, 2)  # (B, C, T, H, W)


class FrameDiscriminator(nn.Module):
    """A frame critic for clips: one DCGAN :class:`Discriminator` judges frames, ``(B, k)`` logits.

    Each frame is judged on its own, as an image GAN judges images, so it sees looks (is there a
    sharp coloured shape?) and is blind to motion. ``frames_per_clip=k`` judges ``k`` distinct
    frames drawn at random from each clip (``None``: all ``T``, in order), which lets a batch hold
    more clips for the same cost. Every loss of :mod:`vdlearn.gan.losses` averages over all
    logits. Weights start from :func:`dcgan_init`.
    """

    def __init__(self, channels: int = 3, frames: int = 16, image_size: int = 32, width: int = 32,
                 frames_per_clip: int | None = None, spectral_norm: bool = False, minibatch_std: bool = False):
        super().__init__()
        if not isinstance(frames, int) or frames < 1:
            raise ValueError(f"frames must be a positive int, got {frames!r}")
        if frames_per_clip is not None and (not isinstance(frames_per_clip, int)
                                            or not 1 <= frames_per_clip <= frames):
            raise ValueError(f"frames_per_clip must be None (all frames) or an int in [1, frames={frames}], "
                             f"got {frames_per_clip!r}")
        self.channels, self.frames, self.image_size = channels, frames, image_size
        self.frames_per_clip = frames_per_clip
        self.frame_critic = Discriminator(channels, image_size, width, spectral_norm=spectral_norm,
                                          minibatch_std=minibatch_std)
        self.frame_critic.apply(dcgan_init)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.ndim != 5 or clips.shape[1:] != (self.channels, self.frames, self.image_size, self.image_size):
            raise ValueError(f"expected clips (B, {self.channels}, {self.frames}, {self.image_size}, "
                             f"{self.image_size}), got {tuple(clips.shape)}; build the generator and the "
                             "discriminator with the same channels, frames and image_size")
        b, frames = len(clips), clips.transpose(1, 2)                             # (B, T, C, H, W)
        if self.frames_per_clip is not None and self.frames_per_clip < self.frames:
            pick = torch.rand(b, self.frames, device=clips.device).argsort(dim=1)[:, :self.frames_per_clip]
            frames = frames[torch.arange(b, device=clips.device)[:, None], pick]  # (B, k, C, H, W)
        return self.frame_critic(frames.flatten(0, 1)).reshape(b, frames.shape[1])
