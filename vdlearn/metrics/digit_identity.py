"""Digit constancy of MovingDigits-like clips: does every frame of a clip show the same digit? (lesson 07)

The digit counterpart of :mod:`vdlearn.metrics.constancy` (kind, colour and count of BouncingShapes).
A video model can move a digit lawfully and still fail as video if the 3 of the first frame turns
into an 8 halfway through, splits in two or dissolves. This module reads the digit in every frame
with the course's digit classifier (:func:`vdlearn.metrics.feature_network`, ``"digits"``: trained
on :class:`vdlearn.data.DigitImages`, 28x28 in [-1, 1], the digit's ink in a box of about 21 px
centred in the image) and asks whether it stays the same.

Per frame (clips (B, 1, T, H, W) in [-1, 1], white digits on black, as
:class:`vdlearn.data.MovingDigits` renders them; frames of any size from 8x8, square or not):

1. foreground: brightness ``v = (x + 1) / 2`` above ``threshold`` (0.3, as the shape metrics);
2. digits: 8-connected components of the foreground (``scipy.ndimage.label``). A rendered digit is
   one component, except a few handwritten ones whose strokes do not meet (a 6 with its stem apart);
   so a component with at most ``JOIN_RATIO`` (1/2) of the pixels of another, at a Chebyshev
   distance of at most ``JOIN_REACH`` (1/4) of that one's longer side (at least 2 px), joins it.
   A component of fewer than ``min_pixels`` pixels is a speck, counted apart and otherwise ignored;
   one whose bounding box spans more than ``max_extent`` (0.8) of the frame or which covers more
   than a quarter of it is a *blob* (noise, a smear): not a digit, and the frame counts as having none;
3. crop: the digit's bounding box, ``h x w`` pixels around its centre ``c``, is mapped onto the
   classifier's 28x28 input so that its longer side becomes ``DIGIT_BOX`` = 21 px, centred, as in
   the training images (any digit size works: MovingDigits' digits are 9 px tall in 28 px frames
   by default, 21 px in 64 px frames). Output pixel ``u`` (0..27) reads the frame at

   .. math:: p = c + (u - 13.5) / s, \\qquad s = \\mathrm{DIGIT\\_BOX} / \\max(h, w),

   from the digit alone (its pixels grown by one, to keep the anti-aliased rim but not a second
   digit nearby), its brightness divided by its peak (a dim digit is still a digit). Upsampling
   (``s`` > 1) blurs strokes, so the crop is resampled bicubically at 2x (56x56), sharpened with the
   curve the dataset itself uses to turn blurry 8x8 digits into strokes,

   .. math:: y = \\frac{\\sigma(k (x - 0.45)) - \\sigma(-0.45 k)}{\\sigma(0.55 k) - \\sigma(-0.45 k)},
             \\qquad k = \\mathrm{SHARPNESS} = 10,

   blended in with weight ``clip((s - 1) / (SHARPEN_FULL - 1), 0, 1)`` (none at ``s <= 1``, full
   from ``s = 1.5``), and area-averaged back to 28x28 (:func:`digit_crops`);
4. class: the classifier reads each crop at the ``views`` positions of :data:`VIEWS` (the box
   centre and half a pixel either way along the diagonal); the class is the ``argmax`` of the mean
   softmax probability, the *confidence* its value. Averaging the views keeps a digit that sits
   between two classes (a sloppy 4 or 9) from flipping with sub-pixel motion.

Per clip: ``count_constant`` (every frame shows ``num_digits`` digits and no blob),
``class_constant`` (every clear frame -- one with exactly ``num_digits`` digits -- shows the same
multiset of classes, and there is at least one) and ``digit_constant`` (both). With several digits
per clip, two digits that touch form one component; a frame with fewer than ``num_digits`` digits
(but at least one) is then *occluded*: it passes the count and is left out of the class
comparison, as occluded shapes are in :mod:`.constancy`. A clip whose digits touch in every frame
has no clear frame and is never constant (``clear_clips`` says how many have one). With
``num_digits=1`` (the default) none of this applies: every frame must show exactly one digit, of
the same class.

Given the true labels (``labels``, (B,) or (B, num_digits); for MovingDigits
``[d["label"] for d in dataset.describe(i)]``), ``accuracy`` is the fraction of clear frames whose
classes are the true ones: how far the classifier can be trusted on such frames.

Probed on 256 clips each (``tests/test_digit_constancy.py`` asserts the same on fewer): on lesson
07's and lesson 10's clips (one 18 px digit in 28 and 32 px frames, 16 frames) and on 64 px frames
(the default 28 px digit, 8 frames), real clips are 98-99 % digit-constant, with 99 % of the frames
read right (a single misread frame is what breaks the rest: ambiguous handwriting); frame-shuffled
clips score the same (it is blind to frame order: the physics score and FVD-lite see order); real
clips with Gaussian noise (sigma 0.05) 97-100 %; clips whose frames come from different clips
(:func:`vdlearn.metrics.mix_frames`) 0 %; noise clips 0 % (no digit found). MovingDigits' default
12 px digits in 28 px frames are harder (95 % constant, 95 % of frames right). Two 28 px digits in
64 px frames (lesson 08) touch in every frame of about a quarter of the clips: real clips score
about 77 %, mixed ones 2 %.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..data.clips import check_clips
from .features import feature_network

__all__ = ["CROP_SIZE", "DIGIT_BOX", "SHARPNESS", "SHARPEN_FULL", "JOIN_RATIO", "JOIN_REACH", "VIEWS",
           "find_digits", "digit_crops", "classify_digit_frames", "digit_constancy"]

#: The classifier's input: 28x28 images, as :class:`vdlearn.data.DigitImages`.
CROP_SIZE = 28
#: The longer side of a digit's ink in the classifier's training images (a 20 px box, jittered; median 21 px).
DIGIT_BOX = 21.0
#: Steepness of the stroke-sharpening sigmoid (the dataset's own recipe uses 20 on 10x finer images).
SHARPNESS = 10.0
#: Fragments of one digit (a 6 whose loop and stem do not touch) are joined: a component of at most
#: JOIN_RATIO times the pixels of another, within JOIN_REACH times that one's side (at least 2 px).
JOIN_RATIO = 0.5
JOIN_REACH = 0.25
#: Upsampling factor from which crops are sharpened fully (none at s <= 1, in between in proportion).
SHARPEN_FULL = 1.5
#: The crop positions the classifier reads (dx, dy frame pixels from the box centre); their softmax
#: probabilities are averaged, which steadies the reading of a digit that sits between two classes.
VIEWS = ((0.0, 0.0), (0.5, 0.5), (-0.5, -0.5))
_SUPERSAMPLE = 2
_EIGHT = np.ones((3, 3), dtype=bool)
_MIN_SIZE = 8

Classifier = Callable[[torch.Tensor], torch.Tensor]


def find_digits(frame: np.ndarray, threshold: float = 0.3, min_pixels: int = 4,
                max_extent: float = 0.8) -> tuple[list[dict], int, bool]:
    """Digits of one frame (H, W) with values in [0, 1]: (digits, number of specks, blob found).

    Each digit is a dict with ``mask`` (H, W) bool (its pixels), ``box`` (x0, y0, x1, y1)
    (inclusive pixel bounds), ``centre`` (x, y) of the box and ``side``, the longer side of the box,
    sorted left to right. Components that are too big to be a digit (see the module docstring) are
    not returned; ``blob`` says there was one.
    """
    fg = frame > threshold
    labels, n = ndimage.label(fg, structure=_EIGHT)
    h, w = frame.shape
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    parts = [k for k in range(1, n + 1) if sizes[k] >= min_pixels]
    specks = n - len(parts)
    owner = {k: k for k in parts}
    if len(parts) > 1:
        _join_fragments(labels, parts, sizes, owner)
    digits, blob = [], False
    for k in sorted(set(owner.values())):
        mask = np.isin(labels, [m for m in parts if owner[m] == k])
        rows, cols = np.nonzero(mask)
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        if max(height / h, width / w) > max_extent or len(rows) > 0.25 * h * w:
            blob = True
            continue
        x0, y0, x1, y1 = int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())
        digits.append({"mask": mask, "box": (x0, y0, x1, y1), "centre": ((x0 + x1) / 2, (y0 + y1) / 2),
                       "side": int(max(height, width))})
    digits.sort(key=lambda d: d["centre"])
    return digits, specks, blob


def _join_fragments(labels: np.ndarray, parts: list[int], sizes: np.ndarray, owner: dict[int, int]) -> None:
    """Join each component to a component at least 1/JOIN_RATIO times its size within reach (step 2)."""
    pixels = {k: np.argwhere(labels == k) for k in parts}
    lows, highs = {k: p.min(0) for k, p in pixels.items()}, {k: p.max(0) for k, p in pixels.items()}
    sides = {k: int((highs[k] - lows[k]).max()) + 1 for k in parts}
    for a in sorted(parts, key=lambda k: sizes[k]):
        best, best_gap = None, None
        for b in parts:
            if b == a or sizes[a] > JOIN_RATIO * sizes[b]:
                continue
            reach = max(2, math.ceil(JOIN_REACH * sides[b]))
            if np.maximum(lows[a] - highs[b], lows[b] - highs[a]).max() > reach:  # the boxes are too far apart
                continue
            # Chebyshev distance between the two pixel sets: 1 for touching pixels
            gap = int(np.abs(pixels[a][:, None, :] - pixels[b][None, :, :]).max(-1).min())
            if gap <= reach and (best_gap is None or gap < best_gap):
                best, best_gap = b, gap
        if best is not None:
            target = owner[best]
            for k, o in owner.items():
                if o == owner[a]:
                    owner[k] = target


def _sharpen(x: torch.Tensor, k: float = SHARPNESS) -> torch.Tensor:
    """The stroke curve of :mod:`vdlearn.data.digits`: 0 -> 0, 1 -> 1, steep around 0.45."""
    low, high = torch.sigmoid(torch.tensor(-0.45 * k)), torch.sigmoid(torch.tensor(0.55 * k))
    return ((torch.sigmoid(k * (x - 0.45)) - low) / (high - low)).clamp(0, 1)


def _resample(sources: torch.Tensor, centres: torch.Tensor, sides: torch.Tensor) -> torch.Tensor:
    """Crops (N, 1, 28, 28) in [-1, 1] of frames (N, 1, H, W) in [0, 1] (see step 3 of the module docstring).

    In grid_sample's normalised coordinates (align_corners=False), p = c + (u - 13.5)/s becomes
    b = (2c + 1)/W - 1 + (28 / (s W)) a, for the output's normalised a.
    """
    n, _, h, w = sources.shape
    scale = DIGIT_BOX / sides.double()
    fine = CROP_SIZE * _SUPERSAMPLE
    a = (torch.arange(fine, dtype=torch.float64) * 2 + 1) / fine - 1  # the output's normalised coordinates
    gx = (2 * centres[:, 0:1].double() + 1) / w - 1 + (CROP_SIZE / (scale[:, None] * w)) * a  # (N, fine)
    gy = (2 * centres[:, 1:2].double() + 1) / h - 1 + (CROP_SIZE / (scale[:, None] * h)) * a
    grid = torch.empty(n, fine, fine, 2)
    grid[..., 0], grid[..., 1] = gx[:, None, :], gy[:, :, None]
    up = F.grid_sample(sources, grid, mode="bicubic", padding_mode="zeros", align_corners=False).clamp(0, 1)
    weight = ((scale - 1) / (SHARPEN_FULL - 1)).clamp(0, 1).float().view(n, 1, 1, 1)  # no sharpening at s <= 1
    return F.avg_pool2d(up + weight * (_sharpen(up) - up), _SUPERSAMPLE) * 2 - 1


def _check_digit_clips(clips: torch.Tensor) -> torch.Tensor:
    if isinstance(clips, torch.Tensor) and clips.ndim == 5 and clips.shape[1] != 1:
        raise ValueError(f"clips have {clips.shape[1]} channels but 1 is expected (shape {tuple(clips.shape)}, "
                         "channel axis second: (B, C, T, H, W)); MovingDigits clips are grey. For colour "
                         "BouncingShapes clips use object_constancy; for grey digits stored as RGB, pass "
                         "x.mean(1, keepdim=True)")
    clips = check_clips(clips, 1)
    if min(clips.shape[-2:]) < _MIN_SIZE:
        raise ValueError(f"frames of {clips.shape[-2]}x{clips.shape[-1]} pixels are too small to read a digit in; "
                         f"at least {_MIN_SIZE}x{_MIN_SIZE} are needed (shape {tuple(clips.shape)})")
    return clips.detach().to("cpu", torch.float32).clamp(-1, 1)


def digit_crops(clips: torch.Tensor, threshold: float = 0.3, min_pixels: int = 4, max_extent: float = 0.8,
                shift: tuple[float, float] = (0.0, 0.0)) -> tuple[torch.Tensor, list[list[dict]]]:
    """Every digit of clips (B, 1, T, H, W) in [-1, 1], as the classifier's input.

    Returns ``crops`` (N, 1, 28, 28) in [-1, 1] (all digits of all frames, clip by clip, frame by
    frame, left to right) and per clip, per frame, a dict: ``boxes`` (x0, y0, x1, y1) of its digits,
    ``specks`` and ``blob`` (see :func:`find_digits`). ``shift`` (dx, dy) moves every crop's centre
    by that many frame pixels (the views of :data:`VIEWS`).
    """
    sources, centres, sides, records = _digit_sources(clips, threshold, min_pixels, max_extent)
    return _crops(sources, centres + torch.tensor(shift, dtype=torch.float64), sides), records


def _digit_sources(clips: torch.Tensor, threshold: float, min_pixels: int, max_extent: float):
    """Each digit's ink alone (N, H, W) float32 in [0, 1], box centres (N, 2), sides (N,), and the per-frame records."""
    clips = _check_digit_clips(clips)
    frames01 = ((clips[:, 0] + 1) / 2).numpy()
    b, t, h, w = frames01.shape
    sources, centres, sides, records = [], [], [], []
    for i in range(b):
        row = []
        for j in range(t):
            frame = frames01[i, j]
            digits, specks, blob = find_digits(frame, threshold, min_pixels, max_extent)
            for d in digits:
                keep = ndimage.binary_dilation(d["mask"], structure=_EIGHT)
                ink = np.where(keep, frame, 0.0)
                sources.append(ink / max(float(ink.max()), threshold))
                centres.append(d["centre"])
                sides.append(d["side"])
            row.append({"boxes": [d["box"] for d in digits], "specks": specks, "blob": blob})
        records.append(row)
    stacked = (torch.as_tensor(np.stack(sources), dtype=torch.float32) if sources
               else torch.zeros(0, h, w))
    return (stacked, torch.tensor(centres, dtype=torch.float64).view(-1, 2),
            torch.tensor(sides, dtype=torch.float64), records)


