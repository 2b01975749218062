"""vdlearn.diffusion.flow_matching: the path, its target and loss, time sampling, exact conversions,
the exact velocity of a Gaussian mixture, and the Euler / Heun samplers, against closed forms."""
import math

import pytest
import torch

from vdlearn.data import mixture_modes, mixture_std, sample_toy2d
from vdlearn.diffusion import (
    FLOW_SAMPLERS, SAMPLERS, cosine_schedule, ddim_sample, ddpm_sample, diffusion_model_from_velocity,
    diffusion_to_flow, dpm_solver_pp_sample, flow_euler_sample, flow_heun_sample, flow_matching_loss,
    flow_path, flow_sampling_times, flow_time, linear_schedule, logit_normal_density, mixture_velocity,
    output_from_velocity, q_sample, sample, sample_time, shift_time, size_shift, training_target,
    v_from_x0_eps, velocity_from_output, velocity_target, x0_eps_from_output, x0_noise_from_velocity,
)

D = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def one_gaussian_velocity(x, t, mu, s):
    """The velocity that moves N((1-t) mu, v_t) along t: m_t' + (sqrt(v_t))'/sqrt(v_t) (x - m_t)."""
    t = torch.as_tensor(t, dtype=D).reshape(-1, 1)
    v = (1 - t) ** 2 * s ** 2 + t ** 2
    dv = -2 * (1 - t) * s ** 2 + 2 * t
    return -mu + dv / (2 * v) * (x - (1 - t) * mu)


# ---- path, target, conversions in flow time -----------------------------------------------------
def test_the_path_runs_from_data_to_noise_with_the_target_as_its_speed():
    x0, eps = torch.randn(5, 3, generator=gen(), dtype=D), torch.randn(5, 3, generator=gen(1), dtype=D)
    assert torch.equal(flow_path(x0, eps, 0.0), x0) and torch.equal(flow_path(x0, eps, 1.0), eps)
    t = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9], dtype=D)
    h = 1e-6
    speed = (flow_path(x0, eps, t + h) - flow_path(x0, eps, t - h)) / (2 * h)
    assert torch.allclose(speed, velocity_target(x0, eps), atol=1e-8)
    assert torch.allclose(velocity_target(x0, eps), eps - x0)           # toward the noise, not the data


def test_x0_and_noise_come_back_from_a_velocity():
    x0, eps = torch.randn(6, 2, generator=gen(), dtype=D), torch.randn(6, 2, generator=gen(1), dtype=D)
    t = torch.linspace(0, 1, 6, dtype=D)
    got_x0, got_eps = x0_noise_from_velocity(flow_path(x0, eps, t), t, eps - x0)
    assert torch.allclose(got_x0, x0) and torch.allclose(got_eps, eps)


# ---- conversions to a NoiseSchedule -------------------------------------------------------------
@pytest.mark.parametrize("schedule", [linear_schedule(1000), cosine_schedule(200)])
def test_a_diffusion_state_is_a_rescaled_flow_state(schedule):
    n = 7
    x0, eps = torch.randn(n, 2, generator=gen(), dtype=D), torch.randn(n, 2, generator=gen(1), dtype=D)
    tau = torch.linspace(0, schedule.num_timesteps - 1, n).round().long()
    x, t = diffusion_to_flow(schedule, q_sample(schedule, x0, tau, eps), tau)
    assert torch.allclose(t, flow_time(schedule, tau))
    assert torch.allclose(x, flow_path(x0, eps, t), atol=1e-12)
    assert torch.all(flow_time(schedule, tau)[1:] > flow_time(schedule, tau)[:-1])   # noise grows with tau


@pytest.mark.parametrize("prediction_type", ["eps", "x0", "v"])
def test_conversions_agree_with_the_diffusion_targets_and_round_trip(prediction_type):
    s = linear_schedule(1000)
    x0, eps = torch.randn(8, 3, generator=gen(), dtype=D), torch.randn(8, 3, generator=gen(1), dtype=D)
    tau = torch.tensor([0, 3, 50, 200, 500, 800, 990, 999])
    z = q_sample(s, x0, tau, eps)
    target = training_target(s, x0, eps, tau, prediction_type)
    # the diffusion model's exact target and the flow's exact target are the same prediction
    assert torch.allclose(velocity_from_output(s, z, tau, target, prediction_type), eps - x0, atol=1e-9)
    assert torch.allclose(output_from_velocity(s, z, tau, eps - x0, prediction_type), target, atol=1e-9)
    # and any output (not only the exact one) survives the round trip
    out = torch.randn(8, 3, generator=gen(2), dtype=D)
    back = output_from_velocity(s, z, tau, velocity_from_output(s, z, tau, out, prediction_type), prediction_type)
    assert torch.allclose(back, out, atol=1e-7 if prediction_type == "eps" else 1e-9)
    # x0 and eps of the converted output agree with the existing conversion
    u = torch.randn(8, 3, generator=gen(3), dtype=D)
    rx0, reps = x0_eps_from_output(s, z, tau, output_from_velocity(s, z, tau, u, prediction_type), prediction_type)
    fx0, feps = x0_noise_from_velocity(*diffusion_to_flow(s, z, tau), u)
    assert torch.allclose(rx0, fx0, atol=1e-7) and torch.allclose(reps, feps, atol=1e-7)


