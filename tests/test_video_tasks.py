"""Tests of vdlearn.video: masks, the masked model, conditional sampling, extension, SDEdit, images."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

import vdlearn.video as C
from vdlearn import diffusion, metrics, videoio
from vdlearn.diffusion import ddim_sample, guided_output, make_schedule, q_sample

SCHEDULE = make_schedule("cosine", 100)


def tiny_model(frames=6, channels=3, seed=0):
    torch.manual_seed(seed)
    return C.MaskedVideoDiffusion(channels, frames, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
                                  attention_levels=(1,)).eval()


def clips(b=2, c=3, t=6, s=8, seed=0):
    return torch.rand(b, c, t, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ---- masks ---------------------------------------------------------------------------------
def test_task_masks():
    assert C.task_mask("unconditional", 5).tolist() == [[False] * 5]
    assert C.task_mask("image_to_video", 5).tolist() == [[True, False, False, False, False]]
    assert C.task_mask("prediction", 5, k=3, batch=2).tolist() == [[True, True, True, False, False]] * 2
    assert C.task_mask("interpolation", 5).tolist() == [[True, False, False, False, True]]
    with pytest.raises(ValueError, match="unknown task"):
        C.task_mask("outpainting", 5)
    with pytest.raises(ValueError, match="k must be"):
        C.task_mask("prediction", 5, k=5)


def test_random_masks_mix_tasks_with_their_probabilities_and_are_seeded():
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    m = C.random_masks(4000, 8, max_k=3, generator=g())
    assert torch.equal(m, C.random_masks(4000, 8, max_k=3, generator=g()))
    given = m.sum(1)
    uncond = given == 0
    first_last = m[:, 0] & m[:, -1]
    prefix = m[:, 0] & ~m[:, -1]  # image_to_video (k=1) or prediction (k <= 3)
    assert (uncond | first_last | prefix).all()
    assert (given[prefix] <= 3).all() and torch.equal(m[prefix], torch.arange(8) < given[prefix, None])
    p = C.DEFAULT_TASK_PROBS
    assert abs(uncond.float().mean() - p["unconditional"]) < 0.03
    assert abs(first_last.float().mean() - p["interpolation"]) < 0.03
    only = C.random_masks(50, 8, probs={"interpolation": 1.0})
    assert (only == C.task_mask("interpolation", 8)).all()
    with pytest.raises(ValueError, match="unknown task"):
        C.random_masks(4, 8, probs={"inpainting": 1.0})


def test_check_mask_rejects_all_or_none_where_it_makes_no_sense():
    full = torch.ones(2, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="nothing left to generate"):
        C.check_mask(full, 2, 4)
    assert C.check_mask(full, 2, 4, allow_all=True).all()
    with pytest.raises(ValueError, match="needs a condition"):
        C.check_mask(torch.zeros(2, 4, dtype=torch.bool), 2, 4, allow_none=False)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        C.check_mask(torch.zeros(3, 4, dtype=torch.bool), 2, 4)
    assert C.check_mask(torch.tensor([1, 0, 0, 0]), 2, 4).tolist() == [[True, False, False, False]] * 2


def test_nearest_given_copies_only_given_frames():
    known = torch.arange(5.0).view(1, 1, 5, 1, 1).expand(3, 2, 5, 1, 1)
    mask = torch.tensor([[False, True, False, False, True], [True, False, False, False, True], [False] * 5])
    got = C.nearest_given(known, mask)[:, 0].flatten(1)
    assert got.tolist() == [[1, 1, 1, 1, 4], [0, 0, 0, 0, 4], [0, 0, 0, 0, 0]]


# ---- the model and its loss ----------------------------------------------------------------
def test_model_input_layout():
    x, known = clips(), clips(seed=1)
    mask = C.task_mask("prediction", 6, k=2, batch=2)
    inp = C.model_input(x, known, mask, torch.tensor([0.1, 0.3]))
    assert inp.shape == (2, 3 + 3 + 1 + 1, 6, 8, 8)
    assert torch.equal(inp[:, :3], x)
    assert torch.equal(inp[:, 3:6, :2], known[:, :, :2])
    assert torch.equal(inp[:, 3:6, 2:], known[:, :, 1:2].expand(-1, -1, 4, -1, -1))  # the latest given frame
    assert (inp[:, 6, :2] == 1).all() and (inp[:, 6, 2:] == 0).all()
    assert torch.allclose(inp[1, 7, :2], torch.tensor(0.3)) and (inp[:, 7, 2:] == 0).all()
    with pytest.raises(ValueError, match="aug_level"):
        C.model_input(x, known, mask, -0.1)


def test_model_shapes_and_inputs():
    model = tiny_model()
    x = clips()
    t = torch.tensor([3, 50])
    assert model(x, t).shape == x.shape
    assert model(x, t, clips(seed=1), C.task_mask("image_to_video", 6, batch=2)).shape == x.shape
    with pytest.raises(ValueError, match="or neither"):
        model(x, t, known=x)
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model(x[:, :1], t)
    with pytest.raises(ValueError, match="set by MaskedVideoDiffusion"):
        C.MaskedVideoDiffusion(3, 6, in_channels=5)


def test_loss_counts_only_the_frames_to_generate():
    x = clips()

    class Oracle(torch.nn.Module):  # right on the unknown frames, wildly wrong on the given ones
        channels, frames = 3, 6

        def forward(self, x_t, t, known, mask, aug_level):
            out = x.clone()
            out[mask.view(2, 1, 6, 1, 1).expand_as(out)] = 100.0
            return out

    loss = C.masked_diffusion_loss(Oracle(), x, SCHEDULE, probs={"prediction": 1.0}, p_uncond=0.0,
                                   prediction_type="x0", generator=torch.Generator().manual_seed(0))
    assert loss.item() == 0.0
    with pytest.raises(ValueError, match="p_uncond"):
        C.masked_diffusion_loss(Oracle(), x, SCHEDULE, p_uncond=1.5)


def test_loss_falls_when_training():
    model = tiny_model().train()
    data = torch.linspace(-1, 1, 8).view(1, 1, 1, 1, 8).expand(4, 3, 6, 8, 8).contiguous()  # learnable structure
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def evaluate():
        with torch.no_grad():
            return C.masked_diffusion_loss(model, data, SCHEDULE, generator=torch.Generator().manual_seed(9)).item()

    before = evaluate()
    for step in range(40):
        loss = C.masked_diffusion_loss(model, data, SCHEDULE, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert evaluate() < 0.7 * before


# ---- sampling ------------------------------------------------------------------------------
def test_sampling_keeps_the_given_frames_exactly_and_is_seeded():
    model, x = tiny_model(), clips()
    mask = C.task_mask("interpolation", 6, batch=2)
    run = lambda seed: C.sample_video(model, x, mask, SCHEDULE, steps=3, guidance_scale=2.0, aug_level=0.1,  # noqa: E731
                                      generator=torch.Generator().manual_seed(seed))
    out = run(0)
    assert out.shape == x.shape
    assert torch.equal(out[:, :, 0], x[:, :, 0]) and torch.equal(out[:, :, -1], x[:, :, -1])
    assert not torch.equal(out[:, :, 1:-1], x[:, :, 1:-1])
    assert torch.equal(out, run(0)) and not torch.equal(out, run(1))
    assert torch.equal(C.animate(model, x[:, :, 0], SCHEDULE, steps=2)[:, :, 0], x[:, :, 0])
    assert torch.equal(C.predict(model, x[:, :, :3], SCHEDULE, steps=2)[:, :, :3], x[:, :, :3])


def test_guidance_scale_one_is_the_conditional_model_and_s_extrapolates():
    model, x = tiny_model(), clips()
    mask = C.task_mask("image_to_video", 6, batch=2)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    got = C.sample_video(model, x, mask, SCHEDULE, sampler="ddim", steps=4, noise=noise, keep_given=False)
    want = ddim_sample(lambda z, t: model(z, t, x, mask, 0.0), noise, SCHEDULE, steps=4, prediction_type="v",
                       clip_x0=True).clamp(-1, 1)
    assert torch.allclose(got, want, atol=1e-5)
    t = torch.tensor([40, 40])
    with torch.no_grad():
        guided = diffusion.conditional_model(model, x, mask, guidance_scale=3.0)(noise, t)
        cond, uncond = model(noise, t, x, mask), model(noise, t)
    assert torch.allclose(guided, guided_output(uncond, cond, 3.0), atol=1e-4)
    with pytest.raises(ValueError, match="guidance_scale"):
        diffusion.conditional_model(model, x, mask, guidance_scale=-1)


def test_sampling_bad_inputs():
    model, x = tiny_model(), clips()
    with pytest.raises(ValueError, match="nothing left to generate"):
        C.sample_video(model, x, torch.ones(2, 6, dtype=torch.bool), SCHEDULE, steps=2)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        C.animate(model, x[0, :, 0], SCHEDULE)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        C.sample_video(model, 3 * x, C.task_mask("image_to_video", 6, batch=2), SCHEDULE, steps=2)


def test_extend_video_goes_past_the_training_length():
    model, x = tiny_model(), clips()
    long = C.extend_video(model, x[:, :, :2], SCHEDULE, 15, overlap=2, steps=2,
                          generator=torch.Generator().manual_seed(0))
    assert long.shape == (2, 3, 15, 8, 8)
    assert torch.equal(long[:, :, :2], x[:, :, :2])
    assert long.abs().max() <= 1
    assert C.extend_video(model, x[:, :, 0], SCHEDULE, 9, steps=2).shape == (2, 3, 9, 8, 8)
    with pytest.raises(ValueError, match="overlap"):
        C.extend_video(model, x, SCHEDULE, 12, overlap=6)


# ---- SDEdit ------------------------------------------------------------------------------
def test_sdedit_strength_zero_returns_the_input_and_bad_strengths_are_errors():
    model, x = tiny_model(), clips()
    assert torch.equal(C.sdedit(model, x, 0.0, SCHEDULE), x)
    for bad in (-0.1, 1.5, True, "0.5"):
        with pytest.raises(ValueError, match=r"strength must be a number in \[0, 1\]"):
            C.sdedit(model, x, bad, SCHEDULE)


def test_sdedit_start_is_the_closed_form_forward_process():
    x = clips()
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    xt, t = C.sdedit_start(x, 0.5, SCHEDULE, noise)
    assert t == round(0.5 * 99)
    ab = SCHEDULE.alphas_cumprod[t].item()
    assert torch.allclose(xt, math.sqrt(ab) * x + math.sqrt(1 - ab) * noise, atol=1e-5)
    assert torch.allclose(xt, q_sample(SCHEDULE, x, torch.full((2,), t), noise))
    assert C.sdedit_start(x, 1.0, SCHEDULE, noise)[1] == 99


def test_sdedit_with_a_new_first_frame_starts_with_it_and_changes_more_with_strength():
    model, x = tiny_model(), clips()
    style = clips(seed=7)[:, :, 0]
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    weak = C.sdedit(model, x, 0.1, SCHEDULE, first_frame=style, steps=10, generator=g())
    strong = C.sdedit(model, x, 0.9, SCHEDULE, first_frame=style, steps=10, generator=g())
    assert torch.equal(weak[:, :, 0], style)
    rest = lambda v: (v[:, :, 1:] - x[:, :, 1:]).pow(2).mean()  # noqa: E731
    assert rest(weak) < rest(strong)
    with pytest.raises(ValueError, match="first_frame"):
        C.sdedit(model, x, 0.5, SCHEDULE, first_frame=style[:, :1])


# ---- images --------------------------------------------------------------------------------
def test_load_image_from_a_png_of_another_size(tmp_path):
    pixels = np.zeros((30, 50, 3), dtype=np.uint8)
    pixels[:, :25] = (255, 0, 0)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    img = videoio.load_image(path, 16)
    assert img.shape == (1, 3, 16, 16) and img.min() >= -1 and img.max() <= 1
    assert torch.allclose(img[0, :, 8, 0], torch.tensor([1.0, -1, -1]), atol=1e-3)  # left: red, centre crop
    assert torch.allclose(img[0, :, 8, -1], torch.tensor([-1.0, -1, -1]), atol=1e-3)
    grey = videoio.load_image(str(path), 16, channels=1)
    assert grey.shape == (1, 1, 16, 16)
    assert abs(grey[0, 0, 8, 0].item() - (2 * 0.299 - 1)) < 1e-3  # luminance of pure red
    assert videoio.load_image(path, 12, fit="pad").shape == (1, 3, 12, 12)


def test_load_image_channels_and_ranges():
    grey = np.full((10, 10), 0.5, dtype=np.float32)
    assert torch.allclose(videoio.load_image(grey, 4), torch.zeros(1, 3, 4, 4), atol=1e-6)
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., :3], rgba[..., 3] = 255, 0  # white but fully transparent: black
    assert torch.allclose(videoio.load_image(rgba, 8), -torch.ones(1, 3, 8, 8))
    t = torch.rand(3, 20, 20) * 2 - 1
    assert torch.allclose(videoio.load_image(t, 20, value_range=(-1, 1)), t[None], atol=1e-5)
    with pytest.raises(ValueError, match="value_range"):
        videoio.load_image(t, 20)
    with pytest.raises(FileNotFoundError, match="no image file"):
        videoio.load_image("/nonexistent/cat.jpg", 32)
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        videoio.load_image(np.zeros((4, 4, 7), np.uint8), 4)
    with pytest.raises(TypeError, match="file path"):
        videoio.load_image(42, 4)


# ---- scores --------------------------------------------------------------------------------
def test_psnr_ssim_and_best_of_k():
    x = clips(b=3) * 0.8
    assert torch.allclose(metrics.psnr(x + 0.1, x), torch.full((3,), 10 * math.log10(4 / 0.01)), atol=1e-3)
    assert torch.allclose(metrics.ssim(x, x), torch.ones(3))
    noisy = (x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert (metrics.ssim(noisy, x) < 0.9).all()
    samples = torch.stack([x + 0.2, x + 0.05, x - 0.1])
    assert torch.allclose(metrics.best_of_k(samples, x), metrics.psnr(x + 0.05, x))
    with pytest.raises(ValueError, match="k samples per clip"):
        metrics.best_of_k(x, x)
