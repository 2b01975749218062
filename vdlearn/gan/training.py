"""The GAN training loop: two networks, two optimisers, alternating steps (lessons 03 and 04).

Each step first updates the discriminator ``d_steps`` times on a real batch and a batch of
detached fakes, then the generator once on fresh fakes (Goodfellow et al. 2014, Algorithm 1):

.. math:: \\theta_D \\leftarrow \\theta_D - \\eta\\nabla_{\\theta_D}\\big(L_D + \\tfrac{\\gamma}{2}R_1\\big), \\qquad
          \\theta_G \\leftarrow \\theta_G - \\eta\\nabla_{\\theta_G} L_G

with the losses of :mod:`vdlearn.gan.losses`, Adam with :math:`\\beta_1 = 0.5` (DCGAN's
choice), an optional EMA of the generator's weights with a warm-up,
:math:`\\theta_{\\rm ema} \\leftarrow \\beta_t\\theta_{\\rm ema} + (1-\\beta_t)\\theta_G`,
:math:`\\beta_t = \\min(\\beta, (1+t)/(10+t))`, so that a short run is not dominated by the random
initialisation (batch-norm statistics are copied), bf16 autocast on CUDA, a history for
plots and atomic checkpoints (:func:`vdlearn.train.save_checkpoint`) from which a run resumes
with the numbers an uninterrupted run would have produced. Like :func:`vdlearn.train.fit`, the
batches are a pure function of ``(seed, step)``.
"""
from __future__ import annotations

import contextlib
import copy
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.utils.data import Dataset

from ..runtime import autocast, get_device
from ..train import _rng_state, _set_rng_state, load_checkpoint, make_batch, save_checkpoint, to_device
from .losses import check_loss_name, discriminator_loss, generator_loss, r1_penalty
from .models import check_pair

__all__ = ["GANResult", "train_gan"]


@dataclass
class GANResult:
    """What :func:`train_gan` returns: both networks, the generator's EMA copy (or None), the history."""

    generator: nn.Module
    discriminator: nn.Module
    ema_generator: nn.Module | None
    history: dict[str, list[float]] = field(default_factory=dict)
    step: int = 0
    seconds: float = 0.0

    @property
    def best_generator(self) -> nn.Module:
        """The EMA generator when there is one (its samples are smoother), else the trained one."""
        return self.ema_generator if self.ema_generator is not None else self.generator


