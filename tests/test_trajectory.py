"""Image to video as a generated trajectory (vdlearn.video.trajectory) and its shipped model."""
import pytest
import torch

from vdlearn.data import MovingDigits
from vdlearn import pretrained
from vdlearn.metrics import psnr
from vdlearn.video import (TrajectoryNet, displacements, move_along, predict_along_trajectories, sample_trajectories,
                           trajectory_flow_loss)


def _digits(n, frames=8, seed=3):
    return MovingDigits(n, frames=frames, size=28, num_digits=1, digit_size=18, speed=(1.0, 2.0), seed=seed,
                        return_trajectory=True).get_batch(torch.arange(n))


def _shipped_or_skip(name):
    try:
        shipped = name in pretrained.manifest()
    except FileNotFoundError:
        shipped = False
    if not shipped:
        pytest.skip(f"this checkout does not ship {name}")


def test_displacements_are_positions_relative_to_the_first():
    traj = torch.tensor([[[1.0, 2.0], [2.5, 2.0], [4.0, 1.0]]])
    assert torch.equal(displacements(traj), torch.tensor([[[1.5, 0.0], [3.0, -1.0]]]))
    with pytest.raises(ValueError, match=r"\(B, T, 2\)"):
        displacements(torch.zeros(2, 1, 2))


def test_move_along_keeps_the_first_frame_and_moves_by_whole_pixels_exactly():
    image = torch.full((1, 1, 10, 10), -1.0)
    image[0, 0, 3:5, 2:4] = 1.0
    clip = move_along(image, torch.tensor([[[2.0, 1.0], [-1.0, 0.0]]]))
    assert clip.shape == (1, 1, 3, 10, 10) and torch.equal(clip[:, :, 0], image)
    assert torch.allclose(clip[0, 0, 1], torch.roll(image[0, 0], shifts=(1, 2), dims=(0, 1)), atol=1e-5)
    assert torch.allclose(clip[0, 0, 2], torch.roll(image[0, 0], shifts=(0, -1), dims=(0, 1)), atol=1e-5)
    with pytest.raises(ValueError, match="same B"):
        move_along(image, torch.zeros(2, 3, 2))


def test_moving_the_first_frame_along_the_true_path_remakes_the_clip():
    """The factorisation can represent the data: MovingDigits' first frame moved along its own trajectory is
    the clip, up to bilinear resampling (the digit is the first frame's in every frame by construction)."""
    clips, traj = _digits(32)
    remade = move_along(clips[:, :, 0], displacements(traj[:, 0]))
    assert psnr(remade, clips).mean() > 25
    wrong = move_along(clips[:, :, 0], displacements(traj[:, 0]).flip(0))  # another clip's path
    assert psnr(wrong, clips).mean() < psnr(remade, clips).mean() - 3


