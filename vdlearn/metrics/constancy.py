"""Object constancy of BouncingShapes-like clips: does every frame of a clip show the same objects? (lesson 07)

A video model can move a blob lawfully and still fail as video if the blob is a triangle in one
frame and a disc in the next, changes colour, or splits in two. This module measures that.

Per frame (clips (B, 3, T, H, W) in [-1, 1], shapes on black, as ``vdlearn.data.shapes`` renders):

1. foreground: brightness ``v = max_c (x_c + 1) / 2`` above ``threshold`` (0.3; the same
   brightness the physics tracker of :mod:`vdlearn.metrics.physics` uses);
2. objects: 8-connected components of the foreground (``scipy.ndimage.label``); a component of
   fewer than ``min_pixels`` pixels is a speck, counted apart and otherwise ignored. A component
   whose pixels fall into two or more palette colours, each with at least ``split_fraction`` of its
   mass and ``min_pixels`` pixels, is split by colour (overlapping shapes of different colours);
3. colour: the nearest palette colour (Euclidean RGB) to the mean colour of the component's core
   (pixels at >= 60 % of its peak brightness);
4. kind: template matching against the renderer itself. The coverage map ``a = v / max(colour)``
   of the object gives its mass ``m = sum a`` and centroid; for each kind the renderer draws that
   kind at the centroid with the radius that gives area ``m`` (circle pi r^2, square (1.8 r)^2,
   triangle (3 sqrt 3 / 4)(1.4 r)^2), and the kind with the smallest L1 difference
   ``sum |a - template| / m`` wins. That residual (0 for a perfect shape) is the object's
   ``misfit``; an object with misfit above ``blob_misfit`` (0.6) is reported as kind ``blob``.

Per clip: ``count_constant`` (the same number of objects in every frame), ``colour_constant`` and
``kind_constant`` (the same multiset of colours / kinds in every frame; a clip with a ``blob``
-- an object that fits no kind, or spans more than 0.6 of the frame or covers a quarter of it --
is never kind-constant), ``constant`` (all three,
with at least one object), and ``constant_one`` (constant with exactly the expected number of
objects, ``num_objects``). Per frame: ``exactly_one`` (exactly ``num_objects`` objects).

Kinds and colours are compared as multisets, so several objects per clip work as long as they do
not hide each other. Frames where two objects touch (two components adjacent, or one component
split by colour) are *occluded*: they are left out of the kind comparison (an occluded triangle is
no triangle), and a frame whose count drops because one object hides another entirely is allowed
when the colour multiset of the other frames covers it. With ``num_objects=1`` none of this applies.

Probed on 256 clips each: real clips, real clips with noise, frame-shuffled clips and static clips
score 100 %; clips whose frames come from different clips (:func:`vdlearn.metrics.mix_frames`) 0 %;
the classifier names the kind and colour of 100 % of real frames. It is blind to frame order: the
physics score and FVD-lite see order.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np
import torch
from scipy import ndimage

from ..data.clips import check_clips
from ..data.shapes import PALETTE, SHAPE_KINDS, render_shapes

__all__ = ["KINDS", "AREA_COEF", "find_objects", "classify_frames", "object_constancy", "label_agreement"]

#: Area of each kind in units of r^2 (see the renderer: square half-side 0.9 r, triangle circumradius 1.4 r).
AREA_COEF = {"circle": math.pi, "square": (2 * 0.9) ** 2, "triangle": 3 * math.sqrt(3) / 4 * 1.4 ** 2}
KINDS = SHAPE_KINDS + ("blob",)
_EIGHT = np.ones((3, 3), dtype=bool)


def find_objects(frame: np.ndarray, palette: np.ndarray, threshold: float = 0.3, min_pixels: int = 6,
                 split_fraction: float = 0.25) -> tuple[list[dict], int, bool]:
    """Objects of one frame (3, H, W) with values in [0, 1]: (objects, number of specks, occluded).

    Each object is a dict with ``mask`` (H, W) bool, ``coverage`` (H, W) float and ``colour``
    (palette index).
    """
    value = frame.max(0)
    fg = value > threshold
    labels, n = ndimage.label(fg, structure=_EIGHT)
    chroma = frame / np.maximum(value, 1e-3)[None]
    ref = palette / palette.max(1, keepdims=True)
    pix_colour = ((chroma[None] - ref[:, :, None, None]) ** 2).sum(1).argmin(0)  # (H, W)
    objects, specks, occluded = [], 0, False
    for k in range(1, n + 1):
        mask = labels == k
        if mask.sum() < min_pixels:
            specks += 1
            continue
        # split by colour when two palette colours each hold a large share of the component
        cols = pix_colour[mask]
        w = value[mask]
        shares = np.bincount(cols, weights=w, minlength=len(palette)) / w.sum()
        counts = np.bincount(cols, minlength=len(palette))
        big = [c for c in range(len(palette)) if shares[c] >= split_fraction and counts[c] >= min_pixels]
        parts = [mask] if len(big) <= 1 else [mask & (pix_colour == c) for c in big]
        if len(parts) > 1:
            occluded = True
        for part in parts:
            objects.append(_describe(frame, value, part, palette))
    if len(objects) > 1:  # touching objects: dilate each and see whether it meets another
        grown = [ndimage.binary_dilation(o["mask"], structure=_EIGHT, iterations=2) for o in objects]
        for i in range(len(objects)):
            for j in range(i + 1, len(objects)):
                if (grown[i] & objects[j]["mask"]).any():
                    occluded = True
    return objects, specks, occluded


def _describe(frame: np.ndarray, value: np.ndarray, mask: np.ndarray, palette: np.ndarray) -> dict:
    v = np.where(mask, value, 0.0)
    rows, cols = np.nonzero(mask)
    side = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    # BouncingShapes' largest shape is 14 px wide on 32 px; a component spanning most of the frame is no shape
    oversized = side > 0.6 * max(mask.shape) or mask.sum() > 0.25 * mask.size
    core = mask & (value >= 0.6 * v.max())
    mean = frame[:, core].mean(1)
    colour = int(((palette - mean[None]) ** 2).sum(1).argmin())
    # coverage: the renderer paints colour * coverage on black, so value = max(colour) * coverage
    coverage = np.clip(v / palette[colour].max(), 0, 1)
    return {"mask": mask, "coverage": coverage, "colour": colour, "oversized": bool(oversized)}


def _classify_kinds(coverages: torch.Tensor, blob_misfit: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Kinds (N,) (index into KINDS) and misfits (N,) of coverage maps (N, H, W) by template matching."""
    n, h, w = coverages.shape
    if n == 0:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0)
    mass = coverages.sum((1, 2)).clamp(min=1e-6)
    ys, xs = torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32)
    cx = (coverages.sum(1) * xs).sum(1) / mass
    cy = (coverages.sum(2) * ys).sum(1) / mass
    pos = torch.stack([cx, cy], -1).view(n, 1, 1, 2)
    errors = []
    for kind_id, kind in enumerate(SHAPE_KINDS):
        radius = (mass / AREA_COEF[kind]).sqrt().view(n, 1)
        kinds = torch.full((n, 1), kind_id, dtype=torch.long)
        white = torch.ones(n, 1, 3)
        templ = (render_shapes(kinds, white, radius, pos, size=h)[:, 0, 0] + 1) / 2  # (N, H, W)
        if h != w:
            raise ValueError("square frames only")
        errors.append((coverages - templ).abs().sum((1, 2)) / mass)
    errors = torch.stack(errors, 1)
    misfit, kind = errors.min(1)
    kind = torch.where(misfit > blob_misfit, torch.full_like(kind, len(SHAPE_KINDS)), kind)
    return kind, misfit


