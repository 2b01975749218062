import os

import pytest
import torch
from torch import nn

from vdlearn import train
from vdlearn.data import BatchIndices
from vdlearn.train import fit, load_checkpoint, save_checkpoint


def _problem(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    y = x @ w + 0.01 * torch.randn(n, generator=g)
    return torch.cat([x, y[:, None]], dim=1)


def _mse(model, batch):
    x, y = batch[:, :4], batch[:, 4]
    noise = 1e-3 * torch.randn_like(y)  # exercises the saved RNG state on resume
    loss = ((model(x).squeeze(-1) - y - noise) ** 2).mean()
    return loss, {"abs_err": (model(x).squeeze(-1) - y).abs().mean()}


def _model():
    torch.manual_seed(0)
    return nn.Linear(4, 1)


def test_loss_falls_and_history_is_logged():
    result = fit(_model(), _mse, _problem(), num_steps=200, batch_size=32, lr=0.05,
                 log_every=20, progress=False, device="cpu")
    h = result.history
    assert h["step"] == list(range(20, 201, 20))
    assert h["loss"][-1] < 0.01 * h["loss"][0]
    assert len(h["abs_err"]) == len(h["step"]) and len(h["grad_norm"]) == len(h["step"])
    assert not result.model.training


def test_seeded_runs_are_identical():
    a = fit(_model(), _mse, _problem(), num_steps=30, batch_size=16, progress=False, device="cpu", seed=5)
    b = fit(_model(), _mse, _problem(), num_steps=30, batch_size=16, progress=False, device="cpu", seed=5)
    c = fit(_model(), _mse, _problem(), num_steps=30, batch_size=16, progress=False, device="cpu", seed=6)
    assert torch.equal(a.model.weight, b.model.weight)
    assert not torch.equal(a.model.weight, c.model.weight)


def test_ema_lags_behind_the_weights():
    result = fit(_model(), _mse, _problem(), num_steps=300, batch_size=32, lr=0.05,
                 ema_decay=0.9, progress=False, device="cpu")
    assert result.ema_model is not None and result.best_model is result.ema_model
    assert not torch.equal(result.ema_model.weight, result.model.weight)
    target = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    assert (result.ema_model.weight - target).abs().max() < 0.05


def test_ema_is_the_bias_corrected_average_of_every_step():
    """theta_ema = (1-b)/(1-b^n) sum_k b^(n-k) theta_k over the weights after each of the n steps."""
    decay, seen = 0.95, []
    result = fit(_model(), _mse, _problem(), num_steps=40, batch_size=16, lr=0.05, ema_decay=decay,
                 log_every=1, progress=False, device="cpu",
                 callback=lambda step, model: seen.append(model.weight.detach().clone()))
    n = len(seen)
    expected = sum((1 - decay) * decay ** (n - k) * w for k, w in enumerate(seen, 1)) / (1 - decay ** n)
    torch.testing.assert_close(result.ema_model.weight, expected, rtol=1e-5, atol=1e-6)


def test_a_short_run_keeps_no_large_share_of_its_first_weights():
    """The plain EMA would keep beta^(n-1) of the first step's weights: 0.999^19 = 98% after 20 steps."""
    first = []
    result = fit(_model(), _mse, _problem(), num_steps=20, batch_size=16, lr=0.05, ema_decay=0.999,
                 log_every=1, progress=False, device="cpu",
                 callback=lambda step, model: first.append(model.weight.detach().clone()) if step == 1 else None)
    final = result.model.weight.detach()
    # with 20 nearly equal weights the bias-corrected EMA sits near their mean, far from the first one
    share_of_first = ((result.ema_model.weight - final).norm() / (first[0] - final).norm()).item()
    assert share_of_first < 0.7, share_of_first


def test_ema_update_by_hand_and_bad_decay():
    from torch.optim.swa_utils import AveragedModel

    net = nn.Linear(1, 1, bias=False)
    ema = AveragedModel(net, multi_avg_fn=train.ema_update(0.5), use_buffers=True)
    for value in [4.0, 0.0, 0.0]:
        with torch.no_grad():
            net.weight.fill_(value)
        ema.update_parameters(net)
    # (0.25*4 + 0.5*0 + 1*0) * 0.5 / (1 - 0.125) = 4/7
    assert ema.module.weight.item() == pytest.approx(4 / 7)
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="ema_decay must be in"):
            train.ema_update(bad)


def test_resume_gives_identical_numbers(tmp_path):
    kwargs = dict(batch_size=16, lr=0.01, ema_decay=0.9, progress=False, device="cpu",
                  log_every=5, warmup_steps=4)
    straight = fit(_model(), _mse, _problem(), num_steps=40, **kwargs)
    ckpt = tmp_path / "run.pt"
    fit(_model(), _mse, _problem(), num_steps=25, checkpoint_path=ckpt, checkpoint_every=10, **kwargs)
    resumed = fit(_model(), _mse, _problem(), num_steps=40, checkpoint_path=ckpt, **kwargs)
    assert torch.equal(straight.model.weight, resumed.model.weight)
    assert torch.equal(straight.ema_model.weight, resumed.ema_model.weight)
    assert straight.history == resumed.history


