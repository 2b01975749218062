"""Tests of the causal 3D video VAE (vdlearn.vae.causal, lesson 09)."""
import math

import pytest
import torch

from vdlearn.vae import calibrate_scaling_factor, evaluate_elbo, vae_loss
from vdlearn.vae.causal import (CausalConv3d, CausalVideoVAE, FrameGroupNorm, TimeDownsample, TimeUpsample,
                                causal_pad, chunk_lengths, decode_chunked, encode_chunked)
from vdlearn.vae.objectives import elbo


def tiny(temporal_down: int = 2, **kwargs) -> CausalVideoVAE:
    torch.manual_seed(0)
    return CausalVideoVAE(in_channels=3, latent_channels=4, width=8, temporal_down=temporal_down,
                          image_size=16, **kwargs).eval()


def clips(b: int, t: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, t, size, size, generator=g) * 2 - 1


# -- causal padding and convolution -------------------------------------------------------------------------
def test_causal_pad_replicates_the_first_frame_or_puts_the_past_in_front():
    x = torch.arange(3.0).view(1, 1, 3, 1, 1)
    assert causal_pad(x, 2).flatten().tolist() == [0, 0, 0, 1, 2]
    past = torch.tensor([7.0, 8.0]).view(1, 1, 2, 1, 1)
    assert causal_pad(x, 2, past).flatten().tolist() == [7, 8, 0, 1, 2]


def test_causal_conv_sees_only_the_past_and_keeps_the_frame_count():
    torch.manual_seed(0)
    conv = CausalConv3d(2, 3, (3, 3, 3))
    x = torch.randn(1, 2, 7, 5, 5)
    y = conv(x)
    assert y.shape == (1, 3, 7, 5, 5)
    x2 = x.clone()
    x2[:, :, 4] += 1.0
    y2 = conv(x2)
    assert torch.equal(y[:, :, :4], y2[:, :, :4])
    assert not torch.allclose(y[:, :, 4:], y2[:, :, 4:])


def test_strided_causal_conv_keeps_the_first_frame_alone():
    conv = CausalConv3d(1, 1, (3, 1, 1), stride=(2, 1, 1))
    for t, want in [(1, 1), (3, 2), (9, 5), (17, 9)]:
        assert conv(torch.randn(1, 1, t, 2, 2)).shape[2] == want
    x = torch.randn(1, 1, 9, 2, 2)
    x2 = x.clone()
    x2[:, :, 1:] = 0.0  # output 0 depends on frame 0 alone
    assert torch.equal(conv(x)[:, :, 0], conv(x2)[:, :, 0])


@pytest.mark.parametrize("stride", [1, 2])
def test_causal_conv_chunked_equals_whole(stride):
    torch.manual_seed(0)
    conv = CausalConv3d(2, 2, (3, 3, 3), stride=(stride, 1, 1))
    x = torch.randn(1, 2, 13, 4, 4)
    cache = {}
    parts = [conv(c, cache) for c in x.split([1, 4, 4, 4], dim=2)]
    torch.testing.assert_close(torch.cat(parts, dim=2), conv(x), atol=1e-6, rtol=0)
    assert cache[conv].shape[2] == 3 - stride  # the context kept for the next chunk: k_t - s_t frames


def test_misaligned_chunk_is_an_error():
    conv = CausalConv3d(1, 1, (3, 1, 1), stride=(2, 1, 1))
    cache = {}
    conv(torch.randn(1, 1, 1, 2, 2), cache)
    with pytest.raises(ValueError, match="multiple of 2"):
        conv(torch.randn(1, 1, 3, 2, 2), cache)


def test_frame_group_norm_normalises_each_frame_alone():
    norm = FrameGroupNorm(2, 4)
    x = torch.randn(2, 4, 5, 3, 3)
    x[:, :, 3:] *= 100.0  # loud later frames must not change how earlier ones are normalised
    torch.testing.assert_close(norm(x)[:, :, :3], norm(x[:, :, :3]))