class _Batches:
    """Batch ``i`` takes slice ``i mod E`` of the permutation of epoch ``i // E``."""

    def __init__(self, n: int, batch_size: int, seed: int):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if n < batch_size:
            raise ValueError(f"the dataset has {n} items, fewer than batch_size={batch_size}; "
                             "use a smaller batch_size or a larger dataset")
        self.n, self.batch_size, self.seed, self.per_epoch = n, batch_size, seed, n // batch_size
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def __call__(self, i: int) -> torch.Tensor:
        epoch, k = divmod(i, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        return self._perm[k * self.batch_size:(k + 1) * self.batch_size]


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


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """theta_ema <- beta_t theta_ema + (1 - beta_t) theta, beta_t = min(decay, (1+t)/(10+t)); buffers copied."""
    beta = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1 - beta)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


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
    if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
    ema = copy.deepcopy(generator).requires_grad_(False) if ema_decay is not None else None
    batches = _Batches(len(data), batch_size, seed)
    history: dict[str, list[float]] = {"step": []}
    config = {"batch_size": batch_size, "seed": seed, "loss": loss, "r1_gamma": r1_gamma, "d_steps": d_steps}
    if noise_from or noise_to:
        config["instance_noise"] = [float(noise_from), float(noise_to)]
    noise_std = 0.0

    def noisy(x: torch.Tensor) -> torch.Tensor:
        return x + noise_std * torch.randn_like(x) if noise_std else x
    start = 0

    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    if ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt, map_location=device)
        if state.get("config") != config:
            raise ValueError(f"checkpoint '{ckpt}' was made with {state.get('config')}, but this run uses "
                             f"{config}; use the same settings to resume, or another checkpoint_path")
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        if ema is not None:
            if state.get("ema") is None:
                raise ValueError(f"checkpoint '{ckpt}' has no EMA weights but ema_decay is set")
            ema.load_state_dict(state["ema"])
        history, start = state["history"], int(state["step"])
        _set_rng_state(state["rng"])
    else:
        torch.manual_seed(seed)

    def checkpoint(step: int) -> None:
        if ckpt is not None:
            save_checkpoint({
                "generator": generator.state_dict(), "discriminator": discriminator.state_dict(),
                "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "step": step, "history": history, "rng": _rng_state(), "config": config,
            }, ckpt)

    latent_dim = generator.latent_dim
    bar = None
    if progress and num_steps > start:
        from tqdm.auto import tqdm
        bar = tqdm(total=num_steps, initial=start, desc="GAN training", leave=False)

    generator.train()
    discriminator.train()
    t0 = time.perf_counter()
    window: dict[str, list[torch.Tensor]] = {}
    for step in range(start, num_steps):
        logs: dict[str, torch.Tensor] = {}
        noise_std = noise_from + (noise_to - noise_from) * step / max(1, num_steps - 1)
        # ---- discriminator: minimise L_D (+ gamma/2 R1) on real data and detached fakes
        for k in range(d_steps):
            real = _real(to_device(make_batch(data, batches(step * d_steps + k)), device))
            if real.shape[0] != batch_size:
                raise ValueError(f"the data gave a batch of shape {tuple(real.shape)}; expected "
                                 f"{batch_size} examples")
            z = torch.randn(batch_size, latent_dim, device=device)
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
        z = torch.randn(batch_size, latent_dim, device=device)
        with _frozen(discriminator), autocast(device):
            g_loss = generator_loss(discriminator(noisy(generator(z))), loss)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        logs["g_grad_norm"] = _grad_norm(generator)
        opt_g.step()
        logs["g_loss"] = g_loss.detach()
        if ema is not None:
            _ema_update(ema, generator, ema_decay, step)
        for key, value in logs.items():
            window.setdefault(key, []).append(value.float())

        done = step + 1
        saving = bool(checkpoint_every) and done % checkpoint_every == 0 and done != num_steps
        if done % log_every == 0 or done == num_steps or saving:
            means = {key: torch.stack(vs).cpu() for key, vs in window.items()}
            for key in ("d_loss", "g_loss"):
                bad = (~torch.isfinite(means[key])).nonzero()
                if len(bad):
                    first = done - len(means[key]) + int(bad[0])
                    who = "discriminator" if key == "d_loss" else "generator"
                    raise FloatingPointError(
                        f"the {who} loss became {means[key][bad[0]].item()} at step {first}. The game "
                        f"diverged: lower the learning rate (lr={lr} now), use the 'nonsaturating' or "
                        "'hinge' loss, add an R1 penalty (r1_gamma=1.0) or spectral_norm=True in the "
                        "discriminator, and check that the data is finite and in [-1, 1]."
                    )
            history["step"].append(done)
            for key, vs in means.items():
                history.setdefault(key, []).append(vs.mean().item())
            window = {}
            if bar is not None:
                bar.set_postfix(d=f"{history['d_loss'][-1]:.3f}", g=f"{history['g_loss'][-1]:.3f}")
            if callback is not None:
                callback(done, generator)
        if bar is not None:
            bar.update(1)
        if saving:
            checkpoint(done)
    if bar is not None:
        bar.close()
    if num_steps > start:
        checkpoint(num_steps)
    generator.eval()
    discriminator.eval()
    ema_generator = ema.eval() if ema is not None else None
    return GANResult(generator, discriminator, ema_generator, history, num_steps,
                     time.perf_counter() - t0)
