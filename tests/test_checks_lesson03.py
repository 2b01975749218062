"""The exercise checks of lesson 03 pass right answers and explain typical wrong ones."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vdlearn.checks import ExerciseError
from vdlearn.checks import lesson03


def test_optimal_discriminator_check():
    lesson03.check_optimal_discriminator(lambda p, q: p / (p + q))
    for wrong, message in [(lambda p, q: q / (p + q), "probability of \\*fake\\*"),
                           (lambda p, q: p / q, "density ratio"),
                           (lambda p, q: p / (p + q).sum(), "pointwise"),
                           (lambda p, q: 0.5 * torch.ones_like(p), "off by"),
                           (lambda p, q: (p / (p + q))[:-1], "shape")]:
        with pytest.raises(ExerciseError, match=message):
            lesson03.check_optimal_discriminator(wrong)


def _kl(p, q, dx):
    return torch.xlogy(p, p).sub(torch.xlogy(p, q)).sum() * dx


def _js(kind):
    def js(p, q, dx):
        m = 0.5 * (p + q)
        if kind == "naive":  # 0 * log 0 = NaN where a density is exactly 0
            return 0.5 * (p * torch.log(p / m)).sum() * dx + 0.5 * (q * torch.log(q / m)).sum() * dx
        if kind == "bits":
            return (0.5 * _kl(p, m, dx) + 0.5 * _kl(q, m, dx)) / math.log(2)
        if kind == "no_half":
            return _kl(p, m, dx) + _kl(q, m, dx)
        if kind == "kl":
            return _kl(p, q, dx)
        if kind == "no_dx":
            return (0.5 * _kl(p, m, dx) + 0.5 * _kl(q, m, dx)) / dx
        return 0.5 * _kl(p, m, dx) + 0.5 * _kl(q, m, dx)
    return js


def test_js_divergence_check():
    lesson03.check_js_divergence(_js("right"))
    for kind, message in [("bits", "bits"), ("no_half", "1/2"), ("kl", "KL\\(p \\|\\| q\\)"),
                          ("no_dx", "dx"), ("naive", "NaN.*xlogy")]:
        with pytest.raises(ExerciseError, match=message):
            lesson03.check_js_divergence(_js(kind))


def test_generator_losses_check():
    sat = lambda l: -F.softplus(l).mean()          # noqa: E731  mean log(1 - sigmoid(l))
    nonsat = lambda l: F.softplus(-l).mean()       # noqa: E731  mean -log sigmoid(l)
    lesson03.check_generator_losses(sat, nonsat)
    with pytest.raises(ExerciseError, match="swap the two"):
        lesson03.check_generator_losses(nonsat, sat)
    with pytest.raises(ExerciseError, match="sign is flipped"):
        lesson03.check_generator_losses(lambda l: F.softplus(l).mean(), nonsat)
    with pytest.raises(ExerciseError, match="recognised as fake"):  # the source's zero labels
        lesson03.check_generator_losses(sat, lambda l: F.binary_cross_entropy_with_logits(l, torch.zeros_like(l)))
    with pytest.raises(ExerciseError, match="mean over the batch"):
        lesson03.check_generator_losses(sat, lambda l: F.softplus(-l).sum())
    with pytest.raises(ExerciseError, match="softplus"):  # right values, but log(1 - sigmoid) overflows
        lesson03.check_generator_losses(lambda l: torch.log(1 - torch.sigmoid(l)).mean(), nonsat)
    with pytest.raises(ExerciseError, match="no gradient"):
        lesson03.check_generator_losses(lambda l: sat(l).detach(), nonsat)


def _r1(kind):
    def r1(discriminator, real):
        x = real.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(discriminator(x).sum(), x, create_graph=kind != "no_graph")
        if kind == "norm":
            return g.norm(dim=1).mean()
        if kind == "sum":
            return g.pow(2).sum()
        return g.pow(2).sum(1).mean()
    return r1


def test_r1_penalty_check():
    lesson03.check_r1_penalty(_r1("right"))
    for kind, message in [("norm", "its square"), ("sum", "not the sum"), ("no_graph", "create_graph")]:
        with pytest.raises(ExerciseError, match=message):
            lesson03.check_r1_penalty(_r1(kind))

    def stub(discriminator, real):
        raise NotImplementedError("Exercise: r1_penalty")

    with pytest.raises(NotImplementedError):  # an unanswered exercise says so, it is not "wrong"
        lesson03.check_r1_penalty(stub)
