"""Video and image files in and out: mp4 and gif through PyAV (which bundles FFmpeg), images through Pillow.

Tensors stay in the course convention, a video is (C, T, H, W) float in [-1, 1]; these functions
convert to and from 8-bit RGB at the edge.

* Writing is atomic (:func:`vdlearn.files.atomic_path`): a video is encoded under a temporary name in
  its folder, flushed to disk and renamed over the destination, so an interrupted or failed write
  (Ctrl-C, an exception, a full disk) leaves the old file as it was and no temporary file behind.
* :func:`write_video` reads ``layout="CTHW"`` (the course's clips) unless told ``"TCHW"`` (stacked
  frames, as :func:`load_frames` and torchvision give them) or ``"THWC"`` (channels last, as imageio,
  PyAV and OpenCV give uint8 arrays). A shape two layouts describe differently, such as (1, 3, H, W)
  or (3, 3, H, W), is an error unless ``layout=`` says which. Floats must lie in [-1, 1]; uint8 values
  are pixels 0..255.
* mp4: H.264 (``libx264``, or ``mpeg4`` where the FFmpeg build lacks it), ``yuv420p`` so every player
  opens it. 4:2:0 chroma needs even sizes: an odd height or width is padded by repeating the last row
  or column (read it back with ``[..., :H, :W]`` to undo).
* gif: PyAV's gif encoder on ``pal8`` frames. One 256-colour palette for the whole clip is found by
  Pillow's median cut, so grey digits stay grey and colours do not flicker between frames. GIF
  stores frame delays in 1/100 s, so fps=8 is stored as 12/100 s per frame.

Images (lesson 08's "animate your own image"): :func:`load_image` accepts a file Pillow can read
(PNG, JPEG, TIFF, ...), a PIL image, a NumPy array or a torch tensor, of any size and channel count,
and returns a (1, C, S, S) batch in [-1, 1]:

1. **Decoding.** One reader (:func:`_from_source`) turns a PIL image upright by its EXIF orientation
   (``ImageOps.exif_transpose``: phones store photos sideways), makes 1-bit, palette, CMYK, YCbCr, ...
   grey or RGB, turns a transparent colour (``info["transparency"]``) into an alpha channel, and keeps
   the values of 16-bit (modes ``I;16``, ``I;16B``, ``I``) and 32-bit float (mode ``F``) images.
2. **Channels.** Grey (1), grey+alpha (2), RGB (3) or RGBA (4) in; the model's ``channels`` out.
   Alpha :math:`a` is composited onto *black*, the background of the course's clips (:math:`x \\mapsto a x`);
   RGB becomes grey by luminance (ITU-R 601: 0.299 R + 0.587 G + 0.114 B); grey becomes RGB by repetition.
3. **Size.** ``fit="crop"`` (default) cuts the largest centred square and resizes it to S×S
   (antialiased), ``"pad"`` pads the shorter side with black first, ``"stretch"`` resizes
   without keeping the aspect ratio.
4. **Range.** Integer pixels span 0..255 (uint8) or 0..65535 (16-bit), floats [0, 1], unless
   ``value_range=(low, high)`` says otherwise (e.g. (-1, 1)); :math:`x \\mapsto 2 (x - low) / (high - low) - 1`.
   Values outside the range are an error, not silently clipped.

Arrays are (H, W), (H, W, C) (channels last, as PIL and imageio give them); tensors are (H, W),
(C, H, W) or (1, C, H, W) (channels first, as torchvision gives them). :func:`read_frames_folder`
and :func:`load_frames` read every frame file through the same reader.
"""
from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .files import atomic_path

__all__ = ["VIDEO_SUFFIXES", "IMAGE_SUFFIXES", "LAYOUTS", "FITS", "write_video", "read_video", "video_fps",
           "open_image", "load_image", "read_image", "to_channels", "read_frames_folder", "load_frames"]

#: How :func:`load_image` makes a non-square image square.
FITS = ("crop", "pad", "stretch")
_LUMA = torch.tensor([0.299, 0.587, 0.114])

