"""SpaceTimeUNet: shapes, the image model it starts as, from_unet2d, joint training, bad inputs."""
import pytest
import torch

from vdlearn.diffusion.schedules import make_schedule
from vdlearn.nn.spacetime_unet import (SpaceTimeUNet, TemporalAttention, frames_to_sequences, relative_positions, sequences_to_frames)
from vdlearn.data import batch_to_frames, frames_to_batch
from vdlearn.video import video_diffusion_loss
from vdlearn.nn.unet2d import UNet2D, prepare_model

SMALL = dict(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(1,), num_heads=2)


def small(in_channels=3, **kw):
    torch.manual_seed(0)
    return SpaceTimeUNet(in_channels, **{**SMALL, "max_frames": 8, **kw})


def randomise(module, scale=0.1, seed=1):
    """Give every parameter (zero-initialised ones too) a random value, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g))
    return module


def per_frame(unet2d, x, t, y=None):
    """The image U-Net applied to every frame on its own, with a Python loop (the reference)."""
    return torch.stack([unet2d(x[:, :, i], t, y) for i in range(x.shape[2])], dim=2)


@pytest.mark.parametrize("channels,frames,size,patch", [(3, 8, 16, 1), (1, 5, 12, 1), (3, 1, 16, 1), (3, 4, 16, 2)])
def test_output_has_the_shape_of_the_input(channels, frames, size, patch):
    model = small(channels, patch_size=patch)
    x = torch.randn(2, channels, frames, size, size)
    out = model(x, torch.tensor([3, 900]))
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_fresh_model_is_the_image_model_applied_to_every_frame():
    model = small()
    randomise(model.image)  # a "trained" image model; the temporal layers keep their zero init
    x, t = torch.randn(2, 3, 6, 16, 16), torch.tensor([10, 500])
    torch.testing.assert_close(model(x, t), per_frame(model.image, x, t), atol=1e-5, rtol=1e-4)


def test_from_unet2d_copies_the_image_model_and_matches_it_per_frame():
    torch.manual_seed(0)
    unet = randomise(UNet2D(1, base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(1,),
                            num_heads=2, num_classes=3))
    video = SpaceTimeUNet.from_unet2d(unet, max_frames=8)
    x, t, y = torch.randn(2, 1, 5, 16, 16), torch.tensor([0, 999]), torch.tensor([2, 3])
    torch.testing.assert_close(video(x, t, y), per_frame(unet, x, t, y), atol=1e-5, rtol=1e-4)
    assert video.null_label == unet.null_label and video.in_channels == 1
    with torch.no_grad():  # a copy: training the video model leaves the image model alone
        video.image.input_conv.weight.add_(1.0)
    assert not torch.equal(video.image.input_conv.weight, unet.input_conv.weight)


def test_from_unet2d_with_patches_matches_the_patch_image_model():
    torch.manual_seed(0)
    unet = randomise(UNet2D(3 * 4, base_channels=8, channel_mults=(1, 2), num_res_blocks=1, num_heads=2,
                            attention_levels=(1,)))
    video = SpaceTimeUNet.from_unet2d(unet, max_frames=4, patch_size=2)
    x, t = torch.randn(1, 3, 4, 16, 16), torch.tensor([7])
    frames = torch.nn.functional.pixel_unshuffle(frames_to_batch(x), 2)
    want = batch_to_frames(torch.nn.functional.pixel_shuffle(unet(frames, t.repeat(4)), 2), 4)
    torch.testing.assert_close(video(x, t), want, atol=1e-5, rtol=1e-4)


def test_trained_temporal_layers_mix_frames_and_independent_clips_stay_images():
    model = randomise(small())
    x, t = torch.randn(2, 3, 6, 16, 16), torch.tensor([100, 100])
    base = model(x, t)
    x2 = x.clone()
    x2[:, :, 0] += 1.0  # change the first frame only
    changed = (model(x2, t) - base).abs().amax(dim=(0, 1, 3, 4))  # per frame
    assert changed[1:].max() > 1e-3, "later frames must see the first one through the temporal layers"
    independent = torch.tensor([True, False])
    out = model(x, t, independent=independent)
    torch.testing.assert_close(out[0], per_frame(model.image, x[:1], t[:1])[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out[1], base[1], atol=1e-5, rtol=1e-4)


def test_seeded_construction_and_forward_are_deterministic():
    a, b = small(), small()
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)
    randomise(a), randomise(b)
    x, t = torch.randn(2, 3, 4, 16, 16), torch.tensor([5, 6])
    assert torch.equal(a(x, t), b(x, t))


def test_gradients_reach_the_zero_initialised_temporal_layers_and_then_everything():
    model = small()
    randomise(model.image)  # start from a "trained" image model, as from_unet2d does
    schedule = make_schedule("cosine", 100)
    clips = torch.rand(2, 3, 4, 16, 16) * 2 - 1
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def step():
        optimizer.zero_grad()
        video_diffusion_loss(model, clips, schedule).backward()
        optimizer.step()
        return [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]

    dead = step()
    assert not any(n.endswith(("conv.conv.weight", "attn.proj.weight")) for n in dead), dead
    for _ in range(2):  # once the zero layers have moved, the layers before them learn too
        dead = step()
    assert not dead, f"no gradient reached {dead}"


def test_loss_falls_on_a_fixed_batch():
    model = small()
    schedule = make_schedule("cosine", 100)
    clips = torch.rand(4, 3, 2, 16, 16).round() * 2 - 1
    t = torch.arange(4) * 20 + 10
    noise = torch.randn_like(clips)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    from vdlearn.diffusion.objectives import diffusion_loss
    losses = []
    for _ in range(25):
        loss = diffusion_loss(model, clips, schedule, t=t, noise=noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_no_python_loop_over_frames():
    """The same number of layer calls for 2 and for 8 frames: frames ride in the batch."""
    model = randomise(small())
    calls = []
    hooks = [m.register_forward_hook(lambda *a: calls.append(1)) for m in model.modules()]
    counts = []
    for frames in (2, 8):
        calls.clear()
        model(torch.randn(1, 3, frames, 16, 16), torch.tensor([1]))
        counts.append(len(calls))
    for h in hooks:
        h.remove()
    assert counts[0] == counts[1]


def test_channels_last_gives_the_same_output():
    model = randomise(small())
    x, t = torch.randn(2, 3, 4, 16, 16), torch.tensor([3, 4])
    want = model(x, t)
    fast = prepare_model(model, "cpu", channels_last=True)
    torch.testing.assert_close(fast(x, t), want, atol=1e-5, rtol=1e-4)


def test_reshapes_are_inverse_and_sequences_follow_one_pixel_through_time():
    x = torch.randn(2, 3, 5, 4, 6)
    frames = frames_to_batch(x)
    assert frames.shape == (10, 3, 4, 6)
    assert torch.equal(batch_to_frames(frames, 5), x)
    seqs = frames_to_sequences(frames, 5)
    assert seqs.shape == (2 * 4 * 6, 5, 3)
    b, row, col = 1, 2, 3
    assert torch.equal(seqs[(b * 4 + row) * 6 + col], x[b, :, :, row, col].T)
    assert torch.equal(sequences_to_frames(seqs, 5, 4, 6), frames)


def test_relative_position_bias_depends_only_on_the_offset():
    attn = TemporalAttention(8, num_heads=2, max_frames=6)
    with torch.no_grad():
        attn.position_bias.copy_(torch.randn_like(attn.position_bias))
    bias = attn.bias(5)
    assert bias.shape == (2, 5, 5)
    offsets = relative_positions(5)
    for i in range(5):
        for j in range(5):
            assert torch.equal(bias[:, i, j], attn.position_bias[offsets[i, j] + 5])
    assert torch.equal(bias[:, 1:, 1:], bias[:, :-1, :-1])  # Toeplitz


def test_joint_training_loss_runs_and_marks_images():
    model = small()
    schedule = make_schedule("cosine", 100)
    clips = torch.rand(4, 3, 4, 16, 16) * 2 - 1
    images = torch.rand(10, 3, 16, 16) * 2 - 1
    g = torch.Generator().manual_seed(0)
    loss = video_diffusion_loss(model, clips, schedule, p_image=0.5, images=images, generator=g)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert video_diffusion_loss(model, clips, schedule, p_image=1.0) > 0


@pytest.mark.parametrize("x,match", [
    (torch.zeros(2, 3, 16, 16), r"clips \(B, C, T, H, W\).*unsqueeze\(2\)"),
    (torch.zeros(2, 1, 4, 16, 16), "3-channel clips but got 1"),
    (torch.zeros(2, 3, 9, 16, 16), "1 to 8 frames.*max_frames=9"),
    (torch.zeros(2, 3, 4, 1, 1), "too small"),
])
def test_bad_clips_get_clear_errors(x, match):
    with pytest.raises(ValueError, match=match):
        small()(x, torch.tensor([1, 2]))


def test_bad_patch_size_and_other_inputs():
    with pytest.raises(ValueError, match="2x2 patches"):
        small(patch_size=2)(torch.zeros(1, 3, 4, 17, 17), torch.tensor([1]))
    model = small()
    x = torch.zeros(2, 3, 4, 16, 16)
    with pytest.raises(ValueError, match=r"t must have shape \(2,\)"):
        model(x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="unconditional"):
        model(x, torch.tensor([1, 2]), y=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="independent must be a bool"):
        model(x, torch.tensor([1, 2]), independent=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="temporal_attention_levels"):
        small(temporal_attention_levels=(5,))
    with pytest.raises(TypeError, match="UNet2D"):
        SpaceTimeUNet.from_unet2d(torch.nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="patch_size"):
        SpaceTimeUNet.from_unet2d(UNet2D(3, base_channels=8, channel_mults=(1,), attention_levels=()), patch_size=2)


def test_loss_rejects_data_outside_minus_one_one():
    model, schedule = small(), make_schedule("cosine", 100)
    with pytest.raises(ValueError, match=r"\[-1, 1\].*2 \* x - 1"):
        video_diffusion_loss(model, torch.rand(2, 3, 4, 16, 16) * 255, schedule)
    with pytest.raises(ValueError, match="p_image"):
        video_diffusion_loss(model, torch.zeros(2, 3, 4, 16, 16), schedule, p_image=1.5)
    with pytest.raises(ValueError, match="images must be"):
        video_diffusion_loss(model, torch.zeros(2, 3, 4, 16, 16), schedule, p_image=0.5,
                             images=torch.zeros(4, 3, 8, 8))
