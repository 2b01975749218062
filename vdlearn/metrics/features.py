"""A small image classifier trained in seconds on the course's data; its features feed FID-lite.

FID uses an Inception network trained on ImageNet; this course needs no downloads, so it trains
its own feature network: a three-layer CNN classifier of the offline digits (``"digits"``, images
(1, 28, 28)) or of the procedural shapes (``"shapes"``, images (3, 32, 32)). It trains once on
the CPU in seconds and is cached under ``vdlearn.runtime.cache_dir()``; every later call loads
it. The same network also *classifies* generated samples (lesson 06 checks that a class-guided
sample shows the class that was asked for).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data import DigitImages, ShapeImages
from ..runtime import cache_dir
from ..train import fit, load_checkpoint, save_checkpoint

__all__ = [
    "FEATURE_DATASETS",
    "FeatureNet",
    "feature_network",
    "extract_features",
    "classify",
    "class_agreement",
]

#: Bumped whenever the architecture or training recipe changes (invalidates the cache).
_VERSION = 2  # 2: seeded initial weights (they depended on what ran before); digits trained 1,500 steps


@dataclass(frozen=True)
class _Spec:
    channels: int
    size: int
    make: Callable[[int, bool], object]  # (num_images, train) -> dataset with get_batch
    num_train: int
    num_steps: int


def _digits(n: int, train: bool):
    return DigitImages(num_images=n, size=28, source="offline", train=train, seed=0 if train else 1)


def _shapes(n: int, train: bool):
    return ShapeImages(num_images=n, size=32, seed=0 if train else 1)


#: name -> what the feature network of that dataset expects and how it is trained.
FEATURE_DATASETS: dict[str, _Spec] = {
    "digits": _Spec(channels=1, size=28, make=_digits, num_train=10000, num_steps=1500),
    "shapes": _Spec(channels=3, size=32, make=_shapes, num_train=10000, num_steps=400),
}


class FeatureNet(nn.Module):
    """Conv(16)-pool-Conv(32)-pool-Conv(64)-avgpool, a 64-d feature layer, then a linear classifier."""

    def __init__(self, in_channels: int, num_classes: int, feature_dim: int = 64):
        super().__init__()
        self.in_channels, self.num_classes, self.feature_dim = in_channels, num_classes, feature_dim
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(64, feature_dim),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, feature_dim) features FID-lite compares (before the last ReLU)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes)."""
        return self.head(F.relu(self.features(x)))


def _spec(dataset: str) -> _Spec:
    if dataset not in FEATURE_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r} for the feature network; expected one of "
                         f"{sorted(FEATURE_DATASETS)}")
    return FEATURE_DATASETS[dataset]


def _labels_of(batch) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = batch
    return images.float(), torch.as_tensor(labels).long()


def _train(dataset: str, seed: int = 0) -> tuple[FeatureNet, float]:
    """Train the feature network of ``dataset`` on the CPU; return it and its held-out accuracy."""

    spec = _spec(dataset)
    train = spec.make(spec.num_train, True)
    torch.manual_seed(seed)  # the weights too: the same network whatever ran before
    net = FeatureNet(spec.channels, len(train.classes))

    def loss_fn(model, batch):
        images, y = _labels_of(batch)
        return F.cross_entropy(model(images), y)

    # One thread: for a network this small, a second thread gains little on an idle machine and
    # loses a lot on a busy one (each parallel region waits for both threads to be scheduled).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(net, loss_fn, train, num_steps=spec.num_steps, batch_size=128, lr=3e-3,
            warmup_steps=50, seed=seed, device="cpu", progress=False, log_every=100)
    finally:
        torch.set_num_threads(threads)
    test = spec.make(2000, False)
    images, y = _labels_of(test.get_batch(torch.arange(len(test))))
    with torch.no_grad():
        accuracy = (net(images).argmax(1) == y).float().mean().item()
    return net.eval(), accuracy


