"""Classifier-free guidance (Ho & Salimans 2022), lesson 06.

One network learns both :math:`\\varepsilon(x_t, t, y)` and, when its label is replaced by a *null*
label with probability ``p_uncond`` during training (:func:`drop_labels`), the unconditional
:math:`\\varepsilon(x_t, t, \\varnothing)`. At sampling time the two are extrapolated with a scale s:

.. math:: \\tilde\\varepsilon = \\varepsilon(x_t, t, \\varnothing) + s\\,\\bigl(\\varepsilon(x_t, t, y) - \\varepsilon(x_t, t, \\varnothing)\\bigr).

``s = 1`` is the plain conditional model, ``s = 0`` the unconditional one, ``s > 1`` trades
diversity for fidelity to ``y``. (The paper writes :math:`(1+w)\\varepsilon_c - w\\varepsilon_u`, i.e.
:math:`s = 1 + w`.) The same combination is valid for x0- and v-predictions, which are affine in ε.

The condition need not be a label. For video (lesson 08) it is a set of known frames and their
mask; the unconditional prediction is the one with an empty mask (:func:`conditional_model`):

.. math:: \\tilde v = v(x_t, t, \\varnothing) + s\\,\\bigl(v(x_t, t, c, m) - v(x_t, t, \\varnothing)\\bigr).
"""
from __future__ import annotations

from typing import Callable

import torch

__all__ = ["drop_labels", "guided_output", "classifier_free_guidance", "conditional_model"]


def _null_label(model: Callable, null_label: int | None) -> int:
    if null_label is not None:
        return int(null_label)
    null_label = getattr(model, "null_label", None)
    if null_label is None:
        raise ValueError(
            "classifier-free guidance needs a class-conditional model trained with a null label "
            f"(e.g. UNet2D(num_classes=10), whose null_label is 10); {type(model).__name__} has none. "
            "Build the model with num_classes, train it with drop_labels, or pass null_label=...")
    return int(null_label)


def drop_labels(labels: torch.Tensor, p_uncond: float, null_label: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each label by ``null_label`` with probability ``p_uncond`` (training for CFG)."""
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond must be a probability in [0, 1], got {p_uncond}")
    drop = torch.rand(labels.shape, device=labels.device, generator=generator) < p_uncond
    return torch.where(drop, torch.full_like(labels, null_label), labels)


def guided_output(uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
    """:math:`u + s\\,(c - u)`: the guided prediction from the unconditional and conditional ones."""
    return uncond + scale * (cond - uncond)


def classifier_free_guidance(model: Callable, labels: torch.Tensor, scale: float = 3.0,
                             null_label: int | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Wrap a class-conditional ``model(x, t, y)`` into a guided ``model(x, t)`` for the samplers.

    Both predictions come from one batched call on ``[x, x]`` with labels ``[y, null]``.
    ``null_label`` defaults to ``model.null_label``; without one, guidance is an error.
    """
    if not isinstance(scale, (int, float)) or scale < 0:
        raise ValueError(f"guidance scale must be a number >= 0 (1: no guidance), got {scale!r}")
    if getattr(model, "num_classes", 0) is None:
        raise ValueError(
            f"a guidance scale was given but the model ({type(model).__name__}) is not class-"
            "conditional (num_classes=None). Train a model with num_classes=... and drop_labels, "
            "or sample the unconditional model without guidance.")
    null = _null_label(model, null_label)
    labels = torch.as_tensor(labels).long()
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (B,), got {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= null):
        raise ValueError(f"labels must lie in [0, {null - 1}] (the model's classes), got values "
                         f"from {labels.min().item()} to {labels.max().item()}")

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != labels.shape[0]:
            raise ValueError(f"the batch has {x.shape[0]} samples but {labels.shape[0]} labels "
                             "were given to classifier_free_guidance")
        y = labels.to(x.device)
        if scale == 1.0:
            return model(x, t, y)
        out = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, null)]))
        cond, uncond = out.chunk(2)
        return guided_output(uncond, cond, scale)

    return guided


def conditional_model(model: Callable, known: torch.Tensor, mask: torch.Tensor, *, guidance_scale: float = 1.0,
                      aug_level: float = 0.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Wrap ``model(x_t, t, known, mask, aug_level)`` into the ``model(x, t)`` the samplers call.

    ``known`` should already hold the (noise-augmented) given frames. With ``guidance_scale`` s ≠ 1
    the conditional and unconditional predictions come from one call on a doubled batch.
    """
    if not isinstance(guidance_scale, (int, float)) or guidance_scale < 0:
        raise ValueError(f"guidance_scale must be a number >= 0 (1: no guidance, 0: unconditional), "
                         f"got {guidance_scale!r}")

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if guidance_scale == 1.0:
            return model(x, t, known, mask, aug_level)
        none = torch.zeros_like(mask)
        level = torch.as_tensor(aug_level, dtype=x.dtype, device=x.device).expand(x.shape[0])
        out = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([known, known]), torch.cat([mask, none]),
                    torch.cat([level, level]))
        cond, uncond = out.chunk(2)
        return guided_output(uncond, cond, guidance_scale)

    return guided
