"""The lesson-00 checks accept the right answers and explain typical wrong ones."""
import pytest
import torch

from vdlearn.checks import RESULTS, ExerciseError
from vdlearn.checks import lesson00 as checks


def right_uint8(video):
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0)


def test_to_uint8_frames_right_answer_passes(capsys):
    checks.check_to_uint8_frames(right_uint8)
    assert "✅" in capsys.readouterr().out
    assert RESULTS["00.to_uint8_frames"]["passed"]


@pytest.mark.parametrize("wrong,message", [
    (lambda v: ((v.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8), "shape"),           # no permute
    (lambda v: ((v.clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 3, 0), "uint8"),       # float
    (lambda v: ((v.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).permute(1, 2, 3, 0), "round"),  # truncates
    (lambda v: ((v + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0), "clipped"),    # no clamp
    (lambda v: ((v.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
     .reshape(v.shape[1], v.shape[2], v.shape[3], v.shape[0]), "wrong places"),            # reshape
])
def test_to_uint8_frames_wrong_answers_are_explained(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_to_uint8_frames(wrong)
    assert not RESULTS["00.to_uint8_frames"]["passed"]


def right_bounce(p0, v, t, lo, hi):
    length = hi - lo
    u = torch.remainder(p0 + v * t - lo, 2 * length)
    return lo + length - (u - length).abs()


def test_bounce_right_answer_passes():
    checks.check_bounce(right_bounce)


@pytest.mark.parametrize("wrong,message", [
    (lambda p0, v, t, lo, hi: p0 + v * t, "leaves the box"),                       # no walls
    (lambda p0, v, t, lo, hi: lo + torch.remainder(p0 + v * t - lo, hi - lo), "off by"),  # wraps around
])
def test_bounce_wrong_answers_are_explained(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_bounce(wrong)


def test_unattempted_exercise_is_recorded():
    def stub(video):
        raise NotImplementedError("Exercise: to_uint8_frames")

    with pytest.raises(NotImplementedError):
        checks.check_to_uint8_frames(stub)
    assert RESULTS["00.to_uint8_frames"]["message"].startswith("not attempted")