def classify_frames(clips: torch.Tensor, colors: Sequence[Sequence[float]] | None = None, threshold: float = 0.3,
                    min_pixels: int = 6, blob_misfit: float = 0.6) -> list[list[dict]]:
    """Per clip, per frame: {"objects": [(kind, colour), ...], "misfits": [...], "specks": n, "occluded": bool}.

    ``kind`` indexes :data:`KINDS` (circle, square, triangle, blob), ``colour`` the palette.
    """
    clips = check_clips(clips, 3).detach().to("cpu", torch.float32).clamp(-1, 1)
    palette = np.asarray(PALETTE if colors is None else colors, dtype=np.float64)
    frames01 = ((clips + 1) / 2).numpy().astype(np.float64)
    b, _, t, h, w = clips.shape
    records, coverages = [], []
    for i in range(b):
        row = []
        for j in range(t):
            objects, specks, occluded = find_objects(frames01[i, :, j], palette, threshold, min_pixels)
            row.append({"objs": objects, "specks": specks, "occluded": occluded})
            coverages += [o["coverage"] for o in objects]
        records.append(row)
    cov = torch.as_tensor(np.stack(coverages), dtype=torch.float32) if coverages else torch.zeros(0, h, w)
    kinds, misfits = _classify_kinds(cov, blob_misfit)
    k = 0
    out = []
    for row in records:
        out_row = []
        for rec in row:
            objs = []
            mis = []
            for o in rec["objs"]:
                objs.append((len(SHAPE_KINDS) if o["oversized"] else int(kinds[k]), o["colour"]))
                mis.append(float(misfits[k]))
                k += 1
            out_row.append({"objects": objs, "misfits": mis, "specks": rec["specks"], "occluded": rec["occluded"]})
        out.append(out_row)
    return out


