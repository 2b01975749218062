"""The exercise checks of lessons 01 and 02 pass right answers and explain typical wrong ones."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vdlearn.checks import ExerciseError
from vdlearn.checks import lesson01, lesson02


def _log_normal(z, mu, logvar):
    return (-0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp())).sum(-1)


# --- lesson 01 --------------------------------------------------------------------------------------

def _elbo_mc(kind):
    def estimate(model, x, q_mu, q_logvar, num_samples):
        std = (0.5 * q_logvar).exp() if kind != "variance" else q_logvar.exp()
        z = q_mu + std * torch.randn(num_samples, *q_mu.shape, dtype=q_mu.dtype)
        log_q = _log_normal(z, q_mu, q_logvar)
        if kind == "no_entropy":
            return model.log_joint(x, z).mean(0)
        if kind == "log_mean_weight":
            return torch.logsumexp(model.log_joint(x, z) - log_q, 0) - math.log(num_samples)
        return (model.log_joint(x, z) - log_q).mean(0)
    return estimate


def test_elbo_monte_carlo_check():
    lesson01.check_elbo_monte_carlo(_elbo_mc("right"))
    with pytest.raises(ExerciseError, match="subtract log q"):
        lesson01.check_elbo_monte_carlo(_elbo_mc("no_entropy"))
    with pytest.raises(ExerciseError, match="importance-sampled log p"):
        lesson01.check_elbo_monte_carlo(_elbo_mc("log_mean_weight"))
    with pytest.raises(ExerciseError, match="Monte Carlo error"):
        lesson01.check_elbo_monte_carlo(_elbo_mc("variance"))
    with pytest.raises(ExerciseError, match=r"shape \(3,\)"):
        lesson01.check_elbo_monte_carlo(lambda *a: torch.zeros(3, 1))


def _kl(kind):
    def kl(mu, logvar, prior_mu, prior_logvar):
        if kind == "reversed":
            mu, logvar, prior_mu, prior_logvar = prior_mu, prior_logvar, mu, logvar
        if kind == "logsigma":
            logvar, prior_logvar = 2 * logvar, 2 * prior_logvar
        if kind == "standard":
            prior_mu, prior_logvar = torch.zeros_like(mu), torch.zeros_like(mu)
        out = 0.5 * (prior_logvar - logvar + (logvar.exp() + (mu - prior_mu) ** 2) / prior_logvar.exp() - 1)
        return out.mean(-1) if kind == "mean" else out.sum(-1)
    return kl


def test_gaussian_kl_check():
    lesson01.check_gaussian_kl(_kl("right"))
    for kind, message in [("reversed", "not symmetric"), ("logsigma", "log sigma"),
                          ("standard", "use prior_mu"), ("mean", "sum over the last dimension")]:
        with pytest.raises(ExerciseError, match=message):
            lesson01.check_gaussian_kl(_kl(kind))
    with pytest.raises(ExerciseError, match="should have shape"):
        lesson01.check_gaussian_kl(lambda m, lv, pm, plv: torch.zeros(()))


def test_reparameterize_check():
    lesson01.check_reparameterize(lambda mu, logvar, eps: mu + torch.exp(0.5 * logvar) * eps)
    with pytest.raises(ExerciseError, match="standard deviation"):
        lesson01.check_reparameterize(lambda mu, logvar, eps: mu + torch.exp(logvar) * eps)
    with pytest.raises(ExerciseError, match="not sigma"):
        lesson01.check_reparameterize(lambda mu, logvar, eps: mu + logvar * eps)
    with pytest.raises(ExerciseError, match="no gradient"):
        lesson01.check_reparameterize(
            lambda mu, logvar, eps: (mu + torch.exp(0.5 * logvar) * eps).detach())
    with pytest.raises(NotImplementedError):
        lesson01.check_reparameterize(lambda *a: (_ for _ in ()).throw(NotImplementedError("Exercise")))


def test_score_function_gradient_check():
    lesson01.check_score_function_gradient(lambda f, z, mu, lv: f * (z - mu) / lv.exp())
    with pytest.raises(ExerciseError, match="not by sigma"):
        lesson01.check_score_function_gradient(lambda f, z, mu, lv: f * (z - mu) / (0.5 * lv).exp())
    with pytest.raises(ExerciseError, match="sign is flipped"):
        lesson01.check_score_function_gradient(lambda f, z, mu, lv: -f * (z - mu) / lv.exp())
    with pytest.raises(ExerciseError, match="multiply the score by f"):
        lesson01.check_score_function_gradient(lambda f, z, mu, lv: (z - mu) / lv.exp())


# --- lesson 02 --------------------------------------------------------------------------------------

def _nll_right(x, logits):
    return F.binary_cross_entropy_with_logits(logits, (x + 1) / 2, reduction="none").flatten(1).sum(1)


def test_bernoulli_nll_check():
    lesson02.check_bernoulli_nll(_nll_right)
    lesson02.check_bernoulli_nll(lambda x, l: (F.softplus(l) - (x + 1) / 2 * l).flatten(1).sum(1))
    wrong = {
        "mean over pixels": lambda x, l: _nll_right(x, l) / x[0].numel(),
        "sign is flipped": lambda x, l: -_nll_right(x, l),
        r"\(x \+ 1\) / 2": lambda x, l: (F.softplus(l) - x * l).flatten(1).sum(1),
        "underflows": lambda x, l: -((x + 1) / 2 * torch.log(torch.sigmoid(l))
                                     + (1 - x) / 2 * torch.log(1 - torch.sigmoid(l))).flatten(1).sum(1),
    }
    for message, fn in wrong.items():
        with pytest.raises(ExerciseError, match=message):
            lesson02.check_bernoulli_nll(fn)


def test_bits_per_dim_check():
    lesson02.check_bits_per_dim(lambda nats, d: nats / (d * math.log(2)))
    for message, fn in [("divide by ln 2", lambda n, d: n / d), ("bans", lambda n, d: n / (d * math.log(10))),
                        ("bits per image", lambda n, d: n / math.log(2))]:
        with pytest.raises(ExerciseError, match=message):
            lesson02.check_bits_per_dim(fn)


def _slerp_right(z0, z1, t):
    omega = torch.arccos((z0 @ z1) / (z0.norm() * z1.norm()))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def test_slerp_check():
    lesson02.check_slerp(_slerp_right)
    with pytest.raises(ExerciseError, match="linear interpolation"):
        lesson02.check_slerp(lambda z0, z1, t: (1 - t) * z0 + t * z1)
    with pytest.raises(ExerciseError, match="which sine goes with which end"):
        lesson02.check_slerp(lambda z0, z1, t: _slerp_right(z1, z0, t))
    with pytest.raises(ExerciseError, match="cos\\(Omega\\)"):
        lesson02.check_slerp(lambda z0, z1, t: _slerp_right(z0, z1, t) if t in (0.0, 1.0)
                             else _slerp_right(z0, z1, t) * 1.1)
