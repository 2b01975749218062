"""What one training step costs: time, activation memory and peak memory (lesson 09's pixel vs latent).

:func:`train_step_cost` times forward, backward and an AdamW update of ``loss_fn(model, batch)``
and adds up the bytes of every tensor autograd keeps for the backward pass (the memory that grows
with batch and resolution, measured the same way on every device).
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterable

import torch
from torch import nn

from ..runtime import autocast as autocast_ctx
from ..runtime import dry_run, dry_run_batch, gpu_memory_budget_gib

__all__ = ["train_step_cost", "state_bytes", "dry_run_memory_check"]


def _saved_bytes() -> tuple[Callable, Callable, dict[str, int]]:
    """Hooks that add up the bytes of every distinct tensor autograd saves for the backward pass
    (``"bytes"``), and of those that are weights (``"weight_bytes"``: leaves that require a gradient,
    which do not grow with the batch)."""
    seen: dict[str, int] = {"bytes": 0, "weight_bytes": 0}
    storages: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = t.untyped_storage().data_ptr()
        if key not in storages:
            storages.add(key)
            seen["bytes"] += t.untyped_storage().nbytes()
            if t.is_leaf and t.requires_grad:
                seen["weight_bytes"] += t.untyped_storage().nbytes()
        return t

    return pack, (lambda t: t), seen


def state_bytes(modules: Iterable[nn.Module], optimizers: Iterable[torch.optim.Optimizer],
                ema: nn.Module | None = None) -> int:
    """Bytes of the weights, their gradients, the optimisers' state and the EMA copy."""
    total = 0
    for module in modules:
        total += sum(p.numel() * p.element_size() * (2 if p.requires_grad else 1) for p in module.parameters())
    for opt in optimizers:
        total += sum(v.numel() * v.element_size() for st in opt.state.values() for v in st.values()
                     if isinstance(v, torch.Tensor) and v.ndim > 0)
    if ema is not None:
        total += sum(p.numel() * p.element_size() for p in ema.parameters())
    return total


def dry_run_memory_check(saved: int, state: int, used: int, batch_size: int, desc: str) -> None:
    """A dry run's estimate of a training step of the whole batch in GPU memory, printed; a
    ``MemoryError`` above :func:`vdlearn.runtime.gpu_memory_budget_gib`.

    ``saved`` bytes of activations were kept for ``used`` examples; ``state`` bytes are the weights,
    gradients and optimiser state (:func:`state_bytes`).
    """
    gib = 2**30
    activations = saved * batch_size / max(1, used)
    total, budget = (activations + state) / gib, gpu_memory_budget_gib()
    line = (f"dry run ({desc}): a step of the batch of {batch_size} keeps about {activations / gib:.2f} GiB of "
            f"activations (measured on {used}, in float32) and {state / gib:.2f} GiB of weights, gradients and "
            f"optimiser state: {total:.2f} GiB of the {budget:g} GiB allowed")
    print(line, flush=True)
    if total > budget:
        raise MemoryError(
            f"{line}. This configuration does not fit one GPU of {budget:g} GiB (the default is Colab's T4, "
            "which trains in float32): lower the preset's batch size (or model, frames, resolution), or set "
            "VDLEARN_GPU_MEMORY_GB to the memory of the GPU the preset is for (bf16 autocast, on a GPU that "
            "has it, keeps about half the activations)")


def train_step_cost(model: nn.Module, loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
                    batch: torch.Tensor, *, repeats: int = 3, warmup: int = 1,
                    autocast: bool = True) -> dict[str, float | None]:
    """What one training step (forward, backward, AdamW update) of ``loss_fn(model, batch)`` costs.

    Returns ``seconds`` (the median of ``repeats`` timed steps after ``warmup`` untimed ones),
    ``min_seconds`` (the fastest: the better estimate on a machine shared with other work),
    ``activation_mb`` (the tensors autograd keeps for the backward pass: the memory that grows with
    the batch and the resolution, measured the same way on every device) and ``peak_mb`` (CUDA's
    peak allocated memory during the step; None elsewhere). The model's weights are restored.
    A dry run (:func:`vdlearn.runtime.dry_run`) runs one forward pass of the first few examples of the
    batch, scales their activations to the whole batch and checks that a step fits the GPU
    (:func:`dry_run_memory_check`); its ``seconds`` are that forward pass's.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    full, dry = len(batch), dry_run()
    if dry:  # one forward pass, measured and timed at once, of the first examples (a view would count all)
        batch, repeats, warmup = batch[:dry_run_batch(full)].clone(), 1, 0
    device = batch.device
    cuda = device.type == "cuda"
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda or None)
    pack, unpack, seen = _saved_bytes()

    def step(measure: bool = False) -> None:
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack) if measure else contextlib.nullcontext():
            with autocast_ctx(device) if autocast else torch.autocast(device.type, enabled=False):
                loss = loss_fn(model, batch)
        if measure:  # a dry run: what the forward pass keeps is what it wants to know
            return
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times = []
    for i in range(warmup + repeats):
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step(measure=dry)
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
    if not dry:
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            with autocast_ctx(device) if autocast else torch.autocast(device.type, enabled=False):
                loss = loss_fn(model, batch)
        del loss
    grows = seen["bytes"] - seen["weight_bytes"]  # what a larger batch multiplies (a dry run measured few examples)
    activations = seen["weight_bytes"] + grows * full / max(1, len(batch))
    opt.zero_grad(set_to_none=True)
    model.load_state_dict(state)
    model.train(was_training)
    if dry:  # weights, their gradients and AdamW's two averages: four copies of the trained weights
        weights = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
        dry_run_memory_check(grows, state_bytes([model], []) + 2 * weights, len(batch), full, "train_step_cost")
    return {"seconds": sorted(times)[len(times) // 2], "min_seconds": min(times), "activation_mb": activations / 2**20, "peak_mb": peak}
