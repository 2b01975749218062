"""Video metrics probed with real, frozen, shuffled and noisy clips; tracking against the true paths."""
import pytest
import torch

from vdlearn.data import BouncingShapes
from vdlearn import metrics as V
from vdlearn.metrics import fvd


@pytest.fixture(scope="module")
def real():
    clips, paths = BouncingShapes(num_clips=48, frames=8, size=32, seed=3, return_trajectory=True).get_batch(
        torch.arange(48))
    return clips, paths


def noisy(clips, std=0.2):
    g = torch.Generator().manual_seed(0)
    return (clips + std * torch.randn(clips.shape, generator=g)).clamp(-1, 1)


def test_shuffle_keeps_the_frames_but_never_their_order(real):
    clips = real[0][:16]
    shuffled = V.shuffle_frames(clips, torch.Generator().manual_seed(0))
    for a, b in zip(clips, shuffled):
        assert not torch.equal(a, b)
        frames_a = sorted(a.transpose(0, 1).flatten(1).sum(1).tolist())
        frames_b = sorted(b.transpose(0, 1).flatten(1).sum(1).tolist())
        assert frames_a == pytest.approx(frames_b)


def test_freeze_repeats_one_original_frame(real):
    clips = real[0][:8]
    frozen = V.freeze_frames(clips, torch.Generator().manual_seed(0))
    assert torch.equal(frozen, frozen[:, :, :1].expand_as(frozen))
    for clip, still in zip(clips, frozen):
        assert any(torch.equal(clip[:, t], still[:, 0]) for t in range(clip.shape[1]))


def test_frame_difference_energy_in_closed_form():
    clips = -torch.ones(2, 1, 4, 2, 2)
    clips[0, :, 1::2] = 1.0  # flips between -1 and 1 every frame: (x_{t+1} - x_t)^2 = 4 everywhere
    clips[1, :, 3, 0, 0] = 0.0  # one pixel of one frame changes by 1: 1 / (3 steps * 4 pixels)
    assert V.frame_difference_energy(clips).tolist() == pytest.approx([4.0, 1 / 12])


def test_motion_stats_see_frozen_and_flickering_clips(real):
    clips = real[0]
    same = V.motion_stats(clips, clips)
    assert same["energy_ratio"] == pytest.approx(1.0) and same["static_fraction"] == 0.0
    frozen = V.motion_stats(V.freeze_frames(clips, torch.Generator().manual_seed(0)), clips)
    assert frozen["energy_ratio"] == 0.0 and frozen["static_fraction"] == 1.0
    assert V.motion_stats(V.shuffle_frames(clips, torch.Generator().manual_seed(0)), clips)["energy_ratio"] > 1.5
    assert V.motion_stats(noisy(clips), clips)["energy_ratio"] > 1.3


def test_tracking_follows_the_true_centroids(real):
    clips, paths = real
    tracks = V.track_centroids(clips)
    assert tracks["centroids"].shape == (48, 1, 8, 2) and tracks["visible"].all()
    error = (tracks["centroids"][:, 0] - paths[:, 0]).norm(dim=-1)
    assert error.mean() < 0.1 and error.max() < 0.3


def test_tracking_two_shapes_by_colour():
    clips, paths = BouncingShapes(num_clips=24, frames=6, size=32, num_shapes=2, seed=1,
                                  return_trajectory=True).get_batch(torch.arange(24))
    tracks = V.track_centroids(clips, num_objects=2)
    assert tracks["centroids"].shape == (24, 2, 6, 2)
    ok = 0
    for b in range(24):  # each tracked object is one of the true shapes, away from overlaps
        if not tracks["visible"][b].all():
            continue
        d = (tracks["centroids"][b, :, None] - paths[b, None]).norm(dim=-1).median(dim=-1).values  # (K, S)
        ok += int(d.min(dim=1).values.max() < 0.5)
    assert ok >= 12


def test_physics_score_real_is_near_zero_and_corruptions_score_badly(real):
    clips = real[0]
    g = torch.Generator().manual_seed(0)
    scores = {name: V.physics_score(x)["score"] for name, x in [
        ("real", clips), ("frozen", V.freeze_frames(clips, g)), ("shuffled", V.shuffle_frames(clips, g)),
        ("noisy", noisy(clips))]}
    assert scores["real"] < 0.2
    assert scores["frozen"] > 1.0 and scores["shuffled"] > 2.0 and scores["noisy"] > 1.0
    # without the dataset's speed range, a frozen shape is lawful (constant velocity 0)
    assert V.physics_score(V.freeze_frames(clips, g), speed=None)["score"] < 0.2


def test_physics_rejects_noise_and_blobs_that_fill_the_frame(real):
    """Pure noise, or one blob over the whole frame, is no compact object: untracked, not lawful."""
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(8, 3, 8, 32, 32, generator=g) * 2 - 1
    blob = torch.ones(8, 3, 8, 32, 32)
    for clips in (noise, blob):
        report = V.physics_score(clips)
        assert report["tracked"] == 0.0 and report["score"] == pytest.approx(8.0)
    assert V.physics_score(real[0])["tracked"] == 1.0


