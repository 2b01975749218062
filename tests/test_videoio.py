"""Tests of vdlearn.videoio: round trips through gif and mp4, atomic writes, layouts, images of every
kind, frame folders, and the error messages."""
import errno
import os
import types

import av
import numpy as np
import pytest
import torch
from PIL import Image

from vdlearn import videoio
from vdlearn.data import BouncingShapes, MovingDigits
from vdlearn.videoio import load_frames, load_image, read_frames_folder, read_video, video_fps, write_video

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def color_clip():
    return BouncingShapes(num_clips=1, frames=8, size=32, num_shapes=2, seed=1)[0]


@pytest.fixture(scope="module")
def gray_clip():
    return MovingDigits(num_clips=1, frames=8, size=32, digit_size=16, seed=1)[0]


def test_gif_round_trip(tmp_path, color_clip, gray_clip):
    path = write_video(tmp_path / "deep" / "folder" / "clip.gif", color_clip, fps=8)
    assert path.exists() and path.suffix == ".gif"  # parent folders were made
    back = read_video(path)
    assert back.shape == color_clip.shape and back.dtype == torch.float32
    assert back.min() >= -1 and back.max() <= 1
    assert (back - color_clip).abs().mean() < 0.01  # palette quantisation only
    assert abs(video_fps(path) - 8) < 0.5  # gif stores delays in 1/100 s
    gray = read_video(write_video(tmp_path / "gray.gif", gray_clip))
    assert gray.shape == (3, 8, 32, 32)
    assert (gray - gray_clip).abs().max() < 0.02  # grey stays grey: an adaptive palette, not rgb8


def test_mp4_round_trip(tmp_path, color_clip, gray_clip):
    path = write_video(tmp_path / "clip.mp4", color_clip, fps=10)
    back = read_video(path)
    assert back.shape == color_clip.shape
    assert (back - color_clip).abs().mean() < 0.05  # lossy, 4:2:0 chroma
    assert video_fps(path) == pytest.approx(10)
    gray = read_video(write_video(tmp_path / "gray.mp4", gray_clip))
    assert (gray - gray_clip).abs().mean() < 0.02


def test_mp4_pads_odd_sizes(tmp_path):
    ramp = torch.linspace(-1, 1, 21)
    video = (ramp.view(1, 1, 1, 21) * torch.linspace(0.2, 1, 15).view(1, 1, 15, 1)).expand(3, 4, 15, 21)
    back = read_video(write_video(tmp_path / "odd.mp4", video))
    assert back.shape == (3, 4, 16, 22)
    assert (back[..., :15, :21] - video).abs().mean() < 0.03
    assert (back[..., 15, :21] - video[..., 14, :]).abs().mean() < 0.03  # the last row, repeated


def test_read_video_options(tmp_path, color_clip):
    path = write_video(tmp_path / "clip.gif", color_clip)
    assert read_video(path, max_frames=3).shape == (3, 3, 32, 32)
    assert read_video(path, size=16).shape == (3, 8, 16, 16)
    assert read_video(str(path), size=(8, 12)).shape == (3, 8, 8, 12)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.mp4"):
        read_video(tmp_path / "nothere.mp4")
    bad = tmp_path / "x.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"could not decode video .*x\.mp4.*is it a video file"):
        read_video(bad)


def test_write_video_rejects_bad_input(tmp_path, color_clip):
    with pytest.raises(ValueError, match=r"\.mp4"):
        write_video(tmp_path / "clip.avi", color_clip)
    with pytest.raises(ValueError, match=r"clamp"):
        write_video(tmp_path / "clip.mp4", color_clip * 2)
    with pytest.raises(ValueError, match="video_grid"):
        write_video(tmp_path / "clip.mp4", color_clip[None])
    with pytest.raises(ValueError, match="C = 1 or 3"):
        write_video(tmp_path / "clip.mp4", torch.zeros(2, 4, 8, 8))
    assert not (tmp_path / "clip.mp4").exists()


def _save(path, value, size=(12, 10)):
    Image.fromarray(np.full((size[0], size[1], 3), value, dtype=np.uint8)).save(path)


def test_read_frames_folder(tmp_path):
    for i in [1, 2, 10]:  # numbers are compared as numbers: 1, 2, 10
        _save(tmp_path / f"frame_{i}.png", 20 * i)
    _save(tmp_path / "frame_3.jpg", 60)
    (tmp_path / "notes.txt").write_text("not an image")
    video = read_frames_folder(tmp_path)
    assert video.shape == (3, 4, 12, 10)
    levels = ((video[0, :, 0, 0] + 1) * 127.5).round().tolist()
    assert levels[:2] == [20, 40] and abs(levels[2] - 60) <= 2 and levels[3] == 200
    assert read_frames_folder(tmp_path, size=6).shape == (3, 4, 6, 6)


