"""Per-frame masks: which frames of a clip are *given* (lesson 08).

One masked-conditional video model covers several tasks (MCVD, Voleti et al. 2022; RaMViD,
Höppe et al. 2022): a boolean mask :math:`m \\in \\{0, 1\\}^T` per clip says which frames are known.

============================  =========================================
task                          given frames
============================  =========================================
``"unconditional"``           none
``"image_to_video"``          the first
``"prediction"``              the first ``k``
``"interpolation"``           the first and the last
============================  =========================================

Training draws one of these at random for every clip (:func:`random_masks`), so the same
weights learn all of them. Masks are bool tensors (B, T).
"""
from __future__ import annotations

from typing import Mapping

import torch

__all__ = ["TASKS", "DEFAULT_TASK_PROBS", "task_mask", "random_masks", "check_mask", "mask_to_channel"]

#: The tasks a per-frame mask can express.
TASKS = ("unconditional", "image_to_video", "prediction", "interpolation")

#: How often :func:`random_masks` draws each task during training (MCVD mixes its tasks similarly).
DEFAULT_TASK_PROBS: dict[str, float] = {"unconditional": 0.1, "image_to_video": 0.35, "prediction": 0.35,
                                        "interpolation": 0.2}


def task_mask(task: str, frames: int, k: int = 2, batch: int = 1,
              device: torch.device | str | None = None) -> torch.Tensor:
    """The (batch, frames) bool mask of a named task; ``k`` is the number of given frames of "prediction"."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if int(frames) != frames or frames < 2:
        raise ValueError(f"a clip needs at least 2 frames to have some given and some to generate, got {frames}")
    mask = torch.zeros(batch, frames, dtype=torch.bool, device=device)
    if task == "image_to_video":
        mask[:, 0] = True
    elif task == "prediction":
        if int(k) != k or not 1 <= k < frames:
            raise ValueError(f"prediction gives the first k frames and generates the rest: k must be an int in "
                             f"[1, {frames - 1}] for {frames}-frame clips, got {k!r}")
        mask[:, :k] = True
    elif task == "interpolation":
        if frames < 3:
            raise ValueError(f"interpolation gives the first and last frames, so it needs clips of at least 3 "
                             f"frames, got {frames}")
        mask[:, 0] = mask[:, -1] = True
    return mask


def random_masks(batch: int, frames: int, probs: Mapping[str, float] | None = None, max_k: int | None = None,
                 generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Training masks (batch, frames): each clip's task drawn with ``probs``; "prediction" with k in [1, max_k].

    ``max_k`` defaults to half the clip. ``generator`` (on ``device``) makes the draw reproducible.
    """
    probs = dict(DEFAULT_TASK_PROBS if probs is None else probs)
    unknown = sorted(set(probs) - set(TASKS))
    if unknown:
        raise ValueError(f"unknown task(s) {unknown} in probs; expected keys among {TASKS}")
    p = torch.tensor([float(probs.get(task, 0.0)) for task in TASKS])
    if (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"probs must be non-negative with a positive sum, got {probs}")
    if frames < 3 and p[TASKS.index("interpolation")] > 0:
        raise ValueError("interpolation needs clips of at least 3 frames; give it probability 0")
    max_k = max(1, frames // 2) if max_k is None else int(max_k)
    if not 1 <= max_k < frames:
        raise ValueError(f"max_k must be in [1, {frames - 1}], got {max_k}")
    task = torch.multinomial(p / p.sum(), batch, replacement=True, generator=_cpu(generator))
    k = torch.randint(1, max_k + 1, (batch,), generator=_cpu(generator))
    idx = torch.arange(frames)
    first = idx == 0
    mask = torch.stack([
        torch.zeros(batch, frames, dtype=torch.bool),                       # unconditional
        first.expand(batch, frames),                                        # image_to_video
        idx[None, :] < k[:, None],                                          # prediction
        (first | (idx == frames - 1)).expand(batch, frames),                # interpolation
    ])[task, torch.arange(batch)]
    return mask.to(device)


def _cpu(generator: torch.Generator | None) -> torch.Generator | None:
    """The masks are drawn on the CPU (they are tiny): use the generator only if it lives there."""
    return generator if generator is None or generator.device.type == "cpu" else None


def check_mask(mask: torch.Tensor, batch: int, frames: int, *, allow_none: bool = True,
               allow_all: bool = False, what: str = "mask") -> torch.Tensor:
    """``mask`` as a bool (batch, frames) tensor, or a clear error.

    A (frames,) mask is broadcast to the batch. ``allow_all=False`` rejects a clip whose every frame
    is given (there would be nothing to generate); ``allow_none=False`` rejects a clip with no given
    frame where the operation needs a condition (e.g. extending a video).
    """
    if not isinstance(mask, torch.Tensor):
        mask = torch.as_tensor(mask)
    if mask.ndim == 1:
        mask = mask.expand(batch, -1)
    if mask.shape != (batch, frames):
        raise ValueError(f"{what} must be (B, T) = ({batch}, {frames}) (or (T,) for every clip), one flag per "
                         f"frame, got shape {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError(f"{what} must hold 0/1 or True/False per frame")
        mask = mask.bool()
    given = mask.sum(1)
    if not allow_all and (given == frames).any():
        raise ValueError(f"{what} gives all {frames} frames of clip(s) {(given == frames).nonzero().flatten().tolist()}: "
                         "there is nothing left to generate; leave at least one frame unknown (False)")
    if not allow_none and (given == 0).any():
        raise ValueError(f"{what} gives no frame of clip(s) {(given == 0).nonzero().flatten().tolist()}, but this "
                         "operation needs a condition; give at least one frame (e.g. the first), or sample "
                         "unconditionally instead")
    return mask


def mask_to_channel(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The (B, T) mask as a float channel (B, 1, T, H, W) shaped for clips ``like`` (B, C, T, H, W)."""
    b, _, t, h, w = like.shape
    return mask.to(device=like.device, dtype=like.dtype).view(b, 1, t, 1, 1).expand(b, 1, t, h, w)
