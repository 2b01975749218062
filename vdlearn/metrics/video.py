"""Metrics that see motion: FVD-lite, frame-difference statistics and a physics score (lesson 07).

A per-frame metric such as FID cannot tell a video from a slideshow: shuffle the frames of a clip,
or repeat one frame, and every frame is still a perfect image. Three tools here look at time.

**FVD-lite.** FVD (Unterthiner et al. 2019) is the Fréchet distance (Heusel et al. 2017, eq. 6)

.. math:: d^2 = \\lVert \\mu_r - \\mu_g \\rVert^2 + \\operatorname{tr}\\bigl(\\Sigma_r + \\Sigma_g - 2 (\\Sigma_r^{1/2} \\Sigma_g \\Sigma_r^{1/2})^{1/2}\\bigr)

between Gaussians fitted to features of real and generated clips, from a video network (I3D
trained on Kinetics). Offline, the course trains its own small 3-D CNN (:class:`VideoFeatureNet`)
on the course's clips in a minute on a CPU, caches it under :func:`vdlearn.runtime.cache_dir`, and
uses its 64-d features. Its training tasks make the features see appearance *and* motion: which
kinds, colours or digits are in the clip; how fast things move (the mean |v_x|, |v_y|); whether
the frames are in order, shuffled, or one frame repeated ("Shuffle and Learn", Misra et al. 2016);
and how much noise and blur were added (so the features also see image quality).

**Motion statistics.** The frame-difference energy of a clip,
:math:`E = \\operatorname{mean}_{t,c,h,w}\\,(x_{t+1} - x_t)^2`, compared with real clips: a ratio
far below 1 means frozen video, far above 1 flicker. A clip is *near-static* when its energy is
below ``static_threshold`` (0.1) times the median energy of real clips.

**Physics score (BouncingShapes).** Track every shape's centroid (:func:`track_centroids`) and
measure the RMS distance, in pixels, between the tracked path and the nearest *lawful* path: a
point starting where the shape starts, moving at a constant velocity whose speed lies in the
dataset's range, reflected by the walls (:func:`vdlearn.data.shapes.bounce`). Real clips score
about 0 (tracking error only); a frozen shape is far from every path that moves at >= 1 px/frame;
shuffled frames jump about. Tracking one shape uses all bright pixels; with several shapes each is
segmented by its colour (the nearest palette colour of each bright pixel), which needs the shapes
of a clip to have distinct colours and degrades while they overlap; clips where an object vanishes
from a frame count as failures (:func:`physics_score`).
"""
from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .frechet import feature_statistics, frechet_distance

__all__ = [
    "VIDEO_FEATURE_DATASETS",
    "VideoFeatureNet",
    "video_feature_network",
    "extract_video_features",
    "fvd_lite",
    "shuffle_frames",
    "freeze_frames",
    "frame_difference_energy",
    "motion_stats",
    "track_centroids",
    "physics_residuals",
    "physics_score",
]

#: Bumped whenever the architecture or training recipe changes (invalidates the cache).
_VERSION = 2
#: Training steps (batches of 32 clips of 8 frames) of the feature network: about a minute on a CPU.
TRAIN_STEPS = 800


