"""Checks for lesson 08, image to video: masked conditioning, best of k, SDEdit."""
from __future__ import annotations

import math

import torch

from ..diffusion.schedules import make_schedule
from ..metrics.psnr_ssim import best_of_k, psnr
from ..video.edit import sdedit_start as reference_sdedit_start
from ..data.camera import motion_warp
from ..video.camera import warp_condition as reference_warp_condition
from ..video.masked_model import model_input as reference_model_input
from . import exercise, expect, expect_close, expect_shape

__all__ = ["check_model_input", "check_best_of_k_psnr", "check_sdedit_start", "check_warp_condition"]


def _clips(b: int = 2, c: int = 3, t: int = 5, s: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, t, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@exercise("08.model_input")
def check_model_input(model_input) -> None:
    """[x_t, nearest_given(known, mask), m, m * aug_level] along the channel axis."""
    x_t, known = _clips(), _clips(seed=1)
    mask = torch.tensor([[True, True, False, False, False], [True, False, False, False, True]])
    aug = torch.tensor([0.1, 0.25])
    got = model_input(x_t, known, mask, aug)
    expect_shape(got, (2, 3 + 3 + 1 + 1, 5, 4, 4), "model_input(x_t (2, 3, 5, 4, 4), known, mask, aug_level)")
    want = reference_model_input(x_t, known, mask, aug)
    expect(torch.equal(got[:, :3], x_t), "channels 0..C-1 must be the noisy clip x_t itself, unchanged.")
    expect(torch.allclose(got[:, 6].float(), mask.float()[:, :, None, None].expand(2, 5, 4, 4)),
           "channel 2C must be the mask, 1 on every pixel of a given frame and 0 elsewhere "
           "(mask (B, T) -> (B, 1, T, H, W): mask[:, None, :, None, None].expand(...)).")
    hidden = ~mask[:, None, :, None, None].expand(2, 3, 5, 4, 4)
    expect(not torch.allclose(got[:, 3:6][hidden], known[hidden]),
           "the known-frame channels hold the true frames that are not given: the model would see the answer "
           "during training. Use nearest_given(known, mask), which copies only given frames.")
    expect(not (got[:, 3:6][hidden] == 0).all(),
           "the known-frame channels are zero on the frames that are not given (known * mask); here every frame "
           "gets a copy of the latest given frame: nearest_given(known, mask).")
    expect_close(got[:, 3:6], want[:, 3:6], what="the known-frame channels (C..2C-1)",
                 hint="they are nearest_given(known, mask) from vdlearn.video.")
    expect_close(got[:, 7], want[:, 7], what="the noise-level channel (2C+1)",
                 hint="it is mask * aug_level, with aug_level (B,) viewed as (B, 1, 1, 1).")
    scalar = model_input(x_t, known, mask, 0.3)
    expect_close(scalar, reference_model_input(x_t, known, mask, 0.3), what="model_input with aug_level=0.3",
                 hint="aug_level may also be a plain number: torch.as_tensor(aug_level).expand(B) helps.")


@exercise("08.best_of_k_psnr")
def check_best_of_k_psnr(best_of_k_psnr) -> None:
    """For every clip, the highest PSNR among its k samples: 10 log10(4 / MSE), MSE per sample and clip."""
    target = _clips(b=3, t=4, seed=2) * 0.8
    offsets = torch.tensor([0.3, 0.05, 0.1, 0.2])
    samples = torch.stack([target + o * torch.tensor([1.0, -1.0, 0.5]).view(3, 1, 1, 1, 1) for o in offsets])
    got = best_of_k_psnr(samples, target)
    expect_shape(got, (3,), "best_of_k_psnr(samples (4, 3, ...), target (3, ...))")
    want = best_of_k(samples, target, psnr)
    mean_psnr = psnr(samples.flatten(0, 1), target.repeat(4, 1, 1, 1, 1)).view(4, 3).mean(0)
    expect(not torch.allclose(got, mean_psnr, atol=1e-3),
           "you returned the mean PSNR over the k samples; best-of-k takes the maximum per clip.")
    worst = psnr(samples.flatten(0, 1), target.repeat(4, 1, 1, 1, 1)).view(4, 3).min(0).values
    expect(not torch.allclose(got, worst, atol=1e-3),
           "you returned the lowest PSNR; higher PSNR is better, so take the maximum over the k samples.")
    pooled = 10 * torch.log10(4 / (samples - target).pow(2).flatten(2).mean(-1)).max(0).values
    expect_close(got, want, what="best-of-k PSNR", atol=1e-3,
                 hint=f"PSNR of a clip in [-1, 1] is 10 log10(2^2 / MSE) with the MSE over all its pixels and "
                      f"frames; then max over dim 0 (the samples). Expected {want.tolist()}"
                      + ("" if torch.allclose(pooled, want, atol=1e-3) else "."))


@exercise("08.sdedit_start")
def check_sdedit_start(sdedit_start) -> None:
    """x_{t_s} = sqrt(abar) x + sqrt(1 - abar) eps with t_s = round(s (T - 1)); s = 0 is the clip itself."""
    schedule = make_schedule("cosine", 100)
    video = _clips(seed=3)
    noise = torch.randn(video.shape, generator=torch.Generator().manual_seed(4))
    for strength in (0.3, 0.75, 1.0):
        got = sdedit_start(video, strength, schedule, noise)
        expect(isinstance(got, tuple) and len(got) == 2, "return a pair (x_t, t_start).")
        x_t, t_start = got
        want_x, want_t = reference_sdedit_start(video, strength, schedule, noise)
        expect(int(t_start) == want_t,
               f"for strength {strength} the start timestep is round({strength} * (T - 1)) = {want_t}, "
               f"got {t_start}.")
        ab = schedule.alphas_cumprod[want_t].item()
        if torch.allclose(x_t, ab * video + (1 - ab) * noise, atol=1e-5):
            expect(False, "use the square roots: x_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps.")
        expect_close(x_t, want_x, what=f"x_t for strength {strength}",
                     hint="noise the clip in closed form (lesson 05): sqrt(abar_t) x + sqrt(1 - abar_t) eps, "
                          f"abar_t = schedule.alphas_cumprod[t_start] (here {math.sqrt(ab):.3f} x + ...).")
    x0, t0 = sdedit_start(video, 0.0, schedule, noise)
    expect(int(t0) == 0 and torch.allclose(x0, video),
           "strength 0 must return the clip itself (no noise) and t_start 0.")
    for bad in (-0.2, 1.3):
        try:
            sdedit_start(video, bad, schedule, noise)
        except ValueError:
            continue
        expect(False, f"strength {bad} is outside [0, 1]: raise a ValueError that says so.")


@exercise("08.warp_condition")
def check_warp_condition(warp_condition) -> None:
    """[m * z0 warped to every frame, m]: the condition of the camera-controlled model."""
    g = torch.Generator().manual_seed(3)
    z0 = torch.randn(2, 4, 8, 8, generator=g)
    pans = [motion_warp(1, 5, 8), motion_warp(5, 5, 8)]               # pan_right and zoom_out
    grid, visible = torch.stack([p[0] for p in pans]), torch.stack([p[1] for p in pans])
    got = warp_condition(z0, grid, visible)
    expect_shape(got, (2, 5, 5, 8, 8), "warp_condition(z0 (2, 4, 8, 8), grid (2, 5, 8, 8, 2), visible (2, 5, 8, 8))")
    want = reference_warp_condition(z0, grid, visible)
    expect(torch.allclose(got[:, 4], visible.float()),
           "the last channel must be the mask itself: 1 where the first frame shows the pixel, 0 where it comes into "
           "view (visible[:, None] as float, appended after the c latent channels).")
    expect(torch.allclose(got[:, :4, 0], z0, atol=1e-5),
           "frame 0 must be z0 itself: its grid is the identity. Check that grid_sample gets the grid of each frame "
           "(B*T, h, w, 2) and align_corners=False, the convention vdlearn.data.camera uses.")
    hidden = ~visible[:, None].expand(-1, 4, -1, -1, -1)
    expect((got[:, :4][hidden] == 0).all(),
           "where the first frame does not show the pixel the latent channels must be 0: multiply the warped "
           "latents by the mask.")
    seen = visible[:, 3, None].expand(-1, 4, -1, -1)
    expect(not torch.allclose(got[:, :4, 3][seen], z0[seen], atol=1e-3),
           "later frames are z0 unchanged: warp each frame with its own grid, grid[:, t].")
    expect_close(got, want, what="the warped latents", atol=1e-5,
                 hint="bilinear grid_sample of z0 with each frame's grid (mode='bilinear', padding_mode='border', "
                      "align_corners=False), times the mask.")
