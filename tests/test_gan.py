"""Tests of vdlearn.gan: losses against hand-computed values, the 1-D theory against closed
forms, model shapes and errors, and the training loop (determinism, resume, divergence)."""
from __future__ import annotations

import math

import pytest
import torch

from vdlearn.gan import (LOSSES, Discriminator, Generator, MinibatchStd, MLPDiscriminator, MLPGenerator, VideoDiscriminator, VideoGenerator, check_pair, dcgan_init, discriminator_loss, gaussian_pdf, generator_loss, js_divergence, kl_divergence, optimal_discriminator, r1_penalty, value_on_grid)
from vdlearn.train import train_gan

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _prob(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit))


# ----------------------------------------------------------------------------- losses
def test_bce_losses_match_the_value_function_by_hand():
    real, fake = [0.0, 2.0], [-1.0, 1.0]
    # -V = -mean log D(x) - mean log(1 - D(G(z))), written with probabilities
    by_hand = (-(math.log(_prob(0.0)) + math.log(_prob(2.0))) / 2
               - (math.log(1 - _prob(-1.0)) + math.log(1 - _prob(1.0))) / 2)
    for kind in ("minimax", "nonsaturating"):
        got = discriminator_loss(torch.tensor(real), torch.tensor(fake), kind)
        assert got.item() == pytest.approx(by_hand, rel=1e-6)
    minimax = (math.log(1 - _prob(-1.0)) + math.log(1 - _prob(1.0))) / 2
    nonsat = -(math.log(_prob(-1.0)) + math.log(_prob(1.0))) / 2
    assert generator_loss(torch.tensor(fake), "minimax").item() == pytest.approx(minimax, rel=1e-6)
    assert generator_loss(torch.tensor(fake), "nonsaturating").item() == pytest.approx(nonsat, rel=1e-6)


def test_losses_at_the_equilibrium_d_equals_one_half():
    zeros = torch.zeros(7)  # logit 0 <=> D = 1/2 everywhere
    assert discriminator_loss(zeros, zeros, "nonsaturating").item() == pytest.approx(2 * math.log(2))
    assert generator_loss(zeros, "minimax").item() == pytest.approx(-math.log(2))
    assert generator_loss(zeros, "nonsaturating").item() == pytest.approx(math.log(2))


def test_hinge_loss_by_hand():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.5])
    # mean(relu(1 - [0.5, 2])) = (0.5 + 0) / 2 ; mean(relu(1 + [-2, 0.5])) = (0 + 1.5) / 2
    assert discriminator_loss(real, fake, "hinge").item() == pytest.approx(0.25 + 0.75)
    assert generator_loss(fake, "hinge").item() == pytest.approx(0.75)


def test_generator_gradients_saturate_only_for_minimax():
    logits = torch.tensor([-8.0, -2.0, 0.0, 3.0], requires_grad=True)
    d = torch.sigmoid(logits.detach())
    (g_mm,) = torch.autograd.grad(generator_loss(logits, "minimax"), logits)
    (g_ns,) = torch.autograd.grad(generator_loss(logits, "nonsaturating"), logits)
    n = len(logits)
    torch.testing.assert_close(g_mm, -d / n)          # d/dl log(1 - sigma(l)) = -sigma(l)
    torch.testing.assert_close(g_ns, -(1 - d) / n)    # d/dl -log sigma(l) = -(1 - sigma(l))
    assert g_mm[0].abs() < 1e-3 / n and g_ns[0].abs() > 0.99 / n  # D(G(z)) ~ 0: saturation


def test_losses_are_finite_for_extreme_logits():
    big = torch.tensor([-100.0, 100.0])
    for kind in LOSSES:
        assert torch.isfinite(discriminator_loss(big, big, kind))
        assert torch.isfinite(generator_loss(big, kind))


def test_unknown_loss_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown GAN loss 'wasserstein'.*minimax"):
        generator_loss(torch.zeros(2), "wasserstein")
    with pytest.raises(ValueError, match="unknown GAN loss"):
        discriminator_loss(torch.zeros(2), torch.zeros(2), "bce")