def test_time_resampling_starts_as_pooling_and_repetition():
    x = torch.randn(1, 4, 5, 2, 2)
    down = TimeDownsample(4)(x)
    torch.testing.assert_close(down[:, :, 0], x[:, :, 0])
    torch.testing.assert_close(down[:, :, 1], (x[:, :, 1] + x[:, :, 2]) / 2)
    up = TimeUpsample(4)(x)
    assert up.shape[2] == 9
    torch.testing.assert_close(up[:, :, 0], x[:, :, 0])
    torch.testing.assert_close(up[:, :, 3], x[:, :, 2])


# -- shapes and the frame-count rule -------------------------------------------------------------------------
@pytest.mark.parametrize("t,latent_t", [(1, 1), (9, 5), (17, 9)])
def test_shapes(t, latent_t):
    vae = tiny()
    with torch.no_grad():
        mu, logvar = vae.encode(clips(2, t))
        assert mu.shape == logvar.shape == (2, 4, latent_t, 4, 4)
        assert vae.decode(mu).shape == (2, 3, t, 16, 16)
        assert vae(clips(2, t)).decoder_out.shape == (2, 3, t, 16, 16)
    assert vae.latent_shape_for(t, 16) == (4, latent_t, 4, 4)


def test_sixteen_frames_are_padded_to_seventeen_and_cropped_back():
    vae = tiny()
    x = clips(2, 16)
    with torch.no_grad():
        mu, _ = vae.encode(x)
        assert mu.shape[2] == 9
        # the rule: repeat the last frame once, 16 -> 17
        torch.testing.assert_close(mu, vae.encode(torch.cat([x, x[:, :, -1:]], dim=2))[0])
        assert vae.decode(mu).shape[2] == 17
        assert vae.decode(mu, frames=16).shape[2] == 16
        assert vae(x).decoder_out.shape == x.shape
        assert vae.reconstruct(x).shape == x.shape
        assert vae.decode_video(vae.encode_video(x), frames=16).shape == x.shape
        with pytest.raises(ValueError, match="15"):
            vae.decode(mu, frames=15)
    assert vae.latent_frames(16) == 9 and vae.video_frames(9) == 17


def test_four_times_in_time():
    vae = tiny(temporal_down=4)
    with torch.no_grad():
        mu, _ = vae.encode(clips(1, 17))
        assert mu.shape[2] == 5
        assert vae.decode(mu).shape[2] == 17
        assert vae.encode(clips(1, 16))[0].shape[2] == 5
    assert vae.compression_ratio() == pytest.approx(3 * 16 * 4 / 4)


def test_image_is_a_one_frame_video_and_the_first_latent_of_any_clip_starting_with_it():
    vae = tiny()
    video = clips(2, 9)
    with torch.no_grad():
        z_img, _ = vae.encode(video[:, :, :1])
        assert z_img.shape == (2, 4, 1, 4, 4)
        assert vae.decode_video(z_img, scaled=False).shape == (2, 3, 1, 16, 16)
        torch.testing.assert_close(vae.encode(video)[0][:, :, :1], z_img, atol=1e-6, rtol=0)


def test_a_still_clip_encodes_to_the_image_latent_at_every_time():
    # the replicated padding makes an image look like a clip that has always been still
    vae = tiny()
    image = clips(1, 1)
    with torch.no_grad():
        z_img = vae.encode(image)[0]
        z_still = vae.encode(image.expand(-1, -1, 9, -1, -1))[0]
    torch.testing.assert_close(z_still, z_img.expand_as(z_still), atol=1e-5, rtol=0)


def test_sample_draws_clips_of_the_configured_length():
    vae = tiny(frames=16)
    assert vae.latent_shape == (4, 9, 4, 4)
    assert vae.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, 3, 16, 16, 16)


