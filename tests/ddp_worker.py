"""Run under torchrun by tests/test_distributed.py: train a linear model with fit, save the weights."""
import sys

import torch
from torch import nn

from vdlearn.train import distributed
from vdlearn.train import fit


def problem(n=256):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    return torch.cat([x, y[:, None]], dim=1)


def mse(model, batch):
    return ((model(batch[:, :4]).squeeze(-1) - batch[:, 4]) ** 2).mean()


if __name__ == "__main__":
    out, batch_size = sys.argv[1], int(sys.argv[2])
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    result = fit(model, mse, problem(), num_steps=30, batch_size=batch_size, lr=0.05, log_every=10,
                 progress=False, device="cpu", checkpoint_path=sys.argv[3] if len(sys.argv) > 3 else None)
    if distributed.is_main_process():
        torch.save({"weight": model.weight.detach(), "history": result.history,
                    "world": distributed.world_size()}, out)
