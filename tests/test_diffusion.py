"""vdlearn.diffusion: schedules, the forward process, targets, losses, samplers and guidance."""
import math

import pytest
import torch

from vdlearn.diffusion import (
    NoiseSchedule, classifier_free_guidance, cosine_schedule, ddim_sample, ddpm_sample,
    diffusion_loss, dpm_solver_pp_sample, drop_labels, guided_output, linear_schedule,
    loss_weight, make_schedule, q_posterior, q_sample, sample, sampling_timesteps,
    training_target, v_from_x0_eps, x0_eps_from_output,
)


# ---- schedules ---------------------------------------------------------------------------------
def test_linear_schedule_matches_ddpm():
    s = linear_schedule(1000)
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    assert torch.allclose(s.alphas_cumprod, torch.cumprod(1 - s.betas, 0))
    assert s.alphas_cumprod[-1] < 1e-4  # almost pure noise at the end


def test_cosine_schedule_follows_its_formula():
    T, s_ = 1000, 0.008
    s = cosine_schedule(T)
    f = lambda t: math.cos((t / T + s_) / (1 + s_) * math.pi / 2) ** 2
    for t in (0, 10, 500, 900):  # index t is step t+1 of the paper
        assert s.alphas_cumprod[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert torch.all(s.betas <= 0.999)


def test_snr_and_scales_are_consistent():
    s = make_schedule("cosine", 200)
    t = torch.arange(200)
    assert torch.allclose(s.alpha(t) ** 2 + s.sigma(t) ** 2, torch.ones(200, dtype=torch.float64))
    assert torch.allclose(s.snr(t), s.alpha(t) ** 2 / s.sigma(t) ** 2)
    assert torch.all(s.log_snr(t)[1:] < s.log_snr(t)[:-1])  # noise only grows


def test_bad_schedule_arguments_are_explained():
    with pytest.raises(ValueError, match="unknown noise schedule 'quadratic'"):
        make_schedule("quadratic")
    with pytest.raises(ValueError, match="positive int"):
        linear_schedule(0)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        NoiseSchedule(torch.tensor([0.1, 1.5]))
    with pytest.raises(ValueError, match=r"\[0, 99\]"):
        linear_schedule(100).alpha(100)
    with pytest.raises(ValueError, match="integers"):
        linear_schedule(100).alpha(torch.tensor([1.5]))


# ---- forward process ---------------------------------------------------------------------------
def test_closed_form_forward_process_matches_simulating_the_chain():
    """q(x_t | x_0) = N(sqrt(abar_t) x0, (1 - abar_t) I), checked by running eq. 2 step by step."""
    torch.manual_seed(0)
    s = linear_schedule(100)
    x0 = torch.tensor([1.5, -0.5]).expand(10000, 2)
    x = x0.clone().double()
    for t in range(100):
        x = (1 - s.betas[t]).sqrt() * x + s.betas[t].sqrt() * torch.randn_like(x)
        if t in (0, 9, 49, 99):
            closed = q_sample(s, x0.double(), torch.full((10000,), t))
            for sample_ in (x, closed):
                assert torch.allclose(sample_.mean(0), s.alpha(t) * x0[0].double(), atol=0.03)
                assert torch.allclose(sample_.var(0), (1 - s.alphas_cumprod[t]).expand(2), rtol=0.05, atol=2e-3)


def test_posterior_is_bayes_rule_of_two_gaussians():
    """q(x_{t-1}|x_t,x_0) ∝ q(x_t|x_{t-1}) q(x_{t-1}|x_0): precision and mean of the product."""
    s = cosine_schedule(50)
    x0, xt = torch.randn(7, 3).double(), torch.randn(7, 3).double()
    for t in (1, 10, 49):
        ab_prev, a, b = s.alphas_cumprod[t - 1], s.alphas[t], s.betas[t]
        precision = a / b + 1 / (1 - ab_prev)
        mean = (a.sqrt() * xt / b + ab_prev.sqrt() * x0 / (1 - ab_prev)) / precision
        got_mean, got_var = q_posterior(s, x0, xt, torch.full((7,), t))
        assert torch.allclose(got_mean, mean) and torch.allclose(got_var.flatten(), (1 / precision).expand(7))


def test_q_sample_broadcasts_over_any_shape():
    s = linear_schedule(10)
    for shape in [(4, 2), (4, 1, 5, 5), (4, 3, 2, 5, 5)]:
        x0, eps = torch.randn(shape), torch.randn(shape)
        t = torch.tensor([0, 3, 6, 9])
        xt = q_sample(s, x0, t, eps)
        for i in range(4):
            want = s.alpha(int(t[i])).item() * x0[i] + s.sigma(int(t[i])).item() * eps[i]
            assert torch.allclose(xt[i], want, atol=1e-6)


# ---- targets and losses -------------------------------------------------------------------------
@pytest.mark.parametrize("prediction_type", ["eps", "x0", "v"])
def test_every_prediction_type_recovers_x0_and_eps(prediction_type):
    s = cosine_schedule(1000)
    x0, eps = torch.randn(6, 2, 4, 4).double(), torch.randn(6, 2, 4, 4).double()
    t = torch.tensor([0, 1, 250, 500, 998, 999])
    xt = q_sample(s, x0, t, eps)
    output = training_target(s, x0, eps, t, prediction_type)
    got_x0, got_eps = x0_eps_from_output(s, xt, t, output, prediction_type)
    assert torch.allclose(got_x0, x0, atol=1e-6) and torch.allclose(got_eps, eps, atol=1e-6)


def test_v_is_the_rotation_of_x0_and_eps():
    s = linear_schedule(100)
    x0, eps, t = torch.randn(5, 3).double(), torch.randn(5, 3).double(), torch.randint(0, 100, (5,))
    a, sg = s.alpha(t)[:, None], s.sigma(t)[:, None]
    v = v_from_x0_eps(s, x0, eps, t)
    xt = q_sample(s, x0, t, eps)
    assert torch.allclose(v, a * eps - sg * x0)
    assert torch.allclose(xt ** 2 + v ** 2, x0 ** 2 + eps ** 2)  # (x_t, v) is a rotation of (x0, eps)


def test_min_snr_weights_make_all_parametrisations_the_same_loss():
    """With min-SNR-γ, the weighted losses of eps, x0 and v equal min(SNR, γ)·||x0_hat − x0||²."""
    s = cosine_schedule(1000)
    x0, eps = torch.randn(4, 8).double(), torch.randn(4, 8).double()
    t = torch.tensor([5, 200, 600, 990])
    xt = q_sample(s, x0, t, eps)
    x0_hat = x0 + 0.1 * torch.randn_like(x0)
    a, sg = s.alpha(t)[:, None], s.sigma(t)[:, None]
    eps_hat = (xt - a * x0_hat) / sg
    outputs = {"x0": x0_hat, "eps": eps_hat, "v": a * eps_hat - sg * x0_hat}
    want = s.snr(t).clamp(max=5.0) * ((x0_hat - x0) ** 2).mean(1)
    for ptype, out in outputs.items():
        mse = ((out - training_target(s, x0, eps, t, ptype)) ** 2).mean(1)
        assert torch.allclose(loss_weight(s, t, ptype, 5.0).double() * mse, want, rtol=1e-4), ptype
    assert torch.equal(loss_weight(s, t, "eps"), torch.ones(4))


@pytest.mark.parametrize("prediction_type", ["eps", "x0", "v"])
def test_diffusion_loss_is_zero_for_the_perfect_model_and_positive_otherwise(prediction_type):
    s = linear_schedule(100)
    x0, noise, t = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4), torch.randint(0, 100, (8,))
    perfect = lambda x, t_: training_target(s, x0, noise, t_, prediction_type)
    assert diffusion_loss(perfect, x0, s, prediction_type=prediction_type, t=t, noise=noise).item() < 1e-10
    zero = lambda x, t_: torch.zeros_like(x)
    per = diffusion_loss(zero, x0, s, prediction_type=prediction_type, t=t, noise=noise, reduction="none")
    target = training_target(s, x0, noise, t, prediction_type)
    assert torch.allclose(per, (target ** 2).flatten(1).mean(1))