def test_physics_counts_vanished_objects_as_failures(real):
    clips = real[0][:4].clone()
    clips[0, :, 3] = -1.0  # the shape of clip 0 disappears in frame 3
    residuals = V.physics_residuals(clips)
    assert torch.isnan(residuals[0]) and torch.isfinite(residuals[1:]).all()
    report = V.physics_score(clips)
    assert report["tracked"] == 0.75 and report["score"] >= 8.0 / 4


@pytest.mark.parametrize("bad,match", [
    (torch.zeros(3, 8, 32, 32), r"\(B, C, T, H, W\).*unsqueeze\(0\)"),
    (torch.full((2, 3, 4, 8, 8), 255.0), r"\[-1, 1\].*x / 127.5 - 1"),
    (torch.full((2, 3, 4, 8, 8), float("nan")), "NaN"),
    (torch.zeros(2, 3, 1, 8, 8), "at least 2 frames"),
])
def test_bad_clips_get_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        V.frame_difference_energy(bad)


def test_other_bad_arguments():
    gray = torch.zeros(2, 1, 4, 8, 8)
    with pytest.raises(ValueError, match="RGB"):
        V.track_centroids(gray, num_objects=2)
    with pytest.raises(ValueError, match="speed"):
        V.physics_residuals(torch.zeros(2, 3, 4, 8, 8), speed=(2.0, 1.0))
    with pytest.raises(ValueError, match="static_threshold"):
        V.motion_stats(torch.zeros(2, 3, 4, 8, 8), torch.zeros(2, 3, 4, 8, 8), static_threshold=2)
    with pytest.raises(ValueError, match="unknown dataset"):
        V.video_feature_network("cats")


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory):
    """A cache folder of this module's own (per pytest-xdist worker): no other test or worker writes there."""
    return tmp_path_factory.mktemp("video-feature-cache")


@pytest.fixture
def quick_features(monkeypatch, feature_cache):
    """A small dataset and a short training run, so the FVD-lite tests take seconds."""
    monkeypatch.setenv("VDLEARN_CACHE", str(feature_cache))
    monkeypatch.setattr(fvd, "TRAIN_STEPS", 100)
    fvd._load_or_train.cache_clear()
    yield BouncingShapes(num_clips=512, frames=8, size=16, seed=11)
    fvd._load_or_train.cache_clear()


def test_fvd_lite_small_for_real_large_for_frozen(quick_features):
    """Even a briefly trained feature network tells frozen clips from real ones (by 25-700x the floor
    over training seeds; the full one, trained 800 steps, also shuffled and noisy clips: lesson 07
    shows those numbers)."""
    ds = quick_features
    a, b = ds.get_batch(torch.arange(0, 128)), ds.get_batch(torch.arange(128, 256))
    floor = V.fvd_lite(a, b, dataset=ds)
    assert V.fvd_lite(a, a, dataset=ds) == pytest.approx(0.0, abs=1e-6)
    assert V.fvd_lite(a, V.freeze_frames(b, torch.Generator().manual_seed(0)), dataset=ds) > 5 * floor
    assert V.extract_video_features(a[:4], dataset=ds).shape == (4, 64)


def test_feature_network_training_is_seeded():
    ds = BouncingShapes(num_clips=64, frames=8, size=16, seed=11)
    (n1, _), (n2, _), (n3, _) = fvd._train(ds, num_steps=2), fvd._train(ds, num_steps=2), fvd._train(ds, seed=1, num_steps=2)
    assert all(torch.equal(p, q) for p, q in zip(n1.parameters(), n2.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(n1.parameters(), n3.parameters()))


def test_feature_network_is_cached_on_disk(quick_features, monkeypatch, feature_cache):
    ds = quick_features
    first = V.video_feature_network(ds)
    files = list((feature_cache / "metrics").glob("videonet-*-100steps-v*.pt"))
    assert len(files) == 1 and not list((feature_cache / "metrics").glob("*.tmp"))
    fvd._load_or_train.cache_clear()
    monkeypatch.setattr(fvd, "_train", lambda *a, **k: pytest.fail("the cached network should be loaded"))
    again = V.video_feature_network(ds)
    for p, q in zip(first.parameters(), again.parameters()):
        assert torch.equal(p, q)
    assert again.size == 16 and again.frames == 8 and set(again.scores) >= {"order_accuracy"}


def test_cache_key_holds_the_training_length(quick_features, monkeypatch):
    """A network trained for another number of steps is another network: never loaded in its place."""
    ds = quick_features
    V.video_feature_network(ds)
    fvd._load_or_train.cache_clear()
    monkeypatch.setattr(fvd, "TRAIN_STEPS", 7)
    calls = []

    def fake_train(dataset, num_steps=None, **kwargs):
        calls.append(num_steps)
        return V.VideoFeatureNet(3, fvd._content_groups(dataset)).eval(), {}

    monkeypatch.setattr(fvd, "_train", fake_train)
    V.video_feature_network(ds)
    assert calls == [7]


def test_fvd_lite_rejects_clips_of_another_size(quick_features):
    ds = quick_features
    with pytest.raises(ValueError, match=r"takes clips \(N, 3, T, 16, 16\)"):
        V.fvd_lite(torch.zeros(4, 3, 8, 32, 32), torch.zeros(4, 3, 8, 32, 32), dataset=ds)
