"""Checks for lesson 10, the capstone comparison."""
from __future__ import annotations

import torch

from ..compare import pareto_front
from ..metrics.novelty import nearest_neighbour_distance
from . import exercise, expect, expect_close, expect_shape

__all__ = ["check_nearest_neighbour_distance", "check_pareto_front"]


@exercise("10.nearest_neighbour_distance")
def check_nearest_neighbour_distance(nearest) -> None:
    """Per sample: min over the reference clips of the RMS difference (root of the mean square)."""
    g = torch.Generator().manual_seed(0)
    reference = torch.rand(7, 2, 3, 4, 4, generator=g) * 2 - 1
    samples = torch.rand(5, 2, 3, 4, 4, generator=g) * 2 - 1
    samples[0] = reference[3]                                   # a copy: distance 0
    got = nearest(samples, reference)
    expect_shape(got, (5,), "nearest(samples of shape (5, 2, 3, 4, 4), reference of shape (7, 2, 3, 4, 4))")
    want = nearest_neighbour_distance(samples, reference)
    flat_s, flat_r = samples.flatten(1), reference.flatten(1)
    diff2 = (flat_s[:, None] - flat_r[None]).pow(2)
    slips = [
        (diff2.sum(-1).min(1).values.sqrt(), "you took the root of the SUM of squares; the RMS distance divides "
                                             "by the number of values per clip first (the root of the mean)."),
        (diff2.mean(-1).min(1).values, "you forgot the square root: RMS = sqrt(mean((x - r)**2))."),
        (diff2.mean(-1).sqrt().mean(1), "you averaged over the reference clips; take the distance to the "
                                        "NEAREST one (min over the reference axis)."),
        (diff2.mean(-1).sqrt().max(1).values, "you took the farthest reference clip; take the nearest (min)."),
    ]
    got_f = got.detach().float()
    for value, message in slips:
        expect(not torch.allclose(got_f, value.float(), atol=1e-5), message)
    expect(abs(float(got_f[0])) < 1e-5,
           "sample 0 is an exact copy of reference clip 3, so its distance must be 0.")
    expect_close(got_f, want, what="the nearest-neighbour RMS distances", atol=1e-5,
                 hint="d(x) = min_j sqrt(mean((x - r_j)**2)) over all values of a clip (C, T, H, W).")


@exercise("10.pareto_front")
def check_pareto_front(front) -> None:
    """A point is on the front unless another is at least as good on both and better on one."""
    cases = [
        ([1.0, 2.0, 3.0], [3.0, 2.0, 1.0], "a trade-off: every point is best at something"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], "one point is cheapest and best: it beats the others"),
        ([1.0, 1.0, 2.0], [2.0, 1.0, 0.5], "a tie on cost, better loss: the tied point with the worse loss loses"),
        ([2.0, 2.0], [1.0, 1.0], "two identical points: neither beats the other"),
        ([5.0, 1.0, 2.0, 4.0], [1.0, 9.0, 3.0, 3.0], "point 3 costs more than point 2 for the same loss"),
    ]
    for costs, losses, story in cases:
        got = front(costs, losses)
        want = pareto_front(costs, losses)
        got = [bool(v) for v in (got.tolist() if isinstance(got, torch.Tensor) else list(got))]
        hint = ""
        if costs == [1.0, 1.0, 2.0] and got[0]:
            hint = (" A point that is as good on one axis and worse on the other is beaten: use <= on both "
                    "axes and require the pair to differ.")
        if costs == [2.0, 2.0] and not any(got):
            hint = " Identical points do not beat each other: a point must be strictly better somewhere."
        expect(got == want, f"for costs {costs} and losses {losses} ({story}) the front is {want}, "
                            f"you returned {got}.{hint}")
