"""Shared test settings: one thread per process, a private cache folder.

The suite runs in parallel (``pytest -n 2``) and starts notebook kernels; with several processes
each spinning OpenMP threads on two cores, small tensor operations get many times slower. One
thread per process (inherited by every kernel the tests start) avoids that.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_thread():
    """One thread in every test, even after one that changed it: small tensors do not wait for a second."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """Every test sees the smoke preset and a cache folder of its session, not the user's."""
    monkeypatch.setenv("VDLEARN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    yield