def test_trajectory_net_starts_at_zero_and_checks_its_inputs():
    net = TrajectoryNet(frames=8, size=28)
    image = torch.zeros(3, 1, 28, 28)
    out = net(torch.randn(3, 7, 2), torch.rand(3), image)
    assert out.shape == (3, 7, 2) and torch.equal(out, torch.zeros_like(out))   # zero-initialised output layer
    with pytest.raises(ValueError, match=r"first frames \(B, 1, 28, 28\)"):
        net(torch.randn(3, 7, 2), torch.rand(3), torch.zeros(3, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 7, 2\)"):
        net(torch.randn(3, 8, 2), torch.rand(3), image)


def test_euler_sampling_lands_on_a_single_path_exactly():
    """For data that is one set of steps S*, the flow's velocity is (x - S*) / t; Euler's method follows the
    straight line exactly, so sampling returns S* (in pixels: times the scale), summed into displacements."""
    target = torch.randn(4, 7, 2)

    class OnePath(torch.nn.Module):
        frames, scale = 8, 3.0

        def forward(self, x, t, image):
            return (x - target) / torch.as_tensor(t).clamp_min(1e-8).view(-1, 1, 1)

    out = sample_trajectories(OnePath(), torch.zeros(4, 1, 28, 28), steps=5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, torch.cumsum(3.0 * target, dim=1), atol=1e-4)


def test_training_learns_where_the_digit_goes():
    """A few hundred steps on MovingDigits lower the loss well below its start, and the sampled paths move
    at the data's speed (1-2 px a frame) rather than staying put."""
    torch.manual_seed(0)
    clips, traj = _digits(512, seed=1)
    data = (clips[:, :, 0], displacements(traj[:, 0]))
    net = TrajectoryNet(frames=8, size=28, dim=128, depth=2, width=16)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    losses = []
    for step in range(150):
        i = torch.randint(0, 512, (64,))
        loss = trajectory_flow_loss(net, (data[0][i], data[1][i]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-20:]) / 20 < 0.8 * sum(losses[:20]) / 20
    paths = sample_trajectories(net, data[0][:64], steps=10, generator=torch.Generator().manual_seed(0))
    first_step = paths[:, 0].norm(dim=-1)
    assert 0.7 < first_step.median() < 2.5


def test_the_shipped_trajectory_model_moves_the_frame_it_is_given_or_draws_one():
    """Through the public API: image to video keeps the given frame and moves it 1-2 px a frame; without an
    image the first frame comes from the image model its recipe names; bad conditions are refused."""
    _shipped_or_skip("07_trajectory_digits")
    from vdlearn.video import centroid
    clips, _ = _digits(16, seed=10_001)
    grown = pretrained.sample("07_trajectory_digits", 16, seed=0, image=clips[:, :, 0])
    assert grown.shape == (16, 1, 8, 28, 28) and torch.equal(grown[:, :, 0], clips[:, :, 0])
    step = (centroid(grown[:, :, 1]) - centroid(grown[:, :, 0])).norm(dim=-1)
    assert 0.7 < step.median() < 2.5
    drawn = pretrained.sample("07_trajectory_digits", 4, seed=0, labels=["3", "3", "7", "7"])
    assert drawn.shape == (4, 1, 8, 28, 28) and torch.isfinite(drawn).all()
    with pytest.raises(ValueError, match="not both"):
        pretrained.sample("07_trajectory_digits", 2, image=clips[:2, :, 0], labels=[1, 2])
    with pytest.raises(ValueError, match=r"first frames \(n, C, H, W\) = \(2, 1, 28, 28\)"):
        pretrained.sample("07_trajectory_digits", 2, image=torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="knows no class"):
        pretrained.sample("07_trajectory_digits", 2, labels="eleven")
    with pytest.raises(ValueError, match="not context="):
        pretrained.sample("07_trajectory_digits", 2, context=clips[:2, :, :2])


def test_prediction_keeps_the_given_frames_and_moves_the_last_one():
    torch.manual_seed(0)
    net = TrajectoryNet(frames=4, size=16, channels=3, given=2, dim=32, depth=1, width=8)
    context = torch.rand(2, 3, 2, 16, 16) * 2 - 1
    out = predict_along_trajectories(net, context, steps=3, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 5, 16, 16) and torch.equal(out[:, :, :2], context)
    paths = sample_trajectories(net, context, steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out[:, :, 2:], move_along(context[:, :, -1], paths)[:, :, 1:].clamp(-1, 1))
    with pytest.raises(ValueError, match=r"last 2 frame\(s\) of a clip, \(B, 3, 2, 16, 16\)"):
        net.encode(context[:, :, 0])
    with pytest.raises(ValueError, match=r"\(B, C, 2, H, W\)"):
        predict_along_trajectories(net, context[:, :, :1])


def test_the_shipped_motion_model_predicts_shapes_better_than_constant_velocity():
    """Lesson 08's prediction task through the public API, on held-out clips: the best of 4 predictions beats
    constant velocity; the given frames come back exactly; bad conditions are refused."""
    _shipped_or_skip("08_trajectory_shapes")
    from vdlearn.data import BouncingShapes
    from vdlearn.metrics import best_of_k
    from vdlearn.video import constant_velocity
    clips = BouncingShapes(24, frames=8, size=32, seed=20_000).get_batch(torch.arange(24))
    context = clips[:, :, :2]
    made = torch.stack([pretrained.sample("08_trajectory_shapes", 24, seed=j, context=context) for j in range(4)])
    assert made.shape == (4, 24, 3, 8, 32, 32) and torch.equal(made[0, :, :, :2], context)
    best = best_of_k(made[:, :, :, 2:], clips[:, :, 2:], psnr).mean()
    assert best > psnr(constant_velocity(context, 6).clamp(-1, 1), clips[:, :, 2:]).mean()
    with pytest.raises(ValueError, match="pass only context="):
        pretrained.sample("08_trajectory_shapes", 2, image=clips[:2, :, 0])
    with pytest.raises(ValueError, match="pass only context="):
        pretrained.sample("08_trajectory_shapes", 2, context=clips[:2, :, :3])


def test_the_shipped_digit_motion_model_predicts_better_than_constant_velocity_and_optical_flow():
    """The same task on lesson 07's MovingDigits (held-out clips, grey): the best of 4 beats both baselines, and
    every predicted frame still shows the given digit."""
    _shipped_or_skip("08_trajectory_digits")
    from vdlearn.metrics import best_of_k, digit_constancy
    from vdlearn.video import constant_velocity, flow_warp
    clips = _digits(16, seed=20_000)[0]
    context, truth = clips[:, :, :2], clips[:, :, 2:]
    made = torch.stack([pretrained.sample("08_trajectory_digits", 16, seed=j, context=context) for j in range(4)])
    assert made.shape == (4, 16, 1, 8, 28, 28) and torch.equal(made[0, :, :, :2], context)
    best = best_of_k(made[:, :, :, 2:], truth, psnr).mean()
    assert best > psnr(constant_velocity(context, 6).clamp(-1, 1), truth).mean() + 3
    assert best > psnr(flow_warp(context, 6).clamp(-1, 1), truth).mean() + 3
    assert digit_constancy(made[0])["digit_constant"] >= 0.9
    with pytest.raises(ValueError, match=r"\(n, C, 2, H, W\) = \(2, 1, 2, 28, 28\)"):
        pretrained.sample("08_trajectory_digits", 2, context=clips[:2, :, :2].expand(-1, 3, -1, -1, -1))
