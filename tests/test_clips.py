"""The clip convention's helpers: the one validator, the reshapes, the one Gaussian blur."""
import math

import pytest
import torch
import torch.nn.functional as F

from vdlearn.data import batch_to_frames, check_clips, frames_to_batch, gaussian_blur, gaussian_kernel


def test_check_clips_accepts_good_clips_and_explains_bad_ones():
    clips = torch.rand(2, 3, 4, 8, 8) * 2 - 1
    assert check_clips(clips, 3, min_frames=2) is clips
    with pytest.raises(ValueError, match=r"one clip\? add a batch axis"):
        check_clips(clips[0])
    with pytest.raises(ValueError, match="2 channels but 3"):
        check_clips(clips[:, :2], 3)
    with pytest.raises(ValueError, match="at least 5 frames"):
        check_clips(clips, min_frames=5)
    with pytest.raises(ValueError, match=r"\[-1, 1\].*127.5"):
        check_clips(clips * 3)
    with pytest.raises(ValueError, match="NaN or inf"):
        check_clips(clips.clone().index_fill_(2, torch.tensor([1]), float("nan")))
    with pytest.raises(ValueError, match="empty batch"):
        check_clips(clips[:0])
    with pytest.raises(ValueError, match="float tensor"):
        check_clips(clips.long())
    assert check_clips(clips * 3, value_range=None) is not None  # latents: any range


def test_frames_to_batch_keeps_the_frames_of_a_clip_together_and_inverts():
    clips = torch.randn(2, 3, 4, 5, 6)
    frames = frames_to_batch(clips)
    assert frames.shape == (8, 3, 5, 6)
    assert torch.equal(frames[5], clips[1, :, 1])  # clip 1, frame 1
    assert torch.equal(batch_to_frames(frames, 4), clips)


def test_gaussian_kernel_is_the_normalised_gaussian():
    k = gaussian_kernel(1.5, 3, dtype=torch.float64)
    u = torch.arange(-3, 4, dtype=torch.float64)
    expected = torch.exp(-u ** 2 / 4.5)
    torch.testing.assert_close(k, expected / expected.sum())
    assert len(gaussian_kernel(1.0)) == 2 * math.ceil(2.5) + 1
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernel(0.0)


def test_gaussian_blur_of_an_impulse_is_the_kernel_and_constants_stay():
    image = torch.zeros(1, 2, 15, 15)
    image[:, :, 7, 7] = 1
    k = gaussian_kernel(1.0)
    r = (len(k) - 1) // 2
    out = gaussian_blur(image, 1.0)
    torch.testing.assert_close(out[0, 1, 7 - r:8 + r, 7 - r:8 + r], torch.outer(k, k))
    torch.testing.assert_close(out.sum(), image.sum())
    flat = torch.full((1, 3, 9, 9), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)           # replicate padding keeps edges
    assert gaussian_blur(flat, 1.0, radius=2, padding="valid").shape == (1, 3, 5, 5)
    clips = torch.randn(2, 3, 4, 9, 9)
    torch.testing.assert_close(gaussian_blur(clips, 1.0)[:, :, 2], gaussian_blur(clips[:, :, 2], 1.0))
    with pytest.raises(ValueError, match="padding"):
        gaussian_blur(flat, 1.0, padding="reflect")


def test_gaussian_blur_agrees_with_a_direct_2d_convolution():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 12, 12, dtype=torch.float64)
    k = gaussian_kernel(0.8, 2, dtype=torch.float64)
    direct = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), torch.outer(k, k)[None, None])
    torch.testing.assert_close(gaussian_blur(x, 0.8, radius=2), direct)
