"""Bring any image into a model's format: "animate your own image" (lesson 08).

:func:`load_image` accepts a file PIL can read (PNG, JPEG, ...), a PIL image, a NumPy array or a
torch tensor, of any size and channel count, and returns a (1, C, S, S) batch in [-1, 1]:

1. **Channels.** Grey (1), grey+alpha (2), RGB (3) or RGBA (4) in; the model's ``channels`` out.
   Alpha is composited onto *black*, the background of the course's clips; RGB becomes grey by
   luminance (ITU-R 601: 0.299 R + 0.587 G + 0.114 B); grey becomes RGB by repetition.
2. **Size.** ``fit="crop"`` (default) cuts the largest centred square and resizes it to S×S
   (antialiased), ``"pad"`` pads the shorter side with black first, ``"stretch"`` resizes
   without keeping the aspect ratio.
3. **Range.** uint8 values map :math:`x \\mapsto x/127.5 - 1`; floats are taken as [0, 1]
   (:math:`x \\mapsto 2x - 1`) unless ``value_range=(-1, 1)`` says they are already in [-1, 1].
   Values outside the stated range are an error, not silently clipped.

Arrays are (H, W), (H, W, C) (channels last, as PIL and imageio give them); tensors are (H, W),
(C, H, W) or (1, C, H, W) (channels first, as torchvision gives them).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["FITS", "load_image", "to_channels"]

#: How :func:`load_image` makes a non-square image square.
FITS = ("crop", "pad", "stretch")
_LUMA = torch.tensor([0.299, 0.587, 0.114])


def _from_source(source: Any) -> tuple[torch.Tensor, bool]:
    """(C, H, W) float tensor of the raw values, and whether they came as uint8."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path.resolve()}; give the path of a PNG or JPEG file")
        from PIL import Image
        try:
            with Image.open(path) as img:
                img.load()
                source = img.copy()
        except Exception as err:  # PIL raises several types for unreadable files
            raise ValueError(f"{path} is not an image PIL can read ({err}); save it as PNG or JPEG") from err
    if type(source).__module__.startswith("PIL."):
        img = source
        if img.mode not in ("L", "LA", "RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        source = np.asarray(img)
    if isinstance(source, np.ndarray):
        array = source
        if array.ndim == 3 and array.shape[-1] in (1, 2, 3, 4):
            array = np.moveaxis(array, -1, 0)
        elif array.ndim == 2:
            array = array[None]
        else:
            raise ValueError(f"an image array must be (H, W) or (H, W, C) with C in 1..4, got shape {array.shape}")
        is_uint8 = array.dtype == np.uint8
        if not (is_uint8 or np.issubdtype(array.dtype, np.floating)):
            raise ValueError(f"image arrays must be uint8 or float, got {array.dtype}")
        return torch.from_numpy(np.array(array, dtype=np.float32)), is_uint8  # a copy: PIL's arrays are read-only
    if isinstance(source, torch.Tensor):
        x = source.detach().cpu()
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[0] not in (1, 2, 3, 4):
            raise ValueError(f"an image tensor must be (H, W), (C, H, W) or (1, C, H, W) with C in 1..4, "
                             f"got shape {tuple(source.shape)}")
        return x.float(), x.dtype == torch.uint8
    raise TypeError(f"load_image takes a file path, a PIL image, a NumPy array or a torch tensor, "
                    f"got {type(source).__name__}")


def to_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """(C, H, W) in [0, 1] with C in 1..4 -> (channels, H, W): alpha onto black, RGB <-> grey (luminance)."""
    if channels not in (1, 3):
        raise ValueError(f"models take 1 (grey) or 3 (RGB) channels, got channels={channels}")
    c = image.shape[0]
    if c in (2, 4):  # composite onto the black background
        image = image[:-1] * image[-1:]
    if image.shape[0] == channels:
        return image
    if channels == 1:
        return (image * _LUMA.view(3, 1, 1)).sum(0, keepdim=True)
    return image.expand(3, -1, -1).clone()


def _square(image: torch.Tensor, fit: str) -> torch.Tensor:
    _, h, w = image.shape
    if fit == "crop":
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        return image[:, top:top + s, left:left + s]
    if fit == "pad":
        s = max(h, w)
        top, left = (s - h) // 2, (s - w) // 2
        return F.pad(image, (left, s - w - left, top, s - h - top), value=0.0)
    return image


def load_image(source: Any, size: int, channels: int = 3, *, fit: str = "crop",
               value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Any image -> a (1, channels, size, size) float tensor in [-1, 1] (see the module's notes)."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    if int(size) != size or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    x, is_uint8 = _from_source(source)
    if x.shape[-1] < 1 or x.shape[-2] < 1:
        raise ValueError(f"the image is empty: shape {tuple(x.shape)}")
    lo, hi = (0.0, 255.0) if value_range is None and is_uint8 else (value_range or (0.0, 1.0))
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range!r}")
    if not torch.isfinite(x).all() or x.min() < lo - 1e-3 or x.max() > hi + 1e-3:
        raise ValueError(f"the image's values span [{x.min().item():.3g}, {x.max().item():.3g}] but were expected in "
                         f"[{lo:g}, {hi:g}]; float images are taken as [0, 1]: pass value_range=(-1, 1) for images "
                         "already in [-1, 1], or value_range=(0, 255) for float pixels")
    x = ((x - lo) / (hi - lo)).clamp(0, 1)
    x = _square(to_channels(x, channels), fit)
    x = F.interpolate(x[None], size=(int(size), int(size)), mode="bilinear", antialias=True, align_corners=False)
    return (x.clamp(0, 1) * 2 - 1).contiguous()
