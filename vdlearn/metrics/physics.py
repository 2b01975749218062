"""The physics score: do the shapes of BouncingShapes-like clips move as the data's law says? (lesson 07)

Track every shape's centroid (:func:`track_centroids`) and measure the RMS distance, in pixels,
between the tracked path and the nearest *lawful* path: a point starting where the shape starts,
moving at a constant velocity whose speed lies in the dataset's range, reflected by the walls
(:func:`vdlearn.data.shapes.bounce`). Real clips score about 0 (tracking error only); a frozen
shape is far from every path that moves at >= 1 px/frame; shuffled frames jump about. Tracking one
shape uses all bright pixels; with several shapes each is segmented by its colour (the nearest
palette colour of each bright pixel), which needs the shapes of a clip to have distinct colours and
degrades while they overlap; clips where an object vanishes from a frame count as failures
(:func:`physics_score`).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..data import PALETTE
from ..data.clips import check_clips
from ..data.shapes import bounce

__all__ = ["track_centroids", "physics_residuals", "physics_score"]


_EDGE_INSET = 0.35


def track_centroids(clips: torch.Tensor, num_objects: int = 1, colors: Sequence[Sequence[float]] | None = None,
                    threshold: float = 0.25, min_mass: float = 2.0) -> dict[str, torch.Tensor]:
    """Segment the shapes of BouncingShapes-like clips (bright objects on black) and track their centroids.

    A pixel's weight is its brightness above ``threshold``: :math:`w = \\max(0, \\max_c (x_c+1)/2 - \\tau)`.
    With ``num_objects=1`` every bright pixel belongs to the one object; with more, each bright
    pixel goes to the nearest colour of ``colors`` (default: the dataset's palette) by chromaticity
    (its colour divided by its brightness, so dark edge pixels count), and the ``num_objects``
    colours with the most weight in the clip are the objects. Returns a dict:

    - ``centroids`` (B, K, T, 2): :math:`c = \\sum_p w(p)\\,p / \\sum_p w(p)` as (x, y) pixels;
    - ``extents`` (B, K, 4): median distances from the centroid to the object's left, right, top
      and bottom edge (the outermost bright pixel, plus the 0.35 px by which it lies inside the edge);
    - ``visible`` (B, K, T): the object has at least ``min_mass`` pixels' worth of weight.
    """
    clips = check_clips(clips, min_frames=2).detach().to("cpu", torch.float32).clamp(-1, 1)
    b, c, t, h, w = clips.shape
    if num_objects < 1:
        raise ValueError(f"num_objects must be at least 1, got {num_objects}")
    bright = (clips + 1) / 2  # [0, 1]
    value = bright.max(dim=1).values  # (B, T, H, W)
    weight = (value - threshold).clamp(min=0)
    if num_objects == 1:
        masks = weight.unsqueeze(1)  # (B, 1, T, H, W)
    else:
        if c != 3:
            raise ValueError(f"tracking several objects segments them by colour, which needs RGB clips; got "
                             f"{c} channel(s). Track one object per clip (num_objects=1) instead")
        palette = torch.tensor(PALETTE if colors is None else colors, dtype=torch.float32)  # (P, 3)
        if num_objects > len(palette):
            raise ValueError(f"cannot separate {num_objects} objects by colour with a palette of {len(palette)}")
        chroma = bright / value.unsqueeze(1).clamp(min=1e-3)  # (B, 3, T, H, W)
        ref = palette / palette.max(dim=1, keepdim=True).values
        dist = ((chroma.unsqueeze(1) - ref.view(1, -1, 3, 1, 1, 1)) ** 2).sum(2)  # (B, P, T, H, W)
        label = dist.argmin(1)  # (B, T, H, W)
        per_colour = weight.unsqueeze(1) * F.one_hot(label, len(palette)).permute(0, 4, 1, 2, 3)
        top = per_colour.sum(dim=(2, 3, 4)).topk(num_objects, dim=1).indices  # (B, K)
        masks = per_colour.gather(1, top.view(b, -1, 1, 1, 1).expand(-1, -1, t, h, w))
    mass = masks.sum(dim=(-2, -1))  # (B, K, T)
    ys = torch.arange(h, dtype=torch.float32).view(h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, w)
    safe = mass.clamp(min=1e-6)
    cx = (masks * xs).sum(dim=(-2, -1)) / safe
    cy = (masks * ys).sum(dim=(-2, -1)) / safe
    centroids = torch.stack([cx, cy], dim=-1)  # (B, K, T, 2)
    on = masks > 0
    big = torch.tensor(float(max(h, w)))
    left = torch.where(on, xs.expand(h, w), big).amin(dim=(-2, -1))
    right = torch.where(on, xs.expand(h, w), -big).amax(dim=(-2, -1))
    top_ = torch.where(on, ys.expand(h, w), big).amin(dim=(-2, -1))
    bottom = torch.where(on, ys.expand(h, w), -big).amax(dim=(-2, -1))
    visible = mass >= min_mass
    ext = torch.stack([cx - left, right - cx, cy - top_, bottom - cy], dim=-1)  # (B, K, T, 4)
    ext = torch.where(visible.unsqueeze(-1), ext, torch.full_like(ext, float("nan"))).nanmedian(dim=2).values
    # the outermost pixel above the threshold lies about 0.35 px inside the edge (measured on BouncingShapes)
    ext = ext.nan_to_num(0.0).clamp(min=0) + _EDGE_INSET
    return {"centroids": centroids, "extents": ext, "visible": visible}


def physics_residuals(clips: torch.Tensor, *, num_objects: int = 1, speed: tuple[float, float] | None = (1.0, 2.5),
                      colors: Sequence[Sequence[float]] | None = None, velocity_step: float = 0.02,
                      start_tolerance: float = 0.5, max_extent: float | None = None) -> torch.Tensor:
    """Per-clip RMS distance (B,) in pixels between the tracked paths and the nearest lawful paths.

    For each object, a lawful path starts within ``start_tolerance`` px of the first tracked
    centroid and moves at a constant velocity :math:`v` with :math:`s_{min} \\le |v| \\le s_{max}`
    (``speed``, px/frame; None: any velocity), reflected by walls at the pixel border minus the
    object's measured extent (:func:`vdlearn.data.shapes.bounce`). The search is exhaustive over
    a grid of velocities (step ``velocity_step``) and starts, separately per axis, then over the
    pairs (v_x, v_y) allowed by the speed range:

    .. math:: r = \\min_{p_0, v}\\ \\Bigl(\\tfrac1T \\textstyle\\sum_t \\lVert c_t - \\mathrm{bounce}(p_0 + v t)\\rVert^2\\Bigr)^{1/2}.

    The clip's value is the mean over its objects; NaN where an object is missing from a frame, or
    is no compact object: its median distance from the centroid to an edge exceeds ``max_extent``
    px (default 0.3 of the frame; BouncingShapes' shapes have radii up to 0.18). Without that rule,
    noise or a blob filling the frame would pass as a lawful object that has no room to move.
    """
    if speed is not None and not 0 <= speed[0] <= speed[1]:
        raise ValueError(f"speed must be a (low, high) range of px/frame with 0 <= low <= high, got {speed!r}")
    tracks = track_centroids(clips, num_objects=num_objects, colors=colors)
    c, ext, visible = tracks["centroids"], tracks["extents"], tracks["visible"]  # (B,K,T,2), (B,K,4), (B,K,T)
    size = torch.tensor([clips.shape[-1], clips.shape[-2]], dtype=torch.float32)  # (W, H) for (x, y)
    lo = torch.stack([ext[..., 0], ext[..., 2]], dim=-1) - 0.5  # (B, K, 2)
    hi = torch.maximum(size - 0.5 - torch.stack([ext[..., 1], ext[..., 3]], dim=-1), lo)
    top = speed[1] if speed is not None else float(max(clips.shape[-2:])) / 2
    step = max(velocity_step, 2 * top / 400)  # at most ~400 velocities per axis
    v = torch.arange(-top, top + step / 2, step)  # (G,)
    d = torch.linspace(-start_tolerance, start_tolerance, 5) if start_tolerance > 0 else torch.zeros(1)
    allowed = None
    if speed is not None:
        norm = torch.sqrt(v.view(-1, 1) ** 2 + v.view(1, -1) ** 2)
        allowed = (norm >= speed[0] - 1e-6) & (norm <= speed[1] + 1e-6)
    rms = torch.cat([_lawful_rms(c[i:i + 32], lo[i:i + 32], hi[i:i + 32], v, d, allowed)
                     for i in range(0, len(c), 32)])  # (B, K)
    limit = 0.3 * min(clips.shape[-2:]) if max_extent is None else float(max_extent)
    compact = ext.amax(dim=-1) <= limit  # (B, K)
    rms = torch.where(visible.all(dim=-1) & compact, rms, torch.full_like(rms, float("nan")))
    return rms.mean(dim=1)


def _lawful_rms(c: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, v: torch.Tensor, d: torch.Tensor,
                allowed: torch.Tensor | None) -> torch.Tensor:
    """RMS distance (B, K) from centroids c (B, K, T, 2) to the best bouncing path on the (v, d) grid."""
    t = c.shape[2]
    time = torch.arange(t, dtype=torch.float32)
    p0 = (c[:, :, 0, :].unsqueeze(-1) + d).clamp(min=lo.unsqueeze(-1), max=hi.unsqueeze(-1))  # (B, K, 2, D)
    # every candidate path (B, K, axis, G, D, T), per axis
    paths = bounce(p0[:, :, :, None, :, None], v.view(1, 1, 1, -1, 1, 1), time.view(1, 1, 1, 1, 1, -1),
                    lo[..., None, None, None], hi[..., None, None, None])
    observed = c.permute(0, 1, 3, 2)[:, :, :, None, None, :]  # (B, K, 2, 1, 1, T)
    sse = (paths - observed).pow(2).sum(-1).amin(dim=-1)  # (B, K, 2, G): the best start for each velocity
    total = sse[:, :, 0, :, None] + sse[:, :, 1, None, :]  # (B, K, G, G) over (v_x, v_y)
    if allowed is not None:
        total = total.masked_fill(~allowed, float("inf"))
    return (total.flatten(2).amin(dim=-1) / t).sqrt()


def physics_score(clips: torch.Tensor, *, num_objects: int = 1, speed: tuple[float, float] | None = (1.0, 2.5),
                  colors: Sequence[Sequence[float]] | None = None,
                  untracked_penalty: float | None = None, max_extent: float | None = None) -> dict[str, float]:
    """The physics score of BouncingShapes-like clips: mean RMS deviation (px) from lawful motion.

    Returns ``score`` (the mean over clips, lower is better, real clips about 0), ``median``, and
    ``tracked`` (the fraction of clips whose objects were visible in every frame and compact, see
    :func:`physics_residuals`). Untracked clips
    enter the score at ``untracked_penalty`` px (default: a quarter of the frame width). ``speed``
    must be the speed range of the dataset (``BouncingShapes(...).speed``).
    """
    r = physics_residuals(clips, num_objects=num_objects, speed=speed, colors=colors, max_extent=max_extent)
    penalty = clips.shape[-1] / 4 if untracked_penalty is None else float(untracked_penalty)
    tracked = torch.isfinite(r)
    filled = torch.where(tracked, r, torch.full_like(r, penalty))
    return {"score": filled.mean().item(), "median": filled.median().item(),
            "tracked": tracked.float().mean().item()}
