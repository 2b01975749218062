"""Judging a clip made from one photograph and a camera motion (lesson 08).

**Did the camera move as asked?** The global motion between consecutive frames is estimated with no
knowledge of the request, by *phase correlation* (Kuglin & Hines 1975): for frames :math:`a, b` with
:math:`b(x) = a(x - d)`, the normalised cross-power spectrum is a pure phase ramp,

.. math:: R = \\frac{\\hat b\\, \\overline{\\hat a}}{|\\hat b\\, \\overline{\\hat a}|} = e^{-2\\pi i\\, \\langle k, d\\rangle},
          \\qquad \\mathcal F^{-1} R = \\delta(x - d),

so the peak of :math:`\\mathcal F^{-1}R` is the shift (refined to sub-pixel by a parabola through
the peak and its neighbours). Run on the four quadrants of the frame, it gives four shifts
:math:`d_k` at quadrant centres :math:`r_k` (from the frame centre); a pan moves all four alike, a
zoom moves them apart: :math:`d_k \\approx \\tau + (s - 1)\\, r_k`, solved by least squares for the
translation :math:`\\tau` and scale :math:`s`. Over a clip they add up (translations) and multiply
(scales), and the larger effect names the motion (:func:`estimate_camera_motion`): content moving
left means the camera panned right.

**What of the photograph survived, and what was invented?** Against the truth of
:mod:`vdlearn.data.camera` (:func:`camera_clip_scores`): the first frame against the given image; the
pixels the first frame shows (warped to each frame) against the generated frame; the *revealed* pixels
(new content) against the real photograph beyond the crop, by PSNR and SSIM.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..data.camera import CAMERA_MOTIONS, CameraPath, warp_from_first
from ..data.clips import check_clips
from .psnr_ssim import ssim_map

__all__ = ["phase_correlation", "frame_motion", "estimate_camera_motion", "camera_clip_scores"]


def _grey(x: torch.Tensor) -> torch.Tensor:
    return x.mean(1) if x.ndim == 4 else x


def phase_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The shift (N, 2) as (dx, dy) pixels with ``b(x) ≈ a(x - d)``, for images (N, H, W) (or (N, C, H, W), averaged)."""
    a, b = _grey(a).float(), _grey(b).float()
    n, h, w = a.shape
    window = torch.outer(torch.hann_window(h, periodic=False), torch.hann_window(w, periodic=False))
    fa = torch.fft.fft2((a - a.mean((1, 2), keepdim=True)) * window)
    fb = torch.fft.fft2((b - b.mean((1, 2), keepdim=True)) * window)
    cross = fb * fa.conj()
    r = torch.fft.ifft2(cross / (cross.abs() + 1e-8)).real                # (N, H, W), peak at d mod (H, W)
    flat = r.flatten(1).argmax(1)
    py, px = flat // w, flat % w

    def refine(vals: torch.Tensor) -> torch.Tensor:      # parabola through (-1, 0, +1)
        lo, mid, hi = vals.unbind(-1)
        den = lo - 2 * mid + hi
        return torch.where(den.abs() > 1e-8, 0.5 * (lo - hi) / den, torch.zeros_like(den)).clamp(-0.5, 0.5)

    idx = torch.arange(n)
    ys = torch.stack([r[idx, (py + k) % h, px] for k in (-1, 0, 1)], -1)
    xs = torch.stack([r[idx, py, (px + k) % w] for k in (-1, 0, 1)], -1)
    dy = py.float() + refine(ys)
    dx = px.float() + refine(xs)
    dy = torch.where(dy > h / 2, dy - h, dy)               # shifts wrap around: take the shorter way
    dx = torch.where(dx > w / 2, dx - w, dx)
    return torch.stack([dx, dy], -1)


