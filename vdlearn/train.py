"""The one small training loop every lesson uses.

``fit(model, loss_fn, dataset, num_steps=..., batch_size=...)`` runs AdamW (fused on CUDA) with
gradient clipping, an optional exponential moving average (EMA) of the weights, bf16 autocast
on CUDA, a progress bar, and a history for plots. With ``checkpoint_path`` it saves atomically
every ``checkpoint_every`` steps and, when the file already exists, resumes from it with
exactly the numbers an uninterrupted run would have produced.

The batches are a pure function of ``(seed, step)``: step ``s`` takes slice ``s mod E`` of the
permutation of epoch ``s // E`` (``E`` batches per epoch), so a resumed run sees the same data.
Under ``torchrun`` the same loop trains with DistributedDataParallel (see ``vdlearn.distributed``):
each of N processes takes its share of the global batch of N·``batch_size`` items.

EMA (Polyak averaging) with decay :math:`\\beta`, bias-corrected as Adam corrects its moments
(:func:`ema_update`): after :math:`n` steps with weights :math:`\\theta_1, \\dots, \\theta_n`,

.. math:: \\theta_{\\mathrm{ema}} = \\frac{1-\\beta}{1-\\beta^{n}} \\sum_{k=1}^{n} \\beta^{\\,n-k}\\,\\theta_k ,

so the weights of the first steps count no more than later ones, even in a short run.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import Dataset, default_collate

from . import distributed
from .runtime import autocast, get_device

__all__ = ["TrainResult", "fit", "ema_update", "make_batch", "save_checkpoint", "load_checkpoint", "to_device"]

LossOutput = "torch.Tensor | tuple[torch.Tensor, dict[str, float | torch.Tensor]]"


@dataclass
class TrainResult:
    """What :func:`fit` returns: the model, its EMA copy (or None) and the logged history."""

    model: nn.Module
    ema_model: nn.Module | None
    history: dict[str, list[float]] = field(default_factory=dict)
    step: int = 0
    seconds: float = 0.0

    @property
    def best_model(self) -> nn.Module:
        """The EMA model when there is one (it samples better), else the trained model."""
        return self.ema_model if self.ema_model is not None else self.model


def ema_update(decay: float) -> Callable[[list, list, torch.Tensor], None]:
    r"""The bias-corrected EMA step for ``torch.optim.swa_utils.AveragedModel(multi_avg_fn=...)``.

    The :math:`n`-th update (``AveragedModel`` has averaged :math:`n-1` times before it) is

    .. math:: \theta_{\mathrm{ema}} \leftarrow \theta_{\mathrm{ema}} + w_n\,(\theta - \theta_{\mathrm{ema}}),
              \qquad w_n = \frac{1-\beta}{1-\beta^{n}},

    which keeps :math:`\theta_{\mathrm{ema}}` equal to the bias-corrected average of the module
    docstring (:math:`w_1 = 1` copies the first weights). The plain EMA, which starts from the first
    weights and then uses :math:`w_n = 1-\beta`, keeps a share :math:`\beta^{n-1}` of them: a quarter
    after 1,400 steps at :math:`\beta = 0.999`, enough to leave noise in a diffusion model's samples.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1) (e.g. 0.999), got {decay}")

    @torch.no_grad()
    def update(ema_params: list, params: list, num_averaged: torch.Tensor) -> None:
        weight = (1.0 - decay) / (1.0 - decay ** (num_averaged + 1).double())   # w_n, on the device
        if torch.is_floating_point(ema_params[0]) or torch.is_complex(ema_params[0]):
            torch._foreach_lerp_(ema_params, params, weight.to(ema_params[0].dtype))
        else:  # integer buffers: no lerp kernel
            w = weight.item()
            for p_ema, p in zip(ema_params, params, strict=True):
                p_ema.copy_(p_ema * (1 - w) + p * w)

    return update


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a tensor, or tuples/lists/dicts of tensors, to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def make_batch(data: Dataset | torch.Tensor, indices: torch.Tensor) -> Any:
    """The batch of ``data`` at ``indices``: ``data.get_batch`` when it has one, else stacked items."""
    if isinstance(data, torch.Tensor):
        return data[indices]
    get_batch = getattr(data, "get_batch", None)
    if get_batch is not None:
        return get_batch(indices)
    return default_collate([data[int(i)] for i in indices])


