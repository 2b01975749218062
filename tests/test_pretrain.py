"""``python -m vdlearn pretrain``: recipes, resumable sittings, the manifest entry, and one call to sample."""
import json
import shutil
from dataclasses import replace

import pytest
import torch

from vdlearn import pretrained
from vdlearn.__main__ import main
from vdlearn.pretrained import recipes
from vdlearn.pretrained.recipes import Recipe
from vdlearn.video.flow import masked_flow_loss

VAE = "09_frame_vae_shapes"


def _latents(folder):
    return recipes._cached(folder, "latents.pt", lambda: torch.randn(32, 4, 4, 8, 8, generator=torch.Generator()
                                                                     .manual_seed(0)))


TINY = Recipe(
    name="99_tiny_latent_dit", lesson=9, summary="a test recipe", builder="vdlearn.nn.video_dit:VideoDiT",
    kwargs={"in_channels": 4, "frames": 4, "size": 8, "patch": 2, "tubelet": 4, "dim": 16, "depth": 1, "heads": 2,
            "cond_channels": 5},
    data=_latents, loss=lambda model, batch: masked_flow_loss(model, batch, max_k=2), num_steps=6, batch_size=4,
    lr=1e-3, warmup_steps=0, ema_decay=0.9, checkpoint_every=2,
    sampling={"kind": "latent_flow_video", "shape": [3, 4, 32, 32], "sampler": "flow-euler", "steps": 3, "vae": VAE},
    evaluate=lambda sample, n=2: {"clips_in_range": float(sample(n, 0).abs().max() <= 1)},
)


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    monkeypatch.setitem(recipes.RECIPES, TINY.name, TINY)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    entry = pretrained.manifest()[VAE]
    shutil.copy(pretrained.checkpoint_dir() / entry["file"], folder / entry["file"])
    (folder / "manifest.json").write_text(json.dumps({VAE: entry}))
    return tmp_path / "runs", folder


def test_unknown_recipes_and_steps_are_explained(tiny):
    with pytest.raises(KeyError, match="no pretraining recipe 'nope'.*07_causal_dit_shapes"):
        pretrained.pretrain("nope")
    with pytest.raises(ValueError, match=r"until must be a step in 1\.\.6"):
        pretrained.pretrain(TINY.name, workdir=tiny[0], until=7)
    assert main(["pretrain", "nope"]) == 2


def test_list_shows_every_recipe(capsys):
    assert main(["pretrain", "--list"]) == 0
    out = capsys.readouterr().out
    for name in recipes.RECIPES:
        assert name in out


def test_a_run_over_two_sittings_ships_the_model_with_its_manifest_entry(tiny):
    workdir, folder = tiny
    first = pretrained.pretrain(TINY.name, workdir=workdir, until=4, folder=folder, progress=False)
    assert first["steps"] == 4 and "shipped" not in first
    assert TINY.name not in pretrained.manifest(folder)
    done = pretrained.pretrain(TINY.name, workdir=workdir, folder=folder, progress=False)
    entry = pretrained.manifest(folder)[TINY.name]
    assert entry["sha256"] == pretrained.sha256(folder / entry["file"])
    assert entry["pretrain"]["steps"] == 6 and entry["pretrain"]["metrics"] == {"clips_in_range": 1.0}
    assert entry["pretrain"]["hours"] >= 0 and "CPU" in entry["pretrain"]["machine"]
    assert done["metrics"] == {"clips_in_range": 1.0} and entry["pretrain"]["curve"] == []
    sittings = json.loads((workdir / TINY.name / "sittings.json").read_text())
    assert [(s["from_step"], s["to_step"]) for s in sittings] == [(0, 4), (4, 6)]