def _cache_path(dataset: str) -> Path:
    return Path(cache_dir()) / "metrics" / f"featnet-{dataset}-v{_VERSION}.pt"


@functools.lru_cache(maxsize=None)
def _load_or_train(dataset: str) -> FeatureNet:

    path = _cache_path(dataset)
    if path.exists():
        try:
            state = load_checkpoint(path)
            net = FeatureNet(state["in_channels"], state["num_classes"], state["feature_dim"])
            net.load_state_dict(state["model"])
            net.accuracy = state["accuracy"]
            return net.eval().requires_grad_(False)
        except (ValueError, KeyError, RuntimeError):
            pass  # a damaged or outdated file: train afresh and overwrite it
    net, accuracy = _train(dataset)
    save_checkpoint({"model": net.state_dict(), "in_channels": net.in_channels,
                     "num_classes": net.num_classes, "feature_dim": net.feature_dim,
                     "accuracy": accuracy}, path)
    net.accuracy = accuracy
    return net.eval().requires_grad_(False)


def feature_network(dataset: str = "digits", device: torch.device | str | None = None) -> FeatureNet:
    """The cached feature network of ``dataset`` ("digits" or "shapes"), trained on first use.

    Its held-out classification accuracy is in ``.accuracy``.
    """
    _spec(dataset)  # a clear error for an unknown name
    net = _load_or_train(dataset)
    return net.to(device) if device is not None else net


def _check_images(images: torch.Tensor, dataset: str) -> torch.Tensor:
    """Validate (N, C, H, W) or (N, C, T, H, W) images in [-1, 1]; return them as (N', C, H, W)."""
    spec = _spec(dataset)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim == 5:  # videos: every frame is an image
        images = images.transpose(1, 2).flatten(0, 1)
    want = (spec.channels, spec.size, spec.size)
    if images.ndim != 4 or tuple(images.shape[1:]) != want:
        raise ValueError(
            f"the {dataset!r} feature network expects images of shape (N, {want[0]}, {want[1]}, "
            f"{want[2]}) (or videos (N, {want[0]}, T, {want[1]}, {want[2]})), got "
            f"{tuple(images.shape)}; resize them, or pick the dataset they come from")
    images = images.detach().float()
    if images.numel() and images.abs().max() > 1.5:
        raise ValueError(
            f"images should be in [-1, 1], but their values reach {images.abs().max().item():.3g}; "
            "scale uint8 images with x / 127.5 - 1 and [0, 1] images with 2 * x - 1")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or inf values; the generator diverged")
    return images.clamp(-1, 1)


@torch.no_grad()
def _map_batches(fn, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    outs = [fn(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    return torch.cat(outs) if outs else images.new_zeros(0)


def extract_features(images: torch.Tensor, dataset: str = "digits", *,
                     batch_size: int = 500) -> torch.Tensor:
    """(N, 64) float64 features of images (N, C, H, W) in [-1, 1] (videos: of every frame), on the CPU."""
    images = _check_images(images, dataset)
    net = feature_network(dataset)
    device = next(net.parameters()).device
    return _map_batches(lambda b: net.features(b.to(device)).double().cpu(), images, batch_size)


def classify(images: torch.Tensor, dataset: str = "digits", *, batch_size: int = 500) -> torch.Tensor:
    """The feature network's predicted class (N,) of each image (N, C, H, W) in [-1, 1]."""
    images = _check_images(images, dataset)
    net = feature_network(dataset)
    device = next(net.parameters()).device
    return _map_batches(lambda b: net(b.to(device)).argmax(1).cpu(), images, batch_size)


def class_agreement(images: torch.Tensor, labels: torch.Tensor, dataset: str = "digits") -> float:
    """The fraction of images the classifier assigns to the class in ``labels`` (N,)."""
    labels = torch.as_tensor(labels).long().cpu()
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},) to match the images, got "
                         f"{tuple(labels.shape)}")
    if len(labels) == 0:
        raise ValueError("class_agreement needs at least one image")
    return (classify(images, dataset) == labels).float().mean().item()

