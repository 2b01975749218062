"""Novelty: how far each generated clip is from the closest training clip (lesson 10).

A model that copies its training data scores perfectly on a Fréchet distance; the distance to the
nearest training example gives it away (real held-out clips set the scale: copying scores 0).
"""
from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["nearest_neighbour_distance"]


def _check_examples(x: Any, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or len(x) == 0:
        raise ValueError(f"{what} should be a non-empty tensor of examples (N, ...), e.g. clips (N, C, T, H, W); "
                         f"got {type(x).__name__} {tuple(x.shape) if isinstance(x, torch.Tensor) else ''}")
    return x


@torch.no_grad()
def nearest_neighbour_distance(samples: torch.Tensor, reference: torch.Tensor, *,
                               chunk_size: int = 256) -> torch.Tensor:
    r"""For each sample, the RMS distance to its nearest reference example: a tensor (N,).

    .. math:: d(x) = \min_j \sqrt{\tfrac{1}{D}\,\lVert x - r_j\rVert^2},

    with :math:`D` the number of values per example (C·T·H·W for clips). Compare a model's
    distances with those of held-out real clips to the same reference: much smaller means the model
    reproduces its training clips; about the same means it makes new ones.
    """
    samples, reference = _check_examples(samples, "samples"), _check_examples(reference, "reference")
    if samples.shape[1:] != reference.shape[1:]:
        raise ValueError(f"samples {tuple(samples.shape)} and reference {tuple(reference.shape)} must have the same "
                         "shape after the first (example) axis")
    a = samples.reshape(len(samples), -1).double()
    b = reference.reshape(len(reference), -1)
    best = torch.full((len(a),), math.inf, dtype=torch.float64, device=a.device)
    for i in range(0, len(b), chunk_size):   # float64 one chunk at a time: exact, and the reference stays small
        chunk = b[i:i + chunk_size].to(a.device, torch.float64)
        d2 = torch.cdist(a, chunk, compute_mode="donot_use_mm_for_euclid_dist").pow(2).min(dim=1).values
        best = torch.minimum(best, d2)
    return (best / a.shape[1]).sqrt().float()
