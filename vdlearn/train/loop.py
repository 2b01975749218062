"""The one training loop of the course: batches, checkpoints, exact resume, EMA, progress, history.

What differs between training a denoiser and training a GAN is the *step*: one loss and one
optimiser, or two players taking turns. :func:`training_loop` takes the step as a function and
does everything around it, the same way for every model:

- **batches** are a pure function of ``(seed, draw)`` (:class:`vdlearn.data.BatchIndices`); a step
  that needs k batches (a GAN's discriminator steps) gets draws ``k·s, ..., k·s + k - 1``;
- **checkpoints** (:func:`vdlearn.train.save_checkpoint`, atomic) every ``checkpoint_every`` steps
  and at the end hold every module, optimiser and scheduler, the EMA, the history, the random
  state and the run's whole configuration (batch, seed, the optimiser's settings, the data's
  identity); when ``checkpoint_path`` exists the loop resumes from it, with exactly the numbers an
  uninterrupted run would have produced (asking for more steps continues the run), and refuses,
  saying what differs, a checkpoint made with another configuration, for another model, or
  holding more steps than asked for;
- an **EMA** (:mod:`vdlearn.train.ema`) of one module, updated after every step;
- a **history** of every number the step returns, averaged over ``log_every`` steps (and over
  processes under ``torchrun``), a check that the losses stay finite, a progress bar and a
  ``callback(step, module)`` at each log;
- a **dry run** (:func:`vdlearn.runtime.dry_run`) runs at most ``DRY_RUN_STEPS`` steps, each on the first
  ``DRY_RUN_BATCH`` examples of its batch (drawn at the full size, or from all the data when the dry
  run's data is smaller than a batch), and estimates from the first step what a step of the whole
  batch keeps in GPU memory: above :func:`vdlearn.runtime.gpu_memory_budget_gib` it stops, saying so.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.batches import BatchIndices, make_batch
from ..runtime import DRY_RUN_STEPS, dry_run, dry_run_batch
from . import distributed
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state, state_digest
from .ema import make_ema
from .profile import _saved_bytes, dry_run_memory_check, state_bytes

__all__ = ["LoopResult", "training_loop", "to_device", "data_identity"]

#: ``step(s, batches) -> {"name": scalar tensor}``: one training step on ``batches_per_step`` batches.
Step = Callable[[int, list[Any]], Mapping[str, Any]]


def data_identity(data: Any) -> str:
    """What a checkpoint remembers of its data: the dataset's description (its repr, when it has one) and size.

    A tensor is described by its shape, dtype and a digest of its values, so that resuming on other
    data is caught.
    """
    if isinstance(data, torch.Tensor):
        return f"tensor{tuple(data.shape)} {data.dtype} sha256={state_digest(data)[:16]}"
    text = repr(data) if type(data).__repr__ is not object.__repr__ else type(data).__name__
    return f"{text} (len {len(data)})"


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a tensor, or tuples/lists/dicts of tensors, to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


@dataclass(kw_only=True)
class LoopResult:
    """What :func:`training_loop` returns: the EMA copy (or None), the history, the step reached, the time."""

    ema_model: nn.Module | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    step: int = 0
    seconds: float = 0.0


def training_loop(
    step: Step,
    data: Dataset | torch.Tensor,
    *,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    schedulers: Mapping[str, Any] | None = None,
    num_steps: int,
    batch_size: int,
    seed: int,
    device: torch.device,
    config: Mapping[str, Any] | None = None,
    batches_per_step: int = 1,
    ema_of: str | None = None,
    ema_decay: float | None = None,
    finite: Callable[[str, float, int], str | None] | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    log_every: int = 10,
    progress: bool = True,
    desc: str = "training",
    callback: Callable[[int, nn.Module], None] | None = None,
) -> LoopResult:
    """Run ``step`` for steps ``start .. num_steps - 1`` (``start`` > 0 when resuming); see the module docstring.

    ``modules``, ``optimizers`` and ``schedulers`` are saved in checkpoints under their names;
    ``ema_of`` names the module to average (with ``ema_decay``) and the one ``callback`` gets.
    ``finite(key, value, step)`` is asked about every logged number that is not finite and returns
    the error message to raise (or None to accept it).
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    dry = dry_run()
    if dry:
        num_steps = min(num_steps, DRY_RUN_STEPS)
    used = dry_run_batch(batch_size)  # examples of each batch a step sees: all, but few in a dry run
    schedulers = dict(schedulers or {})
    rank, world = distributed.rank(), distributed.world_size()
    main = rank == 0
    watched = modules[ema_of] if ema_of is not None else next(iter(modules.values()))
    ema = make_ema(watched, ema_decay) if ema_decay is not None else None
    # a dry run's data may be cut below a batch (vdlearn.runtime.dry_run_cuts): draw from what there is
    drawn = min(batch_size, len(data) // world) if dry else batch_size
    indices = BatchIndices(len(data), max(1, drawn), seed, rank, world)
    history: dict[str, list[float]] = {"step": []}
    start = 0

    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    if ckpt is not None:  # what a checkpoint must agree on (the data's digest is computed only here)
        config = {"batch_size": batch_size, "seed": seed, "world_size": world,
                  "batches_per_step": batches_per_step, "ema_decay": ema_decay, "data": data_identity(data),
                  **(config or {})}
    if ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt, map_location=device)
        saved = state.get("config") or {}
        if saved != config:
            differ = {k: (saved.get(k), config.get(k)) for k in sorted(set(saved) | set(config))
                      if saved.get(k) != config.get(k)}
            raise ValueError(
                f"checkpoint '{ckpt}' was made with other settings than this run: "
                + "; ".join(f"{k}: {a!r} there, {b!r} here" for k, (a, b) in differ.items())
                + ". Resume with the same settings, or give another checkpoint_path (or delete the file) "
                  "to start afresh")
        if int(state["step"]) > num_steps:
            raise ValueError(f"checkpoint '{ckpt}' holds {int(state['step'])} steps of training, more than "
                             f"num_steps={num_steps}: ask for at least {int(state['step'])} steps to resume it "
                             "(more steps continue the run), or give another checkpoint_path")
        for group, objects in (("modules", modules), ("optimizers", optimizers), ("schedulers", schedulers)):
            for name, obj in objects.items():
                try:
                    obj.load_state_dict(state[group][name])
                except (RuntimeError, ValueError, KeyError) as err:
                    raise ValueError(
                        f"checkpoint '{ckpt}' holds a {name!r} that does not fit this run's ({type(obj).__name__}: "
                        f"{str(err).splitlines()[0]}); it was made for another model. Give another "
                        "checkpoint_path, or delete the file to start afresh") from err
        if ema is not None:
            if state.get("ema") is None:
                raise ValueError(f"checkpoint '{ckpt}' has no EMA weights but ema_decay is set")
            ema.load_state_dict(state["ema"])
        history, start = state["history"], int(state["step"])
        set_rng_state(state["rng"][rank])
    else:
        torch.manual_seed(seed + rank)  # each process draws its own noise

    def checkpoint(done: int) -> None:
        if ckpt is None:
            return
        rngs = [rng_state()]
        if world > 1:
            rngs = [None] * world
            torch.distributed.all_gather_object(rngs, rng_state())
        if main:
            save_checkpoint({
                "modules": {k: m.state_dict() for k, m in modules.items()},
                "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
                "ema": ema.state_dict() if ema is not None else None,
                "step": done, "history": history, "rng": rngs, "config": config,
            }, ckpt)

    bar = None
    if progress and main and num_steps > start:
        from tqdm.auto import tqdm
        bar = tqdm(total=num_steps, initial=start, desc=desc, leave=False)

    for module in modules.values():
        module.train()
    t0 = time.perf_counter()
    window: dict[str, list[torch.Tensor]] = {}
    for s in range(start, num_steps):
        batches = [to_device(make_batch(data, indices(s * batches_per_step + k)[:used]), device)
                   for k in range(batches_per_step)]
        if dry and s == start:  # measure what the first step keeps for its backward pass
            pack, unpack, seen = _saved_bytes()
            with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
                logs = step(s, batches)
            dry_run_memory_check(seen["bytes"] - seen["weight_bytes"],
                                 state_bytes(modules.values(), optimizers.values(), ema.module if ema is not None else None),
                                 used, batch_size, desc)
        else:
            logs = step(s, batches)
        if ema is not None:
            ema.update_parameters(watched)
        for key, value in logs.items():
            window.setdefault(key, []).append(torch.as_tensor(value).detach().float().reshape(()))

        done = s + 1
        saving = bool(checkpoint_every) and done % checkpoint_every == 0 and done != num_steps
        if done % log_every == 0 or done == num_steps or saving:
            history["step"].append(done)
            for key, values in window.items():
                values = distributed.all_reduce_mean(torch.stack(values)).cpu()
                bad = (~torch.isfinite(values)).nonzero()
                if len(bad) and finite is not None:
                    message = finite(key, values[bad[0]].item(), done - len(values) + int(bad[0]))
                    if message:
                        raise FloatingPointError(message)
                history.setdefault(key, []).append(values.mean().item())
            window = {}
            if bar is not None:
                bar.set_postfix({k: f"{v[-1]:.4f}" for k, v in history.items() if k != "step"
                                 and k in ("loss", "d_loss", "g_loss")})
            if callback is not None and main:
                callback(done, watched)
        if bar is not None:
            bar.update(1)
        if saving:
            checkpoint(done)
    if bar is not None:
        bar.close()
    if num_steps > start:
        checkpoint(num_steps)
    for module in modules.values():
        module.eval()
    ema_model = ema.module.eval() if ema is not None else None
    return LoopResult(ema_model=ema_model, history=history, step=num_steps, seconds=time.perf_counter() - t0)