def test_r1_penalty_of_linear_and_quadratic_critics():
    w = torch.tensor([3.0, -4.0])
    x = torch.randn(5, 2, requires_grad=True)
    assert r1_penalty(x @ w, x).item() == pytest.approx(25.0)  # grad = w, |w|^2 = 25
    x = torch.randn(6, 3, requires_grad=True)
    expected = (2 * x.detach()).pow(2).sum(1).mean()         # l = |x|^2, grad = 2x
    torch.testing.assert_close(r1_penalty(x.pow(2).sum(1), x), expected)


def test_r1_penalty_needs_input_gradients():
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(x.sum(1), x)


# ----------------------------------------------------------------------------- theory
def _grid():
    x = torch.linspace(-12, 12, 24001, dtype=torch.float64)
    return x, (x[1] - x[0]).item()


def test_optimal_discriminator_maximises_the_value_function():
    x, dx = _grid()
    p, q = gaussian_pdf(x, 0.0, 1.0), gaussian_pdf(x, 2.0, 1.5)
    d_star = optimal_discriminator(p, q)
    best = value_on_grid(p, q, d_star, dx)
    for bump in (torch.sin(x), 0.05 * torch.ones_like(x), -0.1 * torch.exp(-x**2)):
        other = (d_star + 0.05 * bump).clamp(1e-6, 1 - 1e-6)
        assert value_on_grid(p, q, other, dx) < best
    # Goodfellow et al. Theorem 1: V(D*, G) = -log 4 + 2 JS
    assert best.item() == pytest.approx(-math.log(4) + 2 * js_divergence(p, q, dx).item(), abs=1e-8)


def test_kl_on_a_grid_matches_the_gaussian_closed_form():
    x, dx = _grid()
    m1, s1, m2, s2 = 0.3, 0.8, -1.0, 1.7
    closed = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    got = kl_divergence(gaussian_pdf(x, m1, s1), gaussian_pdf(x, m2, s2), dx)
    assert got.item() == pytest.approx(closed, rel=1e-6)


def test_js_divergence_bounds():
    x, dx = _grid()
    p = gaussian_pdf(x, 0.0, 1.0)
    assert js_divergence(p, p, dx).item() == pytest.approx(0.0, abs=1e-12)
    far = gaussian_pdf(x, 10.0, 0.3)  # practically disjoint supports
    assert js_divergence(p, far, dx).item() == pytest.approx(math.log(2), rel=1e-6)
    assert optimal_discriminator(torch.zeros(3), torch.zeros(3)).tolist() == [0.5] * 3


# ----------------------------------------------------------------------------- models
@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 1)])
def test_dcgan_shapes_and_range(size, channels):
    g = Generator(latent_dim=16, channels=channels, image_size=size, width=8)
    d = Discriminator(channels=channels, image_size=size, width=8, spectral_norm=True)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, channels, size, size) and x.abs().max() <= 1
    assert d(x).shape == (3,)


@pytest.mark.parametrize("two_stream", [True, False])
@pytest.mark.parametrize("factorized", [True, False])
@pytest.mark.parametrize("frames", [16, 8, 5])
def test_video_gan_shapes(factorized, frames, two_stream):
    g = VideoGenerator(latent_dim=8, channels=3, frames=frames, image_size=32, width=4, factorized=factorized,
                       two_stream=two_stream)
    d = VideoDiscriminator(channels=3, frames=frames, image_size=32, width=4, factorized=factorized,
                           minibatch_std=True)
    clips = g.sample(2)
    assert clips.shape == (2, 3, frames, 32, 32) and clips.abs().max() <= 1
    assert d(clips).shape == (2,)


def test_two_stream_generator_composes_mask_foreground_and_a_still_background():
    torch.manual_seed(0)
    g = VideoGenerator(latent_dim=8, frames=4, image_size=16, width=4).eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        h = g.blocks(g.project(z))
        mask, fg, bg = torch.sigmoid(g.to_mask(h)), torch.tanh(g.to_rgb(h)), g.background(z)
        torch.testing.assert_close(g(z), mask * fg + (1 - mask) * bg[:, :, None])
    assert bg.shape == (2, 3, 16, 16) and mask.shape == (2, 1, 4, 16, 16)


