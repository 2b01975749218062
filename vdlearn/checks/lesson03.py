"""Checks for lesson 03, the mathematics of GANs."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..gan.losses import generator_loss as reference_generator_loss
from ..gan.losses import r1_penalty as reference_r1
from ..gan.theory import gaussian_pdf, js_divergence as reference_js, kl_divergence
from ..gan.theory import optimal_discriminator as reference_d_star
from . import exercise, expect, expect_close, expect_shape

__all__ = ["check_optimal_discriminator", "check_js_divergence", "check_generator_losses",
           "check_r1_penalty"]

D = torch.float64


def _grid(n: int = 4001, lim: float = 10.0) -> tuple[torch.Tensor, float]:
    x = torch.linspace(-lim, lim, n, dtype=D)
    return x, (x[1] - x[0]).item()


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-6) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.to(D), b.to(D), atol=atol, rtol=1e-5))


@exercise("03.optimal_discriminator")
def check_optimal_discriminator(optimal_discriminator) -> None:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)), pointwise on a grid of densities."""
    x, _ = _grid(401, 6.0)
    p, q = gaussian_pdf(x, -1.0, 1.0), gaussian_pdf(x, 1.5, 0.7)
    got = optimal_discriminator(p, q)
    expect_shape(got, tuple(p.shape), "optimal_discriminator(p_data, p_g) on a grid of 401 points")
    got = got.detach().to(D)
    want = reference_d_star(p, q)
    if not _close(got, want):
        slips = [
            (q / (p + q), "that is p_g / (p_data + p_g), the probability of *fake*: D(x) is the "
                          "probability that x is real, so p_data goes on top"),
            (p / q, "that is the density ratio p_data / p_g, which is not a probability (it exceeds 1): "
                    "divide by the sum p_data + p_g"),
            (p / (p + q).sum(), "you divided by the sum over the whole grid: the formula is pointwise, "
                                "p_data(x) / (p_data(x) + p_g(x)) at each x"),
        ]
        for value, hint in slips:
            if _close(got, value):
                expect(False, f"optimal_discriminator is not right yet: {hint}.")
        expect_close(got, want, what="D*(x) on the grid", atol=1e-6,
                     hint="D*(x) = p_data(x) / (p_data(x) + p_g(x))")
    same = optimal_discriminator(p, p.clone())
    expect_close(same.detach().to(D), torch.full_like(p, 0.5), what="D*(x) when p_g = p_data",
                 hint="when the generator is perfect the best discriminator can only say 1/2 everywhere")


@exercise("03.js_divergence")
def check_js_divergence(js_divergence) -> None:
    """JS(p||q) = KL(p||m)/2 + KL(q||m)/2 with m = (p+q)/2, in nats, integrated on a grid."""
    x, dx = _grid()
    p, q = gaussian_pdf(x, 0.0, 1.0), gaussian_pdf(x, 1.0, 0.5)
    got = js_divergence(p, q, dx)
    got = torch.as_tensor(got)
    expect(got.numel() == 1, f"js_divergence should return one number (a 0-d tensor or float), got "
                             f"shape {tuple(got.shape)}: integrate with .sum() * dx")
    got = got.detach().to(D).reshape(())
    want = reference_js(p, q, dx)
    if not torch.isclose(got, want, atol=1e-6, rtol=1e-5):
        slips = [
            (want / math.log(2), "your value is in bits (log base 2): use the natural log, so that "
                                 "V(D*, G) = -log 4 + 2 JS holds with the same logarithm"),
            (2 * want, "you forgot the 1/2 in front of each KL"),
            (kl_divergence(p, q, dx), "that is KL(p || q): JS compares both densities with their "
                                      "mixture m = (p + q) / 2"),
            (0.5 * kl_divergence(p, q, dx) + 0.5 * kl_divergence(q, p, dx),
             "that is the symmetrised KL (KL(p||q) + KL(q||p)) / 2; JS uses the mixture m = (p + q) / 2"),
            (want / dx, "you forgot to multiply the sum by dx (the integral is sum * dx)"),
        ]
        for value, hint in slips:
            if torch.isclose(got, value, atol=1e-6, rtol=1e-5):
                expect(False, f"js_divergence gives {got.item():.6f}, expected {want.item():.6f}: {hint}.")
        expect_close(got, want, what="JS(N(0,1) || N(1, 0.5^2))", atol=1e-6,
                     hint="JS = 0.5 * sum(p log(p/m)) * dx + 0.5 * sum(q log(q/m)) * dx, m = (p + q) / 2")
    same = torch.as_tensor(js_divergence(p, p.clone(), dx)).detach().to(D).reshape(())
    expect_close(same, torch.zeros((), dtype=D), what="JS(p || p)", atol=1e-9,
                 hint="the divergence of a density from itself is 0")
    far = gaussian_pdf(x, 6.0, 0.3)  # p and far barely overlap; both are exactly 0 at some grid points
    far = torch.where(far < 1e-30, torch.zeros_like(far), far)
    near0 = torch.where(p < 1e-30, torch.zeros_like(p), p)
    got = torch.as_tensor(js_divergence(near0, far, dx)).detach().to(D).reshape(())
    expect(bool(torch.isfinite(got)),
           "JS of two densities that are 0 at some points is NaN: p * log(p / m) is 0 where p = 0 "
           "(the limit of t log t), but 0 * log(0) gives NaN in floating point. Use torch.xlogy(p, p / m) "
           "or mask those points with torch.where.")
    expect_close(got, torch.tensor(math.log(2), dtype=D), what="JS of two densities with disjoint supports",
                 atol=1e-4, hint="with disjoint supports JS = log 2, its largest value")


