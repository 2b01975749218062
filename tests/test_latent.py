"""Latent video diffusion helpers: shapes, scaling, round trips, determinism and clear errors."""
import pytest
import torch

from vdlearn.data import BouncingShapes
from vdlearn.diffusion import make_schedule
from vdlearn.video import (decode_clips, encode_clips, encode_dataset, latent_diffusion_loss, latent_stats, sample_latent_clips)
from vdlearn.train import train_step_cost
from vdlearn.nn.spacetime_unet import SpaceTimeUNet
from vdlearn.train import fit
from vdlearn.vae import CausalVideoVAE, FrameVAE, calibrate_scaling_factor, vae_loss
from vdlearn.video.latent import latent_frames


def _vae(seed=0, size=16):
    torch.manual_seed(seed)
    return FrameVAE(in_channels=3, latent_channels=4, downsample=4, width=8, image_size=size).eval()


def _causal_vae(seed=0, temporal_down=2):
    """A tiny untrained causal 3D VAE: 16x16 frames -> 4x4 latents, 1 + 2k frames -> 1 + k latent frames."""
    torch.manual_seed(seed)
    return CausalVideoVAE(in_channels=3, latent_channels=4, width=8, spatial_down=4, temporal_down=temporal_down,
                          image_size=16).eval()


def _clips(n=4, frames=4, size=16, seed=0):
    return BouncingShapes(n, frames=frames, size=size, seed=seed).get_batch(torch.arange(n))


def _unet():
    torch.manual_seed(0)
    return SpaceTimeUNet(4, base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(1,),
                         num_heads=2, max_frames=4)


def test_encode_decode_shapes():
    vae, clips = _vae(), _clips()
    z = encode_clips(vae, clips)
    assert z.shape == (4, 4, 4, 4, 4)                      # (B, c, T, H/4, W/4)
    assert not z.requires_grad
    x = decode_clips(vae, z)
    assert x.shape == clips.shape and x.min() >= -1 and x.max() <= 1
    wide = _clips(2, frames=3, size=32)                     # any multiple of f works
    assert encode_clips(vae, wide).shape == (2, 4, 3, 8, 8)


def test_encoding_is_frame_by_frame_and_matches_the_vae():
    vae, clips = _vae(), _clips()
    z = encode_clips(vae, clips)
    mu, _ = vae.encode(clips[1, :, 2][None])               # frame 2 of clip 1, alone
    torch.testing.assert_close(z[1, :, 2], mu[0] * vae.scaling_factor, atol=1e-5, rtol=1e-5)
    one = encode_clips(vae, clips, chunk_size=3)            # chunking changes nothing
    torch.testing.assert_close(one, z, atol=1e-5, rtol=1e-5)


def test_scaling_makes_latent_std_about_one():
    vae, clips = _vae(), _clips(8)
    raw = latent_stats(encode_clips(vae, clips))
    calibrate_scaling_factor(vae, clips)
    scaled = latent_stats(encode_clips(vae, clips))
    assert abs(raw["std"] - 1) > 0.05                       # the untrained encoder is off scale
    assert scaled["std"] == pytest.approx(1.0, abs=0.02)
    assert len(scaled["channel_std"]) == 4
    # decoding undoes the scaling: the same frames come back whatever the factor
    torch.testing.assert_close(decode_clips(vae, encode_clips(vae, clips)),
                               vae.decode_video(vae.encode_video(clips, scaled=False), scaled=False))


def test_round_trip_error_is_small_after_training():
    torch.manual_seed(0)
    clips = _clips(16, frames=4)
    vae = FrameVAE(3, latent_channels=4, downsample=4, width=8, image_size=16)
    before = (decode_clips(vae.eval(), encode_clips(vae, clips)) - clips).pow(2).mean().item()
    fit(vae, lambda m, b: vae_loss(m, b, beta=0.1), clips, num_steps=120, batch_size=2, lr=3e-3,
        progress=False, device="cpu", log_every=50)
    vae.eval()
    calibrate_scaling_factor(vae, clips)
    after = (decode_clips(vae, encode_clips(vae, clips)) - clips).pow(2).mean().item()
    assert after < 0.3 * before
    assert after < 0.08                                     # PSNR above about 17 dB on [-1, 1]


def test_encode_dataset_matches_batches_and_is_deterministic():
    vae = _vae()
    data = BouncingShapes(5, frames=4, size=16, seed=3)
    z = encode_dataset(vae, data, batch_size=2)
    assert z.shape == (5, 4, 4, 4, 4) and z.device.type == "cpu"
    torch.testing.assert_close(z, encode_clips(vae, data.get_batch(torch.arange(5))), atol=1e-5, rtol=1e-5)
    assert torch.equal(z, encode_dataset(vae, data, batch_size=2))
    assert encode_dataset(vae, data, num_examples=3).shape[0] == 3