def test_loss_errors_are_explained():
    s = linear_schedule(100)
    x0 = torch.randn(4, 2)
    with pytest.raises(ValueError, match="unknown prediction_type 'score'"):
        diffusion_loss(lambda x, t: x, x0, s, prediction_type="score")
    with pytest.raises(ValueError, match=r"returned shape \(4, 3\).*shape \(4, 2\)"):
        diffusion_loss(lambda x, t: torch.zeros(4, 3), x0, s)
    with pytest.raises(ValueError, match=r"\[0, 99\]"):
        diffusion_loss(lambda x, t: x, x0, s, t=torch.tensor([0, 1, 2, 100]))
    with pytest.raises(ValueError, match=r"\[0, 99\]"):
        q_sample(s, x0, torch.tensor([-1, 0, 0, 0]))
    with pytest.raises(ValueError, match="positive"):
        loss_weight(s, torch.tensor([1]), "eps", min_snr_gamma=0.0)


# ---- samplers -----------------------------------------------------------------------------------
MEAN, STD = 2.0, 0.5


def gaussian_eps(schedule):
    """The exact E[eps | x_t] for data N(MEAN, STD²): x_t ~ N(α MEAN, α² STD² + σ²)."""
    def model(x, t):
        a = schedule.gather(schedule.sqrt_alphas_cumprod, t, x)
        s = schedule.gather(schedule.sqrt_one_minus_alphas_cumprod, t, x)
        return s * (x - a * MEAN) / (a ** 2 * STD ** 2 + s ** 2)
    return model