def _crops(sources: torch.Tensor, centres: torch.Tensor, sides: torch.Tensor) -> torch.Tensor:
    crops = [_resample(sources[k:k + 256].unsqueeze(1), centres[k:k + 256], sides[k:k + 256])
             for k in range(0, len(sources), 256)]  # 256 at a time: the supersampled grid is large
    return torch.cat(crops) if crops else torch.zeros(0, 1, CROP_SIZE, CROP_SIZE)


@torch.no_grad()
def _probabilities(crops: torch.Tensor, classifier: Classifier) -> torch.Tensor:
    if isinstance(classifier, torch.nn.Module):
        device = next(classifier.parameters()).device
    else:
        device = torch.device("cpu")
    probs = [F.softmax(classifier(crops[k:k + 500].to(device)).float(), dim=1).cpu()
             for k in range(0, len(crops), 500)]
    return torch.cat(probs) if probs else torch.zeros(0, 10)


def classify_digit_frames(clips: torch.Tensor, threshold: float = 0.3, min_pixels: int = 4,
                          max_extent: float = 0.8, classifier: Classifier | None = None,
                          views: int = len(VIEWS)) -> list[list[dict]]:
    """Per clip, per frame: {"digits": [class, ...], "confidences": [...], "boxes": [...], "specks": n, "blob": bool}.

    Digits are listed left to right; ``confidences`` are the classifier's softmax probabilities of
    the classes it chose, averaged over the first ``views`` of :data:`VIEWS` (1 to 3; 1 is three
    times faster and reads a few more frames wrong). ``classifier`` maps images (N, 1, 28, 28) in
    [-1, 1] to logits (N, 10); by default the course's digit network (``feature_network("digits")``,
    trained on first use).
    """
    if views not in range(1, len(VIEWS) + 1):
        raise ValueError(f"views must be 1, 2 or 3 (how many of VIEWS = {VIEWS} to average), got {views!r}")
    sources, centres, sides, records = _digit_sources(clips, threshold, min_pixels, max_extent)
    net = feature_network("digits") if classifier is None else classifier
    probs = sum(_probabilities(_crops(sources, centres + torch.tensor(view, dtype=torch.float64), sides), net)
                for view in VIEWS[:views]) / views
    confidence, classes = probs.max(1)
    k = 0
    for row in records:
        for rec in row:
            n = len(rec["boxes"])
            rec["digits"] = [int(c) for c in classes[k:k + n]]
            rec["confidences"] = [float(c) for c in confidence[k:k + n]]
            k += n
    return [[{key: rec[key] for key in ("digits", "confidences", "boxes", "specks", "blob")} for rec in row]
            for row in records]


