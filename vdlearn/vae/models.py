"""VAE models: an MLP VAE for 2-D toy data, a ConvVAE for small images, a FrameVAE for video frames.

Every model has the same interface (lessons 01, 02 and 09):

* ``encode(x) -> (mu, logvar)``: the encoder :math:`q(z|x) = \\mathcal N(\\mu, \\operatorname{diag} e^{\\text{logvar}})`;
* ``decode(z)``: the decoder's raw output (Bernoulli *logits*, or the Gaussian *mean*);
* ``forward(x) -> VAEOutput(decoder_out, mu, logvar, z)`` with one reparameterised sample ``z``;
* ``decode_mean(z)``: the decoder's mean in the data's own range ([-1, 1] for images);
* ``sample(n)``, ``reconstruct(x)``; ``targets(x)`` turns a batch into likelihood targets.

Images come in as (B, C, H, W) in [-1, 1] (the course convention). A Bernoulli decoder's targets
are :math:`(x+1)/2 \\in [0, 1]`; a Gaussian decoder models :math:`x` directly with one learned
observation variance :math:`\\sigma^2` (a calibrated decoder, Rybkin et al. 2021), so its ELBO is
a real bound rather than a mean-squared error with a hand-tuned weight.

Training and evaluating them on data (the loss for ``fit``, held-out bounds, latent scaling) is
:mod:`vdlearn.vae.fitting`.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ..nn.blocks import ResBlock, group_norm
from .objectives import ELBOTerms, elbo, reparameterize

__all__ = [
    "VAEOutput",
    "VAE",
    "MLPVAE",
    "ConvVAE",
    "FrameVAE",
]

LOGVAR_RANGE = (-30.0, 20.0)  # keeps exp(logvar) finite in float32


class VAEOutput(NamedTuple):
    """What ``model(x)`` returns."""

    decoder_out: torch.Tensor  #: Bernoulli logits or Gaussian mean, shaped like the input
    mu: torch.Tensor           #: posterior means
    logvar: torch.Tensor       #: posterior log-variances
    z: torch.Tensor            #: one reparameterised sample


class VAE(nn.Module):
    """The shared interface; subclasses define ``encoder``/``decoder`` pieces in ``encode``/``decode``."""

    likelihood: str

    def __init__(self, likelihood: str, obs_logvar_shape: tuple[int, ...] = (),
                 init_obs_std: float = 0.1):
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        self.likelihood = likelihood
        #: log sigma^2 of the Gaussian decoder, learned with the rest (None for Bernoulli)
        self.obs_logvar = (nn.Parameter(torch.full(obs_logvar_shape, 2 * math.log(init_obs_std)))
                           if likelihood == "gaussian" else None)

    # -- to be provided by subclasses ---------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    @property
    def latent_shape(self) -> tuple[int, ...]:  # pragma: no cover
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        """Subclasses check the input's shape here (with an error that says what to do)."""

    def forward(self, x: torch.Tensor) -> VAEOutput:
        """Encode, draw one :math:`z = \\mu + \\sigma\\epsilon`, decode."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        return VAEOutput(self.decode(z), mu, logvar, z)

    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """The likelihood's targets for inputs ``x``: :math:`(x+1)/2` (Bernoulli) or ``x`` (Gaussian)."""
        return (x + 1) / 2 if self.likelihood == "bernoulli" else x

    def obs_logvar_value(self) -> torch.Tensor | float:
        """The Gaussian decoder's :math:`\\log\\sigma^2`, kept at or above log(1e-6)."""
        return self.obs_logvar.clamp(min=math.log(1e-6)) if self.obs_logvar is not None else 0.0

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean in data range: :math:`2\\,\\mathrm{sigmoid}(\\ell)-1` or the Gaussian mean."""
        out = self.decode(z)
        return torch.sigmoid(out) * 2 - 1 if self.likelihood == "bernoulli" else out

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """``n`` samples: :math:`z\\sim\\mathcal N(0, T^2 I)`, then the decoder's mean."""
        device = next(self.parameters()).device
        z = torch.randn((n, *self.latent_shape), generator=generator).to(device) * temperature
        return self.decode_mean(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean of each input (the usual 'reconstruction' picture)."""
        mu, _ = self.encode(x)
        return self.decode_mean(mu)

    def elbo_terms(self, x: torch.Tensor, *, beta: float = 1.0,
                   target: torch.Tensor | None = None) -> ELBOTerms:
        """The ELBO's terms for inputs ``x`` (one sample of ``z`` per input)."""
        out = self(x)
        return elbo(self.targets(x) if target is None else target, out.decoder_out, out.mu,
                    out.logvar, likelihood=self.likelihood, obs_logvar=self.obs_logvar_value(),
                    beta=beta)


class MLPVAE(VAE):
    """A VAE for vectors (lesson 01's 2-D toy data): MLP encoder and a Gaussian MLP decoder.

    The decoder's variance is one learned :math:`\\sigma^2_i` per data dimension.
    """

    def __init__(self, data_dim: int = 2, latent_dim: int = 2, hidden: int = 64, depth: int = 2,
                 likelihood: str = "gaussian"):
        super().__init__(likelihood, (data_dim,), init_obs_std=0.3)
        self.data_dim, self.latent_dim = data_dim, latent_dim

        def mlp(i: int, o: int) -> nn.Sequential:
            layers: list[nn.Module] = []
            for j in range(depth):
                layers += [nn.Linear(i if j == 0 else hidden, hidden), nn.SiLU()]
            return nn.Sequential(*layers, nn.Linear(hidden, o))

        self.encoder, self.decoder = mlp(data_dim, 2 * latent_dim), mlp(latent_dim, data_dim)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.latent_dim,)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 2 or x.shape[1] != self.data_dim:
            raise ValueError(f"MLPVAE expects a batch (B, {self.data_dim}); got {tuple(x.shape)}")
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class ConvVAE(VAE):
    """A convolutional VAE with a vector latent for small images (lesson 02: 28×28 digits, 32×32 frames).

    Encoder: two stride-2 convolutions (H → H/4) and an MLP to :math:`(\\mu, \\log\\sigma^2)\\in
    \\mathbb R^{2L}`; the decoder mirrors it with transposed convolutions.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, latent_dim: int = 16,
                 width: int = 32, hidden: int = 256, likelihood: str = "bernoulli"):
        super().__init__(likelihood)
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4 (two stride-2 stages); got {image_size}")
        self.in_channels, self.image_size, self.latent_dim = in_channels, image_size, latent_dim
        s, w = image_size // 4, width
        self._feature_shape = (2 * w, s, s)
        act = nn.SiLU
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), act(),
            nn.Conv2d(w, w, 4, stride=2, padding=1), act(),            # H/2
            nn.Conv2d(w, 2 * w, 3, padding=1), act(),
            nn.Conv2d(2 * w, 2 * w, 4, stride=2, padding=1), act(),    # H/4
            nn.Flatten(), nn.Linear(2 * w * s * s, hidden), act(),
            nn.Linear(hidden, 2 * latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), act(),
            nn.Linear(hidden, 2 * w * s * s), act(),
            nn.Unflatten(1, self._feature_shape),
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1), act(),  # H/2
            nn.Conv2d(w, w, 3, padding=1), act(),
            nn.ConvTranspose2d(w, w, 4, stride=2, padding=1), act(),      # H
            nn.Conv2d(w, in_channels, 3, padding=1),
        )

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.latent_dim,)

    def _check_input(self, x: torch.Tensor) -> None:
        want = (self.in_channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"ConvVAE expects images (B, {want[0]}, {want[1]}, {want[2]}); got {tuple(x.shape)}. "
                "Resize the frames to image_size (e.g. load_frames(path, size=...)), or build the "
                "model with the data's channels and size."
            )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_input(x)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class FrameVAE(VAE):
    """A fully convolutional VAE that compresses each video frame to a small spatial latent (lessons 02, 09).

    A frame (C, H, W) becomes a latent (``latent_channels``, H/f, W/f) with ``downsample`` f = 4 or 8.
    ``encode_video``/``decode_video`` take whole videos (B, C, T, H, W), frame by frame, so a video
    diffusion model can work on (B, c, T, H/f, W/f) latents instead of pixels.

    ``scaling_factor`` (a buffer, saved with the weights) multiplies latents in ``encode_video`` and
    divides them in ``decode_video``; set it with :func:`calibrate_scaling_factor` so that the scaled
    latents have unit variance, as a diffusion model's noise schedule assumes (Rombach et al. 2022
    use 0.18215 for Stable Diffusion's autoencoder).
    """

    def __init__(self, in_channels: int = 3, latent_channels: int = 4, downsample: int = 4,
                 width: int = 32, image_size: int = 32, likelihood: str = "gaussian"):
        super().__init__(likelihood)
        if downsample not in (2, 4, 8, 16):
            raise ValueError(f"downsample must be 2, 4, 8 or 16 (a power of two); got {downsample}")
        if image_size % downsample:
            raise ValueError(f"image_size {image_size} must be divisible by downsample {downsample}")
        self.in_channels, self.latent_channels, self.downsample = in_channels, latent_channels, downsample
        self.image_size = image_size  # the frame size sample() decodes to; any multiple of f works
        levels = int(math.log2(downsample))
        chans = [width * min(2**i, 4) for i in range(levels + 1)]
        self.register_buffer("scaling_factor", torch.tensor(1.0))

        enc: list[nn.Module] = [nn.Conv2d(in_channels, chans[0], 3, padding=1)]
        for i in range(levels):
            enc += [ResBlock(chans[i], chans[i]), nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1)]
        enc += [ResBlock(chans[-1], chans[-1]), group_norm(chans[-1], min_group_size=4), nn.SiLU(),
                nn.Conv2d(chans[-1], 2 * latent_channels, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = [nn.Conv2d(latent_channels, chans[-1], 3, padding=1),
                                ResBlock(chans[-1], chans[-1])]
        for i in reversed(range(levels)):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(chans[i + 1], chans[i], 3, padding=1), ResBlock(chans[i], chans[i])]
        dec += [group_norm(chans[0], min_group_size=4), nn.SiLU(), nn.Conv2d(chans[0], in_channels, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """(c, h, w) of one ``image_size`` frame's latent (what :meth:`sample` draws)."""
        s = self.image_size // self.downsample
        return (self.latent_channels, s, s)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"FrameVAE.encode expects frames (B, {self.in_channels}, H, W); got "
                             f"{tuple(x.shape)}. For videos (B, C, T, H, W) use encode_video.")
        if x.shape[-1] % self.downsample or x.shape[-2] % self.downsample:
            raise ValueError(f"frame height and width must be divisible by downsample={self.downsample}; "
                             f"got {tuple(x.shape[-2:])}. Resize or crop the frames first.")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_input(x)
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 4 or z.shape[1] != self.latent_channels:
            raise ValueError(f"FrameVAE.decode expects latents (B, {self.latent_channels}, h, w); got "
                             f"{tuple(z.shape)}. For video latents (B, c, T, h, w) use decode_video.")
        if z.is_cuda:
            z = z.contiguous(memory_format=torch.channels_last)
        return self.decoder(z)

    def encode_video(self, video: torch.Tensor, *, sample: bool = False, scaled: bool = True,
                     chunk_size: int = 256, generator: torch.Generator | None = None) -> torch.Tensor:
        """Videos (B, C, T, H, W) → latents (B, c, T, H/f, W/f), frame by frame.

        ``sample=False`` returns the posterior means; ``scaled`` multiplies by ``scaling_factor``.
        """
        if video.ndim != 5 or video.shape[1] != self.in_channels:
            raise ValueError(f"encode_video expects videos (B, {self.in_channels}, T, H, W); got "
                             f"{tuple(video.shape)}. Add a batch dimension with video[None].")
        B, C, T, H, W = video.shape
        frames = video.transpose(1, 2).reshape(B * T, C, H, W)
        outs = []
        for chunk in frames.split(chunk_size):
            mu, logvar = self.encode(chunk)
            outs.append(reparameterize(mu, logvar, generator=generator) if sample else mu)
        z = torch.cat(outs)
        z = z.reshape(B, T, *z.shape[1:]).transpose(1, 2)
        return z * self.scaling_factor if scaled else z

    def decode_video(self, latents: torch.Tensor, *, scaled: bool = True,
                     chunk_size: int = 256) -> torch.Tensor:
        """Latents (B, c, T, h, w) → videos (B, C, T, h·f, w·f) in [-1, 1], frame by frame."""
        if latents.ndim != 5 or latents.shape[1] != self.latent_channels:
            raise ValueError(f"decode_video expects latents (B, {self.latent_channels}, T, h, w); got "
                             f"{tuple(latents.shape)}")
        B, c, T, h, w = latents.shape
        z = latents / self.scaling_factor if scaled else latents
        z = z.transpose(1, 2).reshape(B * T, c, h, w)
        x = torch.cat([self.decode_mean(chunk) for chunk in z.split(chunk_size)])
        x = x.reshape(B, T, *x.shape[1:]).transpose(1, 2)
        return x.clamp(-1, 1)

    def compression_ratio(self) -> float:
        """Pixel values per latent value: :math:`C f^2 / c`."""
        return self.in_channels * self.downsample**2 / self.latent_channels


# -- training and evaluation ------------------------------------------------------------------------
