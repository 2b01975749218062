"""The lesson 05 checks accept the right answers and explain typical wrong ones."""
import math

import pytest
import torch

from vdlearn.checks import ExerciseError
from vdlearn.checks import lesson05 as checks


# ---- q_sample ----------------------------------------------------------------------------------
def q_sample(x0, t, eps, ab):
    a = ab[t][:, None]
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def test_q_sample_right_answer_passes(capsys):
    checks.check_q_sample(q_sample)
    assert "✅ 05.q_sample" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda x0, t, eps, ab: ab[t][:, None] * x0 + (1 - ab[t][:, None]) * eps, "square roots"),
    (lambda x0, t, eps, ab: (1 - ab[t][:, None]).sqrt() * x0 + ab[t][:, None].sqrt() * eps, "swapped"),
    (lambda x0, t, eps, ab: q_sample(x0, (t - 1).clamp(min=0), eps, ab), "t - 1"),
    (lambda x0, t, eps, ab: ab[t].sqrt() * x0 + (1 - ab[t]).sqrt() * eps, "RuntimeError"),  # no (B, 1)
    (lambda x0, t, eps, ab: x0, "off by"),
])
def test_q_sample_wrong_answers_are_explained(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_q_sample(wrong)


def test_unattempted_exercise_says_so():
    def stub(*args):
        raise NotImplementedError("Exercise: q_sample")
    with pytest.raises(NotImplementedError):
        checks.check_q_sample(stub)


# ---- posterior ---------------------------------------------------------------------------------
def posterior(x0, xt, t, betas, ab, *, prev_shift=1, swap=False, sqrt_alpha=True, var_beta=False):
    beta = betas[t][:, None]
    abar, abar_prev = ab[t][:, None], ab[t - prev_shift][:, None]
    alpha = (1 - beta).sqrt() if sqrt_alpha else (1 - beta)
    c1, c2 = abar_prev.sqrt() * beta / (1 - abar), alpha * (1 - abar_prev) / (1 - abar)
    if swap:
        c1, c2 = c2, c1
    var = beta if var_beta else beta * (1 - abar_prev) / (1 - abar)
    return c1 * x0 + c2 * xt, var


def test_posterior_right_answer_passes(capsys):
    checks.check_posterior_mean_variance(posterior)
    checks.check_posterior_mean_variance(lambda *a: (posterior(*a)[0], posterior(*a)[1][:, 0]))  # (B,) is fine
    assert "✅ 05.posterior_mean_variance" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    (dict(var_beta=True), "forward step"),
    (dict(prev_shift=0), "abar_t where the formula has abar_"),
    (dict(swap=True), "swapped"),
    (dict(sqrt_alpha=False), "square root on alpha_t"),
])
def test_posterior_wrong_answers_are_explained(options, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_posterior_mean_variance(lambda *a: posterior(*a, **options))


def test_posterior_must_return_a_pair():
    with pytest.raises(ExerciseError, match="tuple"):
        checks.check_posterior_mean_variance(lambda *a: posterior(*a)[0])


# ---- v --------------------------------------------------------------------------------------------
def test_x0_eps_from_v_right_and_wrong():
    checks.check_x0_eps_from_v(lambda xt, v, a, s: (a * xt - s * v, s * xt + a * v))
    with pytest.raises(ExerciseError, match="sign of v"):
        checks.check_x0_eps_from_v(lambda xt, v, a, s: (a * xt + s * v, s * xt + a * v))
    with pytest.raises(ExerciseError, match="swapped"):
        checks.check_x0_eps_from_v(lambda xt, v, a, s: (s * xt + a * v, a * xt - s * v))
    with pytest.raises(ExerciseError, match="eps is off"):
        checks.check_x0_eps_from_v(lambda xt, v, a, s: (a * xt - s * v, s * xt - a * v))


# ---- DDIM step -------------------------------------------------------------------------------------
def ddim_step(xt, eps, ab_t, ab_prev, eta, noise, *, full_direction=False, scale_xt=False):
    x0 = (xt - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
    sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev))
    direction = math.sqrt(1 - ab_prev - (0 if full_direction else sigma ** 2))
    return math.sqrt(ab_prev) * (xt if scale_xt else x0) + direction * eps + sigma * noise


def test_ddim_step_right_answer_passes(capsys):
    checks.check_ddim_step(ddim_step)
    assert "✅ 05.ddim_step" in capsys.readouterr().out


def test_ddim_step_wrong_answers_are_explained():
    with pytest.raises(ExerciseError, match="sqrt\\(1 - abar_prev - sigma\\^2\\)"):
        checks.check_ddim_step(lambda *a: ddim_step(*a, full_direction=True))
    with pytest.raises(ExerciseError, match="x_t is scaled"):
        checks.check_ddim_step(lambda *a: ddim_step(*a, scale_xt=True))
    with pytest.raises(ExerciseError, match="eta=1.0"):  # forgets the noise term altogether
        checks.check_ddim_step(lambda xt, eps, ab_t, ab_prev, eta, noise: ddim_step(xt, eps, ab_t, ab_prev, 0.0, noise))