#: The file types :func:`write_video` makes.
VIDEO_SUFFIXES = (".mp4", ".gif")
#: The axis orders :func:`write_video` takes: C channels (1 or 3), T frames, H x W pixels.
LAYOUTS = ("CTHW", "TCHW", "THWC")
#: The image files :func:`read_frames_folder` loads (a gif gives its first frame).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _check_layout(shape: tuple[int, ...], layout: str | None) -> str:
    """The layout of a 4-D video: ``layout`` checked, or "CTHW" when no other layout reads the shape differently."""
    fits = [name for name in LAYOUTS if shape[name.index("C")] in (1, 3)]  # "CTHW" first if it fits
    if layout is not None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if layout not in fits:
            hint = f"; did you mean layout={fits[0]!r}?" if fits else ""
            raise ValueError(f"expected a video of layout {layout!r} with C = 1 or 3, got shape {shape}{hint}")
        return layout
    if "CTHW" not in fits:
        hint = f"; if it is {fits[0]}, pass layout={fits[0]!r}" if fits else ""
        raise ValueError(f"expected a video of shape (C, T, H, W) with C = 1 or 3, got shape {shape}{hint}")
    others = [name for name in fits[1:] if not (name == "TCHW" and shape[:2] == (1, 1))]  # (1, 1): same either way
    if others:
        readings = "; ".join(f"as {name!r} it is {d['T']} frame(s) of {d['H']}x{d['W']} with {d['C']} channel(s)"
                             for name in fits for d in [dict(zip(name, shape))])
        raise ValueError(f"the layout of a video of shape {shape} is ambiguous: {readings}. Say which with "
                         "write_video(..., layout='CTHW') (the course's clips) or "
                         + " or ".join(f"layout={name!r}" for name in others))
    return "CTHW"


def _to_uint8_frames(video: Any, layout: str | None = None) -> np.ndarray:
    """A video of ``layout`` (see :data:`LAYOUTS`), floats in [-1, 1] or uint8 -> (T, H, W, 3) uint8."""
    if not isinstance(video, torch.Tensor):
        video = torch.as_tensor(np.asarray(video))
    if video.ndim == 5:
        raise ValueError(f"write_video takes one video (C, T, H, W), got a batch of shape {tuple(video.shape)}; "
                         "write video[i], or tile the batch into one video with vdlearn.viz.video_grid")
    if video.ndim != 4:
        raise ValueError(f"expected a video of shape (C, T, H, W) with C = 1 or 3, got shape {tuple(video.shape)}")
    layout = _check_layout(tuple(video.shape), layout)
    video = video.detach().cpu().permute(*(layout.index(axis) for axis in "CTHW"))
    if video.shape[1] == 0:
        raise ValueError("the video has no frames (T = 0)")
    if video.dtype != torch.uint8:
        video = video.float()
        low, high = float(video.min()), float(video.max())
        if not (-1.001 <= low and high <= 1.001):  # NaN fails this too
            raise ValueError(f"video values must lie in [-1, 1] (or be uint8 pixels), found [{low:.3g}, {high:.3g}]; "
                             "use video.clamp(-1, 1) (or map a [0, 1] video with 2 * x - 1)")
        video = ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    frames = video.expand(3, -1, -1, -1) if video.shape[0] == 1 else video
    return frames.permute(1, 2, 3, 0).contiguous().numpy()


def _encode(container: Any, stream: Any, frames: Any, pixel_format: str) -> None:
    """Encode and mux every frame, then flush the encoder."""
    for frame in frames:
        container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format=pixel_format)))
    container.mux(stream.encode())


def _write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    T, H, W, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)), mode="edge")  # yuv420p needs even sizes
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "17", "preset": "medium"}
        else:
            stream.bit_rate = 8_000_000
        _encode(container, stream, frames, "rgb24")