@pytest.mark.parametrize("schedule_name", ["linear", "cosine"])
@pytest.mark.parametrize("sampler, steps, tol", [("ddpm", None, 0.02), ("ddpm", 250, 0.04),
                                                 ("ddim", 250, 0.03), ("dpm++2m", 20, 0.04),
                                                 ("dpm++2m-sde", 50, 0.03)])
def test_samplers_given_the_true_eps_recover_the_gaussian(schedule_name, sampler, steps, tol):
    """Data N(2, 0.5²): every sampler, fed the exact denoiser, must give back that Gaussian."""
    s = make_schedule(schedule_name, 1000)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 2, generator=g, dtype=torch.float64)
    out = sample(sampler, gaussian_eps(s), x, s, steps=steps, generator=g)
    assert abs(out.mean().item() - MEAN) < 0.015
    assert abs(out.std().item() / STD - 1) < tol


def test_dpm_solver_in_20_steps_beats_ddim_in_20_steps():
    s = cosine_schedule(1000)
    x = torch.randn(4000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    err = {name: abs(sample(name, gaussian_eps(s), x, s, steps=20).std().item() - STD)
           for name in ("ddim", "dpm++2m")}
    assert err["dpm++2m"] < err["ddim"] / 3


@pytest.mark.parametrize("prediction_type", ["x0", "v"])
def test_samplers_accept_every_prediction_type(prediction_type):
    s = cosine_schedule(1000)
    eps_model = gaussian_eps(s)

    def model(x, t):  # the same denoiser, expressed as an x0- or v-prediction
        eps = eps_model(x, t)
        a = s.gather(s.sqrt_alphas_cumprod, t, x)
        sg = s.gather(s.sqrt_one_minus_alphas_cumprod, t, x)
        x0 = (x - sg * eps) / a
        return x0 if prediction_type == "x0" else a * eps - sg * x0

    x = torch.randn(3000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    want = ddim_sample(eps_model, x, s, steps=30)
    got = ddim_sample(model, x, s, steps=30, prediction_type=prediction_type)
    assert torch.allclose(got, want, atol=1e-6)


def test_ddim_with_eta_one_is_ddpm():
    s = linear_schedule(1000)
    model = gaussian_eps(s)
    x = torch.randn(64, 1, 3, 3, dtype=torch.float64)
    a = ddpm_sample(model, x, s, steps=40, generator=torch.Generator().manual_seed(3))
    b = ddim_sample(model, x, s, steps=40, eta=1.0, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(a, b, atol=1e-10)


def test_samplers_are_deterministic_under_a_seed_and_keep_video_shapes():
    s = cosine_schedule(100)
    model = gaussian_eps(s)
    x = torch.randn(2, 1, 3, 4, 4)  # a batch of videos (B, C, T, H, W)
    for name in ("ddpm", "ddim", "dpm++2m", "dpm++2m-sde"):
        opts = dict(steps=10, generator=torch.Generator().manual_seed(5))
        if name == "ddim":
            opts["eta"] = 0.5
        a = sample(name, model, x, s, **opts)
        opts["generator"] = torch.Generator().manual_seed(5)
        b = sample(name, model, x, s, **opts)
        assert a.shape == x.shape and torch.equal(a, b), name
    seed5 = ddpm_sample(model, x, s, steps=10, generator=torch.Generator().manual_seed(5))
    seed6 = ddpm_sample(model, x, s, steps=10, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(seed5, seed6)


def test_callback_sees_every_step_and_t_start_starts_part_way():
    s = linear_schedule(100)
    seen = []
    x0 = torch.full((4, 2), MEAN)
    xt = q_sample(s, x0, torch.full((4,), 30))
    out = ddim_sample(gaussian_eps(s), xt, s, steps=5, t_start=30, callback=seen.append)
    assert [d["t"] for d in seen] == sampling_timesteps(s, 5, t_start=30).tolist()
    assert seen[0]["t"] == 30 and seen[-1]["t"] == 0 and torch.equal(seen[-1]["x"], out)
    seen.clear()
    ddpm_sample(gaussian_eps(s), xt, s, t_start=30, callback=seen.append)  # steps=None: all 31
    assert [d["t"] for d in seen] == list(range(30, -1, -1))


@pytest.mark.parametrize("spacing", ["uniform", "quadratic"])
def test_sampling_timesteps_are_distinct_and_span_the_range(spacing):
    s = linear_schedule(1000)
    for steps in (2, 10, 20, 250, 999, 1000):
        ts = sampling_timesteps(s, steps, spacing=spacing)
        assert len(ts) == steps and ts[0] == 999 and ts[-1] == 0 and torch.all(ts[:-1] > ts[1:])


def test_sampler_errors_are_explained():
    s = linear_schedule(100)
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"returned shape \(4, 1\)"):
        ddim_sample(lambda x, t: x[:, :1], x, s, steps=5)
    with pytest.raises(ValueError, match="between 1 and 100"):
        ddim_sample(lambda x, t: x, x, s, steps=101)
    with pytest.raises(ValueError, match=r"t_start must be an int in \[0, 99\]"):
        ddpm_sample(lambda x, t: x, x, s, t_start=100)
    with pytest.raises(ValueError, match="unknown sampler 'euler'"):
        sample("euler", lambda x, t: x, x, s)
    with pytest.raises(ValueError, match="unknown prediction_type"):
        dpm_solver_pp_sample(lambda x, t: x, x, s, prediction_type="noise")
    with pytest.raises(ValueError, match="unknown spacing"):
        ddim_sample(lambda x, t: x, x, s, spacing="cubic")
    with pytest.raises(ValueError, match="eta must be >= 0"):
        ddim_sample(lambda x, t: x, x, s, eta=-1.0)
    with pytest.raises(ValueError, match="eta must be >= 0"):
        dpm_solver_pp_sample(lambda x, t: x, x, s, eta=-0.5)


# ---- classifier-free guidance ---------------------------------------------------------------------
class TwoHeads(torch.nn.Module):
    """A toy conditional model: predicts y (as a float) everywhere; the null label 3 predicts -1."""

    num_classes, null_label = 3, 3

    def forward(self, x, t, y):
        value = torch.where(y == self.null_label, -1.0, y.float())
        return value.view(-1, *([1] * (x.ndim - 1))).expand_as(x).clone()


def test_guidance_extrapolates_from_unconditional_to_conditional():
    model, x, t = TwoHeads(), torch.zeros(3, 2), torch.zeros(3, dtype=torch.long)
    labels = torch.tensor([0, 1, 2])
    for scale in (0.0, 1.0, 2.5):
        got = classifier_free_guidance(model, labels, scale)(x, t)
        want = -1.0 + scale * (labels.float() + 1.0)
        assert torch.allclose(got, want[:, None].expand(3, 2))
    assert torch.equal(guided_output(torch.tensor(1.0), torch.tensor(3.0), 2.0), torch.tensor(5.0))


def test_guidance_errors_are_explained():
    from vdlearn.nn import UNet2D
    with pytest.raises(ValueError, match="not class-conditional"):
        classifier_free_guidance(UNet2D(1, base_channels=8, channel_mults=(1,), num_res_blocks=1,
                                        attention_levels=()), torch.tensor([0]), 3.0)
    with pytest.raises(ValueError, match="null label"):
        classifier_free_guidance(lambda x, t, y: x, torch.tensor([0]), 3.0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        classifier_free_guidance(TwoHeads(), torch.tensor([0, 3]), 2.0)
    with pytest.raises(ValueError, match=">= 0"):
        classifier_free_guidance(TwoHeads(), torch.tensor([0]), -1.0)
    with pytest.raises(ValueError, match="2 samples but 1 labels"):
        classifier_free_guidance(TwoHeads(), torch.tensor([0]), 2.0)(torch.zeros(2, 2), torch.zeros(2))


def test_drop_labels_drops_at_the_requested_rate():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (20000,), generator=g)
    dropped = drop_labels(y, 0.2, 10, generator=g)
    frac = (dropped == 10).float().mean().item()
    assert abs(frac - 0.2) < 0.01
    kept = dropped != 10
    assert torch.equal(dropped[kept], y[kept])
    assert torch.equal(drop_labels(y, 0.0, 10), y) and torch.all(drop_labels(y, 1.0, 10) == 10)
    with pytest.raises(ValueError, match="probability"):
        drop_labels(y, 1.5, 10)
