"""The lesson-08 checks pass the right answers and explain typical wrong ones."""
import pytest
import torch

from vdlearn.checks import ExerciseError
from vdlearn.checks import lesson08 as checks
from vdlearn.metrics import best_of_k, psnr
from vdlearn.video import model_input, sdedit_start


def test_model_input_right_and_wrong():
    checks.check_model_input(model_input)

    def unmasked(x_t, known, mask, aug_level):  # leaks the future
        out = model_input(x_t, known, mask, aug_level)
        out[:, 3:6] = known
        return out

    with pytest.raises(ExerciseError, match="would see the answer"):
        checks.check_model_input(unmasked)

    def zeros(x_t, known, mask, aug_level):  # known * mask: no copy of the given frame
        out = model_input(x_t, known, mask, aug_level)
        out[:, 3:6] = known * mask[:, None, :, None, None]
        return out

    with pytest.raises(ExerciseError, match="latest given frame"):
        checks.check_model_input(zeros)

    def no_level(x_t, known, mask, aug_level):
        return torch.cat([x_t, known * mask[:, None, :, None, None], mask[:, None, :, None, None].expand(
            x_t.shape[0], 1, *x_t.shape[2:]).float()], dim=1)

    with pytest.raises(ExerciseError, match="shape"):
        checks.check_model_input(no_level)


def test_best_of_k_right_and_wrong():
    checks.check_best_of_k_psnr(lambda s, t: best_of_k(s, t, psnr))
    mean = lambda s, t: psnr(s.flatten(0, 1), t.repeat(s.shape[0], 1, 1, 1, 1)).view(s.shape[0], -1).mean(0)  # noqa: E731
    with pytest.raises(ExerciseError, match="mean PSNR"):
        checks.check_best_of_k_psnr(mean)
    worst = lambda s, t: psnr(s.flatten(0, 1), t.repeat(s.shape[0], 1, 1, 1, 1)).view(s.shape[0], -1).min(0).values  # noqa: E731
    with pytest.raises(ExerciseError, match="lowest PSNR"):
        checks.check_best_of_k_psnr(worst)


def test_sdedit_start_right_and_wrong():
    checks.check_sdedit_start(sdedit_start)

    def no_sqrt(video, strength, schedule, noise):
        t = round(strength * (schedule.num_timesteps - 1))
        ab = schedule.alphas_cumprod[t].item()
        return ab * video + (1 - ab) * noise, t

    with pytest.raises(ExerciseError, match="square roots"):
        checks.check_sdedit_start(no_sqrt)

    def truncating(video, strength, schedule, noise):
        t = int(strength * (schedule.num_timesteps - 1))
        x, _ = sdedit_start(video, strength, schedule, noise)
        return x, t

    with pytest.raises(ExerciseError, match="start timestep"):
        checks.check_sdedit_start(truncating)

    def unchecked(video, strength, schedule, noise):
        return sdedit_start(video, min(max(strength, 0.0), 1.0), schedule, noise)

    with pytest.raises(ExerciseError, match="outside"):
        checks.check_sdedit_start(unchecked)


def test_warp_condition_right_and_wrong():
    from vdlearn.video.camera import warp_condition
    checks.check_warp_condition(warp_condition)

    def unmasked(z0, grid, visible):              # the border smear where the view opens is left in
        out = warp_condition(z0, grid, torch.ones_like(visible))
        out[:, -1] = visible.float()
        return out

    with pytest.raises(ExerciseError, match="multiply the warped latents by the mask"):
        checks.check_warp_condition(unmasked)

    def not_warped(z0, grid, visible):            # z0 copied to every frame
        frames = grid.shape[1]
        m = visible.float()[:, None]
        return torch.cat([z0[:, :, None].expand(-1, -1, frames, -1, -1) * m, m], dim=1)

    with pytest.raises(ExerciseError, match="own grid"):
        checks.check_warp_condition(not_warped)

    def no_mask(z0, grid, visible):
        return warp_condition(z0, grid, visible)[:, :-1]

    with pytest.raises(ExerciseError, match="shape"):
        checks.check_warp_condition(no_mask)

    def corners(z0, grid, visible):               # align_corners=True: a sub-pixel shift everywhere
        b, c, h, w = z0.shape
        t = grid.shape[1]
        rep = z0[:, None].expand(-1, t, -1, -1, -1).reshape(b * t, c, h, w)
        warped = torch.nn.functional.grid_sample(rep, grid.reshape(b * t, h, w, 2), align_corners=True,
                                                 padding_mode="border").reshape(b, t, c, h, w).transpose(1, 2)
        m = visible.float()[:, None]
        return torch.cat([warped * m, m], dim=1)

    with pytest.raises(ExerciseError, match="align_corners=False"):
        checks.check_warp_condition(corners)