class _BatchIndices:
    """Batch indices as a pure function of (seed, step): see the module docstring.

    With ``world`` processes the global batch is ``world * batch_size`` and process ``rank``
    takes the ``rank``-th slice of it (a distributed sampler with no padding).
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.rank, self.local = rank, batch_size
        batch_size = batch_size * world
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if n < batch_size:
            raise ValueError(
                f"the dataset has {n} items, fewer than batch_size={batch_size}; "
                "use a smaller batch_size or a larger dataset"
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def __call__(self, step: int) -> torch.Tensor:
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        start = k * self.batch_size + self.rank * self.local
        return self._perm[start:start + self.local]


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` with ``torch.save`` atomically: a temporary file, fsync, then rename.

    A process killed while saving leaves either the old checkpoint or the new one, never a
    broken file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at '{path}'")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - unpickling errors come in many types
        raise ValueError(
            f"could not load checkpoint '{path}': {err}. The file is damaged or is not a "
            "vdlearn checkpoint; delete it to start training afresh."
        ) from err


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _split_loss(out: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    loss, metrics = (out if isinstance(out, tuple) else (out, {}))
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(
            "loss_fn(model, batch) must return a scalar tensor, or (scalar tensor, dict of "
            f"metrics); got {type(loss).__name__}"
            + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else "")
        )
    return loss, metrics


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
) -> TrainResult:
    """Train ``model`` for ``num_steps`` steps of AdamW on ``loss_fn(model, batch)``.

    ``loss_fn`` returns a scalar loss, or ``(loss, {"name": value})`` to log more numbers.
    ``data`` is a Dataset (its ``get_batch`` is used when present) or a tensor of examples.
    ``callback(step, model)`` runs every ``log_every`` steps (e.g. to look at samples).
    Under ``torchrun`` ``loss_fn`` gets the DistributedDataParallel wrapper: call the model
    (its ``forward``), so that gradients are averaged across processes.
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    device = torch.device(device) if device is not None else get_device()
    if distributed.launched_by_torchrun():
        device = distributed.setup(device)
    rank, world = distributed.rank(), distributed.world_size()
    main = rank == 0
    model.to(device)
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=betas,
                                  weight_decay=weight_decay, fused=fused or None)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup_steps) if warmup_steps else 1.0)
    ema = (AveragedModel(model, multi_avg_fn=ema_update(ema_decay), use_buffers=True)
           if ema_decay is not None else None)
    indices = _BatchIndices(len(data), batch_size, seed, rank, world)
    history: dict[str, list[float]] = {"step": [], "loss": []}
    config = {"batch_size": batch_size, "seed": seed, "world_size": world}
    start = 0

    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    if ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt, map_location=device)
        if state.get("config") != config:
            raise ValueError(
                f"checkpoint '{ckpt}' was made with {state.get('config')}, but this run uses "
                f"{config}; use the same settings to resume, or another checkpoint_path"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None:
            if state.get("ema") is None:
                raise ValueError(f"checkpoint '{ckpt}' has no EMA weights but ema_decay is set")
            ema.load_state_dict(state["ema"])
        history = state["history"]
        start = int(state["step"])
        _set_rng_state(state["rng"][rank])
    else:
        torch.manual_seed(seed + rank)  # each process draws its own noise

    def checkpoint(step: int) -> None:
        if ckpt is None:
            return
        rngs = [_rng_state()]
        if world > 1:
            rngs = [None] * world
            torch.distributed.all_gather_object(rngs, _rng_state())
        if not main:
            return
        save_checkpoint({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "step": step, "history": history, "rng": rngs, "config": config,
        }, ckpt)

    step_fn = torch.compile(model) if (compile and device.type == "cuda") else model
    if world > 1:
        step_fn = torch.nn.parallel.DistributedDataParallel(
            step_fn, device_ids=[device.index] if device.type == "cuda" else None)
    bar = None
    if progress and main and num_steps > start:
        from tqdm.auto import tqdm
        bar = tqdm(total=num_steps, initial=start, desc="training", leave=False)

    model.train()
    t0 = time.perf_counter()
    window_losses: list[torch.Tensor] = []
    window_metrics: dict[str, list[torch.Tensor]] = {}
    for step in range(start, num_steps):
        batch = to_device(make_batch(data, indices(step)), device)
        with autocast(device):
            loss, metrics = _split_loss(loss_fn(step_fn, batch))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            metrics = {**metrics, "grad_norm": torch.nn.utils.clip_grad_norm_(
                model.parameters(), grad_clip)}
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        window_losses.append(loss.detach().float())
        for k, v in metrics.items():
            window_metrics.setdefault(k, []).append(torch.as_tensor(v).detach().float())

        done = step + 1
        saving = bool(checkpoint_every) and done % checkpoint_every == 0 and done != num_steps
        if done % log_every == 0 or done == num_steps or saving:
            losses = distributed.all_reduce_mean(torch.stack(window_losses)).cpu()
            bad = (~torch.isfinite(losses)).nonzero()
            if len(bad):
                first = done - len(losses) + int(bad[0])
                raise FloatingPointError(
                    f"the loss became {losses[bad[0]].item()} at step {first}. Try a lower "
                    f"learning rate (lr={lr} now), gradient clipping (grad_clip=1.0), a warm-up "
                    "(warmup_steps=100), and check that the inputs are finite and in [-1, 1]."
                )
            history["step"].append(done)
            history["loss"].append(losses.mean().item())
            for k, vs in window_metrics.items():
                history.setdefault(k, []).append(
                    distributed.all_reduce_mean(torch.stack(vs).mean().to(device)).item())
            window_losses, window_metrics = [], {}
            if bar is not None:
                bar.set_postfix(loss=f"{history['loss'][-1]:.4f}")
            if callback is not None and main:
                callback(done, model)
        if bar is not None:
            bar.update(1)
        if saving:
            checkpoint(done)
    if bar is not None:
        bar.close()
    if num_steps > start:
        checkpoint(num_steps)
    model.eval()
    ema_model = ema.module.eval() if ema is not None else None
    return TrainResult(model, ema_model, history, num_steps, time.perf_counter() - t0)
