"""Photographs, the virtual camera, its Ken Burns baselines and the camera metrics (lesson 08)."""
import math

import pytest
import torch

from vdlearn.data.camera import (CAMERA_MOTIONS, PAN_SPEED, ZOOM_RATE, CameraClips, camera_path, render_path,
                                 warp_from_first)
from vdlearn.data.photos import EVAL_PHOTOS, PHOTOS, TRAIN_PHOTOS, load_photo, photo_names
from vdlearn.metrics.camera import camera_clip_scores, estimate_camera_motion, frame_motion, phase_correlation
from vdlearn.video.baselines import ken_burns


def test_every_bundled_photograph_loads_offline_and_the_split_is_disjoint():
    assert set(TRAIN_PHOTOS) | set(EVAL_PHOTOS) == set(PHOTOS) and not set(TRAIN_PHOTOS) & set(EVAL_PHOTOS)
    assert photo_names("eval") == EVAL_PHOTOS and len(photo_names("all")) == len(PHOTOS) >= 12
    for name, photo in PHOTOS.items():
        x = load_photo(name)
        assert x.shape[0] == 3 and min(x.shape[1:]) >= 256, name
        assert -1 <= x.min() < x.max() <= 1 and photo.licence and photo.credit
    with pytest.raises(ValueError, match="no bundled photograph 'lena'.*read_image"):
        load_photo("lena")
    with pytest.raises(ValueError, match="split must be one of"):
        photo_names("test")


def test_a_pan_moves_the_content_by_the_speed_and_the_first_frame_is_the_crop():
    photo = load_photo("astronaut")
    s = 64
    path = camera_path(["pan_right"], torch.tensor([[256.0, 256.0]]), torch.tensor([32.0]), 4, s, (512, 512))
    clip = render_path(photo, path, s)
    assert torch.allclose(clip[:, 0], photo[:, 224:288, 224:288], atol=1e-5)     # half 32 at scale 1: the crop
    step = int(PAN_SPEED)                                          # the content moves left by PAN_SPEED a frame
    assert torch.allclose(clip[:, 1, :, :-step], clip[:, 0, :, step:], atol=1e-5)
    grid, visible = warp_from_first(path, s)
    assert visible[0].all() and not visible[1].all() and visible[1][:, :s - step].all()
    assert not visible[3][:, s - 3 * step:].any()                  # new content at the right edge only


def test_zoom_paths_shrink_or_grow_the_window_and_stay_inside_the_photograph():
    path = camera_path(["zoom_in", "zoom_out"], torch.tensor([[300.0, 200.0]] * 2), torch.tensor([50.0, 50.0]), 5,
                       64, (400, 600))
    assert torch.allclose(path.half[0], 50 * (1 - ZOOM_RATE) ** torch.arange(5.0))
    assert torch.allclose(path.half[1], 50 / (1 - ZOOM_RATE) ** torch.arange(5.0))
    data = CameraClips(40, frames=8, size=32, photos=["coins", "chelsea"], max_angle=5, seed=2)
    for i in range(40):
        _, motion, p = data.path(i)
        assert p.inside().all()
        assert data[i][1] == motion
    clips, motions = data.get_batch(range(6))
    assert clips.shape == (6, 3, 8, 32, 32) and motions.shape == (6,) and -1 <= clips.min() <= clips.max() <= 1
    assert torch.equal(data[3][0], clips[3]) and torch.equal(CameraClips(40, 8, 32, ["coins", "chelsea"],
                                                                         seed=2)[3][0], clips[3])


def test_bad_camera_input_is_explained():
    with pytest.raises(ValueError, match="unknown camera motion 'dolly'"):
        camera_path(["dolly"], torch.zeros(1, 2), torch.ones(1), 4, 32, (64, 64))
    with pytest.raises(ValueError, match="smaller than the frame size"):
        CameraClips(4, size=128, photos=[torch.zeros(3, 100, 100)])
    with pytest.raises(ValueError, match=r"a photograph is a \(3, H, W\) tensor"):
        CameraClips(4, photos=[torch.zeros(100, 100)])
    with pytest.raises(ValueError, match="unknown camera motion"):
        ken_burns(torch.zeros(1, 3, 16, 16), "spin", 4)
    with pytest.raises(ValueError, match="fill must be one of"):
        ken_burns(torch.zeros(1, 3, 16, 16), "pan_left", 4, fill="blur")