@exercise("03.generator_losses")
def check_generator_losses(saturating_loss, nonsaturating_loss) -> None:
    """The minimax E[log(1 - D(G(z)))] and non-saturating -E[log D(G(z))] losses, from logits."""
    logits = torch.tensor([-6.0, -2.0, -0.5, 0.0, 1.5, 4.0])
    prob = torch.sigmoid(logits)
    for name, fn, kind in (("saturating_loss", saturating_loss, "minimax"),
                           ("nonsaturating_loss", nonsaturating_loss, "nonsaturating")):
        l = logits.clone().requires_grad_(True)
        got = fn(l)
        got = torch.as_tensor(got)
        expect(got.numel() == 1, f"{name} should return the mean over the batch (one number), got shape "
                                 f"{tuple(got.shape)}")
        want = reference_generator_loss(logits, kind)
        if not torch.isclose(got.detach().float().reshape(()), want, atol=1e-5):
            other = "nonsaturating" if kind == "minimax" else "minimax"
            slips = [
                (reference_generator_loss(logits, other),
                 f"that is the other loss ({other}); swap the two functions"),
                (-reference_generator_loss(logits, kind),
                 "the sign is flipped: the generator *minimises* this loss"),
                (-torch.log(prob).mean() if kind == "minimax" else torch.log(1 - prob).mean(),
                 "that is the other loss; the saturating one is log(1 - D), the non-saturating -log D"),
                (F.softplus(logits).mean() if kind == "nonsaturating" else -F.softplus(-logits).mean(),
                 "that trains the generator to be recognised as fake (label 0): the generator wants "
                 "D(G(z)) close to 1"),
                ((torch.log(1 - prob) if kind == "minimax" else -torch.log(prob)).sum(),
                 "use the mean over the batch, not the sum"),
            ]
            for value, hint in slips:
                if torch.isclose(got.detach().float().reshape(()), value.float(), atol=1e-5):
                    expect(False, f"{name} gives {got.item():.5f}, expected {want.item():.5f}: {hint}.")
            expect_close(got.detach().float().reshape(()), want, what=f"{name} on logits {logits.tolist()}",
                         hint="D(G(z)) = sigmoid(logit); saturating: mean log(1 - D); "
                              "non-saturating: mean -log D")
        expect(got.requires_grad, f"{name} carries no gradient: compute it from the logits with torch "
                                  "operations (no .item(), no .detach())")
        (grad,) = torch.autograd.grad(got.sum(), l)
        want_grad = (-prob if kind == "minimax" else -(1 - prob)) / len(logits)
        expect_close(grad, want_grad, what=f"the gradient of {name} with respect to the logits", atol=1e-6)
    extreme = torch.tensor([-30.0, 30.0])
    for name, fn in (("saturating_loss", saturating_loss), ("nonsaturating_loss", nonsaturating_loss)):
        value = torch.as_tensor(fn(extreme)).detach()
        expect(bool(torch.isfinite(value).all()),
               f"{name} is not finite for logits of +-30 (D = sigmoid(30) rounds to 1 in float32, so "
               "log(1 - D) is log 0): write the losses with F.softplus or F.logsigmoid, "
               "since log D = -softplus(-l) and log(1 - D) = -softplus(l)")


@exercise("03.r1_penalty")
def check_r1_penalty(r1_penalty) -> None:
    """R1 = E ||grad_x D(x)||^2 on real data, with the graph kept for backpropagation."""
    w = torch.tensor([3.0, -4.0], requires_grad=True)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))

    def linear(v):
        return v @ w

    got = r1_penalty(linear, x)
    got = torch.as_tensor(got)
    expect(got.numel() == 1, f"r1_penalty should return one number (the mean over the batch), got shape "
                             f"{tuple(got.shape)}")
    if torch.isclose(got.detach().reshape(()), torch.tensor(5.0), atol=1e-4):
        expect(False, "r1_penalty gives 5 for D(x) = 3 x1 - 4 x2, whose gradient is (3, -4): that is "
                      "the norm ||grad||; the penalty is its square, 25")
    if torch.isclose(got.detach().reshape(()), torch.tensor(125.0), atol=1e-3):
        expect(False, "r1_penalty gives 125 = 5 * 25: use the mean over the batch, not the sum")
    expect_close(got.detach().reshape(()), torch.tensor(25.0), what="R1 for D(x) = 3 x1 - 4 x2",
                 hint="the gradient of D with respect to x is (3, -4) for every x, so ||grad||^2 = 25; "
                      "take it with torch.autograd.grad(D(x).sum(), x, create_graph=True)")
    expect(got.requires_grad, "the penalty carries no gradient to the discriminator's weights: call "
                              "torch.autograd.grad(..., create_graph=True) so it can be backpropagated")
    (gw,) = torch.autograd.grad(got.reshape(()), w)
    expect_close(gw, 2 * w.detach(), what="d R1 / d w for D(x) = w . x",
                 hint="with R1 = ||w||^2 the gradient is 2w; keep the graph with create_graph=True")
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    torch.manual_seed(0)
    x = torch.randn(7, 2)
    got = torch.as_tensor(r1_penalty(lambda v: net(v).squeeze(-1), x)).detach().reshape(())
    xr = x.clone().requires_grad_(True)
    want = reference_r1(net(xr).squeeze(-1), xr).detach()
    expect_close(got, want, what="R1 of a small network", atol=1e-5,
                 hint="square the gradient, sum over the features of each example, then average over "
                      "the batch")
    expect(not x.requires_grad, "r1_penalty changed the caller's tensor x: work on "
                                "x.detach().requires_grad_(True)")
