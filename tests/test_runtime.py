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


@pytest.mark.parametrize("value,expected", [("", False), ("0", False), ("false", False), ("no", False),
                                            ("1", True), ("yes", True), ("true", True)])
def test_dry_run_is_read_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("VDLEARN_DRY_RUN", value)
    assert runtime.dry_run() is expected
    assert runtime.dry_run_batch(64) == (runtime.DRY_RUN_BATCH if expected else 64)
    assert runtime.dry_run_batch(1) == 1


GPU = dict(num_steps=8000, batch_size=128, lr=2e-3, num_images=60_000, base_channels=64, channel_mults=(1, 2, 2),
           num_res_blocks=2, frames=16, patch_size=1, num_eval=2_000, ddpm_steps=250, sampler_steps=[10, 20, 50],
           guidance_scales=[0.0, 1.0, 3.0], log_every=100, per_class=8, hi_num_clips=8192, num_test=10_000,
           iw_samples=500, anim_frames=40, digits=True, p_image=0.2, k=8)
SMOKE = dict(num_steps=20, batch_size=16, lr=2e-3, num_images=256, base_channels=8, channel_mults=(1, 2),
             num_res_blocks=1, frames=8, patch_size=2, num_eval=32, ddpm_steps=10, sampler_steps=[4, 8],
             guidance_scales=[0.0, 1.0], log_every=20, per_class=2, hi_num_clips=16, num_test=200,
             iw_samples=4, anim_frames=6, digits=False, p_image=0.25, k=2)


def test_choose_in_a_dry_run_keeps_the_sizes_and_cuts_the_counts(monkeypatch, capsys):
    monkeypatch.setenv("VDLEARN_DRY_RUN", "")
    assert vars(runtime.choose("gpu", smoke=SMOKE, cpu=SMOKE, gpu=GPU)) == GPU  # no dry run: untouched
    monkeypatch.setenv("VDLEARN_DRY_RUN", "1")
    cfg = runtime.choose("gpu", smoke=SMOKE, cpu=SMOKE, gpu=GPU)
    # sizes (models, frames, resolution, batch) and every value that is not a count stay the preset's
    for name in ("batch_size", "lr", "base_channels", "channel_mults", "num_res_blocks", "frames", "patch_size",
                 "digits", "p_image", "k"):
        assert getattr(cfg, name) == GPU[name], name
    assert cfg.num_steps == cfg.ddpm_steps == cfg.log_every == runtime.DRY_RUN_STEPS == 1  # steps: one
    assert cfg.sampler_steps == [1, 1]                     # the smoke preset's list, capped
    assert cfg.guidance_scales == [0.0, 1.0]               # values tried one by one: the smoke preset's
    assert cfg.num_eval == runtime.DRY_RUN_EVAL            # evaluation samples: a handful
    assert (cfg.per_class, cfg.num_test, cfg.iw_samples, cfg.anim_frames) == (2, 200, 4, 6)  # the smoke's counts
    assert cfg.num_images == 256 and cfg.hi_num_clips == 16   # datasets: the smoke's
    out = capsys.readouterr().out
    assert "dry run of the 'gpu' preset" in out and "num_steps 8000 -> 1" in out and "base_channels" not in out
    assert runtime.choose("gpu", smoke=1, cpu=2, gpu=3) == 3  # plain values are not configurations


def test_dry_run_cuts_never_raise_a_count():
    cuts = runtime.dry_run_cuts(dict(num_steps=1, num_eval=2, num_clips=10), dict(num_steps=5, num_eval=8, num_clips=64))
    assert cuts == {}


def test_dry_run_runs_on_the_cpu_with_its_own_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("VDLEARN_DEVICE", "")
    monkeypatch.setenv("VDLEARN_DRY_RUN", "1")
    monkeypatch.setenv("VDLEARN_CACHE", str(tmp_path / "c"))
    assert runtime.get_device().type == "cpu"
    assert runtime.cache_dir() == tmp_path / "c" / "dry-run"  # a one-step helper network is never the real one
    monkeypatch.setenv("VDLEARN_DRY_RUN", "0")
    assert runtime.cache_dir() == tmp_path / "c"


def test_gpu_memory_budget(monkeypatch):
    monkeypatch.setenv("VDLEARN_GPU_MEMORY_GB", "")
    assert runtime.gpu_memory_budget_gib() == runtime.DEFAULT_GPU_MEMORY_GIB
    monkeypatch.setenv("VDLEARN_GPU_MEMORY_GB", "80")
    assert runtime.gpu_memory_budget_gib() == 80.0
    monkeypatch.setenv("VDLEARN_GPU_MEMORY_GB", "lots")
    with pytest.raises(ValueError, match="VDLEARN_GPU_MEMORY_GB"):
        runtime.gpu_memory_budget_gib()