def test_minibatch_std_feature():
    x = torch.randn(8, 5)
    out = MinibatchStd(group_size=4)(x)
    assert out.shape == (8, 6)
    torch.testing.assert_close(out[:, :5], x)
    groups = x.reshape(4, 2, 5)  # sample i*2 + m belongs to group m
    expected = groups.std(0, unbiased=False).mean(1)
    torch.testing.assert_close(out[:, 5], expected.repeat(4), atol=1e-4, rtol=1e-4)
    same = MinibatchStd()(torch.ones(6, 3))  # identical samples: a collapsed generator
    assert same[:, -1].max() < 1e-3
    assert MinibatchStd(group_size=4)(torch.randn(6, 3)).shape == (6, 4)  # 6 is not a multiple of 4


def test_dcgan_init_statistics():
    torch.manual_seed(0)
    g = Generator(latent_dim=16, width=32)
    g.apply(dcgan_init)
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    d = Discriminator(width=8, spectral_norm=True)
    d.apply(dcgan_init)  # reaches the weights under spectral normalisation too
    assert d(torch.randn(2, 1, 28, 28)).shape == (2,)


def test_pacgan_packs_samples():
    d = MLPDiscriminator(pack=4)
    assert d(torch.randn(12, 2)).shape == (3,)
    with pytest.raises(ValueError, match="multiple of 4"):
        d(torch.randn(10, 2))


