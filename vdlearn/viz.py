"""Pictures and animations: images, videos, grids and training curves.

Everything takes the course's tensors as they are, in [-1, 1]: images ``(B, C, H, W)`` and
videos ``(C, T, H, W)`` or ``(B, C, T, H, W)``. Conversion to pixels happens here, at the edge.
Videos play inline as an animated GIF embedded in the page, so they play in JupyterLab, in
Colab and in an exported HTML file alike. ipywidgets and IPython are imported only inside the
functions that need them. Files (:meth:`Animation.save`, :func:`save_figure`) are written atomically
(:func:`vdlearn.files.atomic_path`): an interrupted or failed save leaves the old file as it was.
"""
from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torchvision.utils import make_grid

from .files import atomic_path, atomic_write

__all__ = [
    "to_uint8",
    "image_grid",
    "video_grid",
    "show_images",
    "show_video",
    "Animation",
    "plot_history",
    "frame_scrubber",
    "save_figure",
]


def _check_range(x: torch.Tensor, what: str) -> None:
    lo, hi = float(x.min()), float(x.max())
    if lo < -1.001 or hi > 1.001:
        raise ValueError(
            f"{what} should hold values in [-1, 1], but they range over [{lo:.3g}, {hi:.3g}]; "
            "clamp with .clamp(-1, 1), or map [0, 1] images with x * 2 - 1"
        )


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Map values in [-1, 1] to uint8 pixels in [0, 255]: ``round((x + 1) * 127.5)``."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 1) -> torch.Tensor:
    """Tile ``(B, C, H, W)`` images into one ``(C, H', W')`` image (still in [-1, 1])."""
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4:
        raise ValueError(f"images should be (B, C, H, W), got shape {tuple(images.shape)}")
    return make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, pad_value=-1)


def video_grid(videos: torch.Tensor, nrow: int | None = None, padding: int = 1) -> torch.Tensor:
    """Tile ``(B, C, T, H, W)`` videos into one ``(C, T, H', W')`` video, frame by frame."""
    if videos.dim() == 4:
        return videos.detach().float().cpu()
    if videos.dim() != 5:
        raise ValueError(f"videos should be (B, C, T, H, W) or (C, T, H, W), got {tuple(videos.shape)}")
    b, c, t, h, w = videos.shape
    nrow = nrow or min(b, 8)
    frames = videos.detach().float().cpu().permute(2, 0, 1, 3, 4)  # (T, B, C, H, W)
    return torch.stack([image_grid(f, nrow, padding) for f in frames], dim=1)


def _as_rgb_frames(video: torch.Tensor, scale: int) -> np.ndarray:
    """(C, T, H, W) in [-1, 1] -> (T, H*scale, W*scale, 3) uint8."""
    frames = to_uint8(video).permute(1, 2, 3, 0)  # (T, H, W, C)
    if frames.shape[-1] == 1:
        frames = frames.expand(*frames.shape[:-1], 3)
    if scale > 1:
        frames = frames.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    return frames.contiguous().numpy()


class Animation:
    """An animated GIF that shows itself in a notebook (``_repr_html_``) and can be saved."""

    def __init__(self, gif: bytes, width: int, caption: str | None = None):
        self.gif, self.width, self.caption = gif, width, caption

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.gif).decode("ascii")
        img = (f'<img src="data:image/gif;base64,{data}" width="{self.width}" '
               'style="image-rendering: pixelated"/>')
        if self.caption:
            return f"<figure>{img}<figcaption>{self.caption}</figcaption></figure>"
        return img

    def save(self, path: str | os.PathLike) -> Path:
        """Write the GIF to ``path`` (atomically, creating folders); returns the path."""
        return atomic_write(path, lambda f: f.write(self.gif))