# ---------------------------------------------------------------------------------------------
# input checks and the corruptions used both to train the feature network and to probe metrics
# ---------------------------------------------------------------------------------------------
def _check_videos(clips: torch.Tensor, what: str = "clips", min_frames: int = 2) -> torch.Tensor:
    """Validate (B, C, T, H, W) clips in [-1, 1]; return them as float32 on the CPU."""
    if not isinstance(clips, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor of videos (B, C, T, H, W), got {type(clips).__name__}")
    if clips.ndim != 5:
        hint = " (one clip? add a batch axis with x.unsqueeze(0))" if clips.ndim == 4 else ""
        raise ValueError(f"{what} must be videos (B, C, T, H, W), got shape {tuple(clips.shape)}{hint}")
    if clips.shape[2] < min_frames:
        raise ValueError(f"{what} need at least {min_frames} frames to show motion, got {clips.shape[2]} "
                         f"(shape {tuple(clips.shape)}; the frame axis is the third: (B, C, T, H, W))")
    if clips.shape[0] < 1:
        raise ValueError(f"{what} are an empty batch")
    clips = clips.detach().to("cpu", torch.float32)
    if not torch.isfinite(clips).all():
        raise ValueError(f"{what} contain NaN or inf values; did sampling diverge?")
    lo, hi = clips.min().item(), clips.max().item()
    if lo < -1.001 or hi > 1.001:
        raise ValueError(f"{what} should hold values in [-1, 1], but they range over [{lo:.3g}, {hi:.3g}]; "
                         "clamp model samples with .clamp(-1, 1), map uint8 pixels with x / 127.5 - 1 "
                         "and [0, 1] values with 2 * x - 1")
    return clips.clamp(-1, 1)


def shuffle_frames(clips: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The same frames in a random order (a different permutation per clip, never the identity)."""
    b, _, t = clips.shape[:3]
    keys = torch.rand(b, t, generator=generator)
    order = keys.argsort(dim=1)
    same = (order == torch.arange(t)).all(1)
    order[same] = order[same].roll(1, dims=1)  # a cyclic shift: still every frame, surely moved
    index = order.to(clips.device).view(b, 1, t, 1, 1).expand(-1, clips.shape[1], -1, *clips.shape[3:])
    return clips.gather(2, index)


def freeze_frames(clips: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One random frame of each clip, repeated T times: a perfect image that does not move."""
    b, _, t = clips.shape[:3]
    pick = torch.randint(0, t, (b,), generator=generator).to(clips.device)
    frame = clips[torch.arange(b, device=clips.device), :, pick]  # (B, C, H, W)
    return frame.unsqueeze(2).expand(-1, -1, t, -1, -1).clone()


# ---------------------------------------------------------------------------------------------
# the feature network of FVD-lite
# ---------------------------------------------------------------------------------------------
def _shapes_dataset():
    from vdlearn.data import BouncingShapes
    return BouncingShapes(num_clips=8192, frames=16, size=32, num_shapes=1, seed=1234)


def _digits_dataset():
    from vdlearn.data import MovingDigits
    return MovingDigits(num_clips=8192, frames=16, size=64, num_digits=2, seed=1234)


#: name -> a function making the course dataset that name stands for.
VIDEO_FEATURE_DATASETS = {"shapes": _shapes_dataset, "digits": _digits_dataset}


class VideoFeatureNet(nn.Module):
    """A small two-stream network (Simonyan & Zisserman 2014) whose 64-d features FVD-lite compares.

    - appearance: a 2-D CNN on every frame, averaged over space (and, for the features, time; 32
      features), trained to say what each frame contains (the kinds and the colours of the shapes,
      or the digits: one softmax per group) and how noisy and blurred it is;
    - motion: a 3-D CNN on the frames and their differences :math:`x_{t+1} - x_t` (3×3×3 convolutions, strides 2 in space, then in time; 32
      features), trained to say whether the frames are in order, shuffled or frozen, and how fast
      things move (mean |v_x|, |v_y|).

    Two streams keep the tasks from competing for the same features.
    """

    def __init__(self, in_channels: int, content_groups: Sequence[int], feature_dim: int = 64, width: int = 16):
        super().__init__()
        if feature_dim % 2:
            raise ValueError(f"feature_dim must be even (half per stream), got {feature_dim}")
        self.in_channels, self.feature_dim, self.width = in_channels, feature_dim, width
        self.content_groups = tuple(int(g) for g in content_groups)
        num_content = sum(self.content_groups)
        w, half = width, feature_dim // 2

        def block(conv: type, cin: int, cout: int, stride) -> list[nn.Module]:
            return [conv(cin, cout, 3, stride=stride, padding=1), nn.GroupNorm(8, cout), nn.ReLU()]

        self.appearance = nn.Sequential(
            *block(nn.Conv2d, in_channels, w, 2), *block(nn.Conv2d, w, 2 * w, 2), *block(nn.Conv2d, 2 * w, 2 * w, 1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * w, half))
        self.motion = nn.Sequential(
            *block(nn.Conv3d, 2 * in_channels, w, (1, 2, 2)), *block(nn.Conv3d, w, 2 * w, (1, 2, 2)),
            *block(nn.Conv3d, 2 * w, 2 * w, 2), *block(nn.Conv3d, 2 * w, 2 * w, 1),
            nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(2 * w, half))
        self.heads = nn.ModuleDict({"content": nn.Linear(half, num_content), "quality": nn.Linear(half, 2),
                                    "order": nn.Linear(half, 3), "motion": nn.Linear(half, 2)})

    def streams(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame appearance (B, T, feature_dim/2) and motion (B, feature_dim/2) features of clips (B, C, T, H, W)."""
        b, c, t, h, w = clips.shape
        frames = clips.transpose(1, 2).reshape(b * t, c, h, w)
        # the motion stream sees the frames and their differences (a cheap stand-in for the optical flow
        # of the original two-stream network): a frozen clip is then all zeros in half its input
        later = clips[:, :, 1:]
        return self.appearance(frames).view(b, t, -1), self.motion(torch.cat([later, later - clips[:, :, :-1]], 1))

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """The (B, feature_dim) features FVD-lite compares: the time-averaged appearance and the motion features."""
        appearance, motion = self.streams(clips)
        return torch.cat([appearance.mean(1), motion], dim=1)

    def forward(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """Content logits (B, T, num_content) and quality (B, T, 2) of every frame, order logits (B, 3), motion (B, 2)."""
        appearance, motion = (F.silu(f) for f in self.streams(clips))  # SiLU: no feature can die
        return {"content": self.heads["content"](appearance), "quality": self.heads["quality"](appearance),
                "order": self.heads["order"](motion), "motion": self.heads["motion"](motion)}


def _content_groups(dataset) -> tuple[int, ...]:
    """Sizes of the groups of content labels: (kinds, colours) for shapes, (10 digits,) for digits."""
    if hasattr(dataset, "kinds"):
        return (len(dataset.kinds), len(dataset.colors))
    return (10,)


def _clip_targets(dataset, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What clips ``indices`` contain and how fast it moves, from the dataset's ``describe``.

    Content: multi-hot (B, K) over the groups of :func:`_content_groups` (the kinds and colours of
    the shapes present, or the digit labels present). Motion: (B, 2), the mean over a clip's
    objects of (|v_x|, |v_y|) divided by the top speed.
    """
    top = max(dataset.speed[1], 1e-6)
    content, motion = [], []
    for i in indices.tolist():
        objects = dataset.describe(int(i))
        row = torch.zeros(sum(_content_groups(dataset)))
        for o in objects:
            if "label" in o:  # digits
                row[o["label"]] = 1
            else:  # shapes: kinds, then colours
                row[list(dataset.kinds).index(o["kind"])] = 1
                row[len(dataset.kinds) + _nearest([tuple(c) for c in dataset.colors], o["color"])] = 1
        content.append(row)
        motion.append([sum(abs(o["velocity"][a]) for o in objects) / len(objects) / top for a in (0, 1)])
    return torch.stack(content), torch.tensor(motion)


def _nearest(colors: list[tuple[float, ...]], color: Sequence[float]) -> int:
    return min(range(len(colors)), key=lambda k: sum((a - b) ** 2 for a, b in zip(colors[k], color)))


def _blur(clips: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of every frame of (B, C, T, H, W) clips with standard deviation ``sigma`` pixels."""
    radius = max(1, math.ceil(2.5 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=clips.dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    b, c, t, h, w = clips.shape
    frames = clips.transpose(1, 2).reshape(b * t * c, 1, h, w)
    frames = F.conv2d(F.pad(frames, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    frames = F.conv2d(F.pad(frames, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return frames.view(b, t, c, h, w).transpose(1, 2)


class _TrainingClips:
    """Batches of (clips, targets) for the feature network: a pure function of the indices.

    Each clip is a random crop of ``crop`` frames. A third stay in order (order 0), a third are
    shuffled (1), a third frozen (2); frozen clips have motion 0, shuffled ones no motion target.
    Independently, half get Gaussian noise of a random standard deviation in [0.02, 0.3] and half
    a Gaussian blur of 0.5, 1 or 1.5 px: the quality targets are those two numbers (0 when not).
    """

    def __init__(self, dataset, crop: int, seed: int = 0):
        self.dataset, self.crop, self.seed = dataset, crop, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def get_batch(self, indices) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        indices = torch.as_tensor(indices).long()
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(indices.sum()) * 7919 + int(indices[0]))
        n = len(indices)
        clips = self.dataset.get_batch(indices)
        clips = clips[0] if isinstance(clips, tuple) else clips
        start = torch.randint(0, clips.shape[2] - self.crop + 1, (1,), generator=g).item()
        clips = clips[:, :, start:start + self.crop]
        order = torch.randint(0, 3, (n,), generator=g)
        clips = torch.where((order == 1).view(-1, 1, 1, 1, 1), shuffle_frames(clips, g), clips)
        clips = torch.where((order == 2).view(-1, 1, 1, 1, 1), freeze_frames(clips, g), clips)
        blur = torch.tensor([0.0, 0.0, 0.0, 0.5, 1.0, 1.5])[torch.randint(0, 6, (n,), generator=g)]
        for sigma in (0.5, 1.0, 1.5):
            pick = blur == sigma
            if pick.any():
                clips[pick] = _blur(clips[pick], sigma)
        noise = torch.where(torch.rand(n, generator=g) < 0.5, 0.02 + 0.28 * torch.rand(n, generator=g), 0.0)
        clips = (clips + noise.view(-1, 1, 1, 1, 1) * torch.randn(clips.shape, generator=g)).clamp(-1, 1)
        content, motion = _clip_targets(self.dataset, indices)
        targets = {"order": order, "content": content, "motion": motion * (order != 2).float().unsqueeze(1),
                    "quality": torch.stack([noise / 0.3, blur / 1.5], dim=1)}
        return clips, targets


def _soft_cross_entropy(logits: torch.Tensor, multi_hot: torch.Tensor, groups: Sequence[int]) -> torch.Tensor:
    """Sum over label groups of the cross-entropy against the group's positives, normalised to sum 1
    (one-hot for a clip with one object; two objects share the probability)."""
    loss = logits.new_zeros(())
    for lg, tg in zip(logits.split(list(groups), -1), multi_hot.split(list(groups), -1)):
        target = tg / tg.sum(-1, keepdim=True).clamp(min=1)
        loss = loss - (target * F.log_softmax(lg, -1)).sum(-1).mean()
    return loss


def _losses(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
            groups: Sequence[int]) -> dict[str, torch.Tensor]:
    """The four training losses; the appearance heads are scored on every frame (same target per clip)."""
    frames = outputs["content"].shape[1]
    moving = (targets["order"] != 1).float().unsqueeze(1)
    per_frame = {k: targets[k].unsqueeze(1).expand(-1, frames, -1) for k in ("content", "quality")}
    return {"order": F.cross_entropy(outputs["order"], targets["order"]),
            "content": _soft_cross_entropy(outputs["content"], per_frame["content"], groups),
            "motion": ((outputs["motion"] - targets["motion"]) ** 2 * moving).sum() / moving.sum().clamp(min=1),
            "quality": F.mse_loss(outputs["quality"], per_frame["quality"])}


def _train(dataset, seed: int = 0, num_steps: int | None = None, crop: int = 8) -> tuple[VideoFeatureNet, dict[str, float]]:
    """Train a :class:`VideoFeatureNet` on ``dataset`` on the CPU; return it and held-out scores."""
    from vdlearn.train import fit

    num_steps = TRAIN_STEPS if num_steps is None else num_steps
    data = _TrainingClips(dataset, crop, seed)
    groups = _content_groups(dataset)
    torch.manual_seed(seed)  # the initial weights too: the same settings give the same network
    net = VideoFeatureNet(data.get_batch(torch.arange(1))[0].shape[1], groups)

    def loss_fn(model, batch):
        clips, targets = batch
        losses = _losses(model(clips), targets, groups)
        return losses["order"] + losses["content"] + 4 * losses["motion"] + 4 * losses["quality"], losses

    fit(net, loss_fn, data, num_steps=num_steps, batch_size=32, lr=3e-3, warmup_steps=30, seed=seed,
        device="cpu", progress=False, log_every=100)
    held_out = torch.arange(max(0, len(dataset) - 256), len(dataset))
    clips, targets = _TrainingClips(dataset, crop, seed + 1).get_batch(held_out)
    with torch.no_grad():
        out = net(clips)
    hits = [tg.gather(1, lg.mean(1).argmax(1, keepdim=True)).squeeze(1) > 0.5
            for lg, tg in zip(out["content"].split(list(groups), -1), targets["content"].split(list(groups), -1))]
    losses = _losses(out, targets, groups)
    scores = {"order_accuracy": (out["order"].argmax(1) == targets["order"]).float().mean().item(),
              "content_accuracy": torch.stack(hits).float().mean().item(),
              "motion_rmse": losses["motion"].sqrt().item(), "quality_rmse": losses["quality"].sqrt().item()}
    return net.eval(), scores


def _dataset_of(dataset: Any) -> tuple[Any, str]:
    """The dataset object a name stands for, and the key its cached network is stored under."""
    if isinstance(dataset, str):
        if dataset not in VIDEO_FEATURE_DATASETS:
            raise ValueError(f"unknown dataset {dataset!r} for the video feature network; expected one of "
                             f"{sorted(VIDEO_FEATURE_DATASETS)}, or a BouncingShapes / MovingDigits object")
        return VIDEO_FEATURE_DATASETS[dataset](), dataset
    if not all(hasattr(dataset, a) for a in ("get_batch", "describe", "speed")):
        raise TypeError(f"dataset must be 'shapes', 'digits' or a course video dataset (BouncingShapes, "
                        f"MovingDigits) with get_batch, describe and speed; got {type(dataset).__name__}")
    digest = hashlib.sha1(repr(dataset).encode()).hexdigest()[:12]
    return dataset, f"{type(dataset).__name__.lower()}-{digest}"


class _Keyed:
    """A dataset and the training length, with the key their network is cached under; hashed and
    compared by the key (for lru_cache). The key holds everything that changes the weights: the
    dataset's settings, the number of training steps and (in the file name) ``_VERSION``."""

    def __init__(self, key: str, dataset: Any, num_steps: int):
        self.key, self.dataset, self.num_steps = f"{key}-{num_steps}steps", dataset, num_steps

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Keyed) and other.key == self.key


@functools.lru_cache(maxsize=None)
def _load_or_train(keyed: _Keyed) -> VideoFeatureNet:
    from vdlearn.runtime import cache_dir
    from vdlearn.train import load_checkpoint, save_checkpoint

    path = Path(cache_dir()) / "metrics" / f"videonet-{keyed.key}-v{_VERSION}.pt"
    if path.exists():
        try:
            state = load_checkpoint(path)
            net = VideoFeatureNet(state["in_channels"], state["content_groups"], state["feature_dim"], state["width"])
            net.load_state_dict(state["model"])
            net.scores, net.frames, net.size = state["scores"], state["frames"], state["size"]
            return net.eval().requires_grad_(False)
        except (ValueError, KeyError, RuntimeError):
            pass  # a damaged or outdated file: train afresh and overwrite it
    net, scores = _train(keyed.dataset, num_steps=keyed.num_steps)
    sample = keyed.dataset.get_batch(torch.arange(1))
    sample = sample[0] if isinstance(sample, tuple) else sample
    net.scores, net.frames, net.size = scores, sample.shape[2], sample.shape[-1]
    save_checkpoint({"model": net.state_dict(), "in_channels": net.in_channels, "content_groups": net.content_groups,
                     "feature_dim": net.feature_dim, "width": net.width, "scores": scores,
                     "frames": net.frames, "size": net.size}, path)
    return net.eval().requires_grad_(False)


def video_feature_network(dataset: Any = "shapes") -> VideoFeatureNet:
    """The cached FVD-lite network of ``dataset``, trained on first use (about a minute on a CPU).

    ``dataset`` is ``"shapes"`` (1-shape BouncingShapes, 16 frames of 32×32), ``"digits"``
    (MovingDigits, 2 digits, 16 frames of 64×64), or a BouncingShapes / MovingDigits object: the
    network is then trained on that very dataset (and cached under a hash of its settings).
    Held-out scores of its training tasks are in ``.scores``; the clip size it was trained
    on in ``.frames`` and ``.size``.
    """
    obj, key = _dataset_of(dataset)
    return _load_or_train(_Keyed(key, obj, int(TRAIN_STEPS)))


def extract_video_features(clips: torch.Tensor, dataset: Any = "shapes", *, batch_size: int = 256) -> torch.Tensor:
    """(N, 64) float64 FVD-lite features of clips (N, C, T, H, W) in [-1, 1], on the CPU."""
    clips = _check_videos(clips, min_frames=4)
    net = video_feature_network(dataset)
    if clips.shape[1] != net.in_channels or clips.shape[-1] != net.size or clips.shape[-2] != net.size:
        raise ValueError(
            f"the FVD-lite network of {dataset if isinstance(dataset, str) else type(dataset).__name__} "
            f"takes clips (N, {net.in_channels}, T, {net.size}, {net.size}), got {tuple(clips.shape)}; pass "
            "the dataset your clips come from (dataset=your_dataset) to get a network for their size")
    with torch.no_grad():
        outs = [net.features(clips[i:i + batch_size]).double() for i in range(0, len(clips), batch_size)]
    return torch.cat(outs)


def fvd_lite(real: torch.Tensor, fake: torch.Tensor, dataset: Any = "shapes", *, batch_size: int = 256) -> float:
    """FVD-lite: the Fréchet distance between feature Gaussians of real and generated clips.

    Clips are (N, C, T, H, W) in [-1, 1]; lower is better, 0 for identical statistics. Like FID
    it is biased upwards for small N (by about 64/N): compare numbers computed with the same N and
    T, and quote the distance between two independent sets of real clips as the floor.
    """
    f_real = extract_video_features(real, dataset, batch_size=batch_size)
    f_fake = extract_video_features(fake, dataset, batch_size=batch_size)
    return frechet_distance(*feature_statistics(f_real), *feature_statistics(f_fake))


# ---------------------------------------------------------------------------------------------
# frame differences
# ---------------------------------------------------------------------------------------------
def frame_difference_energy(clips: torch.Tensor) -> torch.Tensor:
    """Per-clip motion energy (B,): :math:`E = \\operatorname{mean}_{t,c,h,w}(x_{t+1} - x_t)^2`."""
    clips = _check_videos(clips)
    return (clips[:, :, 1:] - clips[:, :, :-1]).pow(2).mean(dim=(1, 2, 3, 4))


def motion_stats(clips: torch.Tensor, real: torch.Tensor, static_threshold: float = 0.1) -> dict[str, float]:
    """Frame-difference energy of ``clips`` against ``real`` clips, and the fraction of near-static clips.

    Returns ``energy`` and ``energy_real`` (means over clips), ``energy_ratio`` (their ratio: 1 is
    the real amount of change, < 1 too still, > 1 flicker), ``static_fraction`` and
    ``static_fraction_real``: the share of clips whose energy is below ``static_threshold`` times
    the median energy of the real clips.
    """
    if not 0 < static_threshold < 1:
        raise ValueError(f"static_threshold is a fraction of the real clips' median energy, in (0, 1); "
                         f"got {static_threshold}")
    e, e_real = frame_difference_energy(clips), frame_difference_energy(real)
    cut = static_threshold * e_real.median()
    return {"energy": e.mean().item(), "energy_real": e_real.mean().item(),
            "energy_ratio": (e.mean() / e_real.mean().clamp(min=1e-12)).item(),
            "static_fraction": (e < cut).float().mean().item(),
            "static_fraction_real": (e_real < cut).float().mean().item()}


# ---------------------------------------------------------------------------------------------
# tracking and physics
# ---------------------------------------------------------------------------------------------
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
    clips = _check_videos(clips)
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
        from vdlearn.data import PALETTE
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


def _bounce(p0: torch.Tensor, v: torch.Tensor, t: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    from vdlearn.data.shapes import bounce
    return bounce(p0, v, t, lo, hi)


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
    paths = _bounce(p0[:, :, :, None, :, None], v.view(1, 1, 1, -1, 1, 1), time.view(1, 1, 1, 1, 1, -1),
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