def _clip_verdict(frames: list[dict], num_digits: int) -> dict[str, bool]:
    counts = [0 if f["blob"] else len(f["digits"]) for f in frames]
    if num_digits == 1:
        count_ok = all(c == 1 for c in counts)
    else:  # touching digits are one component: a frame may show fewer, never more, and never none
        count_ok = all(1 <= c <= num_digits for c in counts)
    clear = [tuple(sorted(f["digits"])) for f, c in zip(frames, counts) if c == num_digits]
    class_ok = len(clear) >= 1 and len(set(clear)) == 1
    return {"count_constant": count_ok, "class_constant": class_ok, "digit_constant": count_ok and class_ok}


def _check_labels(labels, num_clips: int, num_digits: int) -> torch.Tensor:
    labels = torch.as_tensor(labels)
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise ValueError("labels must be whole numbers, the digit classes 0-9")
    labels = labels.long()
    if labels.ndim == 1 and num_digits == 1:
        labels = labels[:, None]
    if tuple(labels.shape) != (num_clips, num_digits):
        raise ValueError(f"labels must have shape ({num_clips},) or ({num_clips}, {num_digits}): one label per digit "
                         f"of each clip (num_digits={num_digits}), got {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"labels must be digit classes 0-9, got values from {int(labels.min())} "
                         f"to {int(labels.max())}")
    return labels


