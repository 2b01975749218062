"""The lesson 07 checks accept the right answers and explain typical wrong ones."""
import pytest
import torch

from vdlearn.checks import ExerciseError
from vdlearn.checks import lesson07 as checks


def sequences(x, frames):
    return x.unflatten(0, (-1, frames)).permute(0, 3, 4, 1, 2).reshape(-1, frames, x.shape[1])


def test_frames_to_sequences_right_answer_passes(capsys):
    checks.check_frames_to_sequences(sequences)
    assert "✅ 07.frames_to_sequences" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda x, frames: x.reshape(-1, frames, x.shape[1]), "plain reshape"),
    (lambda x, frames: sequences(x, frames).transpose(1, 2), r"shape \(20, 3, 4\)"),
    (lambda x, frames: x.unflatten(0, (frames, -1)).permute(1, 3, 4, 0, 2).reshape(-1, frames, x.shape[1]),
     "off by"),
])
def test_frames_to_sequences_wrong_answers_are_explained(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_frames_to_sequences(wrong)


def bias(table, frames, max_frames, *, sign=1, shift=None, heads_first=True):
    i = torch.arange(frames)
    offsets = sign * (i[:, None] - i[None, :]) + (max_frames - 1 if shift is None else shift(frames))
    out = table[offsets]
    return out.permute(2, 0, 1) if heads_first else out


def test_relative_position_bias_right_answer_passes(capsys):
    checks.check_relative_position_bias(bias)
    assert "✅ 07.relative_position_bias" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    (dict(sign=-1), "j - i"),
    (dict(shift=lambda frames: frames - 1), "frames - 1"),
    (dict(heads_first=False), r"shape \(2, 4, 4\)"),
])
def test_relative_position_bias_wrong_answers_are_explained(options, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_relative_position_bias(lambda *a: bias(*a, **options))


def energy(x):
    return (x[:, :, 1:] - x[:, :, :-1]).pow(2).mean(dim=(1, 2, 3, 4))


def test_frame_difference_energy_right_answer_passes(capsys):
    checks.check_frame_difference_energy(energy)
    assert "✅ 07.frame_difference_energy" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda x: (x[:, :, 1:] - x[:, :, :-1]).abs().mean(dim=(1, 2, 3, 4)), "absolute"),
    (lambda x: energy(x).sqrt(), "root of the mean square"),
    (lambda x: (x[..., 1:] - x[..., :-1]).pow(2).mean(dim=(1, 2, 3, 4)), "along the width"),
    (lambda x: (x[:, :, 1:] - x[:, :, :-1]).pow(2).sum(dim=(1, 2, 3, 4)) / (x[0].numel()), "instead of the T - 1"),
    (lambda x: energy(x).mean(), r"shape \(3,\)"),
])
def test_frame_difference_energy_wrong_answers_are_explained(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_frame_difference_energy(wrong)


def test_a_crashing_answer_is_reported():
    def broken(x, frames):
        raise RuntimeError("shape mismatch")

    with pytest.raises(ExerciseError, match="RuntimeError: shape mismatch"):
        checks.check_frames_to_sequences(broken)


def move(frames, offsets, *, sign=1.0, swap=False, fill=-1.0, align=True):
    import torch.nn.functional as F
    b, _, h, w = frames.shape
    d = offsets.flip(-1) if swap else offsets
    ys, xs = torch.meshgrid(torch.arange(h, dtype=frames.dtype), torch.arange(w, dtype=frames.dtype), indexing="ij")
    src_x = xs - sign * d[:, 0, None, None]
    src_y = ys - sign * d[:, 1, None, None]
    if align:
        grid = torch.stack([2 * src_x / (w - 1) - 1, 2 * src_y / (h - 1) - 1], dim=-1)
    else:
        grid = torch.stack([(2 * src_x + 1) / w - 1, (2 * src_y + 1) / h - 1], dim=-1)
    return F.grid_sample(frames - fill, grid, padding_mode="zeros", align_corners=align) + fill


def test_move_frame_right_answer_passes(capsys):
    checks.check_move_frame(move)
    assert "✅ 07.move_frame" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda f, o: move(f, o, sign=-1.0), "opposite way"),
    (lambda f, o: move(f, o, swap=True), r"\(y, x\)"),
    (lambda f, o: move(f, o, fill=0.0), "grey"),
    (lambda f, o: move(f, o * 2), "2 whole pixels"),
    (lambda f, o: f, "2 whole pixels"),
])
def test_move_frame_wrong_answers_are_explained(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_move_frame(wrong)
