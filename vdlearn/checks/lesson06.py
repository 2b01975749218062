"""Checks for lesson 06, diffusion for images."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..nn.embeddings import timestep_embedding as reference_embedding
from . import exercise, expect, expect_close, expect_shape

__all__ = ["check_timestep_embedding", "check_attention", "check_guided_prediction", "check_heun_step"]


def _same(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5) -> bool:
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=atol)


@exercise("06.timestep_embedding")
def check_timestep_embedding(timestep_embedding) -> None:
    """Sinusoidal embedding: [cos(t w_i), sin(t w_i)], w_i = 10000^(-i / (dim/2))."""
    t = torch.tensor([0, 1, 10, 250, 999])
    got = timestep_embedding(t, 16)
    expect_shape(got, (5, 16), "timestep_embedding(t of shape (5,), dim=16)")
    want = reference_embedding(t, 16)
    if _same(got, want):
        expect(got.dtype == torch.float32 or got.dtype == torch.float64,
               f"the embedding should be floating point, got {got.dtype}")
        return
    # name the slip on small timesteps, where float32 rounding of t * w cannot hide it
    ts = torch.tensor([0, 1, 2, 3])
    small = timestep_embedding(ts, 16).float()
    half = 8
    i = torch.arange(half)

    def emb(w, order=("cos", "sin")):
        a = ts.float()[:, None] * w
        return torch.cat([getattr(a, order[0])(), getattr(a, order[1])()], 1)

    w = torch.exp(-math.log(10000.0) * i / half)
    slips = {
        "sin first, then cos: this lesson's convention (and the U-Net's) is [cos, sin]":
            emb(w, ("sin", "cos")),
        "interleaved cos/sin pairs: put all the cosines first, then all the sines":
            torch.stack([(ts.float()[:, None] * w).cos(), (ts.float()[:, None] * w).sin()], -1).flatten(1),
        "frequencies 10000^(-i/(half-1)) (some libraries use that); here w_i = 10000^(-i/half) so "
        "that w_0 = 1 and the slowest frequency stays just above 1/10000":
            emb(torch.exp(-math.log(10000.0) * i / (half - 1))),
        "frequencies that grow with i (10000^(+i/half)): the exponent is negative":
            emb(torch.exp(math.log(10000.0) * i / half)),
    }
    for what, value in slips.items():
        expect(not _same(small, value, atol=1e-3), f"your embedding has {what}.")
    expect_close(got, want, what="the embedding", atol=1e-4,
                 hint="half = dim // 2; w = exp(-ln(10000) * arange(half) / half); "
                      "emb = cat([cos(t[:, None] * w), sin(t[:, None] * w)], dim=1)")


@exercise("06.attention")
def check_attention(attention) -> None:
    """softmax(Q K^T / sqrt(d)) V for q, k, v of shape (B, heads, N, d)."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 5, 8, generator=g)          # 5 queries attend to 7 keys
    k2, v2 = torch.randn(2, 3, 7, 8, generator=g), torch.randn(2, 3, 7, 8, generator=g)
    got = attention(q, k2, v2)
    expect_shape(got, (2, 3, 5, 8), "attention(q (2,3,5,8), k (2,3,7,8), v (2,3,7,8))")
    want = F.scaled_dot_product_attention(q, k2, v2)
    if _same(got, want, atol=1e-5):
        return
    scores = q @ k2.transpose(-1, -2)
    slips = {
        "no scaling: divide the scores by sqrt(d) = sqrt(q.shape[-1]) before the softmax":
            scores.softmax(-1) @ v2,
        "scores divided by d instead of sqrt(d)": (scores / 8).softmax(-1) @ v2,
        "the softmax taken over the queries (dim=-2); each query's weights over the keys must sum "
        "to 1, so take it over the last dimension": (scores / math.sqrt(8)).softmax(-2) @ v2,
    }
    for what, value in slips.items():
        expect(not _same(got, value), f"your attention has {what}.")
    expect_close(got, want, what="the attention output", atol=1e-5,
                 hint="weights = softmax(q @ k.transpose(-1, -2) / sqrt(d), dim=-1); return weights @ v")


