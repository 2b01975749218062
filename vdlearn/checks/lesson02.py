"""Checks for lesson 02, a VAE that makes video."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..vae.video import slerp as reference_slerp
from . import exercise, expect, expect_close, expect_shape

__all__ = ["check_bernoulli_nll", "check_bits_per_dim", "check_slerp"]


@exercise("02.bernoulli_nll")
def check_bernoulli_nll(bernoulli_nll) -> None:
    """-log p(x|z) of a Bernoulli decoder from logits, per image, for images in [-1, 1]."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 4, 4, generator=g) * 2 - 1
    logits = torch.randn(3, 1, 4, 4, generator=g) * 2
    target = (x + 1) / 2
    want = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)
    got = bernoulli_nll(x, logits)
    expect_shape(got, (3,), "bernoulli_nll for 3 images of shape (1, 4, 4) (one number per image)")
    if not torch.allclose(got, want, atol=1e-4):
        per_pixel = want / 16
        wrong_target = (F.softplus(logits) - x * logits).flatten(1).sum(1)
        cases = [(per_pixel, "that is the mean over pixels; the log-likelihood of an image is the sum over "
                  "its pixels (a mean shrinks the reconstruction term 16 times against the KL here, "
                  "784 times for a 28x28 digit)"),
                 (-want, "the sign is flipped: return the negative log-likelihood, which is >= 0"),
                 (wrong_target, "the targets must be the pixel probabilities (x + 1) / 2 in [0, 1], not x")]
        for value, hint in cases:
            if torch.allclose(got, value, atol=1e-4):
                expect(False, f"got {got.tolist()}, expected {want.tolist()}: {hint}.")
        expect_close(got, want, what="the negative Bernoulli log-likelihood per image", atol=1e-4,
                     hint="sum over pixels of softplus(l) - t * l, with t = (x + 1) / 2 and l the logits")
    wrong = bernoulli_nll(torch.tensor([[1.0, -1.0]]), torch.tensor([[-200.0, 200.0]]))
    expect(bool(torch.isfinite(wrong).all()) and abs(float(wrong.sum()) - 400.0) < 1e-2,
           f"for logits -200 and +200 that contradict the pixels 1 and -1 the NLL is 200 + 200 = 400, "
           f"but got {wrong.tolist()}: log(sigmoid(l)) underflows to log(0); compute from the logits, "
           "e.g. softplus(l) - t * l, or F.binary_cross_entropy_with_logits")


@exercise("02.bits_per_dim")
def check_bits_per_dim(bits_per_dim) -> None:
    """Nats per image to bits per dimension."""
    got = bits_per_dim(torch.tensor(100.0), 784)
    want = 100.0 / (784 * math.log(2))
    try:
        value = float(got)
    except (TypeError, ValueError):
        expect(False, f"bits_per_dim should return a number, got {type(got).__name__}")
    if abs(value - want) > 1e-5 * want:
        cases = [(100.0 / 784, "that is nats per dimension: divide by ln 2 as well (1 bit = ln 2 nats)"),
                 (100.0 * math.log(2) / 784, "multiply by ln 2 goes the wrong way: bits = nats / ln 2"),
                 (100.0 / (784 * math.log(10)), "ln 10 gives decimal digits (bans), not bits: use ln 2"),
                 (100.0 / math.log(2), "that is bits per image: divide by the number of dimensions")]
        for value_wrong, hint in cases:
            if abs(value - value_wrong) < 1e-5 * abs(value_wrong):
                expect(False, f"got {value:.5f}, expected {want:.5f}: {hint}.")
        expect(False, f"got {value:.5f} bits/dim for 100 nats over 784 dimensions, expected {want:.5f}")


@exercise("02.slerp")
def check_slerp(slerp) -> None:
    """Spherical interpolation between two latents."""
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(8, generator=g), torch.randn(8, generator=g)
    for t in (0.0, 1.0):
        got = slerp(z0, z1, t)
        expect_shape(got, (8,), f"slerp(z0, z1, t={t}) for 8-dim latents")
        expect_close(got, z0 if t == 0 else z1, what=f"slerp at t={t}",
                     hint="t = 0 gives z0 and t = 1 gives z1 (check which sine goes with which end)")
    got = slerp(z0, z1, 0.3)
    want = reference_slerp(z0, z1, 0.3)
    if not torch.allclose(got, want, atol=1e-5):
        lerp = 0.7 * z0 + 0.3 * z1
        if torch.allclose(got, lerp, atol=1e-5):
            expect(False, "that is linear interpolation (1 - t) z0 + t z1: it cuts through the middle "
                          "of the sphere, where the prior has few samples; use the angle Omega "
                          "between z0 and z1 and the sine weights")
        expect_close(got, want, what="slerp(z0, z1, 0.3)", atol=1e-5,
                     hint="cos(Omega) = z0.z1 / (|z0| |z1|); weights sin((1-t) Omega) / sin(Omega) and "
                          "sin(t Omega) / sin(Omega)")
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0])
    mid = slerp(a, b, 0.5)
    expect(abs(float(mid.norm()) - 2.0) < 1e-4,
           f"between two orthogonal latents of length 2 the midpoint should keep length 2, got "
           f"{float(mid.norm()):.3f}")