def frame_motion(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Translation (N, 2) in pixels and scale (N,) taking frames ``a`` to ``b`` (N, C, H, W), from the four
    quadrants' phase correlations (module docstring)."""
    a, b = _grey(a), _grey(b)
    _, h, w = a.shape
    hh, hw = h // 2, w // 2
    shifts, centres = [], []
    for top in (0, hh):
        for left in (0, hw):
            shifts.append(phase_correlation(a[:, top:top + hh, left:left + hw], b[:, top:top + hh, left:left + hw]))
            centres.append(torch.tensor([left + hw / 2 - w / 2, top + hh / 2 - h / 2]))
    d = torch.stack(shifts, 1)                             # (N, 4, 2)
    r = torch.stack(centres).float()                       # (4, 2)
    tau = d.mean(1)
    scale = 1 + ((d - tau[:, None]) * r).sum((1, 2)) / (r ** 2).sum()
    return tau, scale


def estimate_camera_motion(clips: torch.Tensor, *, min_pixels: float | None = None) -> dict:
    """The camera motion of each clip (B, C, T, H, W), estimated from its frames alone.

    Returns ``motion`` (list of names from :data:`CAMERA_MOTIONS`), ``translation`` (B, 2) pixels and
    ``scale`` (B,) over the whole clip (first to last frame). A clip whose content moves less than
    ``min_pixels`` (default: a 32nd of the frame width) at the quadrant centres, by translation and
    by scale, is ``static``.
    """
    clips = check_clips(clips)
    b, c, t, h, w = clips.shape
    min_pixels = w / 32 if min_pixels is None else min_pixels
    if t < 2:
        raise ValueError("a camera motion needs at least 2 frames")
    a = clips[:, :, :-1].transpose(1, 2).reshape(-1, c, h, w)
    z = clips[:, :, 1:].transpose(1, 2).reshape(-1, c, h, w)
    tau, scale = frame_motion(a, z)
    translation = tau.view(b, t - 1, 2).sum(1)
    total_scale = scale.view(b, t - 1).clamp_min(1e-3).log().sum(1).exp()
    reach = math.hypot(w / 4, h / 4)                       # how far from the centre the quadrant centres are
    zoom_px = (total_scale - 1).abs() * reach
    pan_px = translation.abs().max(1).values
    names = []
    for i in range(b):
        if max(zoom_px[i], pan_px[i]) < min_pixels:
            names.append("static")
        elif zoom_px[i] > pan_px[i]:
            names.append("zoom_in" if total_scale[i] > 1 else "zoom_out")
        else:
            dx, dy = translation[i].tolist()
            names.append(("pan_left" if dx > 0 else "pan_right") if abs(dx) >= abs(dy) else
                         ("pan_up" if dy > 0 else "pan_down"))
    return {"motion": names, "translation": translation, "scale": total_scale}


def _masked_psnr(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> float:
    m = mask.float().expand_as(x)
    if m.sum() == 0:
        return float("nan")
    mse = ((x - y) ** 2 * m).sum() / m.sum()
    return float(10 * torch.log10(4.0 / mse.clamp_min(4e-10)))


def camera_clip_scores(clip: torch.Tensor, truth: torch.Tensor, path: CameraPath, index: int = 0) -> dict[str, float]:
    """How one generated clip (C, T, S, S) made from ``truth``'s first frame along ``path`` (clip ``index``)
    keeps and invents content, against the true clip ``truth`` (C, T, S, S):

    - ``first_psnr``: the first frame against the given one;
    - ``kept_psnr``: the pixels the first frame shows, in frames 1.., against the first frame warped there
      (what the camera motion says they must be);
    - ``revealed_psnr`` and ``revealed_ssim``: the pixels that come into view against the real photograph;
    - ``last_correlation``: Pearson correlation of the last frame's kept pixels with the warped first
      frame (near 1: still the same photograph; near 0: something else).
    """
    if clip.shape != truth.shape or clip.ndim != 4:
        raise ValueError(f"clip and truth must be (C, T, S, S) of one shape, got {tuple(clip.shape)} and "
                         f"{tuple(truth.shape)}")
    c, t, s, _ = clip.shape
    grid, visible = warp_from_first(path, s, index)
    frames, true = clip.transpose(0, 1).float(), truth.transpose(0, 1).float()
    first = true[:1].expand(t, -1, -1, -1)
    warped = F.grid_sample(first, grid, mode="bilinear", padding_mode="border", align_corners=False)
    later = torch.arange(t) > 0
    kept, revealed = visible & later[:, None, None], ~visible & later[:, None, None]
    per_pixel = ssim_map(frames, true, padding="replicate").mean(1)      # (T, S, S)
    last = visible[-1]
    x, y = frames[-1][:, last].flatten(), warped[-1][:, last].flatten()
    corr = torch.corrcoef(torch.stack([x, y]))[0, 1] if last.sum() > 1 else torch.tensor(float("nan"))
    return {"first_psnr": _masked_psnr(frames[:1], true[:1], torch.ones(1, 1, s, s, dtype=torch.bool)),
            "kept_psnr": _masked_psnr(frames, warped, kept[:, None]),
            "revealed_psnr": _masked_psnr(frames, true, revealed[:, None]),
            "revealed_ssim": float(per_pixel[revealed].mean()) if revealed.any() else float("nan"),
            "revealed_fraction": float(revealed[1:].float().mean()),
            "last_correlation": float(corr)}