def test_sampled_encoding_is_seeded():
    vae, clips = _vae(), _clips()
    a = encode_clips(vae, clips, sample=True, generator=torch.Generator().manual_seed(1))
    b = encode_clips(vae, clips, sample=True, generator=torch.Generator().manual_seed(1))
    c = encode_clips(vae, clips, sample=True, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_latent_loss_falls_when_training():
    vae = _vae()
    latents = encode_dataset(vae, BouncingShapes(16, frames=4, size=16), batch_size=8)
    latents = latents / latents.std()
    schedule = make_schedule("cosine", 100)
    net = _unet()

    def loss_fn(model, batch):
        return latent_diffusion_loss(model, batch, schedule)

    def held_out_loss():  # the same timesteps and noise every time
        torch.manual_seed(123)
        with torch.no_grad():
            return loss_fn(net, latents).item()

    before = held_out_loss()
    fit(net, loss_fn, latents, num_steps=40, batch_size=8, lr=3e-3, progress=False, device="cpu", log_every=10)
    net.eval()
    assert held_out_loss() < 0.9 * before


def test_sampling_shapes_and_determinism():
    vae, net = _vae(), _unet().eval()
    schedule = make_schedule("cosine", 100)
    clips, z = sample_latent_clips(net, vae, 2, 4, 16, schedule, steps=3, return_latents=True,
                                   generator=torch.Generator().manual_seed(0))
    assert clips.shape == (2, 3, 4, 16, 16) and z.shape == (2, 4, 4, 4, 4)
    assert clips.min() >= -1 and clips.max() <= 1
    again = sample_latent_clips(net, vae, 2, 4, 16, schedule, steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(clips, again)
    ddim = sample_latent_clips(net, vae, 1, 4, (16, 24), schedule, sampler="ddim", steps=2)
    assert ddim.shape == (1, 3, 4, 16, 24)


def test_train_step_cost_reports_and_restores_the_model():
    net = _unet()
    schedule = make_schedule("cosine", 100)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    small = train_step_cost(net, lambda m, b: latent_diffusion_loss(m, b, schedule), torch.randn(2, 4, 4, 8, 8),
                            repeats=1, warmup=0)
    big = train_step_cost(net, lambda m, b: latent_diffusion_loss(m, b, schedule), torch.randn(2, 4, 4, 16, 16),
                          repeats=1, warmup=0)
    assert 0 < small["min_seconds"] <= small["seconds"] and small["peak_mb"] is None
    # activations grow with the number of positions: 4x the pixels, about 4x the memory
    assert 3.0 < big["activation_mb"] / small["activation_mb"] < 4.5
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_bad_inputs_are_explained():
    vae, net = _vae(), _unet()
    schedule = make_schedule("cosine", 100)
    with pytest.raises(TypeError, match="FrameVAE"):
        encode_clips(torch.nn.Conv2d(3, 3, 1), _clips())
    with pytest.raises(ValueError, match="FrameVAE decodes each latent frame to one frame"):
        decode_clips(vae, torch.zeros(1, 4, 4, 4, 4), frames=7)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        encode_clips(vae, _clips() * 3)
    with pytest.raises(ValueError, match="multiples of 4"):
        encode_clips(vae, torch.zeros(1, 3, 4, 18, 16))
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        encode_clips(vae, torch.zeros(3, 4, 16, 16))
    with pytest.raises(ValueError, match=r"latents must be .*\(B, C, T, H, W\)"):
        decode_clips(vae, torch.zeros(4, 4, 4, 4))
    with pytest.raises(ValueError, match="channels"):
        decode_clips(vae, torch.zeros(1, 3, 4, 4, 4))
    with pytest.raises(ValueError, match="scaling_factor"):
        latent_diffusion_loss(net, 40 * torch.randn(2, 4, 4, 8, 8), schedule)
    with pytest.raises(ValueError, match="multiple"):
        sample_latent_clips(net, vae, 1, 4, 18, schedule)
    with pytest.raises(ValueError, match="unknown sampler"):
        sample_latent_clips(net, vae, 1, 4, 16, schedule, sampler="euler")
    with pytest.raises(ValueError, match="empty"):
        encode_dataset(vae, torch.zeros(0, 3, 4, 16, 16))


# -- the same code with a causal 3D VAE, which compresses time too --------------------------------------------
@pytest.mark.parametrize("frames, latent_t", [(1, 1), (5, 3), (8, 5), (9, 5)])
def test_causal_vae_encodes_clips_to_fewer_latent_frames(frames, latent_t):
    vae = _causal_vae()
    vae.scaling_factor.fill_(0.5)
    clips = _clips(2, frames=frames)
    z = encode_clips(vae, clips)
    assert z.shape == (2, 4, latent_t, 4, 4) and not z.requires_grad
    assert latent_frames(vae, frames) == latent_t == vae.latent_frames(frames)
    with torch.no_grad():
        torch.testing.assert_close(z, vae.encode(clips)[0] * 0.5)   # whole clips, scaled
    # decoding gives 1 + 2(t - 1) frames, or the clip's own length when asked
    assert decode_clips(vae, z).shape == (2, 3, 1 + 2 * (latent_t - 1), 16, 16)
    x = decode_clips(vae, z, frames=frames)
    assert x.shape == clips.shape and x.min() >= -1 and x.max() <= 1


def test_causal_vae_latent_frames_for_a_frame_vae_are_the_frames():
    assert latent_frames(_vae(), 8) == 8
    assert latent_frames(_causal_vae(temporal_down=4), 8) == 3


def test_causal_vae_dataset_and_seeded_sampling():
    vae = _causal_vae()
    data = BouncingShapes(3, frames=9, size=16, seed=3)
    z = encode_dataset(vae, data, batch_size=2)
    assert z.shape == (3, 4, 5, 4, 4) and z.device.type == "cpu"
    torch.testing.assert_close(z, encode_clips(vae, data.get_batch(torch.arange(3))), atol=1e-5, rtol=1e-5)
    clips = data.get_batch(torch.arange(3))
    a = encode_clips(vae, clips, sample=True, generator=torch.Generator().manual_seed(1))
    b = encode_clips(vae, clips, sample=True, generator=torch.Generator().manual_seed(1))
    assert a.shape == z.shape and torch.equal(a, b) and not torch.equal(a, z)


def test_causal_vae_scaling_factor_is_calibrated_on_whole_clips():
    vae, clips = _causal_vae(), _clips(6, frames=9)
    calibrate_scaling_factor(vae, clips)
    assert latent_stats(encode_clips(vae, clips))["std"] == pytest.approx(1.0, abs=0.02)


def test_sampling_with_a_causal_vae_draws_its_latent_frames():
    vae = _causal_vae()
    schedule = make_schedule("cosine", 100)
    seen = []

    def net(x, t):  # a stand-in denoiser that records the latent clips it is given
        seen.append(tuple(x.shape))
        return torch.zeros_like(x)

    clips, z = sample_latent_clips(net, vae, 2, 8, 16, schedule, sampler="ddim", steps=2, return_latents=True,
                                   generator=torch.Generator().manual_seed(0))
    assert z.shape == (2, 4, vae.latent_frames(8), 4, 4) == (2, 4, 5, 4, 4)
    assert set(seen) == {(2, 4, 5, 4, 4)}                    # the model works on 5 latent frames ...
    assert clips.shape == (2, 3, 8, 16, 16)                  # ... which decode back to the 8 asked for
    assert clips.min() >= -1 and clips.max() <= 1
    again = sample_latent_clips(net, vae, 2, 8, 16, schedule, sampler="ddim", steps=2,
                                generator=torch.Generator().manual_seed(0))
    assert torch.equal(clips, again)


def test_causal_vae_bad_inputs_are_explained():
    vae = _causal_vae()
    for not_a_vae in (torch.nn.Conv3d(3, 3, 1), None):
        with pytest.raises(TypeError, match="FrameVAE.*CausalVideoVAE.*got"):
            encode_clips(not_a_vae, _clips())
        with pytest.raises(TypeError, match="FrameVAE.*CausalVideoVAE"):
            decode_clips(not_a_vae, torch.zeros(1, 4, 3, 4, 4))
        with pytest.raises(TypeError, match="FrameVAE.*CausalVideoVAE"):
            sample_latent_clips(lambda x, t: x, not_a_vae, 1, 5, 16, make_schedule("cosine", 10))
    with pytest.raises(ValueError, match="CausalVideoVAE: height and width must be multiples of 4"):
        encode_clips(vae, torch.zeros(1, 3, 5, 18, 16))
    with pytest.raises(ValueError, match=r"3 latent frames decode to 5 frames.*frames=8"):
        decode_clips(vae, torch.zeros(1, 4, 3, 4, 4), frames=8)
    with pytest.raises(ValueError, match="channels"):
        decode_clips(vae, torch.zeros(1, 3, 3, 4, 4))
