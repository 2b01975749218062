import math

import pytest
import torch

from vdlearn.video import (affine_flow, affine_video, animate_with_flow, centroid, constant_velocity, copy_last_frame, flow_warp, lucas_kanade, shift, warp)

H = W = 32


def blob(cx, cy, sigma=3.0):
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                            indexing="ij")
    return (torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2)) * 2 - 1)[None, None]


def moving_blob(start, velocity, frames):
    return torch.cat([blob(start[0] + k * velocity[0], start[1] + k * velocity[1]) for k in range(frames)])[None] \
        .permute(0, 2, 1, 3, 4)


def test_copy_last_frame_repeats():
    ctx = torch.rand(2, 3, 4, 8, 8) * 2 - 1
    out = copy_last_frame(ctx, 5)
    assert out.shape == (2, 3, 5, 8, 8)
    assert torch.equal(out[:, :, 3], ctx[:, :, -1])


def test_centroid_of_a_blob():
    c = centroid(blob(10.0, 20.0)[:, :, :, :])
    assert torch.allclose(c, torch.tensor([[10.0, 20.0]]), atol=0.05)


def test_warp_identity_and_integer_shift():
    frame = torch.rand(1, 3, H, W) * 2 - 1
    assert torch.allclose(warp(frame, torch.zeros(1, 2, H, W)), frame, atol=1e-5)
    moved = shift(frame, torch.tensor([[2.0, 1.0]]))
    assert torch.allclose(moved[..., 1:, 2:], frame[..., :-1, :-2], atol=1e-5)
    assert torch.allclose(moved[..., 0, :], torch.tensor(-1.0))  # what came from outside is black
    with pytest.raises(ValueError, match="flow should be"):
        warp(frame, torch.zeros(1, 3, H, W))


def test_lucas_kanade_recovers_a_translation():
    flow = lucas_kanade(blob(14, 15), blob(15.5, 14.2))
    inside = (blob(14, 15) > -0.5)[0, 0]
    assert abs(flow[0, 0][inside].mean() - 1.5) < 0.1
    assert abs(flow[0, 1][inside].mean() + 0.8) < 0.1


def test_motion_baselines_beat_copying_on_constant_motion():
    clip = moving_blob((8, 10), (1.5, 0.5), 6)
    ctx, future = clip[:, :, :2], clip[:, :, 2:]
    err = {fn.__name__: ((fn(ctx, 4) - future) ** 2).mean().item()
           for fn in (copy_last_frame, constant_velocity, flow_warp)}
    assert err["constant_velocity"] < 0.01 * err["copy_last_frame"]
    assert err["flow_warp"] < 0.1 * err["copy_last_frame"]


def test_affine_flow_and_animation():
    flow = affine_flow(H, W, translate=(1.0, 0.0))
    assert torch.allclose(flow[0, 0], torch.ones(H, W)) and torch.allclose(flow[0, 1], torch.zeros(H, W))
    rot = affine_flow(H, W, rotate_degrees=90)
    # a quarter turn: (dx, dy) from the centre goes to (-dy, dx)
    c = (W - 1) / 2
    dx, dy = 31 - c, 16 - c
    assert torch.allclose(rot[0, :, 16, 31], torch.tensor([c - dy - 31, c + dx - 16]), atol=1e-4)
    video = animate_with_flow(blob(10, 16), flow, 4)
    assert video.shape == (1, 1, 4, H, W)
    assert torch.allclose(centroid(video[:, :, 3]), torch.tensor([[13.0, 16.0]]), atol=0.1)


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2 context"):
        constant_velocity(torch.zeros(1, 1, 1, 8, 8), 3)
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        copy_last_frame(torch.zeros(1, 8, 8), 3)


def test_affine_video_is_exact_and_does_not_blur():
    image = blob(22, 16, sigma=2.0)
    video = affine_video(image, 5, rotate_degrees=90)
    assert video.shape == (1, 1, 5, H, W)
    c = (W - 1) / 2
    # after one quarter turn the blob at (22, 16) is at (c - (16 - c), c + (22 - c))
    assert torch.allclose(centroid(video[:, :, 1]), torch.tensor([[c - (16 - c), c + (22 - c)]]), atol=0.1)
    assert torch.allclose(video[:, :, 4], image, atol=1e-4)  # four quarter turns: back where it began
    panned = affine_video(image, 3, translate=(2.0, 0.0))
    assert torch.allclose(centroid(panned[:, :, 2]), torch.tensor([[26.0, 16.0]]), atol=0.05)