def test_warmup_stable_decay_learning_rate():
    from vdlearn.train.fit import lr_factor
    factors = [lr_factor(s, 4, 10, 40) for s in range(40)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0] and set(factors[4:30]) == {1.0}
    assert factors[30:] == pytest.approx([(40 - s) / 10 for s in range(30, 40)])   # 1.0 ... 0.1, never 0
    assert lr_factor(3, 0, 0, 40) == 1.0


def test_a_decaying_run_trained_in_two_sittings_equals_one_sitting(tmp_path):
    kwargs = dict(batch_size=16, lr=0.01, progress=False, device="cpu", log_every=5, warmup_steps=4,
                  decay_steps=15, schedule_steps=40)
    straight = fit(_model(), _mse, _problem(), num_steps=40, **kwargs)
    ckpt = tmp_path / "run.pt"
    fit(_model(), _mse, _problem(), num_steps=22, checkpoint_path=ckpt, checkpoint_every=11, **kwargs)
    resumed = fit(_model(), _mse, _problem(), num_steps=40, checkpoint_path=ckpt, **kwargs)
    assert torch.equal(straight.model.weight, resumed.model.weight)
    constant = fit(_model(), _mse, _problem(), num_steps=40, **{**kwargs, "decay_steps": 0})
    assert not torch.equal(straight.model.weight, constant.model.weight)
    with pytest.raises(ValueError, match="decay_steps"):
        fit(_model(), _mse, _problem(), num_steps=40, **{**kwargs, "schedule_steps": 30})


def test_resume_from_a_mid_run_checkpoint(tmp_path):
    """A run that died after its step-20 checkpoint resumes from there, exactly."""
    kwargs = dict(batch_size=16, lr=0.01, progress=False, device="cpu", log_every=5)
    straight = fit(_model(), _mse, _problem(), num_steps=40, **kwargs)
    ckpt = tmp_path / "run.pt"

    def die_after_step_25(step, model):
        if step == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(_model(), _mse, _problem(), num_steps=40, checkpoint_path=ckpt, checkpoint_every=20,
            callback=die_after_step_25, **kwargs)
    assert load_checkpoint(ckpt)["step"] == 20
    resumed = fit(_model(), _mse, _problem(), num_steps=40, checkpoint_path=ckpt, **kwargs)
    assert torch.equal(straight.model.weight, resumed.model.weight)


def test_resume_with_other_settings_is_refused(tmp_path):
    ckpt = tmp_path / "run.pt"
    fit(_model(), _mse, _problem(), num_steps=5, batch_size=16, checkpoint_path=ckpt, progress=False)
    with pytest.raises(ValueError, match="batch_size: 16 there, 32 here.*Resume with the same settings"):
        fit(_model(), _mse, _problem(), num_steps=10, batch_size=32, checkpoint_path=ckpt, progress=False)
    with pytest.raises(ValueError, match="lr: 0.001 there, 0.01 here"):
        fit(_model(), _mse, _problem(), num_steps=10, batch_size=16, lr=0.01, checkpoint_path=ckpt, progress=False)
    with pytest.raises(ValueError, match="data: "):
        fit(_model(), _mse, _problem() + 1, num_steps=10, batch_size=16, checkpoint_path=ckpt, progress=False)


def test_resume_with_fewer_steps_than_the_checkpoint_holds_is_refused(tmp_path):
    ckpt = tmp_path / "run.pt"
    fit(_model(), _mse, _problem(), num_steps=8, batch_size=16, checkpoint_path=ckpt, progress=False)
    with pytest.raises(ValueError, match="holds 8 steps.*num_steps=3"):
        fit(_model(), _mse, _problem(), num_steps=3, batch_size=16, checkpoint_path=ckpt, progress=False)


def test_resume_into_another_model_is_explained(tmp_path):
    ckpt = tmp_path / "run.pt"
    fit(_model(), _mse, _problem(), num_steps=4, batch_size=16, checkpoint_path=ckpt, progress=False)
    wider = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))
    with pytest.raises(ValueError, match="made for another model"):
        fit(wider, lambda m, b: ((m(b[:, :4]).squeeze(-1) - b[:, 4]) ** 2).mean(), _problem(), num_steps=8,
            batch_size=16, checkpoint_path=ckpt, progress=False)


def test_every_flipped_byte_of_a_training_checkpoint_is_refused(tmp_path):
    """A byte flipped anywhere (40 places spread over the file) never loads as a silently different state."""
    path = tmp_path / "ckpt.pt"
    state = {"step": 3, "w": torch.linspace(-1, 1, 4096), "history": {"loss": [0.5, 0.25]}}
    save_checkpoint(state, path)
    good = path.read_bytes()
    for k in range(40):
        damaged = bytearray(good)
        damaged[(k * 7919 + 13) % len(good)] ^= 0x10
        path.write_bytes(bytes(damaged))
        try:
            loaded = load_checkpoint(path)
        except ValueError:
            continue
        assert torch.equal(loaded["w"], state["w"]) and loaded["history"] == state["history"], k


