"""Shipped checkpoints: checksums verified, tampering refused, models rebuilt from the manifest."""
import pytest
import torch
from torch import nn

from vdlearn import pretrained
from vdlearn.nn import DenoisingMLP


def _edit_manifest(folder, **changes):
    import json
    path = folder / "manifest.json"
    entries = json.loads(path.read_text())
    entries["tiny"].update(changes)
    path.write_text(json.dumps(entries))


@pytest.mark.parametrize("builder", ["os:system", "subprocess:Popen", "torch.nn:Linear",
                                     "vdlearn.runtime:seed_everything", "vdlearn.nn:not a name"])
def test_a_manifest_cannot_name_a_foreign_builder(tmp_path, builder):
    _saved(tmp_path)
    _edit_manifest(tmp_path, builder=builder, kwargs={"command": "touch pwned"})
    with pytest.raises(ValueError, match="vdlearn's own model classes"):
        pretrained.load_pretrained("tiny", folder=tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_the_checksum_is_verified_before_the_builder_is_imported(tmp_path, monkeypatch):
    _saved(tmp_path)
    path = tmp_path / "tiny.pt"
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    imported = []
    monkeypatch.setattr("vdlearn.pretrained.shipped.importlib.import_module", lambda name: imported.append(name))
    with pytest.raises(ValueError, match="fails its checksum"):
        pretrained.load_pretrained("tiny", folder=tmp_path)
    assert imported == []


def _saved(tmp_path):
    torch.manual_seed(0)
    model = DenoisingMLP(dim=2, hidden=8, num_layers=2, emb_dim=4)
    pretrained.save_pretrained(model, "tiny", lesson=0, builder="vdlearn.nn:DenoisingMLP",
                               kwargs={"dim": 2, "hidden": 8, "num_layers": 2, "emb_dim": 4}, trained="a test",
                               folder=tmp_path)
    return model


def test_round_trip(tmp_path):
    model = _saved(tmp_path)
    loaded = pretrained.load_pretrained("tiny", folder=tmp_path)
    for a, b in zip(loaded.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not loaded.training
    entry = pretrained.manifest(tmp_path)["tiny"]
    assert entry["sha256"] == pretrained.sha256(tmp_path / "tiny.pt") and entry["lesson"] == 0


def test_half_precision_file_is_smaller_and_loads_into_a_float32_model(tmp_path):
    torch.manual_seed(0)
    model = DenoisingMLP(dim=2, hidden=64, num_layers=3, emb_dim=16)
    kwargs = {"dim": 2, "hidden": 64, "num_layers": 3, "emb_dim": 16}
    for name, dtype in (("full", "float32"), ("half", "float16")):
        pretrained.save_pretrained(model, name, lesson=0, builder="vdlearn.nn:DenoisingMLP", kwargs=kwargs,
                                   trained="a test", folder=tmp_path, dtype=dtype)
    full, half = (tmp_path / "full.pt").stat().st_size, (tmp_path / "half.pt").stat().st_size
    assert half < 0.6 * full
    entries = pretrained.manifest(tmp_path)
    assert entries["half"]["dtype"] == "float16" and "dtype" not in entries["full"]
    loaded = pretrained.load_pretrained("half", folder=tmp_path)
    for a, b in zip(loaded.parameters(), model.parameters(), strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=2**-10, atol=1e-7)
        assert not torch.equal(a, b) or b.abs().max() == 0 or a.numel() < 4    # really rounded
    with pytest.raises(ValueError, match="float16"):
        pretrained.save_pretrained(model, "x", lesson=0, builder="vdlearn.nn:DenoisingMLP", kwargs=kwargs,
                                   trained="a test", folder=tmp_path, dtype="int8")


def test_one_altered_byte_is_refused(tmp_path):
    _saved(tmp_path)
    path = tmp_path / "tiny.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="fails its checksum.*damaged or was altered"):
        pretrained.load_pretrained("tiny", folder=tmp_path)


def test_unknown_and_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="USE_PRETRAINED = False"):
        pretrained.manifest(tmp_path)
    _saved(tmp_path)
    with pytest.raises(KeyError, match="shipped: \\['tiny'\\]"):
        pretrained.verify("huge", folder=tmp_path)
    (tmp_path / "tiny.pt").unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        pretrained.verify("tiny", folder=tmp_path)


def test_shipped_checkpoints_verify_and_load():
    try:
        entries = pretrained.manifest()
    except FileNotFoundError:
        pytest.skip("this checkout ships no checkpoints")
    total = 0
    for name, entry in entries.items():
        model = pretrained.load_pretrained(name)
        assert sum(p.numel() for p in model.parameters()) > 0
        assert entry["bytes"] <= 10_000_000, f"{name}: a shipped file should stay within 10 MB"
        total += entry["bytes"]
    assert total <= 40_000_000, "data/checkpoints should stay within 40 MB (a clone students download)"


def _shipped(name):
    """The manifest, or skip the test when this checkout does not ship checkpoint ``name``."""
    try:
        entries = pretrained.manifest()
    except FileNotFoundError:
        pytest.skip("this checkout ships no checkpoints")
    if name not in entries:
        pytest.skip(f"this checkout does not ship {name}")
    return entries


def test_shipped_digit_model_draws_the_digits_it_is_asked_for():
    """Lesson 06's shipped UNet2D, sampled in 20 DPM-Solver++ steps with guidance, makes digits the
    course's classifier reads as the requested class."""
    _shipped("06_unet2d_digits")
    from vdlearn.diffusion import classifier_free_guidance, make_schedule, sample
    from vdlearn.metrics import class_agreement

    model = pretrained.load_pretrained("06_unet2d_digits")
    labels = torch.arange(20) % 10
    noise = torch.randn(20, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = sample("dpm++2m", classifier_free_guidance(model, labels, 3.0), noise, make_schedule("cosine", 1000),
                        steps=20, prediction_type="v", clip_x0=True, generator=torch.Generator().manual_seed(0))
    assert images.shape == (20, 1, 28, 28) and torch.isfinite(images).all()
    assert class_agreement(images.clamp(-1, 1), labels) >= 0.8


def test_shipped_video_model_makes_clips_with_one_moving_object():
    """Lesson 07's shipped SpaceTimeUNet: its clips contain a compact object the tracker follows, moving
    about as much as in real BouncingShapes clips."""
    entries = _shipped("07_spacetime_unet_shapes")
    from vdlearn.data import BouncingShapes
    from vdlearn.diffusion import dpm_solver_pp_sample, make_schedule
    from vdlearn import metrics as V

    model = pretrained.load_pretrained("07_spacetime_unet_shapes")
    frames = entries["07_spacetime_unet_shapes"]["kwargs"]["max_frames"]
    noise = torch.randn(12, 3, frames, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        clips = dpm_solver_pp_sample(model, noise, make_schedule("cosine", 1000), steps=12, prediction_type="v",
                                     clip_x0=True).clamp(-1, 1)
    real = BouncingShapes(64, frames=frames, size=32, seed=1).get_batch(torch.arange(64))
    assert 0.3 < V.motion_stats(clips, real)["energy_ratio"] < 3.0
    assert V.physics_score(clips)["tracked"] >= 0.5


def test_shipped_image_to_video_model_predicts_better_than_copying_the_last_frame():
    """Lesson 08's shipped masked-conditional model: given the first 2 frames of held-out clips it
    keeps them exactly and predicts the rest closer to the truth than repeating the last given frame."""
    _shipped("08_masked_video_shapes")
    from vdlearn.video import copy_last_frame
    from vdlearn.video import predict
    from vdlearn.data import BouncingShapes
    from vdlearn.diffusion import make_schedule

    model = pretrained.load_pretrained("08_masked_video_shapes")
    clips = BouncingShapes(12, frames=model.frames, size=32, seed=4321).get_batch(torch.arange(12))
    with torch.no_grad():
        out = predict(model, clips[:, :, :2], make_schedule("cosine", 1000), steps=12,
                      generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    assert torch.equal(out[:, :, :2], clips[:, :, :2])
    mse = lambda a: (a - clips[:, :, 2:]).pow(2).mean().item()  # noqa: E731
    assert mse(out[:, :, 2:]) < mse(copy_last_frame(clips[:, :, :2], model.frames - 2))


def test_shipped_latent_models_decode_to_clips_with_a_moving_object():
    """Lesson 09's shipped FrameVAE + latent SpaceTimeUNet: sampled latents decode to clips the tracker
    follows, moving about as much as real clips."""
    _shipped("09_latent_unet_shapes")
    from vdlearn.data import BouncingShapes
    from vdlearn.diffusion import make_schedule
    from vdlearn.video import sample_latent_clips
    from vdlearn import metrics as V

    vae = pretrained.load_pretrained("09_frame_vae_shapes")
    model = pretrained.load_pretrained("09_latent_unet_shapes")
    with torch.no_grad():
        clips = sample_latent_clips(model, vae, 12, 16, 32, make_schedule("cosine", 1000), steps=12,
                                    generator=torch.Generator().manual_seed(0))
    real = BouncingShapes(64, frames=16, size=32, seed=1).get_batch(torch.arange(64))
    assert clips.shape == (12, 3, 16, 32, 32)
    assert 0.3 < V.motion_stats(clips, real)["energy_ratio"] < 3.0
    assert V.physics_score(clips)["tracked"] >= 0.5


def test_one_call_samples_every_shipped_generator():
    """pretrained.sample gives clips in the course convention, the same for the same seed."""
    entries = _shipped("07_spacetime_unet_shapes")
    for name, entry in entries.items():
        recipe = entry.get("sampling")
        if not recipe:
            continue
        condition = {}
        if recipe["kind"] == "camera_video":          # a photograph is required: the first frame of a real view
            from vdlearn.data import EVAL_PHOTOS, CameraClips
            size = recipe["shape"][-1]
            views = CameraClips(2, frames=1, size=size, photos=list(EVAL_PHOTOS), motions=["static"], seed=1)
            condition = {"image": views.get_batch(range(2))[0][:, :, 0], "labels": ["pan_left", "zoom_in"]}
        if recipe.get("given", 1) > 1:                 # a predictor: the first frames are required
            c, _, h, w = recipe["shape"]
            condition = {"context": torch.rand(2, c, recipe["given"], h, w, generator=torch.Generator().manual_seed(1))
                         * 2 - 1}
        out = pretrained.sample(name, 2, seed=3, steps=2, **condition)
        assert out.shape == (2, *recipe["shape"]) and out.abs().max() <= 1 and torch.isfinite(out).all(), name
        if recipe["kind"] != "masked_video":
            assert torch.equal(out, pretrained.sample(name, 2, seed=3, steps=2, **condition)), name


def test_sample_conditions_and_refusals():
    _shipped("08_masked_video_shapes")
    from vdlearn.data import BouncingShapes
    clips = BouncingShapes(2, frames=8, size=32, seed=9).get_batch(torch.arange(2))
    animated = pretrained.sample("08_masked_video_shapes", 2, steps=2, image=clips[:, :, 0])
    assert torch.equal(animated[:, :, 0], clips[:, :, 0])              # the given frame is kept
    predicted = pretrained.sample("08_masked_video_shapes", 2, steps=2, context=clips[:, :, :2])
    assert torch.equal(predicted[:, :, :2], clips[:, :, :2])
    with pytest.raises(ValueError, match="not trained for the condition.*takes image, context, first, last"):
        pretrained.sample("08_masked_video_shapes", 2, labels=torch.zeros(2))
    with pytest.raises(ValueError, match="not trained for the condition.*no condition"):
        pretrained.sample("07_spacetime_unet_shapes", 2, image=clips[:, :, 0])
    with pytest.raises(ValueError, match="no sampling recipe|not a generator"):
        pretrained.sample("09_frame_vae_shapes", 2)
    with pytest.raises(KeyError, match="shipped"):
        pretrained.sample("no_such_model", 2)
