"""The exercise checks of lesson 04 pass right answers and explain typical wrong ones."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vdlearn.checks import ExerciseError
from vdlearn.checks import lesson04
from vdlearn.metrics import frame_difference_energy


def _d(real, fake):
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def _g(fake):
    return -fake.mean()


def test_hinge_losses_check():
    lesson04.check_hinge_losses(_d, _g)
    wrong_d = [(lambda r, f: (1 - r).mean() + (1 + f).mean(), "max\\(0"),
               (lambda r, f: F.relu(1 + r).mean() + F.relu(1 - f).mean(), "swapped"),
               (lambda r, f: F.relu(1 - r).sum() + F.relu(1 + f).sum(), "not the sum"),
               (lambda r, f: F.relu(-r).mean() + F.relu(f).mean(), "margin"),
               (lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(), "cross-entropy")]
    for wrong, message in wrong_d:
        with pytest.raises(ExerciseError, match=message):
            lesson04.check_hinge_losses(wrong, _g)
    for wrong, message in [(lambda f: f.mean(), "sign is flipped"),
                           (lambda f: F.relu(1 - f).mean(), "no margin"),
                           (lambda f: -f.mean().detach(), "no gradient")]:
        with pytest.raises(ExerciseError, match=message):
            lesson04.check_hinge_losses(_d, wrong)


def test_frames_of_check():
    lesson04.check_frames_of(lambda v: v.transpose(1, 2).flatten(0, 1))
    lesson04.check_frames_of(lambda v: v.permute(0, 2, 1, 3, 4).reshape(-1, *v.shape[1:2], *v.shape[3:]))
    b_c_t = lambda v: v.reshape(v.shape[0] * v.shape[2], v.shape[1], *v.shape[3:])  # noqa: E731
    with pytest.raises(ExerciseError, match="without moving the time axis"):
        lesson04.check_frames_of(b_c_t)
    with pytest.raises(ExerciseError, match="time-major"):
        lesson04.check_frames_of(lambda v: v.permute(2, 0, 1, 3, 4).flatten(0, 1))
    with pytest.raises(ExerciseError, match="shape"):
        lesson04.check_frames_of(lambda v: v.transpose(1, 2))


def test_frame_difference_energy_check():
    lesson04.check_frame_difference_energy(lambda v: (v[:, :, 1:] - v[:, :, :-1]).pow(2).mean(dim=(1, 2, 3, 4)))
    lesson04.check_frame_difference_energy(lambda v: v.diff(dim=2).square().flatten(1).mean(1))
    lesson04.check_frame_difference_energy(frame_difference_energy)  # the course's metric agrees
    wrong = [(lambda v: v.diff(dim=2).flatten(1).mean(1), "square the differences"),
             (lambda v: v.diff(dim=2).abs().flatten(1).mean(1), "absolute"),
             (lambda v: v.diff(dim=1).square().flatten(1).mean(1), "channel axis"),
             (lambda v: v.diff(dim=-1).square().flatten(1).mean(1), "width"),
             (lambda v: v.diff(dim=2).square().flatten(1).sum(1), "not the sum"),
             (lambda v: v.diff(dim=2).square().mean(), "shape")]
    for fn, message in wrong:
        with pytest.raises(ExerciseError, match=message):
            lesson04.check_frame_difference_energy(fn)
