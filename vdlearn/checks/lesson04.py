"""Checks for lesson 04, GANs for images and video."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..gan.losses import discriminator_loss, generator_loss
from . import exercise, expect, expect_close, expect_shape

__all__ = ["check_hinge_losses", "check_frames_of", "check_frame_difference_energy"]


def _scalar(value, what: str) -> torch.Tensor:
    value = torch.as_tensor(value)
    expect(value.numel() == 1, f"{what} should return one number (the mean over the batch), got shape "
                               f"{tuple(value.shape)}")
    return value.reshape(())


@exercise("04.hinge_losses")
def check_hinge_losses(hinge_d_loss, hinge_g_loss) -> None:
    """Hinge losses: L_D = E relu(1 - l_real) + E relu(1 + l_fake), L_G = -E l_fake."""
    real = torch.tensor([2.0, 0.5, -0.3, 1.0])
    fake = torch.tensor([-2.0, -0.4, 0.7, 1.5])
    got = _scalar(hinge_d_loss(real, fake), "hinge_d_loss").detach().float()
    want = discriminator_loss(real, fake, "hinge")
    if not torch.isclose(got, want, atol=1e-5):
        slips = [
            ((1 - real).mean() + (1 + fake).mean(),
             "the max(0, .) is missing: a real logit above 1 (or a fake one below -1) is already "
             "classified with margin and must cost nothing, so use F.relu"),
            (F.relu(1 + real).mean() + F.relu(1 - fake).mean(),
             "real and fake are swapped: real logits should be pushed *above* +1, fake ones below -1"),
            (F.relu(1 - real).sum() + F.relu(1 + fake).sum(), "use the mean over the batch, not the sum"),
            (F.relu(-real).mean() + F.relu(fake).mean(), "the margin of 1 is missing: relu(1 - l_real), relu(1 + l_fake)"),
            (discriminator_loss(real, fake, "nonsaturating"), "that is the cross-entropy loss, not the hinge loss"),
        ]
        for value, hint in slips:
            if torch.isclose(got, value, atol=1e-5):
                expect(False, f"hinge_d_loss gives {got.item():.4f}, expected {want.item():.4f}: {hint}.")
        expect_close(got, want, what="hinge_d_loss", hint="mean(relu(1 - real_logits)) + mean(relu(1 + fake_logits))")
    got = _scalar(hinge_g_loss(fake), "hinge_g_loss").detach().float()
    want = generator_loss(fake, "hinge")
    if not torch.isclose(got, want, atol=1e-5):
        slips = [
            (fake.mean(), "the sign is flipped: the generator wants the logits of its samples *large*, "
                          "so it minimises -mean(fake_logits)"),
            (F.relu(1 - fake).mean(), "the generator's hinge loss has no margin and no relu: it is "
                                      "-mean(fake_logits) (clipping it would stop the generator's gradient)"),
        ]
        for value, hint in slips:
            if torch.isclose(got, value, atol=1e-5):
                expect(False, f"hinge_g_loss gives {got.item():.4f}, expected {want.item():.4f}: {hint}.")
        expect_close(got, want, what="hinge_g_loss", hint="-mean(fake_logits)")
    logits = fake.clone().requires_grad_(True)
    value = _scalar(hinge_g_loss(logits), "hinge_g_loss")
    expect(value.requires_grad, "hinge_g_loss carries no gradient: use torch operations on the logits")
    (grad,) = torch.autograd.grad(value, logits)
    expect_close(grad, torch.full_like(fake, -1 / len(fake)), what="d hinge_g_loss / d logits",
                 hint="every fake logit gets the same push, -1/B")


@exercise("04.frames_of")
def check_frames_of(frames_of) -> None:
    """(B, C, T, H, W) clips -> (B*T, C, H, W) frames, clip by clip, frames in order."""
    B, C, T, H, W = 2, 3, 4, 5, 6
    clips = torch.arange(B * C * T * H * W, dtype=torch.float32).reshape(B, C, T, H, W)
    got = frames_of(clips)
    expect_shape(got, (B * T, C, H, W), f"frames_of(clips of shape {(B, C, T, H, W)})")
    want = clips.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W)
    if not torch.equal(got, want):
        if torch.equal(got, clips.reshape(B * T, C, H, W)):
            expect(False, "frames_of reshapes without moving the time axis: in (B, C, T, H, W) the "
                          "channels come before time, so a plain reshape mixes channels of different "
                          "frames into one image. Move T next to B first (clips.transpose(1, 2) or "
                          "permute(0, 2, 1, 3, 4)), then reshape.")
        if torch.equal(got, clips.permute(2, 0, 1, 3, 4).reshape(B * T, C, H, W)):
            expect(False, "the frames come out time-major (all first frames, then all second frames); "
                          "keep them clip by clip: frame t of clip b at index b * T + t")
        expect(False, "frames_of gives the right shape but the wrong frames: frame t of clip b "
                      "should be clips[b, :, t] and sit at index b * T + t")
    for b in range(B):
        for t in range(T):
            expect(torch.equal(got[b * T + t], clips[b, :, t]), f"frame {b * T + t} should be clips[{b}, :, {t}]")


@exercise("04.frame_difference_energy")
def check_frame_difference_energy(frame_difference_energy) -> None:
    """Per clip: the mean squared difference between consecutive frames, shape (B,)."""
    torch.manual_seed(0)
    clips = torch.rand(3, 3, 5, 4, 4) * 2 - 1
    clips[1] = clips[1, :, :1]  # clip 1 does not move: the same frame five times
    got = frame_difference_energy(clips)
    expect_shape(got, (3,), "frame_difference_energy(clips of shape (3, 3, 5, 4, 4))")
    got = got.detach().float()
    diff = clips[:, :, 1:] - clips[:, :, :-1]
    want = diff.pow(2).mean(dim=(1, 2, 3, 4))
    if not torch.allclose(got, want, atol=1e-6):
        slips = [
            (diff.mean(dim=(1, 2, 3, 4)),
             "square the differences: positive and negative changes cancel otherwise"),
            (diff.abs().mean(dim=(1, 2, 3, 4)),
             "that is the mean *absolute* difference; the energy is the mean of the squared differences"),
            ((clips[:, 1:] - clips[:, :-1]).pow(2).mean(dim=(1, 2, 3, 4)),
             "you took differences along the channel axis (dim 1); time is dim 2 in (B, C, T, H, W)"),
            ((clips[..., 1:] - clips[..., :-1]).pow(2).mean(dim=(1, 2, 3, 4)),
             "you took differences along the width (the last axis); time is dim 2 in (B, C, T, H, W)"),
            (diff.pow(2).sum(dim=(1, 2, 3, 4)),
             "use the mean, not the sum, so clips of different sizes compare"),
        ]
        for value, hint in slips:
            if torch.allclose(got, value, atol=1e-6):
                expect(False, f"frame_difference_energy is not right yet: {hint}.")
        expect_close(got, want, what="frame_difference_energy per clip",
                     hint="mean over C, T-1, H, W of (clips[:, :, t+1] - clips[:, :, t])**2")
    expect(abs(got[1].item()) < 1e-7, "a clip whose frames are all equal should have energy 0")