def test_read_frames_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_frames_folder(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"empty.*\.png"):
        read_frames_folder(empty)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _save(mixed / "a.png", 0, size=(8, 8))
    _save(mixed / "b.png", 0, size=(9, 8))
    with pytest.raises(ValueError, match=r"a\.png.*b\.png.*size="):
        read_frames_folder(mixed)
    assert read_frames_folder(mixed, size=(4, 5)).shape == (3, 2, 4, 5)


# --------------------------------------------------------------------------- atomic writes
def _flaky_encode(monkeypatch, error: BaseException, after: int = 50):
    """Make frame encoding fail after ``after`` frames, as a Ctrl-C, a crash or a full disk would."""
    frames_made = []

    class VideoFrame:
        @staticmethod
        def from_ndarray(*args, **kwargs):
            if len(frames_made) == after:
                raise error
            frames_made.append(1)
            return av.VideoFrame.from_ndarray(*args, **kwargs)

    flaky = types.ModuleType("av")
    flaky.__getattr__ = lambda name: getattr(av, name)  # everything else is PyAV's own
    flaky.VideoFrame = VideoFrame
    monkeypatch.setattr(videoio, "av", flaky)


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("encoder crashed"),
                                   OSError(errno.ENOSPC, "No space left on device")], ids=["ctrl-c", "crash", "full"])
def test_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch, color_clip, suffix, error):
    path = write_video(tmp_path / f"clip{suffix}", color_clip)
    old = path.read_bytes()
    _flaky_encode(monkeypatch, error)
    new = torch.cat([color_clip] * 8, dim=1).flip(0)  # 64 frames, other colours
    with pytest.raises(type(error)) as err:
        write_video(path, new)
    if isinstance(error, OSError):
        assert "disk is full" in str(err.value) and "unchanged" in str(err.value)
    assert path.read_bytes() == old  # not a file shrunk to the frames written so far
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left behind
    assert read_video(path).shape == color_clip.shape


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_full_disk_on_flush_leaves_the_old_file(tmp_path, monkeypatch, color_clip, suffix):
    path = write_video(tmp_path / f"clip{suffix}", color_clip)
    old = path.read_bytes()
    monkeypatch.setattr(os, "fsync", _no_space)  # the data reach the disk only at fsync
    with pytest.raises(OSError, match="disk is full"):
        write_video(path, color_clip.flip(0))
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch, color_clip):
    _flaky_encode(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        write_video(tmp_path / "out" / "clip.mp4", torch.cat([color_clip] * 8, dim=1))  # 64 frames
    assert list((tmp_path / "out").iterdir()) == []


# --------------------------------------------------------------------------- layouts
def test_ambiguous_layouts_are_an_error_not_a_guess(tmp_path):
    image = torch.full((1, 3, 8, 8), -1.0)  # one RGB image with a batch axis: (T, C, H, W) with T = 1
    image[0, 0] = 1  # red
    with pytest.raises(ValueError, match=r"ambiguous.*'CTHW' it is 3 frame.*'TCHW' it is 1 frame.*layout="):
        write_video(tmp_path / "a.gif", image)
    with pytest.raises(ValueError, match="ambiguous"):
        write_video(tmp_path / "b.gif", torch.zeros(3, 3, 8, 8))
    assert not list(tmp_path.iterdir())
    red = read_video(write_video(tmp_path / "red.gif", image, layout="TCHW"))
    assert red.shape == (3, 1, 8, 8) and red[0].min() > 0.9 and red[1:].max() < -0.9
    grey = read_video(write_video(tmp_path / "grey.gif", image, layout="CTHW"))  # as asked: 3 grey frames
    assert grey.shape == (3, 3, 8, 8) and grey[:, 0].min() > 0.9 and grey[:, 1:].max() < -0.9


def test_layouts_of_other_libraries(tmp_path, color_clip):
    frames = ((color_clip.permute(1, 2, 3, 0) + 1) * 127.5).round().to(torch.uint8).numpy()  # (T, H, W, 3)
    with pytest.raises(ValueError, match="layout='THWC'"):
        write_video(tmp_path / "x.gif", frames)
    from_thwc = read_video(write_video(tmp_path / "thwc.gif", frames, layout="THWC"))
    from_tchw = read_video(write_video(tmp_path / "tchw.gif", color_clip.transpose(0, 1), layout="TCHW"))
    from_cthw = read_video(write_video(tmp_path / "cthw.gif", color_clip))
    assert torch.equal(from_thwc, from_cthw) and torch.equal(from_tchw, from_cthw)
    with pytest.raises(ValueError, match="layout must be one of"):
        write_video(tmp_path / "x.gif", color_clip, layout="NCHW")
    with pytest.raises(ValueError, match="did you mean layout='CTHW'"):
        write_video(tmp_path / "x.gif", color_clip, layout="THWC")


# --------------------------------------------------------------------------- images of every kind
def _palette_image():
    """Left half index 0 (opaque red), right half index 1 (green, marked transparent)."""
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0, 0, 0] * 254)
    img.paste(1, (4, 0, 8, 8))
    return img


