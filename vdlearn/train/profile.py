"""What one training step costs: time, activation memory and peak memory (lesson 09's pixel vs latent).

:func:`train_step_cost` times forward, backward and an AdamW update of ``loss_fn(model, batch)``
and adds up the bytes of every tensor autograd keeps for the backward pass (the memory that grows
with batch and resolution, measured the same way on every device).
"""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn

from ..runtime import autocast as autocast_ctx
from ..runtime import dry_run, dry_run_batch

__all__ = ["train_step_cost"]


def _saved_bytes() -> tuple[Callable, Callable, dict[str, int]]:
    """Hooks that add up the bytes of every distinct tensor autograd saves for the backward pass."""
    seen: dict[str, int] = {"bytes": 0}
    storages: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = t.untyped_storage().data_ptr()
        if key not in storages:
            storages.add(key)
            seen["bytes"] += t.untyped_storage().nbytes()
        return t

    return pack, (lambda t: t), seen


def train_step_cost(model: nn.Module, loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
                    batch: torch.Tensor, *, repeats: int = 3, warmup: int = 1,
                    autocast: bool = True) -> dict[str, float | None]:
    """What one training step (forward, backward, AdamW update) of ``loss_fn(model, batch)`` costs.

    Returns ``seconds`` (the median of ``repeats`` timed steps after ``warmup`` untimed ones),
    ``min_seconds`` (the fastest: the better estimate on a machine shared with other work),
    ``activation_mb`` (the tensors autograd keeps for the backward pass: the memory that grows with
    the batch and the resolution, measured the same way on every device) and ``peak_mb`` (CUDA's
    peak allocated memory during the step; None elsewhere). The model's weights are restored.
    A dry run (:func:`vdlearn.runtime.dry_run`) times one step of the first few examples of the batch
    and scales their activations to the whole batch.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    full = len(batch)
    if dry_run():
        batch, repeats, warmup = batch[:dry_run_batch(full)], 1, 0
    device = batch.device
    cuda = device.type == "cuda"
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda or None)

    def step() -> None:
        with autocast_ctx(device) if autocast else torch.autocast(device.type, enabled=False):
            loss = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times = []
    for i in range(warmup + repeats):
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    peak = None
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    pack, unpack, seen = _saved_bytes()
    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        with autocast_ctx(device) if autocast else torch.autocast(device.type, enabled=False):
            loss = loss_fn(model, batch)
    del loss
    opt.zero_grad(set_to_none=True)
    model.load_state_dict(state)
    model.train(was_training)
    return {"seconds": sorted(times)[len(times) // 2], "min_seconds": min(times), "activation_mb": seen["bytes"] / 2**20 * full / max(1, len(batch)), "peak_mb": peak}
