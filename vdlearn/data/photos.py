"""Real photographs that need no download: the ones shipped inside packages the course installs (lesson 08).

Nothing is fetched at run time. Three packages of the field bundle photographs in their wheels:
scikit-image (``skimage.data``), scikit-learn (``sklearn.datasets.load_sample_image``) and matplotlib
(``mpl-data/sample_data``). :data:`PHOTOS` lists the ones the course uses, each with its source and
licence (public domain, CC0 or CC BY 2.0; the attribution is in ``credit``).

The split is fixed and documented: :data:`EVAL_PHOTOS` are never used to train a shipped model, so a
model animating them animates photographs it has never seen; :data:`TRAIN_PHOTOS` are the rest. Any
folder of a student's own images can be added (read each with :func:`vdlearn.videoio.read_image`).

Photographs come back as (3, H, W) float32 in [-1, 1] at their own size; grey ones are repeated
to three channels.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

__all__ = ["Photo", "PHOTOS", "TRAIN_PHOTOS", "EVAL_PHOTOS", "photo_names", "load_photo"]


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data
        image = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
        return image
    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image
        return load_sample_image(f"{name}.jpg")
    return load


def _matplotlib(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import matplotlib.cbook
        from PIL import Image
        with matplotlib.cbook.get_sample_data(name) as f:   # an open file in mpl-data/sample_data
            return np.asarray(Image.open(f).convert("RGB"))
    return load


@dataclass(frozen=True)
class Photo:
    """One bundled photograph: where it comes from and under which terms."""

    name: str
    package: str
    licence: str
    credit: str
    load: Callable[[], np.ndarray]


PHOTOS: dict[str, Photo] = {p.name: p for p in [
    Photo("astronaut", "scikit-image", "public domain", "NASA (Eileen Collins)", _skimage("astronaut")),
    Photo("rocket", "scikit-image", "public domain", "SpaceX", _skimage("rocket")),
    Photo("motorcycle", "scikit-image", "free to use", "Middlebury stereo dataset", _skimage("motorcycle")),
    Photo("hubble_deep_field", "scikit-image", "public domain", "NASA", _skimage("hubble_deep_field")),
    Photo("retina", "scikit-image", "CC0", "Mikael Häggström", _skimage("retina")),
    Photo("camera", "scikit-image", "CC0", "Lav Varshney", _skimage("camera")),
    Photo("moon", "scikit-image", "public domain", "scikit-image", _skimage("moon")),
    Photo("coins", "scikit-image", "public domain", "Brooklyn Museum (Greek coins from Pompeii)",
          _skimage("coins")),
    Photo("brick", "scikit-image", "CC0", "CC0Textures", _skimage("brick")),
    Photo("grass", "scikit-image", "CC0", "CC0Textures", _skimage("grass")),
    Photo("gravel", "scikit-image", "CC0", "CC0Textures", _skimage("gravel")),
    Photo("flower", "scikit-learn", "CC BY 2.0", "vultilion on Flickr", _sklearn("flower")),
    Photo("chelsea", "scikit-image", "CC0", "Stefan van der Walt", _skimage("chelsea")),
    Photo("coffee", "scikit-image", "CC0", "Rachel Michetti", _skimage("coffee")),
    Photo("china", "scikit-learn", "CC BY 2.0", "danielbuechele on Flickr", _sklearn("china")),
    Photo("grace_hopper", "matplotlib", "public domain", "US Navy", _matplotlib("grace_hopper.jpg")),
]}

#: Never used to train a shipped model: a cat, a cup of coffee, a building in a garden, a portrait.
EVAL_PHOTOS = ("chelsea", "coffee", "china", "grace_hopper")
#: Every other bundled photograph.
TRAIN_PHOTOS = tuple(name for name in PHOTOS if name not in EVAL_PHOTOS)


def photo_names(split: str = "train") -> tuple[str, ...]:
    """The names of the ``"train"`` or ``"eval"`` photographs, or ``"all"``."""
    splits = {"train": TRAIN_PHOTOS, "eval": EVAL_PHOTOS, "all": tuple(PHOTOS)}
    if split not in splits:
        raise ValueError(f"split must be one of {sorted(splits)}, got {split!r}")
    return splits[split]


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 or uint16 (H, W), (H, W, 3) or (H, W, 4) -> (3, H, W) float32 in [-1, 1] (alpha dropped)."""
    top = 65535.0 if array.dtype == np.uint16 else 255.0 if array.dtype == np.uint8 else 1.0
    x = torch.tensor(np.array(array, dtype=np.float32)) / top
    if x.ndim == 2:
        x = x[..., None].expand(-1, -1, 3)
    x = x[..., :3] if x.shape[-1] >= 3 else x[..., :1].expand(-1, -1, 3)
    return (x.permute(2, 0, 1) * 2 - 1).clamp(-1, 1).contiguous()


@lru_cache(maxsize=32)
def _bundled(name: str) -> torch.Tensor:
    return _to_tensor(PHOTOS[name].load())


def load_photo(name: str) -> torch.Tensor:
    """A bundled photograph by name (see :data:`PHOTOS`): (3, H, W) in [-1, 1] at its own size.

    For a file of your own use :func:`vdlearn.videoio.read_image` (any format Pillow reads; grey,
    RGBA and 16-bit are converted): it returns the same layout.
    """
    if name not in PHOTOS:
        raise ValueError(f"no bundled photograph {name!r}; the photographs are {', '.join(PHOTOS)}. For an "
                         "image file of your own use vdlearn.videoio.read_image(path)")
    return _bundled(name).clone()