def test_v_and_the_flow_velocity_are_related_in_closed_form():
    s = cosine_schedule(1000)
    x0, eps = torch.randn(5, 2, generator=gen(), dtype=D), torch.randn(5, 2, generator=gen(1), dtype=D)
    tau = torch.tensor([1, 250, 500, 750, 998])
    z, v = q_sample(s, x0, tau, eps), v_from_x0_eps(s, x0, eps, tau)
    a, sig = s.alpha(tau)[:, None], s.sigma(tau)[:, None]
    assert torch.allclose((sig - a) * z + (a + sig) * v, eps - x0, atol=1e-10)   # u = (sigma - alpha) z + (alpha + sigma) v


def test_a_velocity_model_runs_in_the_diffusion_samplers():
    s = linear_schedule(1000)
    x0, eps = torch.randn(4, 2, generator=gen(), dtype=D), torch.randn(4, 2, generator=gen(1), dtype=D)
    tau = torch.tensor([10, 300, 600, 900])
    oracle = lambda x, t: (eps - x0)                              # the exact velocity of these four pairs
    for ptype in ("eps", "x0", "v"):
        model = diffusion_model_from_velocity(oracle, s, ptype)
        got = model(q_sample(s, x0, tau, eps), tau)
        assert torch.allclose(got, training_target(s, x0, eps, tau, ptype), atol=1e-9)


# ---- the exact velocity of a Gaussian mixture --------------------------------------------------------
def test_mixture_velocity_of_one_gaussian_matches_its_closed_form():
    mu, s = torch.tensor([[0.7, -1.2]], dtype=D), 0.4
    x = torch.randn(50, 2, generator=gen(), dtype=D) * 1.5
    for t in (0.0, 0.05, 0.3, 0.5, 0.8, 1.0):
        assert torch.allclose(mixture_velocity(x, t, mu, s), one_gaussian_velocity(x, t, mu, s), atol=1e-12)
    assert torch.allclose(mixture_velocity(x, 1.0, mu, s), x - mu)     # at the noise: E[eps - x0 | x] = x - E x0
    assert torch.allclose(mixture_velocity(x, 0.0, mu, s), -x)         # at the data: E[eps] - x0 = -x0


@pytest.mark.parametrize("t, weights", [(0.3, None), (0.6, None), (0.5, [0.5, 0.2, 0.2, 0.05, 0.05, 0.0, 0.0, 0.0])])
def test_mixture_velocity_matches_a_monte_carlo_estimate(t, weights):
    """E[eps - x0 | x_t = x] = E[(x - x0)/t | x_t = x], estimated by weighting many x0 by N(x; (1-t) x0, t^2)."""
    modes, s = mixture_modes("gaussian_mixture").to(D), mixture_std("gaussian_mixture")
    g = gen(4)
    n = 200_000
    w = torch.full((8,), 1 / 8, dtype=D) if weights is None else torch.tensor(weights, dtype=D)
    x0 = modes[torch.multinomial(w, n, replacement=True, generator=g)] + s * torch.randn(n, 2, generator=g, dtype=D)
    queries = flow_path(x0[:20], torch.randn(20, 2, generator=g, dtype=D), t)    # typical points at time t
    logw = -((queries[:, None] - (1 - t) * x0[None]) ** 2).sum(-1) / (2 * t ** 2)   # (20, n)
    p = torch.softmax(logw, dim=1)
    estimate = (p[..., None] * (queries[:, None] - x0[None]) / t).sum(1)
    exact = mixture_velocity(queries, t, modes, s, None if weights is None else w)
    ess = (1 / (p ** 2).sum(1)).min().item()
    assert ess > 1000                                              # enough samples to trust the estimate
    assert (estimate - exact).abs().max() < 0.05
    # the mixture's velocity is not the velocity of any one component
    assert (exact - mixture_velocity(queries, t, modes[:1], s)).abs().max() > 0.5