def test_leftover_temporary_files_are_cleaned_on_the_next_save(tmp_path):
    path = tmp_path / "ckpt.pt"
    (tmp_path / ".ckpt.pt.abc123.pt.tmp").write_bytes(b"left by a killed process")
    save_checkpoint({"step": 1}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_killed_while_saving_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"step": 1, "w": torch.ones(3)}, path)
    real_save = torch.save

    def crash_midway(obj, f, *args, **kwargs):
        f.write(b"partial bytes of a checkpoint")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    state = load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left over


def test_damaged_checkpoint_is_reported(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="damaged"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_nan_loss_stops_with_the_step():
    calls = []

    def explodes_at_step_6(model, batch):
        calls.append(1)
        loss = model(batch[:, :4]).pow(2).mean()
        return loss * float("nan") if len(calls) == 7 else loss

    with pytest.raises(FloatingPointError, match="at step 6.*lower learning rate"):
        fit(_model(), explodes_at_step_6, _problem(), num_steps=20, batch_size=16, log_every=10,
            progress=False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="fewer than batch_size"):
        fit(_model(), _mse, _problem(8), num_steps=1, batch_size=16, progress=False)
    with pytest.raises(TypeError, match="scalar tensor"):
        fit(_model(), lambda m, b: m(b[:, :4]), _problem(), num_steps=1, batch_size=4, progress=False)


def test_dataset_get_batch_is_used():
    class Counting(torch.utils.data.Dataset):
        def __init__(self):
            self.data, self.calls = _problem(64), 0

        def __len__(self):
            return 64

        def __getitem__(self, i):
            raise AssertionError("get_batch should be used")

        def get_batch(self, idx):
            self.calls += 1
            return self.data[idx]

    ds = Counting()
    fit(_model(), _mse, ds, num_steps=6, batch_size=16, progress=False)
    assert ds.calls == 6


def test_batches_cover_each_epoch_once():
    order = BatchIndices(10, 3, seed=0)
    epoch0 = torch.cat([order(s) for s in range(3)])
    assert len(set(epoch0.tolist())) == 9
    assert not torch.equal(order(0), order(3))


def test_a_dry_run_trains_a_step_of_two_examples_and_estimates_the_memory(monkeypatch, capsys):
    monkeypatch.setenv("VDLEARN_DRY_RUN", "1")
    monkeypatch.setenv("VDLEARN_GPU_MEMORY_GB", "")
    seen = []

    def loss(model, batch):
        seen.append(len(batch))
        return _mse(model, batch)

    result = fit(_model(), loss, _problem(), num_steps=500, batch_size=64, lr=0.05, log_every=100, progress=False,
                 device="cpu")
    assert result.step == 1 and seen == [2] and result.history["step"] == [1]
    out = capsys.readouterr().out
    assert "dry run (training): a step of the batch of 64 keeps about" in out and "of the 15 GiB allowed" in out
    seen.clear()  # data the dry run made smaller than the preset's batch: its batches come from what there is
    assert fit(_model(), loss, _problem(), num_steps=5, batch_size=512, progress=False, device="cpu").step == 1
    assert seen == [2] and "a step of the batch of 512" in capsys.readouterr().out
    with pytest.raises(ValueError, match="fewer than batch_size=512"):  # outside a dry run, an error
        monkeypatch.setenv("VDLEARN_DRY_RUN", "")
        fit(_model(), loss, _problem(), num_steps=5, batch_size=512, progress=False, device="cpu")
    monkeypatch.setenv("VDLEARN_DRY_RUN", "1")
    monkeypatch.setenv("VDLEARN_GPU_MEMORY_GB", "1e-9")  # a step that fits no GPU stops the dry run
    with pytest.raises(MemoryError, match="does not fit one GPU of 1e-09 GiB"):
        fit(_model(), loss, _problem(), num_steps=5, batch_size=64, progress=False, device="cpu")


def test_a_dry_run_of_a_gan_and_of_a_step_cost(monkeypatch):
    from vdlearn.gan import MLPDiscriminator, MLPGenerator

    monkeypatch.setenv("VDLEARN_DRY_RUN", "1")
    torch.manual_seed(0)
    result = train.train_gan(MLPGenerator(latent_dim=4, hidden=16), MLPDiscriminator(hidden=16), torch.randn(256, 2),
                             num_steps=100, batch_size=64, d_steps=2, progress=False, device="cpu")
    assert result.step == 1 and result.history["step"][-1] == 1
    cost = train.train_step_cost(_model(), lambda m, b: _mse(m, b)[0], _problem(64), repeats=5)
    monkeypatch.setenv("VDLEARN_GPU_MEMORY_GB", "1e-9")
    with pytest.raises(MemoryError, match="train_step_cost"):
        train.train_step_cost(_model(), lambda m, b: _mse(m, b)[0], _problem(64))
    monkeypatch.setenv("VDLEARN_DRY_RUN", "")
    full = train.train_step_cost(_model(), lambda m, b: _mse(m, b)[0], _problem(64), repeats=1)
    assert cost["activation_mb"] == pytest.approx(full["activation_mb"], rel=0.05)  # scaled to the whole batch
