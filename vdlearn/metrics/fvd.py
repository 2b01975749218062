"""FVD-lite: a Fréchet distance between features of real and generated clips (lesson 07).

A per-frame metric such as FID cannot tell a video from a slideshow: shuffle the frames of a clip,
or repeat one frame, and every frame is still a perfect image. FVD (Unterthiner et al. 2019) is
the Fréchet distance (Heusel et al. 2017, eq. 6)

.. math:: d^2 = \\lVert \\mu_r - \\mu_g \\rVert^2 + \\operatorname{tr}\\bigl(\\Sigma_r + \\Sigma_g - 2 (\\Sigma_r^{1/2} \\Sigma_g \\Sigma_r^{1/2})^{1/2}\\bigr)

between Gaussians fitted to features of real and generated clips, from a video network (I3D
trained on Kinetics). Offline, the course trains its own small 3-D CNN (:class:`VideoFeatureNet`)
on the course's clips in a minute on a CPU, caches it under :func:`vdlearn.runtime.cache_dir`, and
uses its 64-d features. Its training tasks make the features see appearance *and* motion: which
kinds, colours or digits are in the clip; how fast things move (the mean |v_x|, |v_y|); whether
the frames are in order, shuffled, or one frame repeated ("Shuffle and Learn", Misra et al. 2016);
and how much noise and blur were added (so the features also see image quality).
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data import BouncingShapes, MovingDigits
from ..data.clips import check_clips, gaussian_blur
from ..runtime import cache_dir
from ..train import fit, load_checkpoint, save_checkpoint
from .frechet import feature_statistics, frechet_distance
from .motion import freeze_frames, shuffle_frames

__all__ = ["VIDEO_FEATURE_DATASETS", "VideoFeatureNet", "video_feature_network", "extract_video_features", "fvd_lite"]

#: Bumped whenever the architecture or training recipe changes (invalidates the cache).
_VERSION = 2
#: Training steps (batches of 32 clips of 8 frames) of the feature network: about a minute on a CPU.
TRAIN_STEPS = 800


# ---------------------------------------------------------------------------------------------
# the feature network of FVD-lite
# ---------------------------------------------------------------------------------------------
def _shapes_dataset():
    return BouncingShapes(num_clips=8192, frames=16, size=32, num_shapes=1, seed=1234)


def _digits_dataset():
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
                clips[pick] = gaussian_blur(clips[pick], sigma)
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
    clips = check_clips(clips, min_frames=4).detach().to("cpu", torch.float32).clamp(-1, 1)
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