def test_regressing_the_conditional_target_is_minimised_by_the_marginal_velocity():
    """L(u* + c) - L(u*) = |c|^2 / D: the conditional target's noise adds a constant, nothing else."""
    modes, s = mixture_modes("gaussian_mixture").to(D), mixture_std("gaussian_mixture")
    x0 = sample_toy2d("gaussian_mixture", 200_000, seed=5).to(D)
    t = torch.rand(len(x0), generator=gen(6), dtype=D)
    noise = torch.randn(x0.shape, generator=gen(7), dtype=D)
    exact = lambda x, tt: mixture_velocity(x, tt, modes, s)
    base = flow_matching_loss(exact, x0, t=t, noise=noise).item()
    for c in ([0.3, 0.0], [-0.2, 0.4]):
        c = torch.tensor(c, dtype=D)
        off = flow_matching_loss(lambda x, tt: exact(x, tt) + c, x0, t=t, noise=noise).item()
        assert off - base == pytest.approx((c ** 2).mean().item(), abs=0.01)
    assert base > 0.1      # the conditional target is noisy: the minimum is not zero


# ---- the loss ---------------------------------------------------------------------------------------
def test_the_loss_is_the_mse_to_eps_minus_x0():
    x0, noise = torch.randn(6, 2, generator=gen(), dtype=D), torch.randn(6, 2, generator=gen(1), dtype=D)
    t = torch.tensor([0.05, 0.2, 0.4, 0.6, 0.8, 1.0], dtype=D)
    oracle = lambda x, tt: (x - x0) / tt[:, None]                # knows x0: the conditional velocity itself
    assert flow_matching_loss(oracle, x0, t=t, noise=noise).item() == pytest.approx(0, abs=1e-12)
    per = flow_matching_loss(lambda x, tt: torch.zeros_like(x), x0, t=t, noise=noise, reduction="none")
    assert per.shape == (6,) and torch.allclose(per, ((noise - x0) ** 2).mean(1).float())
    wrong_sign = lambda x, tt: (x0 - x) / tt[:, None]
    assert flow_matching_loss(wrong_sign, x0, t=t, noise=noise) > 1.0
    seen = []
    flow_matching_loss(lambda x, tt: seen.append(tt) or torch.zeros_like(x), x0, time_distribution="logit_normal")
    assert seen[0].shape == (6,) and seen[0].dtype == D and torch.all((seen[0] > 0) & (seen[0] < 1))


# ---- time sampling and the shift ----------------------------------------------------------------------
def test_logit_normal_times_have_the_right_statistics():
    n = 200_000
    for loc, scale in ((0.0, 1.0), (0.5, 0.6)):
        t = sample_time(n, "logit_normal", loc=loc, scale=scale, generator=gen(8), dtype=D)
        assert torch.all((t > 0) & (t < 1))
        logit = torch.log(t) - torch.log1p(-t)
        assert logit.mean().item() == pytest.approx(loc, abs=0.01)
        assert logit.std().item() == pytest.approx(scale, rel=0.01)
        assert t.median().item() == pytest.approx(1 / (1 + math.exp(-loc)), abs=0.005)
        # the histogram follows SD3's density pi_ln(t; loc, scale)
        edges = torch.linspace(0.05, 0.95, 19, dtype=D)
        counts = torch.histc(t, bins=18, min=0.05, max=0.95)
        centres = (edges[1:] + edges[:-1]) / 2
        assert torch.allclose(counts / (n * 0.05), logit_normal_density(centres, loc, scale), rtol=0.05, atol=0.02)
    u = sample_time(n, "uniform", generator=gen(9), dtype=D)
    assert u.mean().item() == pytest.approx(0.5, abs=0.005) and u.var().item() == pytest.approx(1 / 12, abs=0.002)
    assert sample_time(3, generator=gen(0)).dtype == torch.float32


def test_the_shift_follows_sd3s_formula():
    t = torch.linspace(0, 1, 11, dtype=D)
    for s in (0.5, 1.0, 3.0):
        assert torch.allclose(shift_time(t, s), s * t / (1 + (s - 1) * t))
        assert torch.allclose(shift_time(shift_time(t, s), 1 / s), t)          # s and 1/s undo each other
    assert shift_time(0.5, 3.0).item() == pytest.approx(0.75)
    assert torch.all(shift_time(t, 3.0)[1:-1] > t[1:-1])                      # s > 1: toward the noise
    assert torch.equal(shift_time(t, 3.0)[[0, -1]], t[[0, -1]])
    assert size_shift(4 * 256 * 256, 256 * 256) == pytest.approx(2.0)
    # shifted uniform times have the CDF P(t' <= y) = y / (s - (s - 1) y)
    n, s = 100_000, 3.0
    t = sample_time(n, "uniform", shift=s, generator=gen(10), dtype=D)
    for y in (0.2, 0.5, 0.9):
        assert (t <= y).double().mean().item() == pytest.approx(y / (s - (s - 1) * y), abs=0.005)