# -- causality of the whole model ------------------------------------------------------------------------------
@pytest.mark.parametrize("s", [2, 4])
def test_encoder_is_causal(s):
    vae = tiny(temporal_down=s)
    x = clips(1, 17)
    t = 5
    x2 = x.clone()
    x2[:, :, t] = -x2[:, :, t]
    with torch.no_grad():
        z, z2 = vae.encode(x)[0], vae.encode(x2)[0]
    first_affected = -(-t // s)  # latent j covers frames <= j s
    torch.testing.assert_close(z[:, :, :first_affected], z2[:, :, :first_affected], atol=1e-6, rtol=0)
    assert (z[:, :, first_affected] - z2[:, :, first_affected]).abs().max() > 1e-4


@pytest.mark.parametrize("s", [2, 4])
def test_decoder_is_causal(s):
    vae = tiny(temporal_down=s)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(1, 4, 5, 4, 4, generator=g)
    j = 3
    z2 = z.clone()
    z2[:, :, j] += 1.0
    with torch.no_grad():
        x, x2 = vae.decode(z), vae.decode(z2)
    first_affected = (j - 1) * s + 1  # latent j decodes to frames (j-1)s+1 .. js
    torch.testing.assert_close(x[:, :, :first_affected], x2[:, :, :first_affected], atol=1e-6, rtol=0)
    assert (x[:, :, first_affected] - x2[:, :, first_affected]).abs().max() > 1e-4


# -- chunked encoding and decoding -----------------------------------------------------------------------------
def test_chunk_lengths():
    assert chunk_lengths(17, 8) == [1, 8, 8]
    assert chunk_lengths(65, 24) == [1, 24, 24, 16]
    assert chunk_lengths(1, 8) == [1]


@pytest.mark.parametrize("s,t,chunk", [(2, 65, 8), (2, 64, 6), (4, 65, 8)])
def test_chunked_equals_whole(s, t, chunk):
    vae = tiny(temporal_down=s)
    x = clips(1, t, seed=3)
    with torch.no_grad():
        mu, logvar = vae.encode(x)
        mu_c, logvar_c = encode_chunked(vae, x, chunk)
        torch.testing.assert_close(mu_c, mu, atol=1e-5, rtol=0)
        torch.testing.assert_close(logvar_c, logvar, atol=1e-5, rtol=0)
        torch.testing.assert_close(vae.encode_video(x, chunk_frames=chunk), vae.encode_video(x), atol=1e-5, rtol=0)
        torch.testing.assert_close(decode_chunked(vae, mu, chunk), vae.decode(mu), atol=1e-5, rtol=0)
        torch.testing.assert_close(vae.decode_video(mu, chunk_frames=chunk, frames=t),
                                   vae.decode_video(mu, frames=t), atol=1e-5, rtol=0)


def test_chunk_frames_must_be_a_multiple_of_the_time_stride():
    vae = tiny()
    with pytest.raises(ValueError, match="multiple of temporal_down=2"):
        encode_chunked(vae, clips(1, 9), 3)
    with pytest.raises(ValueError, match="multiple of temporal_down=2"):
        decode_chunked(vae, torch.zeros(1, 4, 5, 4, 4), 5)


# -- errors a person can act on --------------------------------------------------------------------------------
@pytest.mark.parametrize("x,match", [
    (torch.zeros(2, 3, 16, 16), r"unsqueeze\(2\)"),                        # images without a time axis
    (torch.zeros(3, 9, 16, 16), r"4-D"),                                    # one clip without a batch axis
    (torch.zeros(16, 16), r"2-D tensor"),
    (torch.zeros(1, 1, 9, 16, 16), r"1 channels.*in_channels=1"),
    (torch.zeros(1, 9, 3, 16, 16), r"9 channels.*transpose\(1, 2\)"),      # (B, T, C, H, W)
    (torch.zeros(1, 3, 9, 18, 16), r"multiples of spatial_down=4; got 18x16"),
    (torch.full((1, 3, 9, 16, 16), 255.0), r"\[-1, 1\].*127.5"),
    (torch.zeros(1, 3, 9, 16, 16, dtype=torch.uint8), r"uint8.*127.5"),
    (torch.full((1, 3, 9, 16, 16), float("nan")), r"NaN"),
])
def test_bad_inputs_say_what_was_expected(x, match):
    vae = tiny()
    with pytest.raises(ValueError, match=match):
        vae.encode(x)
    with pytest.raises(ValueError, match=match):
        vae.encode_video(x)


def test_bad_latents_and_settings():
    vae = tiny()
    with pytest.raises(ValueError, match=r"\(B, 4, t, h, w\)"):
        vae.decode(torch.zeros(1, 3, 5, 4, 4))
    with pytest.raises(ValueError, match="batch axis"):
        vae.decode_video(torch.zeros(4, 5, 4, 4))
    with pytest.raises(ValueError, match="temporal_down"):
        CausalVideoVAE(temporal_down=3)
    with pytest.raises(ValueError, match="spatial_down"):
        CausalVideoVAE(spatial_down=16)
    with pytest.raises(ValueError, match="stride"):
        CausalConv3d(1, 1, 3, stride=(1, 2, 2))


# -- training, evaluation, scaling: the course's one loss and calibration, with time kept ---------------------
class Wrapper(torch.nn.Module):
    """Keeps the model in ``.module`` and forwards to it, as DistributedDataParallel does."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)


def test_vae_loss_sees_whole_clips():
    vae = tiny()
    x = clips(2, 9)
    torch.manual_seed(1)
    loss, metrics = vae_loss(vae, x, beta=0.5)
    torch.manual_seed(1)
    out = vae(x)  # one clip in, one latent clip (5 latent frames) out: nothing cut into frames
    assert out.mu.shape == (2, 4, 5, 4, 4)
    want = elbo(x, out.decoder_out, out.mu, out.logvar, likelihood="gaussian",
                obs_logvar=vae.obs_logvar_value(), beta=0.5)
    torch.testing.assert_close(loss, want.loss)
    assert set(metrics) == {"neg_elbo", "recon", "kl"}


def test_vae_loss_trains():
    vae = tiny().train()
    x = clips(2, 9)
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    losses = []
    for _ in range(8):
        loss, metrics = vae_loss(vae, x, beta=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    # a batch that does not fit 1 + s k frames trains too (padded, cropped back), as (clips, labels)
    loss, _ = vae_loss(vae, (clips(2, 8), torch.zeros(2)))
    assert torch.isfinite(loss)


def test_vae_loss_looks_through_a_distributed_wrapper():
    vae = tiny()
    x = clips(2, 9)
    torch.manual_seed(2)
    direct, _ = vae_loss(vae, x)
    torch.manual_seed(2)
    wrapped, _ = vae_loss(Wrapper(vae), x)  # the wrapper has no takes_video, targets or likelihood
    torch.testing.assert_close(wrapped, direct)


def test_bernoulli_likelihood():
    vae = tiny(likelihood="bernoulli")
    x = clips(1, 9)
    loss, _ = vae_loss(vae, x)
    assert torch.isfinite(loss)
    loss, _ = vae_loss(vae, x, binarize=True)
    assert torch.isfinite(loss)
    out = vae.decode_video(vae.encode_video(x))
    assert out.shape == x.shape and out.abs().max() <= 1


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_evaluate_elbo_per_clip(likelihood):
    vae = tiny(likelihood=likelihood)
    data = clips(3, 8)  # 8 frames: padded to 9 inside, every bound on the 8 frames given
    torch.manual_seed(0)
    ev = evaluate_elbo(vae, data, batch_size=2, importance_samples=3)
    assert ev["num_examples"] == 3
    assert ev["neg_elbo"] == pytest.approx(ev["recon"] + ev["kl"], rel=1e-5)
    assert ev["bits_per_dim"] == pytest.approx(ev["neg_elbo"] / (3 * 8 * 16 * 16 * math.log(2)))
    assert math.isfinite(ev["neg_log_likelihood_iw"])


def test_scaling_factor_is_saved_and_used():
    vae = tiny()
    assert "scaling_factor" in vae.state_dict()
    data = clips(6, 9)
    factor = calibrate_scaling_factor(vae, data, batch_size=4)
    with torch.no_grad():
        raw = vae.encode_video(data, scaled=False)
        assert raw.shape == (6, 4, 5, 4, 4)  # the latents of whole clips, not of frames
        torch.testing.assert_close(raw.std() * factor, torch.tensor(1.0), atol=1e-4, rtol=0)
        torch.testing.assert_close(vae.encode_video(data), raw * factor)
        torch.testing.assert_close(vae.decode_video(raw * factor), vae.decode_video(raw, scaled=False))
        torch.testing.assert_close(vae.encode_video(data, chunk_size=9), vae.encode_video(data))
    other = tiny()
    other.load_state_dict(vae.state_dict())
    assert other.scaling_factor.item() == pytest.approx(factor)


# -- inflation from a FrameVAE ---------------------------------------------------------------------------
def _trained_like_frame_vae(width=8, latent_channels=4):
    from vdlearn.vae import FrameVAE
    torch.manual_seed(3)
    frame_vae = FrameVAE(latent_channels=latent_channels, downsample=4, width=width, image_size=16)
    with torch.no_grad():                          # non-default norms and biases, as after training
        for p in frame_vae.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return frame_vae.eval()


def test_inflated_vae_without_time_compression_is_the_frame_vae_on_every_frame():
    from vdlearn.vae import inflate_frame_vae
    frame_vae = _trained_like_frame_vae()
    video_vae = inflate_frame_vae(CausalVideoVAE(latent_channels=4, width=8, temporal_down=1, image_size=16),
                                  frame_vae).eval()
    x = torch.rand(2, 3, 5, 16, 16) * 2 - 1
    frames = x.transpose(1, 2).reshape(10, 3, 16, 16)
    with torch.no_grad():
        mu, logvar = video_vae.encode(x)
        mu2, logvar2 = frame_vae.encode(frames)
        out, out2 = video_vae.decode(mu), frame_vae.decode(mu2)
    as_video = lambda t: t.reshape(2, 5, *t.shape[1:]).transpose(1, 2)  # noqa: E731
    torch.testing.assert_close(mu, as_video(mu2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logvar, as_video(logvar2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, as_video(out2), atol=1e-5, rtol=1e-5)


def test_inflated_vae_with_more_latent_channels_decodes_only_the_frame_vae_ones_at_first():
    from vdlearn.vae import inflate_frame_vae
    frame_vae = _trained_like_frame_vae()
    video_vae = inflate_frame_vae(CausalVideoVAE(latent_channels=6, width=8, temporal_down=2, image_size=16),
                                  frame_vae).eval()
    x = torch.rand(1, 3, 1, 16, 16) * 2 - 1                 # an image: time compression does nothing to it
    with torch.no_grad():
        mu, logvar = video_vae.encode(x)
        mu2, logvar2 = frame_vae.encode(x[:, :, 0])
        torch.testing.assert_close(mu[:, :4, 0], mu2, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(logvar[:, :4, 0], logvar2, atol=1e-5, rtol=1e-5)
        z = torch.randn(1, 6, 1, 4, 4)
        moved = z.clone()
        moved[:, 4:] += 5.0                                 # the extra channels start unheard
        torch.testing.assert_close(video_vae.decode(z), video_vae.decode(moved))
        torch.testing.assert_close(video_vae.decode(z)[:, :, 0], frame_vae.decode(z[:, :4, 0]), atol=1e-5, rtol=1e-5)


def test_inflating_a_frame_vae_of_another_shape_is_explained():
    from vdlearn.vae import inflate_frame_vae
    frame_vae = _trained_like_frame_vae(width=8)
    with pytest.raises(ValueError, match="width"):
        inflate_frame_vae(CausalVideoVAE(latent_channels=4, width=16, image_size=16), frame_vae)
    with pytest.raises(ValueError, match="latent channels"):
        inflate_frame_vae(CausalVideoVAE(latent_channels=2, width=8, image_size=16), frame_vae)
    with pytest.raises(TypeError, match="CausalVideoVAE"):
        inflate_frame_vae(frame_vae, frame_vae)