def test_an_interrupted_run_resumes_to_the_same_weights(tiny, monkeypatch):
    workdir, base = tiny
    folder = base.parent / "shipped"
    for copy in ("a", "b"):
        shutil.copytree(base, folder / copy)
    pretrained.pretrain(TINY.name, workdir=workdir / "a", folder=folder / "a", progress=False)
    calls = {"n": 0}

    def crash_at_step_5(model, batch):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return TINY.loss(model, batch)

    monkeypatch.setitem(recipes.RECIPES, TINY.name, replace(TINY, loss=crash_at_step_5))
    with pytest.raises(KeyboardInterrupt):
        pretrained.pretrain(TINY.name, workdir=workdir / "b", folder=folder / "b", progress=False)
    assert (workdir / "b" / TINY.name / "checkpoint.pt").is_file()
    monkeypatch.setitem(recipes.RECIPES, TINY.name, TINY)
    pretrained.pretrain(TINY.name, workdir=workdir / "b", folder=folder / "b", progress=False)
    a = pretrained.load_state(TINY.name, folder / "a")
    b = pretrained.load_state(TINY.name, folder / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_stage_starts_from_the_finished_first_stage(tiny, monkeypatch, capsys):
    """A first stage ships nothing and keeps its run; the recipe that continues it refuses to start before the
    first stage has finished, then starts from its EMA weights (a learning rate of ~0 keeps them: the shipped
    weights are the first stage's) and says so in the manifest."""
    workdir, folder = tiny
    first = replace(TINY, name="99_tiny_first_stage", ships=False)
    second = replace(TINY, name="99_tiny_second_stage", continues=first.name, num_steps=2, lr=1e-12)
    for r in (first, second):
        monkeypatch.setitem(recipes.RECIPES, r.name, r)
    with pytest.raises(ValueError, match=r"has done 0 of its 6 steps.*pretrain 99_tiny_first_stage"):
        pretrained.pretrain(second.name, workdir=workdir, folder=folder, progress=False)
    pretrained.pretrain(first.name, workdir=workdir, until=3, folder=folder, progress=False)
    with pytest.raises(ValueError, match=r"has done 3 of its 6 steps"):
        pretrained.pretrain(second.name, workdir=workdir, folder=folder, progress=False)
    assert main(["pretrain", first.name, "--workdir", str(workdir), "--folder", str(folder)]) == 0
    assert "kept in" in capsys.readouterr().out and first.name not in pretrained.manifest(folder)
    done = pretrained.pretrain(second.name, workdir=workdir, folder=folder, progress=False)
    start = pretrained.finished_run(first.name, workdir).state_dict()
    shipped = pretrained.load_state(second.name, folder)
    assert all(torch.allclose(shipped[k], start[k], atol=1e-6) for k in start)
    assert done["steps"] == 2 and "99_tiny_first_stage" in pretrained.manifest(folder)[second.name]["trained"]
    assert "(continues 99_tiny_first_stage)" in recipes.recipe_table()


def test_a_checkpoint_of_another_recipe_is_refused(tiny, monkeypatch):
    workdir, folder = tiny
    pretrained.pretrain(TINY.name, workdir=workdir, until=2, folder=folder, progress=False)
    wider = replace(TINY, kwargs={**TINY.kwargs, "dim": 32})
    monkeypatch.setitem(recipes.RECIPES, TINY.name, wider)
    with pytest.raises(ValueError, match="other settings than this run.*kwargs"):
        pretrained.pretrain(TINY.name, workdir=workdir, folder=folder, progress=False)


def test_sample_keeps_given_frames_and_refuses_wrong_conditions(tiny):
    workdir, folder = tiny
    pretrained.pretrain(TINY.name, workdir=workdir, folder=folder, progress=False)
    context = torch.rand(2, 3, 2, 32, 32) * 2 - 1
    clips = pretrained.sample(TINY.name, 2, folder=folder, context=context)
    assert clips.shape == (2, 3, 4, 32, 32)
    assert torch.equal(clips[:, :, :2], context)
    image = context[:, :, 0]
    assert torch.equal(pretrained.sample(TINY.name, 2, folder=folder, image=image)[:, :, 0], image)
    both = pretrained.sample(TINY.name, 2, folder=folder, first=image, last=-image)
    assert torch.equal(both[:, :, -1], -image)
    again = pretrained.sample(TINY.name, 2, seed=3, folder=folder)
    assert torch.equal(again, pretrained.sample(TINY.name, 2, seed=3, folder=folder))
    with pytest.raises(ValueError, match="not class-conditional: it takes no labels"):
        pretrained.sample(TINY.name, 2, folder=folder, labels=torch.zeros(2))
    with pytest.raises(ValueError, match="prompt.*takes image, context, first, last, labels"):
        pretrained.sample(TINY.name, 2, folder=folder, prompt="a red disc")
    with pytest.raises(ValueError, match=r"context must be \(n, C, k, H, W\)"):
        pretrained.sample(TINY.name, 2, folder=folder, context=torch.zeros(2, 3, 2, 16, 16))
    with pytest.raises(ValueError, match="both first and last"):
        pretrained.sample(TINY.name, 2, folder=folder, first=image)


def test_a_run_can_be_evaluated_before_it_ends(tiny):
    workdir, folder = tiny
    pretrained.pretrain(TINY.name, workdir=workdir, until=4, folder=folder, progress=False)
    model, step = pretrained.run_model(TINY.name, workdir)
    assert step == 4 and not model.training
    point = pretrained.evaluate_run(TINY.name, workdir, n=2, folder=folder)
    assert point["step"] == 4 and point["clips_in_range"] == 1.0 and point["hours"] >= 0
    with pytest.raises(FileNotFoundError, match="start one with"):
        pretrained.run_model(TINY.name, workdir / "elsewhere")
    pretrained.record_curve_point(TINY.name, workdir, n=2, folder=folder)
    pretrained.pretrain(TINY.name, workdir=workdir, folder=folder, progress=False)
    pretrained.record_curve_point(TINY.name, workdir, n=2, folder=folder)
    assert [p["step"] for p in pretrained.read_curve(TINY.name, workdir)] == [4, 6]


def test_a_flow_matching_image_model_samples_with_any_sampler(tmp_path):
    from vdlearn.diffusion import classifier_free_guidance, flow_euler_sample
    from vdlearn.nn import UNet2D

    torch.manual_seed(0)
    kwargs = {"in_channels": 1, "base_channels": 8, "channel_mults": [1, 2], "attention_levels": [], "num_classes": 10}
    net = UNet2D(**kwargs)
    for p in net.parameters():                       # not the zero output of an untrained network
        p.data += 0.05 * torch.randn_like(p)
    sampling = {"kind": "image", "shape": [1, 8, 8], "objective": "flow", "time_scale": 1000,
                "sampler": "flow-euler", "steps": 4}
    pretrained.save_pretrained(net, "flow_digits", lesson=6, builder="vdlearn.nn:UNet2D", kwargs=kwargs,
                               trained="test", sampling=sampling, folder=tmp_path)
    got = pretrained.sample("flow_digits", 3, seed=2, folder=tmp_path)
    noise = torch.randn((3, 1, 8, 8), generator=torch.Generator().manual_seed(2))
    guided = classifier_free_guidance(net.eval(), torch.arange(3), 1.0)
    with torch.no_grad():
        want = flow_euler_sample(lambda x, t: guided(x, t * 1000), noise, steps=4, clip_x0=True).clamp(-1, 1)
    assert torch.allclose(got, want, atol=1e-5)
    for sampler in ("flow-heun", "dpm++2m", "ddim"):
        out = pretrained.sample("flow_digits", 3, seed=2, sampler=sampler, steps=4, folder=tmp_path)
        assert out.shape == (3, 1, 8, 8) and torch.isfinite(out).all()


def test_the_video_recipe_scores_real_clips_as_real_and_mixed_clips_as_broken():
    from vdlearn.data import BouncingShapes
    from vdlearn.metrics import mix_frames

    evaluate = recipes.get_recipe("07_causal_dit_shapes").evaluate
    real = BouncingShapes(32, frames=8, size=32, seed=5).get_batch(torch.arange(32))
    good = evaluate(lambda n, seed: real[:n], 32)
    assert good["constant"] == 1.0 and good["exactly_one"] == 1.0 and good["physics_px"] < 0.5
    assert 0.8 < good["energy_ratio"] < 1.25
    bad = evaluate(lambda n, seed: mix_frames(real[:n], torch.Generator().manual_seed(0)), 32)
    assert bad["constant"] < 0.3 and bad["physics_px"] > 2


def test_the_digit_recipe_scores_real_clips_of_the_asked_digit_and_refuses_wrong_or_mixed_ones():
    from vdlearn.metrics import mix_frames

    recipe = recipes.get_recipe("07_causal_dit_digits")
    digits = recipes._moving_digits(300, seed=0)
    clips, labels = digits.get_batch(torch.arange(300)), digits.clip_labels(torch.arange(300))
    assert clips.shape[1:] == tuple(recipe.sampling["shape"]) and labels.shape == (len(clips),)
    # clip i of the "samples" shows digit i % 10, as the evaluation asks for
    order = torch.cat([torch.nonzero(labels == d)[:3, 0] for d in range(10)]).view(10, 3).T.flatten()
    asked = clips[order]
    good = recipe.evaluate(lambda n, seed: asked[:n], 30)
    assert good["digit_constant"] > 0.85 and good["label_accuracy"] > 0.85 and good["exactly_one"] > 0.95
    wrong = recipe.evaluate(lambda n, seed: asked.roll(1, dims=0)[:n], 30)
    assert wrong["label_accuracy"] < 0.3
    mixed = recipe.evaluate(lambda n, seed: mix_frames(asked[:n], torch.Generator().manual_seed(0)), 30)
    assert mixed["digit_constant"] < 0.4


def test_a_pixel_flow_model_samples_with_given_frames_kept(tmp_path):
    from vdlearn.nn.video_dit import VideoDiT
    from vdlearn.video.flow import sample_masked_flow

    torch.manual_seed(0)
    kwargs = {"in_channels": 1, "frames": 4, "size": 8, "patch": 4, "tubelet": 4, "dim": 16, "depth": 1,
              "heads": 2, "cond_channels": 2}
    net = VideoDiT(**kwargs)
    for p in net.parameters():                       # not the zero output of an untrained network
        p.data += 0.05 * torch.randn_like(p)
    sampling = {"kind": "flow_video", "shape": [1, 4, 8, 8], "sampler": "flow-euler", "steps": 3}
    pretrained.save_pretrained(net, "tiny_pixels", lesson=7, builder="vdlearn.nn.video_dit:VideoDiT",
                               kwargs=kwargs, trained="test", sampling=sampling, folder=tmp_path)
    got = pretrained.sample("tiny_pixels", 2, seed=1, folder=tmp_path)
    want = sample_masked_flow(net.eval(), torch.zeros(2, 1, 4, 8, 8), torch.zeros(2, 4, dtype=torch.bool), steps=3,
                              generator=torch.Generator().manual_seed(1)).clamp(-1, 1)
    assert torch.allclose(got, want, atol=1e-6)
    image = torch.rand(2, 1, 8, 8) * 2 - 1
    assert torch.equal(pretrained.sample("tiny_pixels", 2, folder=tmp_path, image=image)[:, :, 0], image)
    with pytest.raises(ValueError, match="sampled with 'flow-euler'"):
        pretrained.sample("tiny_pixels", 2, folder=tmp_path, sampler="ddim")
    with pytest.raises(ValueError, match="not class-conditional: it takes no labels"):
        pretrained.sample("tiny_pixels", 2, folder=tmp_path, labels=[0, 1])


def test_a_class_conditional_flow_model_samples_the_classes_asked_for_by_index_or_name(tmp_path):
    from vdlearn.nn.video_dit import VideoDiT
    from vdlearn.video.flow import sample_masked_flow

    torch.manual_seed(0)
    kwargs = {"in_channels": 1, "frames": 4, "size": 8, "patch": 4, "tubelet": 4, "dim": 16, "depth": 1,
              "heads": 2, "cond_channels": 2, "num_classes": 3}
    net = VideoDiT(**kwargs)
    for p in net.parameters():
        p.data += 0.05 * torch.randn_like(p)
    sampling = {"kind": "flow_video", "shape": [1, 4, 8, 8], "sampler": "flow-euler", "steps": 3,
                "guidance_scale": 2.0, "classes": ["a", "b", "c"]}
    pretrained.save_pretrained(net, "tiny_classes", lesson=7, builder="vdlearn.nn.video_dit:VideoDiT",
                               kwargs=kwargs, trained="test", sampling=sampling, folder=tmp_path)

    def want(labels, scale):
        return sample_masked_flow(net.eval(), torch.zeros(4, 1, 4, 8, 8), torch.zeros(4, 4, dtype=torch.bool),
                                  steps=3, labels=torch.tensor(labels), guidance_scale=scale,
                                  generator=torch.Generator().manual_seed(1)).clamp(-1, 1)

    default = pretrained.sample("tiny_classes", 4, seed=1, folder=tmp_path)      # each class in turn, scale 2
    assert torch.allclose(default, want([0, 1, 2, 0], 2.0), atol=1e-6)
    named = pretrained.sample("tiny_classes", 4, seed=1, folder=tmp_path, labels=["c", "c", "a", "b"],
                              guidance_scale=1.0)
    assert torch.allclose(named, want([2, 2, 0, 1], 1.0), atol=1e-6)
    assert not torch.allclose(named, want([0, 1, 2, 0], 1.0), atol=1e-4)
    assert torch.allclose(pretrained.sample("tiny_classes", 4, seed=1, folder=tmp_path, labels="b"),
                          want([1] * 4, 2.0), atol=1e-6)
    image = torch.rand(4, 1, 8, 8) * 2 - 1                 # given frames show the class: the null class by default
    known = torch.zeros(4, 1, 4, 8, 8)
    known[:, :, 0] = image
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[:, 0] = True
    given = sample_masked_flow(net.eval(), known, mask, steps=3, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(pretrained.sample("tiny_classes", 4, seed=1, folder=tmp_path, image=image),
                          given.clamp(-1, 1), atol=1e-6)
    with pytest.raises(ValueError, match="knows no class 'd'; its classes are: a, b, c"):
        pretrained.sample("tiny_classes", 4, folder=tmp_path, labels="d")
    with pytest.raises(ValueError, match=r"4 class indices in \[0, 2\]"):
        pretrained.sample("tiny_classes", 4, folder=tmp_path, labels=[0, 1, 2, 3])


def test_a_causal_latent_mask_knows_a_latent_frame_only_when_all_its_frames_are_given():
    from vdlearn.vae import CausalVideoVAE, FrameVAE
    from vdlearn.video import known_latent_frames

    vaes = {s: CausalVideoVAE(3, latent_channels=4, width=8, temporal_down=s) for s in (2, 4)}

    def causal_latent_mask(mask, stride):
        return known_latent_frames(vaes[stride], mask)

    def given(frames, k):                             # the first k of `frames` frames
        return (torch.arange(frames) < k)[None]

    # a FrameVAE keeps a latent frame per frame
    assert torch.equal(known_latent_frames(FrameVAE(3, latent_channels=4), given(8, 3)), given(8, 3))

    # stride 2: latent 0 <- frame 0; latent j <- frames 2j-1, 2j; 8 frames -> 5 latent frames, the last half padding
    assert causal_latent_mask(given(8, 1), 2).tolist() == [[True, False, False, False, False]]
    assert causal_latent_mask(given(8, 2), 2).tolist() == [[True, False, False, False, False]]
    assert causal_latent_mask(given(8, 3), 2).tolist() == [[True, True, False, False, False]]
    assert causal_latent_mask(given(8, 8), 2).tolist() == [[True, True, True, True, False]]
    assert causal_latent_mask(given(9, 9), 2).tolist() == [[True] * 5]
    assert causal_latent_mask(given(8, 5), 4).tolist() == [[True, True, False]]
    # a frame given in the middle alone makes no latent frame known
    middle = torch.zeros(1, 8, dtype=torch.bool)
    middle[0, 4] = True
    assert not causal_latent_mask(middle, 2).any()


def test_a_flow_model_in_causal_latents_continues_clips_and_refuses_interpolation(tmp_path):
    from vdlearn.nn.video_dit import VideoDiT
    from vdlearn.video import encode_clips

    vae_name = "09_causal_vae"
    entry = pretrained.manifest()[vae_name]
    shutil.copy(pretrained.checkpoint_dir() / entry["file"], tmp_path / entry["file"])
    (tmp_path / "manifest.json").write_text(json.dumps({vae_name: entry}))
    torch.manual_seed(0)
    kwargs = {"in_channels": 8, "frames": 5, "size": 8, "patch": 2, "tubelet": 5, "dim": 16, "depth": 1,
              "heads": 2, "cond_channels": 9}
    net = VideoDiT(**kwargs)
    sampling = {"kind": "latent_flow_video", "shape": [3, 8, 32, 32], "sampler": "flow-euler", "steps": 2,
                "vae": vae_name}
    pretrained.save_pretrained(net, "tiny_causal", lesson=7, builder="vdlearn.nn.video_dit:VideoDiT",
                               kwargs=kwargs, trained="test", sampling=sampling, folder=tmp_path)
    clips = pretrained.sample("tiny_causal", 2, seed=0, folder=tmp_path)
    assert clips.shape == (2, 3, 8, 32, 32) and clips.abs().max() <= 1
    from vdlearn.data import BouncingShapes
    real = BouncingShapes(2, frames=8, size=32, seed=3).get_batch(torch.arange(2))
    went_on = pretrained.sample("tiny_causal", 2, folder=tmp_path, context=real[:, :, :3])
    assert torch.equal(went_on[:, :, :3], real[:, :, :3])
    # what the sampler is given as known latents: the causal encoder's latents of the first 3 frames are
    # those of the whole clip (latent frames 0 and 1), whatever the unknown frames hold
    vae = pretrained.load_pretrained(vae_name, tmp_path)
    zeroed = real.clone()
    zeroed[:, :, 3:] = 0
    assert torch.allclose(encode_clips(vae, zeroed)[:, :, :2], encode_clips(vae, real)[:, :, :2], atol=1e-5)
    with pytest.raises(ValueError, match="not first= and last="):
        pretrained.sample("tiny_causal", 2, folder=tmp_path, first=real[:, :, 0], last=real[:, :, -1])
    # grey clips through the colour autoencoder: repeated to RGB in, averaged out
    pretrained.save_pretrained(net, "tiny_causal_grey", lesson=7, builder="vdlearn.nn.video_dit:VideoDiT",
                               kwargs=kwargs, trained="test", sampling={**sampling, "shape": [1, 8, 32, 32]},
                               folder=tmp_path)
    grey = pretrained.sample("tiny_causal_grey", 2, seed=0, folder=tmp_path)
    assert grey.shape == (2, 1, 8, 32, 32)
    assert torch.allclose(grey, clips.mean(dim=1, keepdim=True), atol=1e-5)


def test_every_shipped_checkpoint_has_a_recipe_that_builds_its_network():
    entries = pretrained.manifest()
    missing = sorted(set(entries) - set(recipes.RECIPES))
    assert not missing, f"shipped checkpoints without a recipe: {missing}"
    for name, entry in entries.items():
        recipe = recipes.get_recipe(name)
        assert recipe.builder == entry["builder"] and recipe.kwargs == entry["kwargs"], name
        assert recipe.lesson == int(entry["lesson"]), name
        state = pretrained.load_state(name)
        built = recipe.build().state_dict()
        assert {k: tuple(v.shape) for k, v in built.items()} == {k: tuple(v.shape) for k, v in state.items()}, name
        if recipe.sampling:   # a generator samples as its recipe says (the sampler, steps, shape and kind)
            for key in ("kind", "shape", "sampler", "steps"):
                assert entry["sampling"][key] == recipe.sampling[key], (name, key)


def test_the_lesson08_recipe_scores_the_truth_above_constant_velocity_and_frozen_clips_below_it():
    from vdlearn.data import BouncingShapes

    evaluate = recipes.get_recipe("08_masked_video_shapes").evaluate
    truth = BouncingShapes(16, frames=8, size=32, seed=10_000).get_batch(torch.arange(16))

    def oracle(n, seed, image=None, context=None):     # the true clips, whatever is given
        return truth[:n]

    def frozen(n, seed, image=None, context=None):     # the last given frame, held
        given = image[:, :, None] if image is not None else context
        return given[:, :, -1:].expand(-1, -1, 8, -1, -1)

    good, bad = evaluate(oracle, 16), evaluate(frozen, 16)
    assert good["image_to_video_constant"] == 1.0 and good["image_to_video_physics_px"] < 0.5
    assert good["prediction_psnr_best_of_4"] > good["prediction_psnr_constant_velocity"] + 10
    assert bad["prediction_psnr_best_of_4"] < bad["prediction_psnr_constant_velocity"]
    assert bad["image_to_video_physics_px"] > 2


def test_the_frame_autoencoder_recipe_trains_on_whole_frames_and_crops_and_scores_the_shipped_one():
    recipe = recipes.get_recipe("09_frame_vae_shapes")
    frames = recipe.data(None)
    assert frames.shape == (8192, 3, 32, 32) and frames.min() >= -1 and frames.max() <= 1
    assert torch.equal(frames, recipe.data(None))             # the same frames every time: a resumable run
    scores = recipe.evaluate(pretrained.load_pretrained("09_frame_vae_shapes"))
    assert scores["psnr"] > 30                                 # an untrained network is near 10 dB
    untrained = recipe.evaluate(recipe.build().eval())
    assert untrained["psnr"] < 20
