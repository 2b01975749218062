"""Training a GAN: two networks, two optimisers, alternating steps (lessons 03 and 04).

Each step first updates the discriminator ``d_steps`` times on a real batch and a batch of
detached fakes, then the generator once on fresh fakes (Goodfellow et al. 2014, Algorithm 1):

.. math:: \\theta_D \\leftarrow \\theta_D - \\eta\\nabla_{\\theta_D}\\big(L_D + \\tfrac{\\gamma}{2}R_1\\big), \\qquad
          \\theta_G \\leftarrow \\theta_G - \\eta\\nabla_{\\theta_G} L_G

with the losses of :mod:`vdlearn.gan.losses` and Adam with :math:`\\beta_1 = 0.5` (DCGAN's choice).
A GAN step is only a different *step*: batches, checkpoints, exact resume, the EMA of the
generator (the course's one bias-corrected rule, :mod:`vdlearn.train.ema`), the history and the
progress bar are :func:`vdlearn.train.training_loop`'s, as for :func:`vdlearn.train.fit`.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.utils.data import Dataset

from ..gan.losses import check_loss_name, discriminator_loss, generator_loss, r1_penalty
from ..gan.models import check_pair
from ..runtime import autocast, dry_run_batch, get_device
from .loop import LoopResult, training_loop

__all__ = ["GANResult", "train_gan"]


@dataclass(kw_only=True)
class GANResult(LoopResult):
    """What :func:`train_gan` returns: both networks, the generator's EMA copy (or None), the history."""

    generator: nn.Module
    discriminator: nn.Module

    @property
    def ema_generator(self) -> nn.Module | None:
        """The EMA of the generator's weights (None without ``ema_decay``)."""
        return self.ema_model

    @property
    def best_generator(self) -> nn.Module:
        """The EMA generator when there is one (its samples are smoother), else the trained one."""
        return self.ema_generator if self.ema_generator is not None else self.generator


