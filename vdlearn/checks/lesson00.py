"""Checks for lesson 00, video as data."""
from __future__ import annotations

import torch

from ..data.shapes import bounce as reference_bounce
from . import exercise, expect, expect_close, expect_shape

__all__ = ["check_to_uint8_frames", "check_bounce"]


@exercise("00.to_uint8_frames")
def check_to_uint8_frames(to_uint8_frames) -> None:
    """(C, T, H, W) in [-1, 1] -> (T, H, W, C) uint8, clipped and rounded."""
    video = torch.linspace(-1, 1, 2 * 3 * 4 * 5).view(2, 3, 4, 5)
    out = to_uint8_frames(video.clone())
    expect_shape(out, (3, 4, 5, 2), "to_uint8_frames(video of shape (C=2, T=3, H=4, W=5))")
    expect(out.dtype == torch.uint8,
           f"the frames should be torch.uint8, but are {out.dtype}; convert with .to(torch.uint8) "
           "after rounding")
    expected = ((video + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0)
    expect(int(out[0, 0, 0, 0]) == 0 and int(out[-1, -1, -1, -1]) == 255,
           f"-1 should become 0 and 1 should become 255, got {int(out[0, 0, 0, 0])} and "
           f"{int(out[-1, -1, -1, -1])}: use p = round(127.5 (x + 1))")
    if not torch.equal(out, expected):
        same_values = torch.equal(out.flatten().sort().values, expected.flatten().sort().values)
        raise_msg = ("the right pixel values are there but in the wrong places: the channel axis moves "
                     "from first to last, (C, T, H, W) -> (T, H, W, C), with .permute(1, 2, 3, 0)"
                     if same_values else
                     "some pixel values are off by one or more: round (torch.round) before converting, "
                     "since .to(torch.uint8) truncates")
        expect(False, raise_msg)
    wild = to_uint8_frames(torch.tensor([-3.0, 0.0, 2.5]).view(1, 1, 1, 3))
    expect(wild.flatten().tolist() == [0, 128, 255],
           f"values outside [-1, 1] must be clipped first: [-3, 0, 2.5] should give [0, 128, 255], "
           f"got {wild.flatten().tolist()}")


@exercise("00.bounce")
def check_bounce(bounce) -> None:
    """The triangle-wave bounce against the dataset's reference."""
    t = torch.arange(40, dtype=torch.float64)
    cases = [(5.0, 1.5, 0.0, 10.0), (2.0, -0.7, 1.0, 9.0), (3.0, 0.0, 0.0, 10.0), (9.5, 4.0, -2.0, 10.0)]
    for p0, v, lo, hi in cases:
        args = [torch.tensor(a, dtype=torch.float64) for a in (p0, v)] + [t] + \
               [torch.tensor(a, dtype=torch.float64) for a in (lo, hi)]
        got = bounce(*args)
        want = reference_bounce(*args)
        where = f"bounce(p0={p0}, v={v}, t=0..39, lo={lo}, hi={hi})"
        expect_shape(got, tuple(want.shape), where)
        if got.min() < lo - 1e-6 or got.max() > hi + 1e-6:
            expect(False, f"{where} leaves the box [{lo}, {hi}] (it reaches [{got.min():.2f}, "
                          f"{got.max():.2f}]): fold the unfolded position back with lo + L - |u - L|")
        expect_close(got, want, what=where, atol=1e-6,
                     hint="u = (p0 + v t - lo) mod 2L, then p = lo + L - |u - L| with L = hi - lo; "
                          "torch.remainder keeps u >= 0 for negative velocities (Python's % on tensors does too)")