def digit_constancy(clips: torch.Tensor, num_digits: int = 1, labels: torch.Tensor | Sequence | None = None,
                    threshold: float = 0.3, min_pixels: int = 4, max_extent: float = 0.8,
                    classifier: Classifier | None = None, views: int = len(VIEWS),
                    return_details: bool = False) -> dict:
    """Digit-constancy scores of clips (B, 1, T, H, W) in [-1, 1] (see the module docstring).

    Returns fractions in [0, 1]: ``digit_constant`` (clips that show ``num_digits`` digits of the
    same classes in every frame), ``count_constant``, ``class_constant`` (the two halves of it),
    ``exactly_one`` (frames with exactly ``num_digits`` digits and no blob: the clear frames),
    ``classified_frames`` (frames where at least one digit was found and classified),
    ``blob_frames`` (frames with a component too big to be a digit), ``speck_frames``, ``clear_clips``
    (clips with at least one clear frame: the most ``digit_constant`` can be; below 1 when digits
    touch in every frame),
    ``frame_agreement`` (clear frames whose classes are the most common ones of their clip: a graded
    constancy), ``confidence`` (the classifier's mean probability of its choice, over the digits of
    clear frames), ``accuracy`` (clear frames whose classes are ``labels``; only when labels are
    given) and ``clips``. ``return_details`` adds ``per_clip`` (see :func:`classify_digit_frames`)
    and ``verdicts``.
    """
    if int(num_digits) != num_digits or num_digits < 1:
        raise ValueError(f"num_digits must be a positive integer, got {num_digits!r}")
    num_digits = int(num_digits)
    if labels is not None and isinstance(clips, torch.Tensor) and clips.ndim == 5:
        labels = _check_labels(labels, clips.shape[0], num_digits)
    per_clip = classify_digit_frames(clips, threshold, min_pixels, max_extent, classifier, views)
    verdicts = [_clip_verdict(frames, num_digits) for frames in per_clip]
    frames = [f for clip in per_clip for f in clip]
    clear = [[f for f in clip if not f["blob"] and len(f["digits"]) == num_digits] for clip in per_clip]
    agree = []
    for clip in clear:
        if clip:
            common = Counter(tuple(sorted(f["digits"])) for f in clip).most_common(1)[0][1]
            agree += [1.0] * common + [0.0] * (len(clip) - common)
    confidences = [c for clip in clear for f in clip for c in f["confidences"]]
    out = {key: float(np.mean([v[key] for v in verdicts])) for key in ("digit_constant", "count_constant",
                                                                       "class_constant")}
    out.update(exactly_one=float(np.mean([not f["blob"] and len(f["digits"]) == num_digits for f in frames])),
               classified_frames=float(np.mean([len(f["digits"]) > 0 for f in frames])),
               blob_frames=float(np.mean([f["blob"] for f in frames])),
               speck_frames=float(np.mean([f["specks"] > 0 for f in frames])),
               clear_clips=float(np.mean([len(clip) > 0 for clip in clear])),
               frame_agreement=float(np.mean(agree)) if agree else float("nan"),
               confidence=float(np.mean(confidences)) if confidences else float("nan"))
    if labels is not None:
        right = [tuple(sorted(f["digits"])) == tuple(sorted(labels[i].tolist()))
                 for i, clip in enumerate(clear) for f in clip]
        out["accuracy"] = float(np.mean(right)) if right else float("nan")
    out["clips"] = len(verdicts)
    if return_details:
        out["per_clip"], out["verdicts"] = per_clip, verdicts
    return out
