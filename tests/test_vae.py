"""vdlearn.vae: the math against closed forms, Monte Carlo and finite differences; the models' behaviour."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from vdlearn.vae import (ConvVAE, FrameVAE, LinearGaussian, MLPVAE, bernoulli_log_likelihood,
                         bits_per_dim, calibrate_scaling_factor, elbo, evaluate_elbo, gaussian_kl,
                         gaussian_log_likelihood, interpolate_latents, latent_interpolation_video,
                         latent_traversal, latent_walk_video, log_mean_exp, pathwise_gradient,
                         pixel_crossfade, reconstruct_video, reparameterize, score_function_gradient,
                         slerp, vae_loss)

D = torch.float64


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- the Gaussian KL ------------------------------------------------------------------------------

def _monte_carlo_kl(mu, logvar, p_mu, p_logvar, n):
    """Mean and standard error of log q(z) - log p(z), z ~ q (one example, summed over dims)."""
    q, p = Normal(mu, (0.5 * logvar).exp()), Normal(p_mu, (0.5 * p_logvar).exp())
    z = q.sample((n,))
    values = (q.log_prob(z) - p.log_prob(z)).sum(-1)
    return values.mean(), values.std() / math.sqrt(n)


@pytest.mark.parametrize("general_prior", [False, True])
def test_gaussian_kl_matches_monte_carlo(general_prior):
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, dtype=D), torch.randn(5, dtype=D) * 0.5
    p_mu = torch.randn(5, dtype=D) if general_prior else torch.zeros(5, dtype=D)
    p_logvar = torch.randn(5, dtype=D) * 0.5 if general_prior else torch.zeros(5, dtype=D)
    closed = gaussian_kl(mu, logvar, p_mu, p_logvar) if general_prior else gaussian_kl(mu, logvar)
    estimate, se = _monte_carlo_kl(mu, logvar, p_mu, p_logvar, 200_000)
    assert abs(closed - estimate) < 4 * se, (closed, estimate, se)
    # and against torch.distributions' own closed form
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(p_mu, (0.5 * p_logvar).exp())).sum()
    torch.testing.assert_close(closed, ref)


def test_gaussian_kl_is_zero_for_equal_distributions_and_sums_per_example():
    mu, logvar = torch.randn(4, 3, 2), torch.randn(4, 3, 2)
    assert torch.allclose(gaussian_kl(mu, logvar, mu, logvar), torch.zeros(4), atol=1e-6)
    assert gaussian_kl(torch.zeros(7, 3), torch.zeros(7, 3)).shape == (7,)
    assert (gaussian_kl(mu, logvar) > 0).all()


def test_gaussian_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="mu has shape"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4))


# --- the reparameterisation trick ------------------------------------------------------------------

def test_reparameterize_has_the_right_moments_and_is_seeded():
    mu, logvar = torch.full((200_000,), 1.5, dtype=D), torch.full((200_000,), math.log(0.25), dtype=D)
    z = reparameterize(mu, logvar, generator=_g(1))
    assert abs(z.mean() - 1.5) < 0.01 and abs(z.std() - 0.5) < 0.01
    torch.testing.assert_close(z, reparameterize(mu, logvar, generator=_g(1)))


def test_reparameterized_gradients_match_finite_differences():
    """d/d(mu, logvar) of a Monte Carlo objective with fixed noise, by autograd and by central differences."""
    def objective(mu, logvar):
        z = reparameterize(mu.expand(64, -1), logvar.expand(64, -1), generator=_g(3))
        return (torch.sin(z) * z.pow(2)).mean()

    mu = torch.tensor([0.3, -0.7, 1.1], dtype=D, requires_grad=True)
    logvar = torch.tensor([-0.5, 0.2, 0.0], dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(objective, (mu, logvar), eps=1e-6, atol=1e-7)


def test_pathwise_and_score_function_are_unbiased_and_pathwise_has_lower_variance():
    # f(z) = (z - 2)^2 with z ~ N(mu, sigma^2): E f = (mu - 2)^2 + sigma^2
    f = lambda z: (z - 2).pow(2).sum(-1)  # noqa: E731
    mu, logvar = torch.tensor([0.5], dtype=D), torch.tensor([math.log(0.8)], dtype=D)
    exact_mu, exact_logvar = 2 * (mu - 2), logvar.exp()      # d/dlogvar sigma^2 = sigma^2
    n = 200_000
    gp_mu, gp_lv = pathwise_gradient(f, mu, logvar, n, generator=_g(0))
    gs_mu, gs_lv = score_function_gradient(f, mu, logvar, n, generator=_g(1))
    for est, exact in ((gp_mu, exact_mu), (gp_lv, exact_logvar), (gs_mu, exact_mu), (gs_lv, exact_logvar)):
        se = est.std(0) / math.sqrt(n)
        assert (est.mean(0) - exact).abs() < 4 * se + 1e-9
    assert gp_mu.var() < gs_mu.var() / 5 and gp_lv.var() < gs_lv.var() / 5
    # a good baseline lowers the score-function variance and keeps it unbiased
    gb_mu, _ = score_function_gradient(f, mu, logvar, n, baseline=float((mu - 2) ** 2 + logvar.exp()),
                                       generator=_g(1))
    assert gb_mu.var() < gs_mu.var()
    assert (gb_mu.mean() - exact_mu).abs() < 4 * gb_mu.std() / math.sqrt(n)


def test_gradient_estimators_check_f():
    with pytest.raises(ValueError, match="one value per sample"):
        pathwise_gradient(lambda z: z, torch.zeros(2), torch.zeros(2), 10)


# --- likelihoods and the ELBO -----------------------------------------------------------------------

def test_likelihoods_match_torch_distributions():
    logits, x = torch.randn(3, 1, 4, 4, dtype=D), torch.randint(0, 2, (3, 1, 4, 4)).to(D)
    torch.testing.assert_close(bernoulli_log_likelihood(x, logits),
                               Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1))
    mean, y = torch.randn(3, 5, dtype=D), torch.randn(3, 5, dtype=D)
    torch.testing.assert_close(gaussian_log_likelihood(y, mean, math.log(0.3)),
                               Normal(mean, math.sqrt(0.3)).log_prob(y).sum(1))


def test_bernoulli_rejects_targets_outside_unit_interval():
    with pytest.raises(ValueError, match=r"targets in \[0, 1\].*\(x \+ 1\) / 2"):
        bernoulli_log_likelihood(torch.full((2, 4), -1.0), torch.zeros(2, 4))


def test_elbo_rejects_mismatched_reconstruction_and_unknown_likelihood():
    x, mu = torch.rand(2, 1, 28, 28), torch.zeros(2, 8)
    with pytest.raises(ValueError, match=r"\(2, 1, 28, 28\).*\(2, 1, 32, 32\)"):
        elbo(x, torch.zeros(2, 1, 32, 32), mu, mu)
    with pytest.raises(ValueError, match="likelihood must be"):
        elbo(x, torch.zeros_like(x), mu, mu, likelihood="poisson")


def test_elbo_terms_loss_beta_and_bits_per_dim():
    x, logits = torch.rand(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    t1, t4 = elbo(x, logits, mu, logvar), elbo(x, logits, mu, logvar, beta=4.0)
    ll, kl = bernoulli_log_likelihood(x, logits), gaussian_kl(mu, logvar)
    torch.testing.assert_close(t1.elbo, ll - kl)
    torch.testing.assert_close(t4.loss, (4 * kl - ll).mean())
    torch.testing.assert_close(t1.nats, -(ll - kl).mean())
    assert abs(float(t1.bits_per_dim) - float(t1.nats) / (4 * math.log(2))) < 1e-6
    # the 8-bit correction: a density per dimension of 1 (0 nats) is -log2(2/255) bits per pixel value
    assert abs(float(bits_per_dim(0.0, 10, bin_width=2 / 255)) - math.log2(127.5)) < 1e-9


def test_elbo_never_exceeds_the_exact_log_likelihood_on_a_linear_gaussian_model():
    model = LinearGaussian.random(d=3, k=2, sigma=0.7, seed=1)
    x, _ = model.sample(6, generator=_g(2))
    log_px = model.log_marginal(x)
    g = _g(3)
    for _ in range(20):                                         # arbitrary diagonal Gaussians q
        q_mu, q_lv = torch.randn(6, 2, generator=g, dtype=D), torch.randn(6, 2, generator=g, dtype=D)
        exact_elbo = model.elbo(x, q_mu, q_lv)
        assert (exact_elbo <= log_px + 1e-12).all()
        # the gap is exactly KL(q || p(z|x))
        torch.testing.assert_close(log_px - exact_elbo, model.kl_to_posterior(x, q_mu, q_lv))
    # the Monte Carlo ELBO of vdlearn.vae.elbo (Gaussian decoder) estimates the same number
    q_mu, q_lv = model.best_diagonal_q(x)
    n = 20_000
    z = reparameterize(q_mu.expand(n, -1, -1), q_lv.expand(n, -1, -1), generator=_g(4))
    terms = elbo(x.expand(n, -1, -1).reshape(-1, 3), model.decoder_mean(z).reshape(-1, 3),
                 q_mu.expand(n, -1, -1).reshape(-1, 2), q_lv.expand(n, -1, -1).reshape(-1, 2),
                 likelihood="gaussian", obs_logvar=2 * math.log(model.sigma))
    mc = terms.elbo.reshape(n, 6)
    se = mc.std(0) / math.sqrt(n)
    assert ((mc.mean(0) - model.elbo(x, q_mu, q_lv)).abs() < 4 * se).all()


def test_elbo_is_tight_at_the_exact_posterior():
    model = LinearGaussian.random(d=4, k=1, sigma=0.5, seed=0)  # k=1: the posterior is diagonal
    x, _ = model.sample(5, generator=_g(0))
    mean, cov = model.posterior(x)
    q_mu, q_lv = model.best_diagonal_q(x)
    torch.testing.assert_close(q_lv.exp(), cov.diagonal().expand_as(q_lv))
    torch.testing.assert_close(model.elbo(x, q_mu, q_lv), model.log_marginal(x))


def test_posterior_is_bayes_rule():
    """log p(z|x) = log p(x, z) - log p(x) at random points."""
    model = LinearGaussian.random(d=3, k=2, sigma=0.6, seed=4)
    x, _ = model.sample(4, generator=_g(5))
    z = torch.randn(4, 2, generator=_g(6), dtype=D)
    mean, cov = model.posterior(x)
    post = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
    torch.testing.assert_close(post.log_prob(z), model.log_joint(x, z) - model.log_marginal(x))


def test_importance_weighting_tightens_towards_log_px():
    model = LinearGaussian.random(d=3, k=2, sigma=0.5, seed=2)
    x, _ = model.sample(1, generator=_g(0))
    q_mu, q_lv = model.best_diagonal_q(x)
    q_mu, q_lv = q_mu + 0.7, q_lv + 1.0                          # a worse q: shifted and wider
    log_px = float(model.log_marginal(x))
    g, bounds = _g(1), [float(model.elbo(x, q_mu, q_lv))]        # K = 1 is the ELBO itself
    for K, reps in ((10, 400), (1000, 40)):
        z = reparameterize(q_mu.expand(reps, K, 2), q_lv.expand(reps, K, 2), generator=g)
        log_q = Normal(q_mu, (0.5 * q_lv).exp()).log_prob(z).sum(-1)
        bounds.append(float(log_mean_exp(model.log_joint(x, z) - log_q, dim=1).mean()))
    assert bounds[0] < bounds[1] < bounds[2] <= log_px + 1e-3
    assert log_px - bounds[2] < 0.05 * (log_px - bounds[0])


# --- models -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_conv_vae_shapes(channels, size):
    model = ConvVAE(channels, size, latent_dim=5, width=8, hidden=32)
    x = torch.rand(3, channels, size, size) * 2 - 1
    out = model(x)
    assert out.decoder_out.shape == x.shape and out.mu.shape == (3, 5) and out.z.shape == (3, 5)
    assert model.sample(2, generator=_g()).shape == (2, channels, size, size)
    rec = model.reconstruct(x)
    assert rec.shape == x.shape and rec.min() >= -1 and rec.max() <= 1


def test_conv_vae_explains_wrong_input():
    with pytest.raises(ValueError, match=r"expects images \(B, 1, 28, 28\); got \(2, 1, 32, 32\)"):
        ConvVAE(1, 28)(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvVAE(1, 30)


@pytest.mark.parametrize("downsample", [4, 8])
def test_frame_vae_encodes_videos_frame_by_frame(downsample):
    torch.manual_seed(0)
    vae = FrameVAE(3, latent_channels=3, downsample=downsample, width=8).eval()
    video = torch.rand(2, 3, 5, 32, 32) * 2 - 1
    z = vae.encode_video(video, chunk_size=3)
    s = 32 // downsample
    assert z.shape == (2, 3, 5, s, s)
    # frame t of video b is encoded on its own, exactly
    torch.testing.assert_close(z[1, :, 2], vae.encode(video[1, :, 2][None])[0][0], atol=1e-5, rtol=1e-5)
    x = vae.decode_video(z)
    assert x.shape == video.shape and x.abs().max() <= 1
    torch.testing.assert_close(x[0, :, 4], vae.decode_mean(z[0, :, 4][None])[0].clamp(-1, 1),
                               atol=1e-5, rtol=1e-5)
    assert vae.compression_ratio() == 3 * downsample**2 / 3
    assert vae.sample(2).shape == (2, 3, 32, 32)


def test_frame_vae_scaling_factor_gives_unit_variance_and_round_trips():
    torch.manual_seed(0)
    vae = FrameVAE(1, latent_channels=2, downsample=4, width=8).eval()
    frames = torch.rand(40, 1, 16, 16) * 2 - 1
    s = calibrate_scaling_factor(vae, frames)
    assert float(vae.scaling_factor) == pytest.approx(s)
    video = frames[:8].reshape(2, 4, 1, 16, 16).transpose(1, 2)
    z = vae.encode_video(video)
    assert 0.5 < z.std() < 2.0                                     # (near) unit variance
    unscaled = vae.encode_video(video, scaled=False)
    torch.testing.assert_close(z, unscaled * s)
    torch.testing.assert_close(vae.decode_video(z), vae.decode_video(unscaled, scaled=False))
    assert "scaling_factor" in vae.state_dict()


def test_frame_vae_explains_wrong_input():
    vae = FrameVAE(3, downsample=8, width=8)
    with pytest.raises(ValueError, match="use encode_video"):
        vae.encode(torch.zeros(1, 3, 4, 32, 32))
    with pytest.raises(ValueError, match="divisible by downsample=8"):
        vae.encode(torch.zeros(1, 3, 28, 28))
    with pytest.raises(ValueError, match=r"Add a batch dimension"):
        vae.encode_video(torch.zeros(3, 4, 32, 32))
    with pytest.raises(ValueError, match="downsample must be"):
        FrameVAE(downsample=3)


def _fit(model, data, steps, seed=0, **kw):
    from vdlearn.train import fit
    return fit(model, lambda m, b: vae_loss(m, b, **kw), data, num_steps=steps, batch_size=32,
               lr=2e-3, seed=seed, device="cpu", progress=False, log_every=10)


def _blobs(n=256, size=16, seed=0):
    """Images of one bright square at a random place: a learnable little data set."""
    g = _g(seed)
    x = -torch.ones(n, 1, size, size)
    pos = torch.randint(0, size - 6, (n, 2), generator=g)
    for i, (r, c) in enumerate(pos.tolist()):
        x[i, :, r:r + 6, c:c + 6] = 1.0
    return x


def test_conv_vae_loss_falls_and_training_is_seeded():
    torch.manual_seed(0)
    data = _blobs()
    r1 = _fit(ConvVAE(1, 16, latent_dim=4, width=8, hidden=64), data, 40)
    assert r1.history["neg_elbo"][-1] < 0.75 * r1.history["neg_elbo"][0]
    torch.manual_seed(0)
    r2 = _fit(ConvVAE(1, 16, latent_dim=4, width=8, hidden=64), data, 40)
    assert r1.history["loss"] == r2.history["loss"]
    ev = evaluate_elbo(r1.model, data[:64], importance_samples=8, num_samples=2)
    assert ev["neg_elbo"] == pytest.approx(ev["recon"] + ev["kl"], rel=1e-5)
    assert ev["neg_log_likelihood_iw"] <= ev["neg_elbo"] + 1.0
    assert ev["bits_per_dim"] == pytest.approx(ev["neg_elbo"] / (256 * math.log(2)))


def test_frame_vae_learns_a_calibrated_gaussian_decoder_from_videos():
    torch.manual_seed(0)
    video = _blobs(128, 16).reshape(32, 4, 1, 16, 16).transpose(1, 2).expand(-1, 3, -1, -1, -1)
    model = FrameVAE(3, latent_channels=2, downsample=4, width=8)
    before = model.obs_logvar.item()
    res = _fit(model, video.contiguous(), 30)
    assert res.history["recon"][-1] < res.history["recon"][0]
    # the learned sigma^2 moves towards the decoder's actual squared error (its optimum)
    with torch.no_grad():
        frames = video.transpose(1, 2).flatten(0, 1)
        log_mse = math.log(float((model(frames).decoder_out - frames).pow(2).mean()))
    assert abs(model.obs_logvar.item() - log_mse) < abs(before - log_mse)


def test_a_frame_vae_sees_a_batch_of_videos_as_its_frames():
    # vae_loss, evaluate_elbo and calibrate_scaling_factor cut videos into frames for a FrameVAE
    # (it says nothing of takes_video); a CausalVideoVAE gets whole clips (tests/test_causal_vae.py)
    torch.manual_seed(0)
    vae = FrameVAE(1, latent_channels=2, downsample=4, width=8).eval()
    video = _blobs(12, 16).reshape(3, 4, 1, 16, 16).transpose(1, 2)   # 3 clips of 4 frames
    frames = video.transpose(1, 2).flatten(0, 1)                       # their 12 frames
    torch.manual_seed(1)
    from_video, _ = vae_loss(vae, video)
    torch.manual_seed(1)
    from_frames, _ = vae_loss(vae, frames)
    torch.testing.assert_close(from_video, from_frames)
    assert calibrate_scaling_factor(vae, video, batch_size=2) == pytest.approx(
        calibrate_scaling_factor(vae, frames), rel=1e-5)
    ev = evaluate_elbo(vae, video, batch_size=2)
    assert ev["num_examples"] == 3                                     # an example is a clip ...
    # ... the sum over its 4 frames, so bits per dimension count the dimensions of all 4
    assert ev["bits_per_dim"] == pytest.approx(ev["neg_elbo"] / (4 * 256 * math.log(2)))


def test_evaluate_elbo_explains_empty_data():
    with pytest.raises(ValueError, match="at least one example"):
        evaluate_elbo(ConvVAE(1, 16, latent_dim=2, width=4, hidden=16), torch.zeros(0, 1, 16, 16))


def test_vae_loss_binarize_and_batches_with_labels():
    model = ConvVAE(1, 16, latent_dim=2, width=4, hidden=16)
    loss, metrics = vae_loss(model, (_blobs(8) * 0.5, torch.zeros(8)), binarize=True)
    assert loss.ndim == 0 and set(metrics) == {"neg_elbo", "recon", "kl"}
    with pytest.raises(ValueError, match="binarize=True needs a Bernoulli"):
        vae_loss(FrameVAE(1, width=8), _blobs(4), binarize=True)


def test_mlp_vae_on_vectors():
    model = MLPVAE(2, 2, hidden=16)
    out = model(torch.randn(5, 2))
    assert out.decoder_out.shape == (5, 2) and model.sample(3).shape == (3, 2)
    with pytest.raises(ValueError, match=r"expects a batch \(B, 2\)"):
        model(torch.randn(5, 3))


# --- interpolation and video ----------------------------------------------------------------------

def test_slerp_end_points_and_norms():
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    path = interpolate_latents(a, b, 5)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    torch.testing.assert_close(path.norm(dim=1), torch.full((5,), 3.0))    # stays on the sphere
    lerp = interpolate_latents(a, b, 5, method="lerp")
    assert lerp[2].norm() < 3.0 - 0.5                                       # cuts through the middle
    torch.testing.assert_close(slerp(a, a * 2, 0.5), a * 1.5)              # parallel: a straight line
    with pytest.raises(ValueError, match="at least 2"):
        interpolate_latents(a, b, 1)


def test_video_helpers_shapes():
    torch.manual_seed(0)
    model = ConvVAE(1, 16, latent_dim=3, width=4, hidden=16).eval()
    x0, x1 = _blobs(2)
    assert pixel_crossfade(x0, x1, 7).shape == (1, 7, 16, 16)
    torch.testing.assert_close(pixel_crossfade(x0, x1, 7)[:, -1], x1)
    assert latent_interpolation_video(model, x0, x1, 6).shape == (1, 6, 16, 16)
    assert latent_traversal(model, torch.zeros(3), 1, torch.linspace(-2, 2, 5)).shape == (5, 1, 16, 16)
    walk = latent_walk_video(model, 12, 3, generator=_g())
    assert walk.shape == (1, 12, 16, 16)
    open_walk = latent_walk_video(model, 9, keyframes=torch.randn(3, 3, generator=_g()), loop=False)
    assert open_walk.shape == (1, 9, 16, 16)
    assert reconstruct_video(model, _blobs(6).transpose(0, 1)).shape == (1, 6, 16, 16)
    with pytest.raises(ValueError, match=r"one image \(C, H, W\)"):
        latent_interpolation_video(model, x0[None], x1[None])


# --- frames from a folder or a video file ---------------------------------------------------------

def _write_pngs(folder, frames):
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        arr = ((f.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(arr).save(folder / f"frame_{i}.png")


def test_load_frames_from_a_folder_and_a_video_file(tmp_path):
    from vdlearn.videoio import write_video
    from vdlearn.videoio import load_frames
    frames = _blobs(12, 16).expand(-1, 3, -1, -1)
    _write_pngs(tmp_path / "frames", frames)
    got = load_frames(tmp_path / "frames")
    assert got.shape == (12, 3, 16, 16)
    torch.testing.assert_close(got, frames, atol=1 / 127, rtol=0)     # 8-bit round trip, in order
    assert load_frames(tmp_path / "frames", size=8, channels=1).shape == (12, 1, 8, 8)
    write_video(tmp_path / "clip.mp4", frames.transpose(0, 1))
    clip = load_frames(tmp_path / "clip.mp4", size=16)
    assert clip.shape == (12, 3, 16, 16) and (clip - frames).abs().mean() < 0.1   # lossy codec


def test_load_frames_explains_bad_folders(tmp_path):
    from PIL import Image
    from vdlearn.videoio import load_frames
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images in folder"):
        load_frames(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("RGB", (16, 16)).save(mixed / "0.png")
    Image.new("RGB", (20, 16)).save(mixed / "1.png")
    with pytest.raises(ValueError, match="differ in size.*pass size="):
        load_frames(mixed)
    assert load_frames(mixed, size=16).shape == (2, 3, 16, 16)
    with pytest.raises(FileNotFoundError, match="no folder or video file"):
        load_frames(tmp_path / "missing")
    with pytest.raises(ValueError, match="channels must be 1"):
        load_frames(mixed, size=16, channels=2)