class _Recorder(torch.nn.Module):
    """A conditional toy model: output = x * (label + 1) + t; remembers its calls."""

    num_classes, null_label = 4, 4

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, t, y):
        self.calls.append(len(x))
        return x * (y.float() + 1).view(-1, 1, 1, 1) + t.float().view(-1, 1, 1, 1)


@exercise("06.guided_prediction")
def check_guided_prediction(guided_prediction) -> None:
    """Classifier-free guidance: u + s (c - u), both from one batched call of the model."""
    model = _Recorder()
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(3, 1, 2, 2, generator=g), torch.tensor([5, 50, 500])
    labels = torch.tensor([0, 2, 3])
    scale = 2.5
    got = guided_prediction(model, x, t, labels, scale, 4)
    expect_shape(got, (3, 1, 2, 2), "guided_prediction(model, x of shape (3, 1, 2, 2), ...)")
    lab = lambda y: (y.float() + 1).view(-1, 1, 1, 1)
    cond = x * lab(labels) + t.float().view(-1, 1, 1, 1)
    uncond = x * lab(torch.full((3,), 4)) + t.float().view(-1, 1, 1, 1)
    want = uncond + scale * (cond - uncond)
    if not _same(got, want):
        slips = {
            "c + s (u - c): the roles are swapped; guidance moves *away* from the unconditional "
            "prediction: u + s (c - u)": cond + scale * (uncond - cond),
            "s * c: the unconditional prediction is missing; guidance is u + s (c - u)": scale * cond,
            "the plain conditional prediction: the scale was not used": cond,
            "(1 + s) c - s u: that is the paper's w = s, but here s = 1 means no guidance, so use "
            "u + s (c - u)": (1 + scale) * cond - scale * uncond,
        }
        for what, value in slips.items():
            expect(not _same(got, value), f"your answer is {what}.")
        expect_close(got, want, what="the guided prediction",
                     hint="u = model(x, t, null labels), c = model(x, t, labels); return u + s (c - u)")
    expect(model.calls == [6],
           f"the model was called with batch sizes {model.calls}; call it once on the doubled batch "
           "torch.cat([x, x]) with labels torch.cat([labels, null labels]) and split the output with "
           ".chunk(2): one call of twice the size is about twice as fast on a GPU as two calls.")


@exercise("06.heun_step")
def check_heun_step(heun_step) -> None:
    """Heun on dx/dt = u(x, t) from t to t_next < t: x + h/2 (u(x, t) + u(x + h u(x, t), t_next)), h = t_next - t."""
    calls: list[float] = []

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:   # u = x·(1 + t): depends on x and on t
        t = torch.as_tensor(t, dtype=x.dtype)
        calls.append(float(t.reshape(-1)[0]))
        return x * (1 + t.reshape(-1, *([1] * (x.ndim - 1))))

    x = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    t, t_next = 0.8, 0.6
    got = heun_step(velocity, x, torch.full((2,), t), torch.full((2,), t_next))
    expect_shape(got, (2, 2), "heun_step(velocity, x of shape (2, 2), t, t_next)")
    h = t_next - t
    u0 = x * (1 + t)
    euler = x + h * u0
    want = x + h / 2 * (u0 + euler * (1 + t_next))
    if not _same(got, want):
        slips = {
            "an Euler step x + h u(x, t): Heun then evaluates u again at the Euler point and averages the "
            "two slopes": euler,
            "a step with h = t - t_next: the ODE runs from noise (t = 1) to data (t = 0), so h = t_next - t is "
            "negative": x - h / 2 * (u0 + (x - h * u0) * (1 + t_next)),
            "the second slope taken at the old time t: evaluate it at the Euler point *and* t_next":
                x + h / 2 * (u0 + euler * (1 + t)),
            "the second slope alone, not the average of the two": x + h * euler * (1 + t_next),
        }
        for what, value in slips.items():
            expect(not _same(got, value), f"your answer is {what}.")
        expect_close(got, want, what="the Heun step")
    expect(len(calls) == 2, f"the velocity was called {len(calls)} times; Heun needs exactly two calls a step "
                            "(one at (x, t), one at the Euler point and t_next)")
