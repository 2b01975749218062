"""fit under torchrun: two CPU processes (gloo) match one process with the same global batch."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from vdlearn.train import fit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ddp_worker import mse, problem  # noqa: E402


def torchrun(tmp_path, nproc, batch_size, *extra):
    out = tmp_path / f"out{nproc}.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(HERE / "ddp_worker.py"), str(out), str(batch_size), *map(str, extra)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return torch.load(out, weights_only=True)


def single(batch_size):
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    result = fit(model, mse, problem(), num_steps=30, batch_size=batch_size, lr=0.05, log_every=10,
                 progress=False, device="cpu")
    return model.weight.detach(), result.history


def test_two_processes_match_one_process_with_the_global_batch(tmp_path):
    two = torchrun(tmp_path, 2, 8, tmp_path / "ddp.pt")
    weight, history = single(16)
    assert two["world"] == 2
    assert torch.allclose(two["weight"], weight, atol=1e-5)
    assert two["history"]["loss"] == pytest.approx(history["loss"], rel=1e-4)
    assert (tmp_path / "ddp.pt").exists()  # rank 0 wrote the checkpoint


def test_one_process_under_torchrun_is_the_plain_run(tmp_path):
    one = torchrun(tmp_path, 1, 16)
    weight, history = single(16)
    assert one["world"] == 1
    assert torch.equal(one["weight"], weight)
    assert one["history"] == history
