"""Training on several GPUs (or CPU processes) with DistributedDataParallel.

Launch any script that calls :func:`vdlearn.train.fit` with ``torchrun``; the course's demo is::

    torchrun --nproc_per_node 2 -m vdlearn.course.ddp_demo --num-steps 200

``fit`` notices the ``torchrun`` environment, joins the process group, wraps the model in
``DistributedDataParallel`` and gives each process its own slice of every global batch: with N
processes and ``batch_size`` b per process, step s uses the global batch of N·b items that a
single process with batch N·b would use, and DDP averages the gradients, so the update is the
same. Logging, progress bars and checkpoints happen on rank 0 only. With N = 1 it is exactly
the single-process run.
"""
from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist

__all__ = ["launched_by_torchrun", "setup", "cleanup", "rank", "world_size", "is_main_process", "all_reduce_mean"]


def launched_by_torchrun() -> bool:
    """True when this process was started by ``torchrun`` (it sets ``WORLD_SIZE`` and ``RANK``)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def setup(device: torch.device | None = None) -> torch.device:
    """Join the process group (NCCL on CUDA, gloo on the CPU) once; return this process's device."""
    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
        atexit.register(cleanup)   # leave the group before the interpreter tears down its threads
    return device


def cleanup() -> None:
    """Leave the process group (safe to call twice, or when none was joined).

    :func:`setup` registers it to run at exit: a process that ends with the group still open can
    abort in the communication library's background threads ("terminate called without an active
    exception") after its work is done.
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0: the process that logs and writes checkpoints."""
    return rank() == 0


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over all processes (``x`` itself when not distributed)."""
    if world_size() == 1:
        return x
    x = x.clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x / world_size()