def test_sampling_times_run_from_t_start_to_zero_with_the_shift():
    times = flow_sampling_times(4)
    assert torch.allclose(times, torch.tensor([1, 0.75, 0.5, 0.25, 0], dtype=D))
    shifted = flow_sampling_times(4, shift=3.0)
    assert torch.allclose(shifted, shift_time(times, 3.0))
    partial = flow_sampling_times(5, shift=2.0, t_start=0.6)
    assert partial[0].item() == 0.6 and partial[-1].item() == 0 and torch.all(partial[1:] < partial[:-1])
    quad = flow_sampling_times(4, spacing="quadratic")
    assert torch.allclose(quad, torch.tensor([1, 0.5625, 0.25, 0.0625, 0], dtype=D))


# ---- samplers -------------------------------------------------------------------------------------
def test_euler_is_first_order_and_heun_second_order_on_a_known_ode():
    """For data N(mu, s^2) the flow ODE from noise x_1 ends exactly at mu + s x_1."""
    mu, s = torch.tensor([[1.0, -0.5]], dtype=D), 0.3
    noise = torch.randn(64, 2, generator=gen(), dtype=D)
    velocity = lambda x, t: one_gaussian_velocity(x, t, mu, s)
    want = mu + s * noise
    errors = {name: [(sampler(velocity, noise, steps=n) - want).abs().max().item() for n in (16, 32, 64)]
              for name, sampler in (("euler", flow_euler_sample), ("heun", flow_heun_sample))}
    for name, order in (("euler", 1), ("heun", 2)):
        e = errors[name]
        for coarse, fine in zip(e, e[1:]):
            assert coarse / fine == pytest.approx(2 ** order, rel=0.2), (name, e)
    assert errors["heun"][-1] < errors["euler"][-1] / 50
    assert (flow_heun_sample(velocity, noise, steps=200) - want).abs().max() < 1e-4


def test_flow_euler_on_a_schedule_is_ddim_exactly():
    s = linear_schedule(1000)
    modes = torch.randn(4, 2, generator=gen(), dtype=D)
    velocity = lambda x, t: mixture_velocity(x, t, modes, 0.2)
    noise = torch.randn(50, 2, generator=gen(1), dtype=D)
    ddim = ddim_sample(diffusion_model_from_velocity(velocity, s, "eps"), noise, s, steps=20)
    for ptype in ("eps", "x0", "v"):
        model = diffusion_model_from_velocity(velocity, s, ptype)
        euler = flow_euler_sample(model, noise, s, steps=20, prediction_type=ptype)
        assert torch.allclose(euler, ddim, atol=1e-10)
    assert torch.allclose(flow_euler_sample(velocity, noise, s, steps=20), ddim, atol=1e-10)
    by_name = sample("ddim", velocity, noise, s, steps=20, prediction_type="velocity")
    assert torch.allclose(by_name, ddim, atol=1e-10)
    # the same ODE, solved more finely, lands on the same points as the velocity model's own grid
    fine = flow_heun_sample(velocity, noise / (s.alpha(999) + s.sigma(999)).item(), steps=400,
                            t_start=flow_time(s, 999).item())
    assert torch.allclose(flow_heun_sample(velocity, noise, s, steps=400), fine, atol=1e-3)


def test_every_sampler_reaches_a_velocity_model_by_name():
    s = linear_schedule(100)
    modes = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=D)
    velocity = lambda x, t: mixture_velocity(x, t, modes, 0.1)
    noise = torch.randn(400, 2, generator=gen(2), dtype=D)
    assert set(FLOW_SAMPLERS) <= set(SAMPLERS)
    for name in SAMPLERS:
        schedule = None if name in FLOW_SAMPLERS else s
        out = sample(name, velocity, noise, schedule, steps=50, prediction_type="velocity",
                     generator=gen(3))
        nearest = (out[:, None] - modes[None]).norm(dim=-1).min(1).values
        assert nearest.median() < 0.2, name                         # the samples sit on the two modes
    assert torch.equal(sample("flow-heun", velocity, noise, None, steps=7), flow_heun_sample(velocity, noise, steps=7))