def _half(left, right):
    """Expected (3, 8, 8) in [-1, 1]: RGB ``left`` on columns 0-3, ``right`` on 4-7 (0..255 values)."""
    x = torch.empty(3, 8, 8)
    x[..., :4], x[..., 4:] = torch.tensor(left).view(3, 1, 1), torch.tensor(right).view(3, 1, 1)
    return x / 127.5 - 1


_KINDS = {  # name: (make the file, the expected image)
    "grey": (lambda p: Image.new("L", (8, 8), 100).save(p / "x.png"), _half((100,) * 3, (100,) * 3)),
    "grey+alpha": (lambda p: Image.new("LA", (8, 8), (200, 51)).save(p / "x.png"), _half((40,) * 3, (40,) * 3)),
    "rgb": (lambda p: Image.new("RGB", (8, 8), (10, 20, 30)).save(p / "x.png"), _half((10, 20, 30), (10, 20, 30))),
    "rgba": (lambda p: Image.new("RGBA", (8, 8), (200, 100, 50, 0)).save(p / "x.png"), _half((0,) * 3, (0,) * 3)),
    "palette+transparency": (lambda p: _palette_image().save(p / "x.png", transparency=1),
                             _half((255, 0, 0), (0, 0, 0))),
    "gif+transparency": (lambda p: _palette_image().save(p / "x.gif", transparency=1), _half((255, 0, 0), (0, 0, 0))),
    "1-bit": (lambda p: Image.new("1", (8, 8), 1).save(p / "x.png"), _half((255,) * 3, (255,) * 3)),
    "cmyk": (lambda p: Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(p / "x.tif"),  # cyan
             _half((0, 255, 255), (0, 255, 255))),
    "16-bit": (lambda p: Image.fromarray(np.full((8, 8), 16384, np.uint16)).save(p / "x.png"),
               _half((63.75,) * 3, (63.75,) * 3)),
    "16-bit big-endian": (lambda p: Image.fromarray(np.full((8, 8), 16384, ">u2")).save(p / "x.tif"),
                          _half((63.75,) * 3, (63.75,) * 3)),
    "32-bit int": (lambda p: Image.fromarray(np.full((8, 8), 16384, np.int32)).save(p / "x.tif"),
                   _half((63.75,) * 3, (63.75,) * 3)),
    "float": (lambda p: Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(p / "x.tif"),
              _half((127.5,) * 3, (127.5,) * 3)),
}


@pytest.mark.parametrize("kind", list(_KINDS))
def test_images_of_every_kind_load_as_they_look(tmp_path, kind):
    make, expected = _KINDS[kind]
    make(tmp_path)
    (file,) = tmp_path.iterdir()
    tol = 1.01 / 127.5  # one 8-bit level
    assert (load_image(file, size=8, channels=3)[0] - expected).abs().max() < tol
    assert (read_frames_folder(tmp_path)[:, 0] - expected).abs().max() < tol
    assert (load_frames(tmp_path)[0] - expected).abs().max() < tol


def test_a_16_bit_ramp_loads_as_a_ramp(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).round().astype(np.uint16).reshape(64, 64)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    for x in (load_image(tmp_path / "ramp.png", size=64, channels=1), read_frames_folder(tmp_path),
              load_image(ramp, size=64, channels=1)):
        assert abs(x.mean().item()) < 0.01  # not nearly white
        assert x.min().item() == pytest.approx(-1, abs=1e-3) and x.max().item() == pytest.approx(1, abs=1e-3)
        assert (x > 0.99).float().mean() < 0.01


def test_a_float_tiff_of_one_half_loads_as_zero(tmp_path):
    Image.fromarray(np.full((16, 16), 0.5, np.float32)).save(tmp_path / "half.tif")
    x = load_image(tmp_path / "half.tif", size=8, channels=1)
    assert x.abs().max() < 1e-6
    Image.fromarray(np.full((16, 16), 2.0, np.float32)).save(tmp_path / "two.tif")
    with pytest.raises(ValueError, match=r"two\.tif.*\[0, 1\]"):
        read_frames_folder(tmp_path)  # out of range: an error, not clipped to white


def test_exif_rotated_jpeg_loads_upright(tmp_path):
    stored = np.zeros((8, 16, 3), np.uint8)
    stored[:4] = 255  # the top half white, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as phones write it
    Image.fromarray(stored).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    x = read_frames_folder(tmp_path)[:, 0]
    assert x.shape == (3, 16, 8)  # portrait, as displayed
    assert x[:, :, 5:].mean() > 0.8 and x[:, :, :3].mean() < -0.8  # the white top is now on the right
    y = load_image(tmp_path / "photo.jpg", size=8, fit="stretch")
    assert y[..., 5:].mean() > 0.8 and y[..., :3].mean() < -0.8
