import pytest
import torch

from vdlearn import runtime


def test_device_is_a_real_device():
    device = runtime.get_device()
    assert device.type in ("cuda", "mps", "cpu")
    torch.zeros(2, device=device)  # usable


def test_device_prefer_cpu_and_unavailable_cuda(monkeypatch):
    assert runtime.get_device("cpu").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        runtime.get_device("cuda")


def test_seed_everything_repeats_numbers():
    runtime.seed_everything(3)
    a = torch.randn(5)
    g = runtime.seed_everything(3)
    assert torch.equal(a, torch.randn(5))
    assert torch.equal(torch.randn(3, generator=g), torch.randn(3, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError):
        runtime.seed_everything(-1)


@pytest.mark.parametrize("env,ci,preset,cuda,expected", [
    ("", "", "auto", False, "cpu"),
    ("", "", "auto", True, "gpu"),
    ("", "", "smoke", False, "smoke"),
    ("", "true", "auto", True, "smoke"),
    ("", "false", "auto", False, "cpu"),
    ("gpu", "true", "smoke", False, "gpu"),      # VDLEARN_PRESET wins over CI and the notebook
    ("auto", "", "smoke", True, "gpu"),
])
def test_resolve_preset(monkeypatch, env, ci, preset, cuda, expected):
    monkeypatch.setenv("VDLEARN_PRESET", env)
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert runtime.resolve_preset(preset) == expected


def test_resolve_preset_rejects_unknown(monkeypatch):
    monkeypatch.setenv("VDLEARN_PRESET", "")
    monkeypatch.setenv("CI", "")
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        runtime.resolve_preset("fast")
    monkeypatch.setenv("VDLEARN_PRESET", "huge")
    with pytest.raises(ValueError, match="VDLEARN_PRESET='huge'"):
        runtime.resolve_preset("auto")


def test_choose():
    cfg = runtime.choose("cpu", smoke=dict(n=1), cpu=dict(n=2), gpu=dict(n=3))
    assert cfg.n == 2
    assert runtime.choose("gpu", smoke=1, cpu=2, gpu=3) == 3
    with pytest.raises(ValueError, match="missing \\['gpu'\\]"):
        runtime.choose("cpu", smoke=1, cpu=2)
    with pytest.raises(ValueError, match="unknown preset"):
        runtime.choose("auto", smoke=1, cpu=2, gpu=3)


def test_autocast_off_on_cpu():
    assert runtime.autocast_dtype("cpu") is None
    with runtime.autocast("cpu"):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32


def test_cache_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("VDLEARN_CACHE", str(tmp_path / "c"))
    assert runtime.cache_dir() == tmp_path / "c"
    assert (tmp_path / "c").is_dir()
