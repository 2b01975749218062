"""GAN generators and discriminators (lessons 03 and 04).

- :class:`MLPGenerator`, :class:`MLPDiscriminator`: small networks for 2-D toy data (lesson 03).
  The discriminator can *pack* several samples into one decision (PacGAN, Lin et al. 2018),
  which lets it see a whole set of samples and so penalise a generator that collapses.
- :class:`Generator`, :class:`Discriminator`: DCGAN (Radford et al. 2016) for images
  ``(B, C, H, W)`` in [-1, 1]: transposed convolutions with batch norm up, strided
  convolutions with LeakyReLU down; optional spectral normalisation (Miyato et al. 2018).
- the video GANs are in :mod:`vdlearn.gan.video_models`.

Every generator has ``latent_dim`` and ``sample(n)``; every pair can be checked for agreement
with :func:`check_pair`. Sizes: an image side must be ``b * 2**k`` with a base ``b`` of 3 to 7
(28 = 7*4, 32 = 4*8, 64 = 4*16).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _sn

__all__ = [
    "MLPGenerator",
    "MLPDiscriminator",
    "Generator",
    "Discriminator",
    "check_pair",
    "dcgan_init",
    "MinibatchStd",
]


def _base_and_steps(size: int, what: str = "image_size") -> tuple[int, int]:
    """Split ``size = base * 2**steps`` with 3 <= base <= 7 (28 -> (7, 2), 32 -> (4, 3))."""
    if not isinstance(size, int) or size < 6:
        raise ValueError(f"{what} must be an int of at least 6, got {size!r}")
    base, steps = size, 0
    while base % 2 == 0 and base > 7:
        base, steps = base // 2, steps + 1
    if base > 7 or steps == 0:
        raise ValueError(
            f"{what}={size} cannot be reached by doubling a side of 3 to 7 pixels; use a size "
            "such as 28 (7*4), 32 (4*8), 48 (6*8) or 64 (4*16)"
        )
    return base, steps


_CONV_OR_LINEAR = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
_BATCH_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation (Radford et al. 2016): weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02).

    Use with ``model.apply(dcgan_init)``; the video networks apply it themselves. (The image
    networks keep PyTorch's default initialisation, which trained better on the course's digits.)
    """
    if isinstance(module, _CONV_OR_LINEAR):
        weight = (module.parametrizations.weight.original if parametrize.is_parametrized(module, "weight")
                  else module.weight)
        nn.init.normal_(weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, _BATCH_NORM):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _maybe_sn(layer: nn.Module, on: bool) -> nn.Module:
    return _sn(layer) if on else layer


def _check_latent(z: torch.Tensor, latent_dim: int, who: str) -> None:
    if z.dim() != 2 or z.shape[1] != latent_dim:
        raise ValueError(
            f"{who} expects latents of shape (batch, {latent_dim}), got {tuple(z.shape)}; "
            f"sample them with torch.randn(batch, {latent_dim}) or use .sample(batch)"
        )


def _check_input(x: torch.Tensor, expected: tuple[int, ...], who: str, hint: str) -> None:
    if tuple(x.shape[1:]) != expected:
        raise ValueError(f"{who} was built for inputs of shape (batch, {', '.join(map(str, expected))}), "
                         f"got {tuple(x.shape)}. {hint}")


class _Sampler(nn.Module):
    latent_dim: int

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples from :math:`G(z)`, :math:`z \\sim \\mathcal{N}(0, I)` (``generator`` seeds z)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator,
                        device=generator.device if generator is not None else device)
        return self(z.to(device))


