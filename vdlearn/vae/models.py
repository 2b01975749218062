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

:func:`vae_loss` is the ``loss_fn`` for :func:`vdlearn.train.fit`; :func:`evaluate_elbo` measures the
negative ELBO of held-out data in nats and bits per dimension.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .objectives import (LOG_2PI, ELBOTerms, bits_per_dim, elbo, gaussian_log_likelihood,
                         log_mean_exp, reparameterize)

__all__ = [
    "VAEOutput",
    "VAE",
    "MLPVAE",
    "ConvVAE",
    "FrameVAE",
    "vae_loss",
    "evaluate_elbo",
    "calibrate_scaling_factor",
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


def _group_norm(channels: int) -> nn.GroupNorm:
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0 and channels // g >= 4 or g == 1)
    return nn.GroupNorm(groups, channels)


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


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv3×3, twice, plus a (1×1 when needed) skip connection."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.block = nn.Sequential(_group_norm(cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1),
                                   _group_norm(cout), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.block(x)


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
        enc += [ResBlock(chans[-1], chans[-1]), _group_norm(chans[-1]), nn.SiLU(),
                nn.Conv2d(chans[-1], 2 * latent_channels, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = [nn.Conv2d(latent_channels, chans[-1], 3, padding=1),
                                ResBlock(chans[-1], chans[-1])]
        for i in reversed(range(levels)):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(chans[i + 1], chans[i], 3, padding=1), ResBlock(chans[i], chans[i])]
        dec += [_group_norm(chans[0]), nn.SiLU(), nn.Conv2d(chans[0], in_channels, 3, padding=1)]
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

def _images(batch: Any) -> torch.Tensor:
    """The images of a batch: the first item of (images, labels); videos (B, C, T, H, W) become frames."""
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"a batch must be a tensor or (tensor, labels); got {type(x).__name__}")
    if x.ndim == 5:
        x = x.transpose(1, 2).flatten(0, 1)
    return x


def vae_loss(model: nn.Module, batch: Any, *, beta: float = 1.0,
             binarize: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The ``loss_fn`` for :func:`vdlearn.train.fit`: :math:`\\operatorname{mean}[-\\log p(x|z) + \\beta\\,\\mathrm{KL}]`.

    ``batch`` is images (B, C, H, W), videos (B, C, T, H, W) (trained as frames) or (images, labels).
    ``binarize=True`` draws binary pixels :math:`x\\sim\\mathrm{Bernoulli}((x+1)/2)` afresh each time
    (dynamic binarisation), so a Bernoulli decoder's ELBO bounds a true log-probability.
    Logs ``neg_elbo``, ``recon``, ``kl`` (nats per example).
    """
    x = _images(batch)
    target = model.targets(x)
    if binarize:
        if model.likelihood != "bernoulli":
            raise ValueError("binarize=True needs a Bernoulli likelihood; this model is "
                             f"{model.likelihood!r}")
        target = torch.bernoulli(target)
        x = target * 2 - 1
    out = model(x)
    terms = elbo(target, out.decoder_out, out.mu, out.logvar, likelihood=model.likelihood,
                 obs_logvar=model.obs_logvar_value(), beta=beta)
    return terms.loss, terms.metrics()


@torch.no_grad()
def evaluate_elbo(model: VAE, data: Any, *, batch_size: int = 256, binarize_seed: int | None = None,
                  num_samples: int = 1, importance_samples: int = 0,
                  max_examples: int | None = None) -> dict[str, float]:
    """The negative ELBO of ``data`` (a Dataset or tensor), averaged per example (nats) and per dimension.

    ``binarize_seed`` binarises each pixel once with that seed (a fixed binarised test set).
    ``num_samples`` averages the one-sample ELBO over several :math:`z`.
    ``importance_samples`` K > 0 also reports the importance-weighted bound (IWAE, Burda et al. 2016)

    .. math:: -\\log p(x) \\le -\\log\\frac1K\\sum_k \\frac{p(x|z_k)p(z_k)}{q(z_k|x)} \\le -\\mathcal L(x)

    as ``neg_log_likelihood_iw``: a tighter estimate of :math:`-\\log p(x)`.
    Returns ``neg_elbo`` and ``bits_per_dim`` (and ``recon``, ``kl``, ``num_examples``).
    """
    from ..train import make_batch  # a sibling helper: how fit() itself builds batches

    model.eval()
    device = next(model.parameters()).device
    n = len(data) if max_examples is None else min(len(data), max_examples)
    if n < 1:
        raise ValueError("evaluate_elbo needs at least one example; the data (or max_examples) is empty")
    g = torch.Generator().manual_seed(binarize_seed) if binarize_seed is not None else None
    sums = {"neg_elbo": 0.0, "recon": 0.0, "kl": 0.0, "neg_log_likelihood_iw": 0.0}
    num_dims = 0
    for start in range(0, n, batch_size):
        x = _images(make_batch(data, torch.arange(start, min(start + batch_size, n)))).to(device)
        target = model.targets(x)
        if g is not None:
            target = torch.bernoulli(target.cpu(), generator=g).to(device)
            x = target * 2 - 1
        for _ in range(num_samples):
            terms = model.elbo_terms(x, target=target)
            sums["neg_elbo"] += -terms.elbo.sum().item() / num_samples
            sums["recon"] += -terms.log_likelihood.sum().item() / num_samples
            sums["kl"] += terms.kl.sum().item() / num_samples
        num_dims = terms.num_dims
        if importance_samples:
            sums["neg_log_likelihood_iw"] += -_iw_bound(model, x, target, importance_samples).sum().item()
    out = {k: v / n for k, v in sums.items()}
    if not importance_samples:
        out.pop("neg_log_likelihood_iw")
    out["bits_per_dim"] = float(bits_per_dim(out["neg_elbo"], num_dims))
    out["num_examples"] = n
    return out


def _iw_bound(model: VAE, x: torch.Tensor, target: torch.Tensor, K: int) -> torch.Tensor:
    """:math:`\\log\\frac1K\\sum_k p(x|z_k)p(z_k)/q(z_k|x)` per example (the IWAE bound)."""
    mu, logvar = model.encode(x)
    log_w = []
    for _ in range(K):
        z = reparameterize(mu, logvar)
        if model.likelihood == "bernoulli":
            logits = model.decode(z)
            ll = -F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)
        else:
            ll = gaussian_log_likelihood(target, model.decode(z), model.obs_logvar_value())
        log_pz = -0.5 * (LOG_2PI + z.pow(2)).flatten(1).sum(1)
        log_qz = -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).flatten(1).sum(1)
        log_w.append(ll + log_pz - log_qz)
    return log_mean_exp(torch.stack(log_w), dim=0)


@torch.no_grad()
def calibrate_scaling_factor(vae: FrameVAE, data: Any, *, num_examples: int = 512,
                             batch_size: int = 128) -> float:
    """Set ``vae.scaling_factor`` to :math:`1/\\operatorname{std}(z)` over the posterior means of
    ``data`` (frames, videos or a Dataset of them) and return it (lesson 09).

    Diffusion models add noise of unit variance; latents scaled to unit variance keep the noise
    schedule's signal-to-noise ratios as designed.
    """
    from ..train import make_batch

    vae.eval()
    device = next(vae.parameters()).device
    n = min(len(data), num_examples)
    if n == 0:
        raise ValueError("calibrate_scaling_factor needs at least one example; the data is empty")
    latents = []
    for start in range(0, n, batch_size):
        x = _images(make_batch(data, torch.arange(start, min(start + batch_size, n)))).to(device)
        latents.append(vae.encode(x)[0].float().cpu())
    std = torch.cat(latents).std().item()
    vae.scaling_factor.fill_(1.0 / std)
    return 1.0 / std
