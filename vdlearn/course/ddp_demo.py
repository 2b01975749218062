"""A demonstration of DistributedDataParallel training with the course's loop (the teaching guide).

    torchrun --nproc_per_node 2 -m vdlearn.course.ddp_demo --num-steps 200

trains a small digit classifier with :func:`vdlearn.train.fit` in two processes (gloo on a CPU,
NCCL on GPUs); see :mod:`vdlearn.train.distributed` for what ``fit`` does under ``torchrun``.
"""
from __future__ import annotations

import argparse

import torch


def main() -> None:
    """Train a small digit classifier with ``fit``: run it under torchrun to see DDP at work."""
    from torch import nn

    from ..data import DigitImages
    from ..train import distributed, fit

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--num-steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1), nn.SiLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.SiLU(),
                          nn.Flatten(), nn.Linear(32 * 7 * 7, 10))

    def loss_fn(model, batch):
        images, labels = batch
        logits = model(images)
        return nn.functional.cross_entropy(logits, labels), {"accuracy": (logits.argmax(1) == labels).float().mean()}

    result = fit(model, loss_fn, DigitImages(num_images=4096), num_steps=args.num_steps,
                 batch_size=args.batch_size, lr=2e-3, log_every=50, checkpoint_path=args.checkpoint)
    if distributed.is_main_process():
        print(f"{distributed.world_size()} process(es): final loss {result.history['loss'][-1]:.3f}, "
              f"accuracy {result.history['accuracy'][-1]:.3f}")


if __name__ == "__main__":
    main()
