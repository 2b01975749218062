import errno
import io
import os

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from PIL import Image

from vdlearn import viz


def test_to_uint8_maps_the_range():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    assert viz.to_uint8(x).tolist() == [0, 128, 255, 255]


def test_video_grid_tiles_frames():
    videos = torch.rand(6, 3, 5, 8, 8) * 2 - 1
    grid = viz.video_grid(videos, nrow=3)
    assert grid.shape == (3, 5, 2 * 9 + 1, 3 * 9 + 1)
    # the first video's first frame sits at the top-left, after one pixel of padding
    assert torch.allclose(grid[:, 0, 1:9, 1:9], videos[0, :, 0])
    with pytest.raises(ValueError, match="B, C, T, H, W"):
        viz.video_grid(torch.zeros(2, 3))


def test_show_video_is_a_gif_that_plays():
    video = torch.linspace(-1, 1, 4).view(1, 4, 1, 1).expand(3, 4, 16, 16).clone()
    anim = viz.show_video(video, fps=4)
    html = anim._repr_html_()
    assert html.startswith("<img src=\"data:image/gif;base64,")
    gif = Image.open(io.BytesIO(anim.gif))
    assert gif.n_frames == 4
    assert gif.info["duration"] == 250
    gif.seek(3)
    assert gif.convert("L").getpixel((5, 5)) > 200  # the last frame is white


def test_show_video_batch_and_errors(tmp_path):
    anim = viz.show_video(torch.zeros(4, 1, 3, 8, 8), caption="four clips")
    assert "four clips" in anim._repr_html_()
    assert anim.save(tmp_path / "a" / "x.gif").read_bytes()[:3] == b"GIF"
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        viz.show_video(torch.full((3, 2, 4, 4), 3.0))
    with pytest.raises(ValueError, match="show_images"):
        viz.show_video(torch.zeros(3, 4, 4))


def test_show_images_and_history_make_figures(tmp_path):
    fig = viz.show_images(torch.zeros(5, 1, 8, 8), nrow=5, title="zeros")
    assert fig.axes[0].get_title() == "zeros"
    fig2 = viz.plot_history({"step": [1, 2, 3, 4], "loss": [4.0, 3, 2, 1]}, smooth=2)
    line = fig2.axes[0].lines[0]
    assert list(line.get_ydata()) == [3.5, 2.5, 1.5]
    assert viz.save_figure(fig2, tmp_path / "f" / "h.png").stat().st_size > 0
    with pytest.raises(KeyError, match="acc"):
        viz.plot_history({"step": [1], "loss": [1.0]}, keys=["acc"])


def test_frame_scrubber_steps_through_frames():
    pytest.importorskip("ipywidgets")
    video = torch.linspace(-1, 1, 3).view(1, 3, 1, 1).expand(1, 3, 4, 4).clone()
    box = viz.frame_scrubber(video)
    slider, image = box.children
    first = image.value
    slider.value = 2
    assert image.value != first and slider.max == 2


def test_viz_does_not_import_notebook_packages():
    import subprocess
    import sys

    code = ("import sys, vdlearn.viz, vdlearn.train, vdlearn.runtime, vdlearn.checks;"
            "bad = [m for m in ('ipywidgets', 'IPython') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_saves_are_atomic(tmp_path, monkeypatch):
    """A failed or interrupted save leaves the old file as it was, and no temporary file."""
    anim = viz.show_video(torch.zeros(3, 2, 4, 4))
    gif = anim.save(tmp_path / "a.gif")
    fig = viz.plot_history({"step": [1, 2], "loss": [2.0, 1.0]})
    png = viz.save_figure(fig, tmp_path / "h.png")
    old = {p: p.read_bytes() for p in (gif, png)}

    def interrupted_savefig(fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG half a figure")
        raise KeyboardInterrupt

    monkeypatch.setattr(fig, "savefig", interrupted_savefig)
    with pytest.raises(KeyboardInterrupt):
        viz.save_figure(fig, png)
    monkeypatch.undo()
    monkeypatch.setattr(os, "fsync", _no_space)  # a full disk shows at the latest when the data are flushed
    with pytest.raises(OSError, match="disk is full"):
        viz.Animation(b"GIF89a other", width=4).save(gif)
    with pytest.raises(OSError, match="disk is full"):
        viz.save_figure(fig, png)
    assert {p: p.read_bytes() for p in (gif, png)} == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "h.png"]


def test_save_figure_without_a_suffix_adds_the_default_format(tmp_path):
    fig = viz.plot_history({"step": [1, 2], "loss": [2.0, 1.0]})
    assert viz.save_figure(fig, tmp_path / "curve").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "curve.png").exists() and viz.save_figure(fig, tmp_path / "c.pdf").read_bytes()[:4] == b"%PDF"
