"""Batches as a pure function of ``(seed, step)``: what every training loop of the course draws.

Draw ``s`` takes slice ``s mod E`` of the permutation of epoch ``s // E`` (``E`` batches per
epoch), so a run resumed at step ``s`` sees exactly the data an uninterrupted run would have seen.
With ``world`` processes the global batch is ``world · batch_size`` and process ``rank`` takes the
``rank``-th slice of it (a distributed sampler without padding).
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset, default_collate

__all__ = ["make_batch", "BatchIndices"]


def make_batch(data: Dataset | torch.Tensor, indices: torch.Tensor) -> Any:
    """The batch of ``data`` at ``indices``: ``data.get_batch`` when it has one, else stacked items."""
    if isinstance(data, torch.Tensor):
        return data[indices]
    get_batch = getattr(data, "get_batch", None)
    if get_batch is not None:
        return get_batch(indices)
    return default_collate([data[int(i)] for i in indices])


class BatchIndices:
    """``indices(s)``: the dataset indices of draw ``s``, a pure function of ``(seed, s)``."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.rank, self.local = rank, batch_size
        batch_size = batch_size * world
        if n < batch_size:
            raise ValueError(
                f"the dataset has {n} items, fewer than batch_size={batch_size}; "
                "use a smaller batch_size or a larger dataset"
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.per_epoch = n // batch_size
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def __call__(self, step: int) -> torch.Tensor:
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        start = k * self.batch_size + self.rank * self.local
        return self._perm[start:start + self.local]