def _clip_verdict(frames: list[dict], num_objects: int) -> dict[str, bool]:
    counts = [len(f["objects"]) for f in frames]
    colours = [Counter(c for _, c in f["objects"]) for f in frames]
    # occlusion only excuses a kind change when several objects may overlap; a single object is never excused
    clear = frames if num_objects == 1 else [f for f in frames if not f["occluded"]]
    kinds = [Counter(k for k, _ in f["objects"]) for f in clear]
    if num_objects == 1:
        count_ok = len(set(counts)) == 1
        colour_ok = len({tuple(sorted(c.items())) for c in colours}) == 1
    else:  # a frame may lose an object hidden behind another; its colours must be a subset of the full set
        full = max(colours, key=lambda c: sum(c.values()))
        count_ok = all(n == max(counts) or f["occluded"] for n, f in zip(counts, frames)) and len(
            {n for n, f in zip(counts, frames) if not f["occluded"]}) <= 1
        colour_ok = all(all(c[key] <= full[key] for key in c) and (c == full or f["occluded"])
                        for c, f in zip(colours, frames))
    blob = len(SHAPE_KINDS)
    kind_ok = (len(kinds) >= 1 and len({tuple(sorted(c.items())) for c in kinds}) == 1
               and not any(blob in c for c in kinds))
    nonempty = min(counts) >= 1 or (num_objects > 1 and max(counts) >= 1)
    constant = count_ok and colour_ok and kind_ok and nonempty
    return {"count_constant": count_ok, "colour_constant": colour_ok, "kind_constant": kind_ok,
            "constant": constant, "constant_one": constant and max(counts) == num_objects}


def object_constancy(clips: torch.Tensor, num_objects: int = 1, colors: Sequence[Sequence[float]] | None = None,
              threshold: float = 0.3, min_pixels: int = 6, blob_misfit: float = 0.6,
              return_details: bool = False) -> dict:
    """Object-constancy scores of clips (B, 3, T, H, W) in [-1, 1] (see the module docstring).

    Returns fractions in [0, 1]: ``constant`` (clips whose object count, colours and kinds stay the
    same over all frames), ``constant_one`` (... with exactly ``num_objects`` objects),
    ``count_constant``, ``colour_constant``, ``kind_constant``, ``exactly_one`` (frames with exactly
    ``num_objects`` objects), ``one_shape`` (... none of them a blob), ``speck_frames`` (frames with a speck), ``blob_objects`` (objects that
    fit no kind) and ``misfit`` (mean template residual of the objects, ~0.1 for real shapes).
    """
    per_clip = classify_frames(clips, colors, threshold, min_pixels, blob_misfit)
    verdicts = [_clip_verdict(frames, num_objects) for frames in per_clip]
    frames = [f for clip in per_clip for f in clip]
    objects = [o for f in frames for o in f["objects"]]
    misfits = [m for f in frames for m in f["misfits"]]
    out = {key: float(np.mean([v[key] for v in verdicts])) for key in verdicts[0]}
    out.update(exactly_one=float(np.mean([len(f["objects"]) == num_objects for f in frames])),
               one_shape=float(np.mean([len(f["objects"]) == num_objects and all(k < len(SHAPE_KINDS)
                                        for k, _ in f["objects"]) for f in frames])),
               speck_frames=float(np.mean([f["specks"] > 0 for f in frames])),
               blob_objects=float(np.mean([k == len(SHAPE_KINDS) for k, _ in objects])) if objects else float("nan"),
               misfit=float(np.mean(misfits)) if misfits else float("nan"),
               clips=len(verdicts))
    if return_details:
        out["per_clip"], out["verdicts"] = per_clip, verdicts
    return out


def label_agreement(clips: torch.Tensor, labels: torch.Tensor, colors: Sequence[Sequence[float]] | None = None,
                    **classify: float) -> float:
    """The fraction of clips (B, 3, T, H, W) every frame of which shows exactly one object, of the kind
    and colour that its label names: a class-conditional model asked for a "red triangle" must draw one.

    Labels (B,) are :meth:`vdlearn.data.BouncingShapes.labels`: ``kind * len(colors) + colour``,
    kinds in the order of :data:`SHAPE_KINDS`. ``classify`` goes to :func:`classify_frames`.
    """
    labels = torch.as_tensor(labels).long().flatten()
    if labels.numel() != clips.shape[0]:
        raise ValueError(f"one label per clip: {clips.shape[0]} clips but {labels.numel()} labels")
    palette = PALETTE if colors is None else colors
    per_clip = classify_frames(clips, colors, **classify)
    wanted = [divmod(int(y), len(palette)) for y in labels]
    return float(np.mean([all(f["objects"] == [want] for f in frames) for frames, want in zip(per_clip, wanted)]))