def test_flow_samplers_run_a_diffusion_model_and_report_every_step():
    s = linear_schedule(100)
    eps_model = diffusion_model_from_velocity(lambda x, t: mixture_velocity(x, t, torch.zeros(1, 2, dtype=D), 0.5), s)
    noise = torch.randn(8, 2, generator=gen(), dtype=D)
    seen = []
    out = flow_heun_sample(eps_model, noise, s, steps=10, prediction_type="eps", callback=seen.append)
    assert len(seen) == 10 and seen[-1]["t"] == 0.0 and torch.equal(seen[-1]["x"], out)
    assert all(a["t"] > b["t"] for a, b in zip(seen, seen[1:]))
    ref = dpm_solver_pp_sample(eps_model, noise, s, steps=50)
    assert (out - ref).abs().max() < 0.05                          # both solve the same ODE
    clipped = flow_euler_sample(lambda x, t: x * 0 - 5.0, noise, steps=4, clip_x0=True)
    assert clipped.abs().max() <= 1.0
    plain = flow_euler_sample(lambda x, t: x, noise, steps=3)
    assert torch.equal(flow_euler_sample(lambda x, t: x, noise, steps=3, progress=True), plain)
    assert ddpm_sample(eps_model, noise, s, steps=10, generator=gen(1)).shape == (8, 2)


# ---- bad input ------------------------------------------------------------------------------------
def test_bad_input_is_explained():
    x = torch.randn(4, 2)
    velocity = lambda x, t: torch.zeros_like(x)
    s = linear_schedule(100)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\] \(0: data, 1: noise\)"):
        flow_path(x, x, torch.tensor([0.1, 0.2, 1.5, 0.3]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*flow_time\(schedule"):
        flow_matching_loss(velocity, x, t=torch.tensor([0, 10, 20, 30]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mixture_velocity(x, -0.1, torch.zeros(1, 2), 0.1)
    with pytest.raises(ValueError, match="one per sample"):
        flow_path(x, x, torch.full((3,), 0.5))
    with pytest.raises(ValueError, match="unknown time distribution 'lognorm'.*logit_normal"):
        sample_time(4, "lognorm")
    with pytest.raises(ValueError, match="unknown time distribution"):
        flow_matching_loss(velocity, x, time_distribution="cosine")
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="shift must be a number > 0"):
            shift_time(0.5, bad)
        with pytest.raises(ValueError, match="shift must be a number > 0"):
            flow_euler_sample(velocity, x, steps=4, shift=bad)
    with pytest.raises(ValueError, match="shift must be"):
        sample_time(4, shift=0.0)
    with pytest.raises(ValueError, match="scale"):
        sample_time(4, "logit_normal", scale=0.0)
    with pytest.raises(ValueError, match=r"velocity has shape \(4, 1\) but x_t has \(4, 2\)"):
        flow_matching_loss(lambda x, t: x[:, :1], x)
    with pytest.raises(ValueError, match=r"velocity has shape \(4, 1\)"):
        flow_heun_sample(lambda x, t: x[:, :1], x, steps=3)
    with pytest.raises(ValueError, match="velocity has shape"):
        output_from_velocity(s, x, torch.zeros(4, dtype=torch.long), torch.zeros(4, 3))
    for sampler in (flow_euler_sample, flow_heun_sample):
        with pytest.raises(ValueError, match="steps must be a positive int"):
            sampler(velocity, x, steps=0)
        with pytest.raises(ValueError, match="steps must be a positive int"):
            sampler(velocity, x, s, steps=0)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        flow_sampling_times(0)
    with pytest.raises(ValueError, match="pass that schedule"):
        flow_euler_sample(velocity, x, steps=4, prediction_type="eps")
    with pytest.raises(ValueError, match="unknown prediction_type"):
        flow_euler_sample(velocity, x, s, steps=4, prediction_type="noise")
    with pytest.raises(ValueError, match="with a NoiseSchedule the times are its timesteps"):
        flow_euler_sample(velocity, x, s, steps=4, shift=3.0)
    with pytest.raises(ValueError, match=r"t_start must be a flow time in \(0, 1\]"):
        flow_euler_sample(velocity, x, steps=4, t_start=1.5)
    with pytest.raises(ValueError, match="steps through the timesteps of a NoiseSchedule"):
        sample("ddim", velocity, x, None, steps=4)
    with pytest.raises(ValueError, match="std must be > 0"):
        mixture_velocity(x, 0.5, torch.zeros(1, 2), 0.0)
    with pytest.raises(ValueError, match="positive sizes"):
        size_shift(0, 256)