# ---- flow matching: the path and its target -------------------------------------------------------
def flow_path_and_target(x0, noise, t):
    t = t[:, None]
    return (1 - t) * x0 + t * noise, noise - x0


def test_flow_path_and_target_right_answer_passes(capsys):
    checks.check_flow_path_and_target(flow_path_and_target)
    assert "✅ 05.flow_path_and_target" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda x0, n, t: (flow_path_and_target(x0, n, t)[0], x0 - n), "sign flipped"),              # wrong sign
    (lambda x0, n, t: (t[:, None] * x0 + (1 - t[:, None]) * n, n - x0), "t = 0 is the data"),     # t = 0 at noise
    (lambda x0, n, t: (t[:, None] * x0 + (1 - t[:, None]) * n, x0 - n), "reversed"),              # Lipman's convention
    (lambda x0, n, t: ((1 - t[:, None]).sqrt() * x0 + t[:, None].sqrt() * n, n - x0), "square roots"),
    (lambda x0, n, t: (flow_path_and_target(x0, n, t)[0], n), "DDPM's eps"),
    (lambda x0, n, t: (flow_path_and_target(x0, n, t)[0], t[:, None] * (n - x0)), "scaled by t"),
    (lambda x0, n, t: ((1 - t) * x0 + t * n, n - x0), "RuntimeError"),                           # t not shaped (B, 1)
    (lambda x0, n, t: flow_path_and_target(x0, n, t)[0], "tuple"),
])
def test_flow_path_and_target_wrong_answers_are_explained(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_flow_path_and_target(wrong)


# ---- flow matching: training times -----------------------------------------------------------------
def training_times(n, shift):
    t = torch.sigmoid(n)
    return shift * t / (1 + (shift - 1) * t)


def test_training_times_right_answer_passes(capsys):
    checks.check_training_times(training_times)
    assert "✅ 05.training_times" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda n, s: torch.sigmoid(n), "without the shift"),                                      # forgets the shift
    (lambda n, s: training_times(n, 1 / s), "shifted the wrong way"),                          # s and 1/s swapped
    (lambda n, s: 1 - training_times(n, s), "mirrored"),                                       # t = 0 at noise
    (lambda n, s: 1 - training_times(-n, s), "toward the data"),                               # shifted from the noise end
    (lambda n, s: n, "sigmoid"),                                                               # no sigmoid
    (lambda n, s: s * torch.sigmoid(n), "keeps 0 and 1"),
])
def test_training_times_wrong_answers_are_explained(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_training_times(wrong)


# ---- flow matching: the Euler sampler ---------------------------------------------------------------
def euler_trajectory(velocity, x, steps, shift, *, shifted=True, inverse=False, late=False, sign=1.0,
                     forward=False):
    ts = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    if forward:
        ts = ts.flip(0)
    s = 1 / shift if inverse else shift
    if shifted:
        ts = s * ts / (1 + (s - 1) * ts)
    path = [x]
    for i in range(steps):
        x = x + sign * (ts[i + 1] - ts[i]) * velocity(x, ts[i + 1] if late else ts[i])
        path.append(x)
    return torch.stack(path)


def test_euler_trajectory_right_answer_passes(capsys):
    checks.check_euler_trajectory(euler_trajectory)
    # float32 times, a python float for t, and t of shape (B,) are all fine
    checks.check_euler_trajectory(lambda v, x, n, s: euler_trajectory(
        lambda x, t: v(x, torch.full((x.shape[0],), float(t), dtype=torch.float32)), x, n, s))
    assert "✅ 05.euler_trajectory" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    (dict(shifted=False), "without the shift"),                  # forgets the shift
    (dict(inverse=True), "grid shifted the wrong way"),
    (dict(sign=-1.0), "each step goes the wrong way"),           # the sign of the velocity
    (dict(late=True), "end of each step"),
    (dict(forward=True), "not at t = 1"),                        # t = 0 taken as the noise
])
def test_euler_trajectory_wrong_answers_are_explained(options, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_euler_trajectory(lambda *a: euler_trajectory(*a, **options))


def test_euler_trajectory_must_return_every_state():
    with pytest.raises(ExerciseError, match=r"shape \(6, 4, 2\)"):
        checks.check_euler_trajectory(lambda *a: euler_trajectory(*a)[-1])
    with pytest.raises(ExerciseError, match=r"shape \(6, 4, 2\)"):
        checks.check_euler_trajectory(lambda *a: euler_trajectory(*a)[1:])