def _real(batch: Any) -> torch.Tensor:
    """The data tensor of a batch: ``(images, labels)`` batches give their images."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Skip the parameter gradients of ``module`` (its input gradients still flow)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(module.parameters(), flags):
            p.requires_grad_(f)


def _grad_norm(module: nn.Module) -> torch.Tensor:
    grads = [p.grad.detach().float().norm() for p in module.parameters() if p.grad is not None]
    return torch.stack(grads).norm() if grads else torch.zeros(())


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    data: Dataset | torch.Tensor,
    *,
    num_steps: int,
    batch_size: int = 64,
    lr: float = 2e-4,
    lr_d: float | None = None,
    betas: tuple[float, float] = (0.5, 0.999),
    loss: str = "nonsaturating",
    r1_gamma: float = 0.0,
    d_steps: int = 1,
    instance_noise: float | tuple[float, float] = 0.0,
    ema_decay: float | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    log_every: int = 10,
    progress: bool = True,
    callback: Callable[[int, nn.Module], None] | None = None,
) -> GANResult:
    """Train ``generator`` against ``discriminator`` on ``data`` for ``num_steps`` generator steps.

    ``data`` is a Dataset (``get_batch`` is used when present; ``(x, label)`` items give ``x``)
    or a tensor of examples. ``loss`` is ``"minimax"``, ``"nonsaturating"`` or ``"hinge"``;
    ``r1_gamma > 0`` adds :math:`\\tfrac{\\gamma}{2} R_1` to the discriminator's loss; ``lr_d``
    defaults to ``lr``. ``instance_noise = s > 0`` adds :math:`\\mathcal N(0, s^2)` noise to every
    input of the discriminator, real and generated (Sønderby et al. 2016): data whose pixels sit
    exactly on a few values (a black background) and a generator's output then overlap, so the
    discriminator cannot win by telling exact values apart, and its gradient stays informative.
    ``instance_noise = (s0, s1)`` anneals the standard deviation linearly from ``s0`` at the first
    step to ``s1`` at the last: coarse shapes first, details later. The history logs, averaged over each ``log_every`` steps: ``d_loss``,
    ``g_loss``, ``d_real`` and ``d_fake`` (the mean :math:`\\sigma(l)` on real and fake
    inputs), ``g_grad_norm`` and, with R1, ``r1``. ``callback(step, generator)`` runs at each log.
    """
    check_loss_name(loss)
    check_pair(generator, discriminator)
    if num_steps < 0 or d_steps < 1:
        raise ValueError(f"need num_steps >= 0 and d_steps >= 1, got {num_steps} and {d_steps}")
    if r1_gamma < 0:
        raise ValueError(f"r1_gamma must be >= 0, got {r1_gamma}")
    noise_from, noise_to = (instance_noise, instance_noise) if isinstance(instance_noise, (int, float)) \
        else tuple(instance_noise)
    if noise_from < 0 or noise_to < 0:
        raise ValueError(f"instance_noise is a standard deviation (or a pair: first and last) and must be >= 0, "
                         f"got {instance_noise}")
    device = torch.device(device) if device is not None else get_device()
    generator.to(device)
    discriminator.to(device)
    if device.type == "cuda" and getattr(discriminator, "image_size", None) and not hasattr(discriminator, "frames"):
        generator.to(memory_format=torch.channels_last)
        discriminator.to(memory_format=torch.channels_last)
    fused = True if device.type == "cuda" else None
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas, fused=fused)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d or lr, betas=betas, fused=fused)
    config: dict[str, Any] = {"loss": loss, "r1_gamma": r1_gamma, "d_steps": d_steps, "lr": lr, "lr_d": lr_d,
                              "betas": list(betas)}
    if noise_from or noise_to:
        config["instance_noise"] = [float(noise_from), float(noise_to)]
    if noise_from != noise_to:   # the annealing depends on the run's length: resume only to the same end
        config["num_steps"] = num_steps
    latent_dim = generator.latent_dim
    used = dry_run_batch(batch_size)  # the examples of a batch a step uses (few in a dry run)

    def step(s: int, batches: list[Any]) -> dict[str, torch.Tensor]:
        logs: dict[str, torch.Tensor] = {}
        noise_std = noise_from + (noise_to - noise_from) * s / max(1, num_steps - 1)

        def noisy(x: torch.Tensor) -> torch.Tensor:
            return x + noise_std * torch.randn_like(x) if noise_std else x

        # ---- discriminator: minimise L_D (+ gamma/2 R1) on real data and detached fakes
        for batch in batches:
            real = _real(batch)
            if real.shape[0] != used:
                raise ValueError(f"the data gave a batch of shape {tuple(real.shape)}; expected "
                                 f"{used} examples")
            z = torch.randn(used, latent_dim, device=device)
            if r1_gamma > 0:
                real = real.detach().requires_grad_(True)
            with autocast(device):
                with torch.no_grad():
                    fake = generator(z)
                real_logits, fake_logits = discriminator(noisy(real)), discriminator(noisy(fake))
                d_loss = discriminator_loss(real_logits, fake_logits, loss)
                total = d_loss
                if r1_gamma > 0:
                    r1 = r1_penalty(real_logits, real)
                    total = d_loss + 0.5 * r1_gamma * r1
                    logs["r1"] = r1.detach()
            opt_d.zero_grad(set_to_none=True)
            total.backward()
            opt_d.step()
        logs["d_loss"] = d_loss.detach()
        logs["d_real"] = torch.sigmoid(real_logits.detach().float()).mean()
        logs["d_fake"] = torch.sigmoid(fake_logits.detach().float()).mean()
        # ---- generator: minimise L_G through a frozen discriminator
        z = torch.randn(used, latent_dim, device=device)
        with _frozen(discriminator), autocast(device):
            g_loss = generator_loss(discriminator(noisy(generator(z))), loss)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        logs["g_grad_norm"] = _grad_norm(generator)
        opt_g.step()
        logs["g_loss"] = g_loss.detach()
        return logs

    def finite(key: str, value: float, at: int) -> str | None:
        if key not in ("d_loss", "g_loss"):
            return None
        who = "discriminator" if key == "d_loss" else "generator"
        return (f"the {who} loss became {value} at step {at}. The game diverged: lower the learning rate "
                f"(lr={lr} now), use the 'nonsaturating' or 'hinge' loss, add an R1 penalty (r1_gamma=1.0) "
                "or spectral_norm=True in the discriminator, and check that the data is finite and in [-1, 1].")

    result = training_loop(
        step, data, modules={"generator": generator, "discriminator": discriminator},
        optimizers={"generator": opt_g, "discriminator": opt_d}, num_steps=num_steps, batch_size=batch_size,
        seed=seed, device=device, config=config, batches_per_step=d_steps, ema_of="generator",
        ema_decay=ema_decay, finite=finite, checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every,
        log_every=log_every, progress=progress, desc="GAN training", callback=callback)
    return GANResult(generator=generator, discriminator=discriminator, **vars(result))
