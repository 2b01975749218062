"""What the peer benchmarks share: time one training step of a model, and its peak memory.

Every model gets the same job: the diffusion loss (eps-prediction, cosine schedule) on a fixed batch,
and AdamW. On CUDA it runs under bf16 autocast with channels-last weights (and input, for images).
"""
from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import sys
import time

import torch

from vdlearn.diffusion import diffusion_loss, make_schedule
from vdlearn.nn import prepare_model

__all__ = ["Trainer", "random_batch", "peak_memory_mb", "memory_in_subprocess"]


class Trainer:
    """One model, its optimiser and a fixed batch ``x``: ``step()`` runs and times one training step."""

    def __init__(self, model: torch.nn.Module, device: torch.device, x: torch.Tensor, compile_model: bool = False):
        self.device = device
        self.model = prepare_model(model, device)  # channels_last on CUDA
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, fused=device.type == "cuda" or None)
        self.forward = torch.compile(self.model) if compile_model else self.model
        self.x = x.to(device)
        if device.type == "cuda" and x.ndim == 4:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.schedule = make_schedule("cosine", 1000)
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                         else contextlib.nullcontext())

    def step(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with self.autocast:
            loss = diffusion_loss(lambda x, t: self.forward(x, t), self.x, self.schedule)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def random_batch(shape: tuple[int, ...]) -> torch.Tensor:
    """A seeded batch of the given shape, uniform in [-1, 1]."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_memory_mb(trainer: Trainer, steps: int) -> float:
    """Peak memory growth over ``steps`` training steps: CUDA allocations, or the resident set on a CPU.

    Run it in a fresh process (:func:`memory_in_subprocess`): the resident set's peak is per process.
    """
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _rss_bytes()
    for _ in range(steps):
        trainer.step()
    peak = (torch.cuda.max_memory_allocated() - before if trainer.device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)
    return peak / 2**20


def memory_in_subprocess(script: str, arguments: list[str]) -> float | None:
    """Run ``script`` with ``arguments`` (its memory entry point), read the JSON ``peak_mb`` it prints."""
    out = subprocess.run([sys.executable, script, *arguments], capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]