def test_phase_correlation_finds_a_known_shift_to_a_fraction_of_a_pixel():
    photo = load_photo("coffee")[:, 100:164, 100:164]
    for dx, dy in [(3.0, -2.0), (-5.0, 4.0), (1.5, 0.0)]:
        shifted = torch.nn.functional.grid_sample(
            photo[None], (torch.stack(torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="xy"), -1)
                          - torch.tensor([dx, dy]) + 0.5)[None] * 2 / 64 - 1, align_corners=False,
            padding_mode="border")
        d = phase_correlation(photo[None], shifted)[0]
        assert torch.allclose(d, torch.tensor([dx, dy]), atol=0.35), (dx, dy, d)


def test_the_estimator_names_every_real_motion_and_calls_frozen_clips_static():
    data = CameraClips(70, frames=8, size=64, photos=list(EVAL_PHOTOS), seed=4)
    clips, motions = data.get_batch(range(70))
    est = estimate_camera_motion(clips)
    assert est["motion"] == [CAMERA_MOTIONS[m] for m in motions.tolist()]
    frozen = clips[:, :, :1].expand_as(clips)
    assert set(estimate_camera_motion(frozen)["motion"]) == {"static"}
    reversed_ = estimate_camera_motion(clips.flip(2))["motion"]            # played backwards: the opposite motion
    opposite = {"pan_left": "pan_right", "pan_right": "pan_left", "pan_up": "pan_down", "pan_down": "pan_up",
                "zoom_in": "zoom_out", "zoom_out": "zoom_in", "static": "static"}
    assert sum(r == opposite[CAMERA_MOTIONS[m]] for r, m in zip(reversed_, motions.tolist())) >= 66
    tau, scale = frame_motion(clips[:, :, 0], clips[:, :, 1])
    zooms = motions == CAMERA_MOTIONS.index("zoom_in")
    assert torch.allclose(scale[zooms], torch.full_like(scale[zooms], 1 / (1 - ZOOM_RATE)), atol=0.02)


def test_ken_burns_keeps_the_image_and_fills_only_what_comes_into_view():
    data = CameraClips(12, frames=6, size=32, photos=["china", "coffee"], max_angle=0, seed=1)
    for i in range(12):
        clip, motion = data[i]
        name = CAMERA_MOTIONS[motion]
        _, _, path = data.path(i)
        results = {f: ken_burns(clip[None, :, 0], name, 6, fill=f)[0] for f in ("black", "edge", "inpaint")}
        for fill, moved in results.items():
            score = camera_clip_scores(moved, clip, path)
            assert score["first_psnr"] == 100.0 and score["last_correlation"] > 0.95
            if name.startswith("pan"):                 # whole-pixel moves: the kept pixels are exact
                assert score["kept_psnr"] > 60
        if name not in ("static", "zoom_in"):             # zooming in reveals nothing
            black = camera_clip_scores(results["black"], clip, path)
            edge = camera_clip_scores(results["edge"], clip, path)
            assert edge["revealed_psnr"] > black["revealed_psnr"] and 0 < black["revealed_fraction"] < 0.5
        assert estimate_camera_motion(results["edge"][None])["motion"] == [name]


def test_scores_see_a_generated_clip_that_drops_the_photograph():
    data = CameraClips(4, frames=6, size=32, photos=["chelsea"], motions=["pan_left"], seed=0)
    clip, _ = data[0]
    other = CameraClips(4, frames=6, size=32, photos=["coffee"], motions=["pan_left"], seed=0)[0][0]
    score = camera_clip_scores(other, clip, data.path(0)[2])
    assert score["first_psnr"] < 20 and score["kept_psnr"] < 20 and score["last_correlation"] < 0.5
    perfect = camera_clip_scores(clip, clip, data.path(0)[2])
    assert perfect["revealed_psnr"] == 100.0 and math.isclose(perfect["revealed_ssim"], 1.0, abs_tol=1e-5)


