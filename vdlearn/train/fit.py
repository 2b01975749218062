"""``fit``: train one model on one loss, the step every lesson but the GAN ones uses.

``fit(model, loss_fn, data, num_steps=..., batch_size=...)`` runs AdamW (fused on CUDA) with an
optional linear warm-up, gradient clipping, bf16 autocast on CUDA and an optional EMA of the
weights (:mod:`vdlearn.train.ema`), inside :func:`vdlearn.train.training_loop` (checkpoints,
exact resume, history, progress bar). Under ``torchrun`` the same call trains with
DistributedDataParallel (:mod:`vdlearn.train.distributed`): each of N processes takes its share
of the global batch of N·``batch_size`` items.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import Dataset

from ..runtime import autocast, get_device
from . import distributed
from .loop import LoopResult, training_loop

__all__ = ["TrainResult", "fit"]


@dataclass(kw_only=True)
class TrainResult(LoopResult):
    """What :func:`fit` returns: the model, its EMA copy (or None) and the logged history."""

    model: nn.Module

    @property
    def best_model(self) -> nn.Module:
        """The EMA model when there is one (it samples better), else the trained model."""
        return self.ema_model if self.ema_model is not None else self.model


def _split_loss(out: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    loss, metrics = (out if isinstance(out, tuple) else (out, {}))
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(
            "loss_fn(model, batch) must return a scalar tensor, or (scalar tensor, dict of "
            f"metrics); got {type(loss).__name__}"
            + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else "")
        )
    return loss, metrics


def lr_factor(step: int, warmup_steps: int, decay_steps: int, total_steps: int) -> float:
    """The learning rate of step ``step`` (0-based) as a fraction of the peak: warmup-stable-decay.

    :math:`\\min\\bigl(1, \\tfrac{s+1}{W},\\ \\tfrac{N-s}{D}\\bigr)` with W warm-up and D decay steps of N.
    """
    factor = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    if decay_steps:
        factor = min(factor, max(total_steps - step, 0) / decay_steps)
    return factor


def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], Any],
    data: Dataset | torch.Tensor,
    *,
    num_steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    warmup_steps: int = 0,
    decay_steps: int = 0,
    schedule_steps: int | None = None,
    grad_clip: float | None = 1.0,
    ema_decay: float | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    log_every: int = 10,
    progress: bool = True,
    compile: bool = False,
    callback: Callable[[int, nn.Module], None] | None = None,
    config: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` for ``num_steps`` steps of AdamW on ``loss_fn(model, batch)``.

    The learning rate warms up linearly over ``warmup_steps``, stays at ``lr``, and falls linearly to 0
    over the last ``decay_steps`` of ``schedule_steps`` (default ``num_steps``): warmup-stable-decay
    (Hu et al. 2024). A run trained in sittings passes its whole length as ``schedule_steps``, so that
    it decays only at the very end, however it was split.

    ``loss_fn`` returns a scalar loss, or ``(loss, {"name": value})`` to log more numbers.
    ``data`` is a Dataset (its ``get_batch`` is used when present) or a tensor of examples.
    ``callback(step, model)`` runs every ``log_every`` steps (e.g. to look at samples).
    ``config`` adds entries (e.g. a recipe's name) that a checkpoint must agree on to be resumed.
    Under ``torchrun`` ``loss_fn`` gets the DistributedDataParallel wrapper: call the model
    (its ``forward``), so that gradients are averaged across processes.
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    schedule_steps = num_steps if schedule_steps is None else schedule_steps
    if not 0 <= decay_steps <= schedule_steps or schedule_steps < num_steps:
        raise ValueError(f"decay_steps ({decay_steps}) must lie in 0..schedule_steps ({schedule_steps}), and "
                         f"schedule_steps must be at least num_steps ({num_steps})")
    device = torch.device(device) if device is not None else get_device()
    if distributed.launched_by_torchrun():
        device = distributed.setup(device)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay,
                                  fused=(device.type == "cuda") or None)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, warmup_steps, decay_steps, schedule_steps))
    forward = torch.compile(model) if (compile and device.type == "cuda") else model
    if distributed.world_size() > 1:
        forward = torch.nn.parallel.DistributedDataParallel(
            forward, device_ids=[device.index] if device.type == "cuda" else None)

    def step(_: int, batches: list[Any]) -> dict[str, Any]:
        with autocast(device):
            loss, metrics = _split_loss(loss_fn(forward, batches[0]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            metrics = {**metrics, "grad_norm": torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)}
        optimizer.step()
        scheduler.step()
        return {"loss": loss, **metrics}

    def finite(key: str, value: float, at: int) -> str | None:
        if key != "loss":
            return None
        return (f"the loss became {value} at step {at}. Try a lower learning rate (lr={lr} now), "
                "gradient clipping (grad_clip=1.0), a warm-up (warmup_steps=100), and check that the "
                "inputs are finite and in [-1, 1].")

    config = {"lr": lr, "weight_decay": weight_decay, "betas": list(betas), "warmup_steps": warmup_steps,
              "grad_clip": grad_clip, **({"decay_steps": decay_steps, "schedule_steps": schedule_steps}
                                         if decay_steps else {}), **(config or {})}
    result = training_loop(
        step, data, modules={"model": model}, optimizers={"optimizer": optimizer},
        schedulers={"scheduler": scheduler}, num_steps=num_steps, batch_size=batch_size, seed=seed,
        device=device, config=config, ema_decay=ema_decay, finite=finite, checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every, log_every=log_every, progress=progress, callback=callback)
    return TrainResult(model=model, **vars(result))