def test_models_are_deterministic_given_the_seed():
    def build():
        torch.manual_seed(3)
        return Generator(latent_dim=8, image_size=28, width=8).eval()
    z = torch.randn(4, 8)
    torch.testing.assert_close(build()(z), build()(z), rtol=0, atol=0)
    g = build()
    a = g.sample(3, generator=torch.Generator().manual_seed(1))
    b = g.sample(3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_wrong_latent_width_is_a_clear_error():
    with pytest.raises(ValueError, match=r"latents of shape \(batch, 64\), got \(2, 100\)"):
        Generator(latent_dim=64)(torch.randn(2, 100))
    with pytest.raises(ValueError, match=r"\(batch, 8\)"):
        VideoGenerator(latent_dim=8, width=4)(torch.randn(2, 7))


def test_mismatched_sizes_between_generator_and_discriminator():
    g, d = Generator(image_size=32, width=8), Discriminator(image_size=28, width=8)
    with pytest.raises(ValueError, match="image_size=32.*image_size=28"):
        check_pair(g, d)
    with pytest.raises(ValueError, match="image_size=32.*image_size=28"):
        train_gan(g, d, torch.randn(64, 1, 28, 28), num_steps=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"built for inputs of shape \(batch, 1, 28, 28\), got \(2, 1, 32, 32\)"):
        d(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="channels=3.*channels=1"):
        check_pair(Generator(channels=3, width=8), Discriminator(channels=1, width=8))
    with pytest.raises(ValueError, match="frames=16.*frames=8"):
        check_pair(VideoGenerator(frames=16, width=4), VideoDiscriminator(frames=8, width=4))
    with pytest.raises(ValueError, match="video"):
        check_pair(VideoGenerator(width=4), Discriminator(channels=3, image_size=32, width=4))


def test_impossible_image_size_is_a_clear_error():
    with pytest.raises(ValueError, match="image_size=30 cannot be reached"):
        Generator(image_size=30)
    with pytest.raises(ValueError, match="at least 6, got 5"):
        Discriminator(image_size=5)


# ----------------------------------------------------------------------------- training
def _toy_data(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g) * 0.3 + torch.tensor([3.0, -2.0])


def _toy_run(num_steps, **kw):
    torch.manual_seed(0)
    g, d = MLPGenerator(hidden=32), MLPDiscriminator(hidden=32)
    kw = {"log_every": 5, **kw}
    return train_gan(g, d, _toy_data(), num_steps=num_steps, batch_size=64, lr=1e-3, device="cpu",
                     progress=False, **kw)


def test_generator_moves_to_the_data():
    torch.manual_seed(0)
    start = MLPGenerator(hidden=32).sample(1000).mean(0)
    result = _toy_run(300)
    end = result.generator.sample(1000).mean(0)
    target = torch.tensor([3.0, -2.0])
    assert (start - target).norm() > 3
    assert (end - target).norm() < 0.5
    assert set(result.history) >= {"step", "d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm"}
    assert result.history["step"][-1] == 300 and len(result.history["d_loss"]) == 60


@pytest.mark.parametrize("loss", LOSSES)
def test_training_is_deterministic_given_the_seed(loss):
    a, b = _toy_run(20, loss=loss, r1_gamma=1.0), _toy_run(20, loss=loss, r1_gamma=1.0)
    assert a.history == b.history
    for pa, pb in zip(a.generator.parameters(), b.generator.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert "r1" in a.history


def test_resume_from_checkpoint_gives_the_uninterrupted_run(tmp_path):
    full = _toy_run(30, ema_decay=0.9)
    path = tmp_path / "gan.pt"
    _toy_run(15, ema_decay=0.9, checkpoint_path=path)
    resumed = _toy_run(30, ema_decay=0.9, checkpoint_path=path)
    assert resumed.history == full.history
    for pa, pb in zip(resumed.ema_generator.parameters(), full.ema_generator.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    with pytest.raises(ValueError, match="made with other settings.*loss: 'nonsaturating' there, 'hinge' here"):
        _toy_run(40, ema_decay=0.9, checkpoint_path=path, loss="hinge")


def test_an_annealed_run_resumes_exactly_and_only_to_its_own_end(tmp_path):
    """The noise schedule depends on num_steps: an interrupted run resumes exactly; a finished one cannot be
    stretched to another length (its schedule would not be the straight run's)."""
    full = _toy_run(30, instance_noise=(0.5, 0.0))
    path = tmp_path / "gan.pt"

    def interrupt(step, generator):
        if step == 15:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _toy_run(30, instance_noise=(0.5, 0.0), checkpoint_path=path, checkpoint_every=15, callback=interrupt)
    resumed = _toy_run(30, instance_noise=(0.5, 0.0), checkpoint_path=path)
    assert resumed.history == full.history
    for pa, pb in zip(resumed.generator.parameters(), full.generator.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    short = tmp_path / "short.pt"
    _toy_run(15, instance_noise=(0.5, 0.0), checkpoint_path=short)
    with pytest.raises(ValueError, match="num_steps: 15 there, 30 here"):
        _toy_run(30, instance_noise=(0.5, 0.0), checkpoint_path=short)


def test_divergence_is_reported_clearly():
    torch.manual_seed(0)
    data = _toy_data()
    data[::7] = float("nan")
    with pytest.raises(FloatingPointError, match="discriminator loss became nan at step 0.*lower the learning rate"):
        train_gan(MLPGenerator(hidden=8), MLPDiscriminator(hidden=8), data, num_steps=10, batch_size=64,
                  device="cpu", progress=False)


@pytest.mark.parametrize("device", DEVICES)
def test_video_gan_trains_end_to_end(device):
    torch.manual_seed(0)
    g = VideoGenerator(latent_dim=8, frames=4, image_size=16, width=4)
    d = VideoDiscriminator(frames=4, image_size=16, width=4, spectral_norm=True)
    clips = torch.rand(16, 3, 4, 16, 16) * 2 - 1
    labels = torch.zeros(16)
    dataset = torch.utils.data.TensorDataset(clips, labels)  # (clip, label) items
    result = train_gan(g, d, dataset, num_steps=3, batch_size=8, loss="hinge", r1_gamma=0.1,
                       device=device, progress=False, log_every=1)
    assert len(result.history["g_loss"]) == 3
    assert all(math.isfinite(v) for v in result.history["d_loss"])
    assert result.generator.sample(2).shape == (2, 3, 4, 16, 16)


def test_ema_generator_is_the_bias_corrected_average():
    """The course's one EMA rule: after two steps, (beta theta_1 + theta_2) / (1 + beta); theta_0 has no weight."""
    seen = []
    result = _toy_run(2, ema_decay=0.9, log_every=1,
                      callback=lambda step, g: seen.append([p.detach().clone() for p in g.parameters()]))
    assert len(seen) == 2
    for e, p1, p2 in zip(result.ema_generator.parameters(), *seen):
        torch.testing.assert_close(e, (0.9 * p1 + p2) / 1.9)
    with pytest.raises(ValueError, match="ema_decay"):
        _toy_run(1, ema_decay=1.5)


# --------------------------------------------------------------------------- MoCoGAN-style video GAN
def test_motion_content_generator_shapes_and_latent_layout():
    from vdlearn.gan import MotionContentGenerator
    torch.manual_seed(0)
    g = MotionContentGenerator(content_dim=12, motion_dim=4, channels=3, frames=6, image_size=16, width=8)
    assert g.latent_dim == 12 + 6 * 4
    clips = g(torch.randn(5, g.latent_dim))
    assert clips.shape == (5, 3, 6, 16, 16) and clips.abs().max() <= 1
    assert g.motion_codes(torch.randn(5, g.latent_dim)).shape == (5, 6, 4)


def test_motion_path_is_causal_and_content_is_shared_by_all_frames():
    """Changing the innovation of frame k changes frames k.. but never an earlier one; the content code
    enters every frame."""
    from vdlearn.gan import MotionContentGenerator
    torch.manual_seed(0)
    g = MotionContentGenerator(content_dim=8, motion_dim=4, channels=1, frames=5, image_size=8, width=8).eval()
    z = torch.randn(2, g.latent_dim)
    z2 = z.clone()
    k = 3
    z2[:, 8 + k * 4: 8 + (k + 1) * 4] += 1.0
    a, b = g(z), g(z2)
    assert torch.allclose(a[:, :, :k], b[:, :, :k])
    assert not torch.allclose(a[:, :, k:], b[:, :, k:])
    z3 = z.clone()
    z3[:, :8] += 1.0
    changed = (g(z3) - a).abs().flatten(3).amax(-1)          # (B, C, T)
    assert (changed > 1e-4).all()


def test_frame_and_clip_discriminator_gives_two_logits_and_pairs_with_the_generator():
    from vdlearn.gan import FrameAndClipDiscriminator, MotionContentGenerator
    torch.manual_seed(0)
    d = FrameAndClipDiscriminator(channels=3, frames=8, image_size=16, width=8, frames_per_clip=3)
    assert d(torch.rand(4, 3, 8, 16, 16) * 2 - 1).shape == (4, 2)
    check_pair(MotionContentGenerator(channels=3, frames=8, image_size=16, width=8), d)
    with pytest.raises(ValueError, match=r"expected clips \(B, 3, 8, 16, 16\)"):
        d(torch.zeros(4, 3, 6, 16, 16))
    with pytest.raises(ValueError, match="frames_per_clip"):
        FrameAndClipDiscriminator(frames=4, frames_per_clip=5)


class _Recorder(torch.nn.Module):
    """A linear critic on 1x8x8 images that keeps a copy of every input it is shown in ``seen``."""
    channels, image_size = 1, 8

    def __init__(self, seen: list):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen = seen

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.w * x.flatten(1).mean(1)


def test_instance_noise_reaches_every_discriminator_input():
    """With instance_noise = s, the real batch the discriminator sees differs from the data by N(0, s^2)."""
    seen = []

    data = torch.zeros(64, 1, 8, 8)
    train_gan(Generator(latent_dim=4, channels=1, image_size=8, width=8), _Recorder(seen), data, num_steps=2,
              batch_size=32, instance_noise=0.5, progress=False, device="cpu")
    real_seen = seen[0]                                   # the first call of a step is on real data
    assert real_seen.std().item() == pytest.approx(0.5, rel=0.1) and real_seen.mean().abs() < 0.05
    with pytest.raises(ValueError, match="instance_noise"):
        train_gan(Generator(latent_dim=4, channels=1, image_size=8, width=8), _Recorder(seen), data, num_steps=1,
                  batch_size=32, instance_noise=-1.0, progress=False, device="cpu")


def test_instance_noise_can_be_annealed():
    """instance_noise=(s0, s1): the first step's real batch carries noise of std s0, the last step's s1."""
    seen = []

    train_gan(Generator(latent_dim=4, channels=1, image_size=8, width=8), _Recorder(seen), torch.zeros(64, 1, 8, 8),
              num_steps=3, batch_size=32, instance_noise=(0.6, 0.0), progress=False, device="cpu")
    per_step = len(seen) // 3                         # D on real, D on fake, D on G's output
    assert seen[0].std().item() == pytest.approx(0.6, rel=0.1)
    assert seen[per_step].std().item() == pytest.approx(0.3, rel=0.1)
    assert seen[2 * per_step].abs().max().item() == 0.0


# --------------------------------------------------------------------------- moving-image video GAN
def test_moving_image_generator_shapes_range_and_latent_layout():
    from vdlearn.gan import MovingImageGenerator
    torch.manual_seed(0)
    g = MovingImageGenerator(content_dim=12, motion_dim=4, channels=3, frames=6, image_size=16, width=8)
    assert g.latent_dim == 12 + 6 * 4
    z = torch.randn(5, g.latent_dim)
    clips = g(z)
    assert clips.shape == (5, 3, 6, 16, 16) and clips.abs().max() <= 1
    offsets = g.offsets(z)
    assert offsets.shape == (5, 6, 2) and offsets.abs().max() < 1


def test_moving_image_generator_frames_are_shifted_copies_of_one_image():
    """With the offsets forced to o_t = (2k/W, 0) every frame is the image moved k pixels right, black
    (-1) entering at the left border; with zero offsets every frame is the image itself."""
    from vdlearn.gan import MovingImageGenerator
    torch.manual_seed(0)
    g = MovingImageGenerator(content_dim=8, motion_dim=4, channels=3, frames=4, image_size=16, width=8).eval()
    z = torch.randn(2, g.latent_dim)
    with torch.no_grad():
        image = g.image_generator(z[:, :8])
        g.to_offset.weight.zero_()
        still = g(z)
        torch.testing.assert_close(still, image[:, :, None].expand_as(still), atol=1e-5, rtol=0)
        g.to_offset.bias.copy_(torch.tensor([math.atanh(2 * 3 / 16), 0.0]))   # 3 pixels right
        moved = g(z)
    torch.testing.assert_close(moved[..., 3:], image[:, :, None, :, :-3].expand_as(moved[..., 3:]),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(moved[..., :3], torch.full_like(moved[..., :3], -1.0), atol=1e-4, rtol=0)


def test_moving_image_generator_content_sets_the_image_and_motion_only_the_path():
    """Different content codes give different clips at initialisation (no collapse built in); changing
    the innovation of frame k leaves the frames before k and the drawn image unchanged."""
    from vdlearn.gan import MovingImageGenerator
    torch.manual_seed(0)
    g = MovingImageGenerator(content_dim=8, motion_dim=4, channels=3, frames=5, image_size=16, width=8,
                             offset_init_std=0.5)
    z = torch.randn(16, g.latent_dim)
    clips = g(z).detach()                                          # train mode: batch statistics
    pairwise = torch.cdist(clips.flatten(1), clips.flatten(1))
    assert pairwise[~torch.eye(16, dtype=torch.bool)].min() > 1e-2
    g.eval()
    z2 = z.clone()
    k = 2
    z2[:, 8 + k * 4: 8 + (k + 1) * 4] += 1.0
    a, b = g(z).detach(), g(z2).detach()
    torch.testing.assert_close(a[:, :, :k], b[:, :, :k])
    assert not torch.allclose(a[:, :, k:], b[:, :, k:])
    assert torch.allclose(g.offsets(z)[:, :k], g.offsets(z2)[:, :k])


def test_moving_image_generator_is_deterministic_and_rejects_bad_input():
    from vdlearn.gan import MovingImageGenerator
    torch.manual_seed(3)
    a = MovingImageGenerator(content_dim=8, motion_dim=4, frames=4, image_size=16, width=8).eval()
    torch.manual_seed(3)
    b = MovingImageGenerator(content_dim=8, motion_dim=4, frames=4, image_size=16, width=8).eval()
    z = torch.randn(3, a.latent_dim)
    torch.testing.assert_close(a(z), b(z))
    with pytest.raises(ValueError, match=r"latents of shape \(batch, 24\)"):
        a(torch.randn(3, 8))
    with pytest.raises(ValueError, match="frames must be a positive int"):
        MovingImageGenerator(frames=0)
    with pytest.raises(ValueError, match="offset_init_std"):
        MovingImageGenerator(offset_init_std=-1.0)


def test_frame_discriminator_judges_every_frame_alone():
    """(B, T) logits; logit (b, t) depends on frame t of clip b only, and equals the image critic's."""
    from vdlearn.gan import FrameDiscriminator, MovingImageGenerator
    torch.manual_seed(0)
    d = FrameDiscriminator(channels=3, frames=4, image_size=16, width=8)
    clips = torch.rand(2, 3, 4, 16, 16) * 2 - 1
    logits = d(clips)
    assert logits.shape == (2, 4)
    torch.testing.assert_close(logits[1, 2], d.frame_critic(clips[1:2, :, 2])[0])
    changed = clips.clone()
    changed[0, :, 1] = 0.0
    diff = (d(changed) - logits).abs()
    assert diff[0, 1] > 0 and diff[0, [0, 2, 3]].max() == 0 and diff[1].max() == 0
    check_pair(MovingImageGenerator(frames=4, image_size=16, width=8), d)
    with pytest.raises(ValueError, match=r"expected clips \(B, 3, 4, 16, 16\)"):
        d(torch.zeros(2, 3, 5, 16, 16))
    with pytest.raises(ValueError, match="frames=8"):
        check_pair(MovingImageGenerator(frames=8, image_size=16, width=8), d)


def test_moving_image_gan_trains_end_to_end():
    from vdlearn.gan import FrameDiscriminator, MovingImageGenerator
    torch.manual_seed(0)
    g = MovingImageGenerator(content_dim=8, motion_dim=4, channels=3, frames=4, image_size=16, width=8)
    d = FrameDiscriminator(channels=3, frames=4, image_size=16, width=8)
    data = torch.rand(32, 3, 4, 16, 16) * 2 - 1
    before = [p.detach().clone() for p in g.parameters()]
    result = train_gan(g, d, data, num_steps=3, batch_size=8, instance_noise=0.3, ema_decay=0.9,
                       progress=False, device="cpu", log_every=1)
    assert len(result.history["d_loss"]) == 3 and all(math.isfinite(v) for v in result.history["g_loss"])
    assert any(not torch.equal(p, q) for p, q in zip(before, g.parameters()))
    assert result.best_generator.sample(2).shape == (2, 3, 4, 16, 16)


def test_frame_discriminator_can_judge_a_random_subset_of_frames():
    from vdlearn.gan import FrameDiscriminator
    torch.manual_seed(0)
    d = FrameDiscriminator(channels=1, frames=6, image_size=8, width=8, frames_per_clip=2)
    clips = torch.arange(6.0)[None, None, :, None, None].expand(3, 1, 6, 8, 8) / 6   # frame t is constant t/6
    logits = d(clips)
    assert logits.shape == (3, 2)
    per_frame = d.frame_critic(clips[0].transpose(0, 1))                             # the logit of each frame
    for row in logits:                                                                # two distinct frames
        hits = [int((per_frame - v).abs().argmin()) for v in row]
        assert len(set(hits)) == 2 and all(torch.isclose(per_frame[h], v, atol=1e-6) for h, v in zip(hits, row))
    for bad in (0, 7, 2.5):
        with pytest.raises(ValueError, match="frames_per_clip"):
            FrameDiscriminator(frames=6, frames_per_clip=bad)
