"""Tests of vdlearn.videoio: round trips through gif and mp4, frame folders, and the error messages."""
import numpy as np
import pytest
import torch
from PIL import Image

from vdlearn.data import BouncingShapes, MovingDigits
from vdlearn.videoio import read_frames_folder, read_video, video_fps, write_video

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