class MinibatchStd(nn.Module):
    """Append one feature: the standard deviation across a group of samples (Karras et al. 2018).

    Features ``(B, F)`` are split into groups of ``group_size`` samples; the per-feature standard
    deviation over each group, averaged over features, is appended to every sample of that group:
    ``(B, F + 1)``. A generator that makes the same sample again and again (mode collapse) gives a
    standard deviation near 0, which real batches never have, so the discriminator can reject it.
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        g = min(self.group_size, b)
        while b % g:
            g -= 1
        groups = x.reshape(g, b // g, -1)                             # sample i*(b//g) + m is in group m
        std = (groups.var(0, unbiased=False) + 1e-8).sqrt().mean(1)   # (b // g,)
        return torch.cat([x.flatten(1), std.repeat(g)[:, None]], dim=1)


# --------------------------------------------------------------------------- 2-D toy data
class MLPGenerator(_Sampler):
    """:math:`G: \\mathbb{R}^{\\text{latent}} \\to \\mathbb{R}^{\\text{data}}`, an MLP with ReLU."""

    def __init__(self, latent_dim: int = 2, data_dim: int = 2, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.latent_dim, self.data_dim = latent_dim, data_dim
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, data_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_latent(z, self.latent_dim, "MLPGenerator")
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """:math:`D: \\mathbb{R}^{\\text{data}} \\to` logit, an MLP with LeakyReLU.

    With ``pack=m`` (PacGAN) the batch ``(B, data_dim)`` is read as ``B/m`` groups of ``m``
    samples, each group concatenated into one input, and one logit comes out per group.
    """

    def __init__(self, data_dim: int = 2, hidden: int = 128, depth: int = 3, pack: int = 1,
                 spectral_norm: bool = False):
        super().__init__()
        if pack < 1:
            raise ValueError(f"pack must be >= 1, got {pack}")
        self.data_dim, self.pack = data_dim, pack
        layers: list[nn.Module] = []
        width = data_dim * pack
        for _ in range(depth):
            layers += [_maybe_sn(nn.Linear(width, hidden), spectral_norm), nn.LeakyReLU(0.2)]
            width = hidden
        self.net = nn.Sequential(*layers, _maybe_sn(nn.Linear(width, 1), spectral_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.data_dim:
            raise ValueError(f"MLPDiscriminator expects (batch, {self.data_dim}), got {tuple(x.shape)}")
        if x.shape[0] % self.pack:
            raise ValueError(f"with pack={self.pack} the batch size must be a multiple of "
                             f"{self.pack}, got {x.shape[0]}")
        return self.net(x.reshape(-1, self.data_dim * self.pack)).squeeze(1)


# --------------------------------------------------------------------------- images (DCGAN)
class Generator(_Sampler):
    """DCGAN generator: :math:`z \\to` linear to ``(C0, b, b)``, then ``k`` transposed-conv doublings.

    Channels halve at each doubling, from ``width * 2**(k-1)`` down to ``width``; the output is
    ``tanh`` so images are in [-1, 1].
    """

    def __init__(self, latent_dim: int = 64, channels: int = 1, image_size: int = 28, width: int = 64):
        super().__init__()
        base, steps = _base_and_steps(image_size)
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        c = width * 2 ** (steps - 1)
        self.project = nn.Sequential(nn.Linear(latent_dim, c * base * base, bias=False),
                                     nn.Unflatten(1, (c, base, base)), nn.BatchNorm2d(c), nn.ReLU(True))
        blocks: list[nn.Module] = []
        for _ in range(steps - 1):
            blocks += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        blocks += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_latent(z, self.latent_dim, "Generator")
        return self.blocks(self.project(z))


class Discriminator(nn.Module):
    """DCGAN discriminator: ``k`` strided 4x4 convolutions (channels double), then a linear logit.

    No batch norm (so the R1 penalty and packing are well defined); ``spectral_norm=True``
    constrains every layer's largest singular value to 1; ``minibatch_std=True`` appends the
    :class:`MinibatchStd` feature, which lets the discriminator see a lack of diversity.
    """

    def __init__(self, channels: int = 1, image_size: int = 28, width: int = 64, spectral_norm: bool = False,
                 minibatch_std: bool = False):
        super().__init__()
        base, steps = _base_and_steps(image_size)
        self.channels, self.image_size = channels, image_size
        layers: list[nn.Module] = []
        c_in, c = channels, width
        for _ in range(steps):
            layers += [_maybe_sn(nn.Conv2d(c_in, c, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2, True)]
            c_in, c = c, c * 2
        self.features = nn.Sequential(*layers, nn.Flatten(), *([MinibatchStd()] if minibatch_std else []))
        self.head = _maybe_sn(nn.Linear(c_in * base * base + int(minibatch_std), 1), spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, (self.channels, self.image_size, self.image_size), "Discriminator",
                     "Build the generator and discriminator with the same channels and image_size.")
        return self.head(self.features(x)).squeeze(1)


def check_pair(generator: nn.Module, discriminator: nn.Module) -> None:
    """Raise a ``ValueError`` unless the generator makes what the discriminator was built to read."""
    for name in ("channels", "image_size", "frames", "data_dim"):
        g, d = getattr(generator, name, None), getattr(discriminator, name, None)
        if g is not None and d is not None and g != d:
            raise ValueError(
                f"the generator makes {name}={g} but the discriminator was built for {name}={d}; "
                f"build both with the same {name}"
            )
    if hasattr(generator, "frames") != hasattr(discriminator, "frames"):
        raise ValueError("one network is for video and the other for images: pair a VideoGenerator "
                         "with a VideoDiscriminator and a Generator with a Discriminator")