def test_animate_photo_keeps_the_photograph_and_fills_only_what_comes_into_view(tmp_path):
    from vdlearn import pretrained
    from vdlearn.nn.video_dit import VideoDiT
    from vdlearn.vae import FrameVAE
    from vdlearn.data.camera import motion_warp
    from vdlearn.video.camera import animate_photo, camera_condition, camera_flow_loss

    torch.manual_seed(0)
    vae = FrameVAE(3, 4, 4, width=8, image_size=32).eval()
    kwargs = dict(in_channels=4, frames=4, size=8, patch=2, tubelet=4, dim=16, depth=1, heads=2, cond_channels=5,
                  num_classes=len(CAMERA_MOTIONS))
    model = VideoDiT(**kwargs).eval()
    for p in model.parameters():
        p.data += 0.05 * torch.randn_like(p)
    image = CameraClips(2, frames=1, size=32, photos=["coffee"], seed=0).get_batch([0, 1])[0][:, :, 0]
    clips = animate_photo(model, vae, image, ["pan_left", "zoom_out"], steps=2)
    assert clips.shape == (2, 3, 4, 32, 32) and torch.equal(clips[:, :, 0], image)
    own = animate_photo(model, vae, image, ["pan_left", "zoom_out"], steps=2, keep_given=False,
                        generator=torch.Generator().manual_seed(1))
    again = animate_photo(model, vae, image, ["pan_left", "zoom_out"], steps=2, generator=torch.Generator().manual_seed(1))
    _, visible = motion_warp(CAMERA_MOTIONS.index("pan_left"), 4, 32)
    assert torch.equal(again[0][:, ~visible], own[0][:, ~visible])       # the network fills what comes into view
    assert not torch.allclose(again[0][:, 1:][:, visible[1:]], own[0][:, 1:][:, visible[1:]])
    assert camera_clip_scores(again[0], again[0], camera_path(["pan_left"], torch.zeros(1, 2), torch.tensor([16.0]),
                                                              4, 32, (32, 32)))["kept_psnr"] == 100.0
    cond = camera_condition(torch.randn(2, 4, 8, 8), torch.tensor([6, 0]), 4)
    assert cond.shape == (2, 5, 4, 8, 8) and (cond[0, 4] == 1).all() and not (cond[1, 4, 1:] == 1).all()
    loss = camera_flow_loss(model.train(), (torch.randn(3, 4, 4, 8, 8), torch.tensor([0, 4, 6])))
    loss.backward()
    assert loss.item() > 0 and model.label_embed.weight.grad is not None
    with pytest.raises(ValueError, match="unknown camera motion 'orbit'"):
        animate_photo(model, vae, image, "orbit")
    with pytest.raises(ValueError, match="this model makes 32x32 frames"):
        animate_photo(model, vae, torch.zeros(1, 3, 64, 64), "pan_left")

    pretrained.save_pretrained(vae, "tiny_vae", lesson=8, builder="vdlearn.vae:FrameVAE",
                               kwargs=dict(in_channels=3, latent_channels=4, downsample=4, width=8, image_size=32),
                               trained="test", folder=tmp_path)
    sampling = {"kind": "camera_video", "shape": [3, 4, 32, 32], "sampler": "flow-euler", "steps": 2,
                "vae": "tiny_vae", "classes": list(CAMERA_MOTIONS)}
    pretrained.save_pretrained(model, "tiny_camera", lesson=8, builder="vdlearn.nn.video_dit:VideoDiT",
                               kwargs=kwargs, trained="test", sampling=sampling, folder=tmp_path)
    made = pretrained.sample("tiny_camera", 2, seed=1, folder=tmp_path, image=image, labels=["pan_left", "zoom_out"])
    assert torch.allclose(made, again, atol=1e-5)
    with pytest.raises(ValueError, match="animates a photograph: pass image"):
        pretrained.sample("tiny_camera", 2, folder=tmp_path)