def show_video(video: torch.Tensor, fps: int = 8, nrow: int | None = None, scale: int | None = None,
               caption: str | None = None) -> Animation:
    """Show a video ``(C, T, H, W)`` or a batch ``(B, C, T, H, W)`` (as a grid) as a looping GIF."""
    from PIL import Image

    if video.dim() not in (4, 5):
        raise ValueError(
            f"show_video expects (C, T, H, W) or (B, C, T, H, W), got shape {tuple(video.shape)}; "
            "for a single image use show_images"
        )
    _check_range(video, "the video")
    grid = video_grid(video, nrow=nrow)
    if grid.shape[0] not in (1, 3):
        raise ValueError(f"videos need 1 or 3 channels, got {grid.shape[0]}")
    scale = scale or max(1, 384 // max(grid.shape[-2:]))
    frames = _as_rgb_frames(grid, scale)
    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(20, round(1000 / fps)), loop=0, optimize=False)
    return Animation(buf.getvalue(), width=frames.shape[2], caption=caption)


def show_images(images: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None,
                figsize: tuple[float, float] | None = None):
    """Show ``(B, C, H, W)`` images in [-1, 1] as one grid with matplotlib; returns the figure."""
    import matplotlib.pyplot as plt

    _check_range(images, "the images")
    grid = image_grid(images, nrow=nrow)
    pixels = to_uint8(grid).permute(1, 2, 0).numpy()
    if ax is None:
        h, w = pixels.shape[:2]
        figsize = figsize or (min(12, max(3, w / 40)), min(12, max(3, h / 40)))
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    cmap = "gray" if pixels.shape[-1] == 1 else None
    ax.imshow(pixels.squeeze(-1) if cmap else pixels, cmap=cmap, vmin=0, vmax=255,
              interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def plot_history(history: dict[str, Sequence[float]], keys: Sequence[str] | None = None,
                 smooth: int = 1, logy: bool = False, ax=None, title: str | None = None):
    """Plot logged values against ``history["step"]``; ``smooth`` is a moving-average window."""
    import matplotlib.pyplot as plt

    if "step" not in history:
        raise ValueError("history needs a 'step' list (as vdlearn.train.fit returns)")
    keys = list(keys) if keys is not None else [k for k in history if k != "step"]
    missing = [k for k in keys if k not in history]
    if missing:
        raise KeyError(f"{missing} not in history; it has {sorted(history)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    steps = np.asarray(history["step"], dtype=float)
    for k in keys:
        y = np.asarray(history[k], dtype=float)
        if smooth > 1 and len(y) >= smooth:
            y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
            ax.plot(steps[smooth - 1:], y, label=k)
        else:
            ax.plot(steps[: len(y)], y, label=k)
    ax.set_xlabel("step")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def frame_scrubber(video: torch.Tensor, scale: int | None = None):
    """A slider widget to step through the frames of a video ``(C, T, H, W)`` (or a batch)."""
    import ipywidgets as widgets
    from PIL import Image

    _check_range(video, "the video")
    grid = video_grid(video)
    scale = scale or max(1, 384 // max(grid.shape[-2:]))
    frames = _as_rgb_frames(grid, scale)

    def png(i: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(frames[i]).save(buf, format="PNG")
        return buf.getvalue()

    image = widgets.Image(value=png(0), format="png")
    slider = widgets.IntSlider(value=0, min=0, max=len(frames) - 1, description="frame")
    slider.observe(lambda change: setattr(image, "value", png(change["new"])), names="value")
    return widgets.VBox([slider, image])


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save a matplotlib figure (atomically, creating folders); returns the path.

    The format comes from the file ending (``.png``, ``.pdf``, ``.svg``, ...); without one, matplotlib's
    default format is used and its ending added, as ``fig.savefig`` does.
    """
    import matplotlib

    path = Path(path)
    if not path.suffix:
        path = path.with_name(f"{path.name}.{matplotlib.rcParams['savefig.format']}")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix[1:].lower(), dpi=dpi, bbox_inches="tight")
    return path