def _write_gif(path: Path, frames: np.ndarray, fps: float) -> None:
    T, H, W, _ = frames.shape
    tall = Image.fromarray(frames.reshape(T * H, W, 3))  # one palette for all frames: no colour flicker
    quantized = tall.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    indices = np.asarray(quantized, dtype=np.uint8).reshape(T, H, W)
    rgb = np.zeros((256, 3), dtype=np.uint8)
    palette = np.asarray(quantized.getpalette()[:768], dtype=np.uint8).reshape(-1, 3)
    rgb[: len(palette)] = palette
    argb = np.concatenate([np.full((256, 1), 255, dtype=np.uint8), rgb], axis=1)
    with av.open(str(path), mode="w", format="gif") as container:
        stream = container.add_stream("gif", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = W, H, "pal8"
        _encode(container, stream, ((np.ascontiguousarray(frame), argb) for frame in indices), "pal8")


def write_video(path: str | Path, video: Any, fps: float = 8, *, layout: str | None = None) -> Path:
    """Write a video to ``.mp4`` or ``.gif``, atomically; return the path.

    ``video`` is (C, T, H, W), C in {1, 3}, floats in [-1, 1] or uint8 pixels; ``layout="TCHW"`` or
    ``"THWC"`` takes frames stacked first or channels last (see the module docstring). Parent folders
    are created; the file appears only once it is complete. mp4 pads odd sizes to even.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"cannot write {suffix or 'a file without suffix'!r} video {str(path)!r}; "
                         f"use one of {VIDEO_SUFFIXES}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    frames = _to_uint8_frames(video, layout)
    with atomic_path(path) as tmp:
        (_write_mp4 if suffix == ".mp4" else _write_gif)(tmp, frames, fps)
    return path


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no video file at {str(path)!r} (absolute: {str(path.absolute())!r})")
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder, not a video file; for a folder of frames use read_frames_folder")
    return path


def _resize(video: torch.Tensor, size: int | tuple[int, int] | None) -> torch.Tensor:
    """Resize (C, T, H, W) frames to ``size`` (an int for square frames, or (H, W)), anti-aliased."""
    if size is None:
        return video
    hw = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"size must be an int or an (H, W) pair of positive ints, got {size!r}")
    if tuple(video.shape[-2:]) == hw:
        return video
    frames = video.permute(1, 0, 2, 3)  # frames as a batch
    frames = F.interpolate(frames, size=hw, mode="bilinear", antialias=True, align_corners=False)
    return frames.permute(1, 0, 2, 3).clamp(-1, 1).contiguous()


def _from_uint8(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames).copy()).permute(3, 0, 1, 2).float() / 127.5 - 1


def read_video(path: str | Path, size: int | tuple[int, int] | None = None,
               max_frames: int | None = None) -> torch.Tensor:
    """Read any video PyAV can decode (mp4, gif, webm, ...) as (3, T, H, W) float32 in [-1, 1].

    ``size`` resizes every frame (an int or (H, W)); ``max_frames`` keeps the first frames only.
    """
    path = _check_file(path)
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{str(path)!r} has no video stream (streams: {list(container.streams)})")
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except av.error.FFmpegError as err:
        raise ValueError(f"could not decode video {str(path)!r}: {err}; is it a video file?") from err
    if not frames:
        raise ValueError(f"could not decode video {str(path)!r}: it contains no frames; is it a video file?")
    return _resize(_from_uint8(np.stack(frames)), size)


def video_fps(path: str | Path) -> float:
    """Frames per second of the first video stream of a file."""
    path = _check_file(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    except (av.error.FFmpegError, IndexError) as err:
        raise ValueError(f"could not read the frame rate of {str(path)!r}: {err}; is it a video file?") from err
    if not rate:
        raise ValueError(f"{str(path)!r} does not say its frame rate")
    return float(rate)


def _natural_key(path: Path) -> list:
    """Sort key so that frame_2.png comes before frame_10.png."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def read_frames_folder(folder: str | Path, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Load a folder of images, in file-name order (numbers compared as numbers), as (3, T, H, W) in [-1, 1].

    Images must share one size unless ``size`` (an int or (H, W)) resizes each of them. Every file is
    read as :func:`load_image` reads it (any bit depth, alpha onto black, EXIF orientation).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder at {str(folder)!r}")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    files.sort(key=_natural_key)
    if not files:
        raise ValueError(f"no images in folder {str(folder)!r}; looked for files ending in {IMAGE_SUFFIXES}")
    frames = []
    for file in files:
        try:
            x = to_channels(_unit(open_image(file)), 3)  # a gif gives its first frame
        except ValueError as err:
            raise ValueError(f"{file.name}: {err}") from err
        frame = (x * 2 - 1).unsqueeze(1)  # (3, 1, H, W)
        if size is not None:
            frame = _resize(frame, size)
        elif frames and frame.shape[-2:] != frames[0].shape[-2:]:
            (h0, w0), (h1, w1) = frames[0].shape[-2:], frame.shape[-2:]
            raise ValueError(
                f"images differ in size: {files[0].name!r} is {w0}x{h0} (WxH) but {file.name!r} is {w1}x{h1}; "
                "pass size=(H, W) (or an int) to resize them all"
            )
        frames.append(frame)
    return torch.cat(frames, dim=1)


def open_image(path: str | Path) -> Image.Image:
    """The image file at ``path``, decoded by Pillow as stored (the one place the course opens an image file).

    :func:`load_image` and :func:`read_frames_folder` then read it through one reader (EXIF orientation,
    bit depth, transparency: see the module docstring).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path.resolve()}; give the path of a PNG or JPEG file")
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except Exception as err:  # PIL raises several types for unreadable files
        raise ValueError(f"{path} is not an image Pillow can read ({err}); save it as PNG or JPEG") from err


def _pil_array(img: Image.Image) -> np.ndarray:
    """A PIL image of any mode, upright, as (H, W) or (H, W, C) uint8, uint16 (16-bit) or float32 (mode F).

    Other modes become L, LA, RGB or RGBA; a transparent colour (``info["transparency"]``) becomes alpha.
    """
    img = ImageOps.exif_transpose(img)
    if img.mode == "I" or img.mode.startswith("I;16"):  # 16-bit pixels (mode I: as 32-bit integers)
        array = np.asarray(img)
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ValueError(f"a 32-bit integer image (PIL mode 'I') is read as 16-bit pixels 0..65535, but its "
                             f"values span [{array.min()}, {array.max()}]; save it as 8- or 16-bit, or as float")
        return array.astype(np.uint16)  # native byte order
    if img.mode == "F":
        return np.asarray(img, dtype=np.float32)
    alpha = "transparency" in img.info or any(band in ("A", "a") for band in img.getbands())
    grey = img.mode in ("1", "L", "LA", "La")
    target = ("LA" if alpha else "L") if grey else ("RGBA" if alpha else "RGB")
    return np.asarray(img if img.mode == target else img.convert(target))


def _from_source(source: Any) -> tuple[torch.Tensor, tuple[float, float]]:
    """(C, H, W) float tensor of the raw values, and the range they come in unless told otherwise.

    uint8: (0, 255); 16-bit: (0, 65535); bool and float: (0, 1).
    """
    if isinstance(source, (str, Path)):
        source = open_image(source)
    if isinstance(source, Image.Image):
        source = _pil_array(source)
    if isinstance(source, np.ndarray):
        array = source
        if array.ndim == 3 and array.shape[-1] in (1, 2, 3, 4):
            array = np.moveaxis(array, -1, 0)
        elif array.ndim == 2:
            array = array[None]
        else:
            raise ValueError(f"an image array must be (H, W) or (H, W, C) with C in 1..4, got shape {array.shape}")
        kind, nbytes = array.dtype.kind, array.dtype.itemsize
        if kind == "u" and nbytes in (1, 2):
            high = 255.0 if nbytes == 1 else 65535.0
        elif kind in "bf":
            high = 1.0
        else:
            raise ValueError(f"image arrays must be uint8, uint16, bool or float, got {array.dtype}; "
                             "for pixels 0..255 use array.astype(np.uint8)")
        return torch.from_numpy(np.array(array, dtype=np.float32)), (0.0, high)  # a copy: PIL's are read-only
    if isinstance(source, torch.Tensor):
        x = source.detach().cpu()
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[0] not in (1, 2, 3, 4):
            raise ValueError(f"an image tensor must be (H, W), (C, H, W) or (1, C, H, W) with C in 1..4, "
                             f"got shape {tuple(source.shape)}")
        return x.float(), (0.0, 255.0 if x.dtype == torch.uint8 else 1.0)
    raise TypeError(f"load_image takes a file path, a PIL image, a NumPy array or a torch tensor, "
                    f"got {type(source).__name__}")


def _unit(source: Any, value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Any image -> (C, H, W) in [0, 1]: :math:`x \\mapsto (x - lo) / (hi - lo)`, out-of-range values refused."""
    x, default = _from_source(source)
    if x.shape[-1] < 1 or x.shape[-2] < 1:
        raise ValueError(f"the image is empty: shape {tuple(x.shape)}")
    lo, hi = value_range or default
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range!r}")
    if not torch.isfinite(x).all() or x.min() < lo - 1e-3 or x.max() > hi + 1e-3:
        raise ValueError(f"the image's values span [{x.min().item():.3g}, {x.max().item():.3g}] but were expected in "
                         f"[{lo:g}, {hi:g}]; float images are taken as [0, 1]: pass value_range=(-1, 1) for images "
                         "already in [-1, 1], or value_range=(0, 255) for float pixels")
    return ((x - lo) / (hi - lo)).clamp(0, 1)


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
    x = _square(to_channels(_unit(source, value_range), channels), fit)
    x = F.interpolate(x[None], size=(int(size), int(size)), mode="bilinear", antialias=True, align_corners=False)
    return (x.clamp(0, 1) * 2 - 1).contiguous()


def read_image(source: Any, channels: int = 3, *, value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Any image -> a (channels, H, W) float tensor in [-1, 1] at its own size (``load_image`` also resizes)."""
    return (to_channels(_unit(source, value_range), channels) * 2 - 1).contiguous()


def load_frames(path: str | Path, size: int | tuple[int, int] | None = None, *,
                channels: int | None = None) -> torch.Tensor:
    """The frames of a folder of images or of a video file, as (N, C, H, W) in [-1, 1].

    ``size`` resizes every frame (an int gives square frames); ``channels=1`` turns RGB into grey
    (luma), ``channels=3`` keeps RGB (the default: what the file holds, read as RGB). A folder is
    read in natural file-name order (``frame_2.png`` before ``frame_10.png``); its images must share
    one size unless ``size`` is given.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no folder or video file at '{path}'")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if path.is_dir():
        video = read_frames_folder(path, size=size)     # (3, T, H, W)
    else:
        video = read_video(path, size=size)
    frames = video.transpose(0, 1).float()                       # (T, 3, H, W)
    if channels == 1:
        frames = (frames * _LUMA.view(1, 3, 1, 1)).sum(1, keepdim=True)
    return frames.contiguous()
