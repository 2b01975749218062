"""Shared test settings: small thread counts, the smoke preset, a private cache folder."""
import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """Every test sees the smoke preset and a cache folder of its session, not the user's."""
    monkeypatch.setenv("VDLEARN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    yield
