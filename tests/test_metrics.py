"""vdlearn.metrics: the Fréchet distance against closed forms, and FID-lite's sanity on real data."""
import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from vdlearn.metrics import (class_agreement, classify, extract_features, feature_network,
                             feature_statistics, fid_lite, frechet_distance)


def random_spd(d, rng, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T + (1e-3 * np.eye(d) if rank is None else 0)


# ---- the Fréchet distance ------------------------------------------------------------------------
def test_frechet_distance_of_1d_gaussians_is_the_closed_form():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance(1.0, 4.0, -2.0, 9.0) == pytest.approx(9.0 + 1.0)


def test_frechet_distance_of_commuting_covariances_sums_per_axis():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 0.25])
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(want)


def test_frechet_distance_matches_the_sqrtm_formula_and_is_symmetric():
    rng = np.random.default_rng(0)
    for d in (2, 5, 16):
        s1, s2 = random_spd(d, rng), random_spd(d, rng)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        want = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
        got = frechet_distance(mu1, s1, mu2, s2)
        assert got == pytest.approx(want, rel=1e-6)
        assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(got, rel=1e-6)
        assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_is_rotation_invariant_and_handles_singular_covariances():
    rng = np.random.default_rng(1)
    s1, s2 = random_spd(6, rng, rank=2), random_spd(6, rng, rank=3)  # rank-deficient
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    d = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(d) and d > 0
    assert frechet_distance(q @ mu1, q @ s1 @ q.T, q @ mu2, q @ s2 @ q.T) == pytest.approx(d, rel=1e-6)


def test_frechet_distance_of_samples_approaches_the_true_distance():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(50000, 3, generator=g, dtype=torch.float64)
    b = 2.0 * torch.randn(50000, 3, generator=g, dtype=torch.float64) + 1.0
    # true: |mu|^2 = 3, and per axis (1 - 2)^2 = 1, so 6
    assert frechet_distance(*feature_statistics(a), *feature_statistics(b)) == pytest.approx(6.0, rel=0.03)


def test_frechet_errors_are_explained():
    with pytest.raises(ValueError, match="same length"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="2x2 covariance"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="not symmetric"):
        frechet_distance(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="N >= 2"):
        feature_statistics(torch.zeros(1, 4))


# ---- the feature network and FID-lite -------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    from vdlearn.data import DigitImages
    a, la = DigitImages(600, seed=11).get_batch(torch.arange(600))
    b, lb = DigitImages(600, seed=12).get_batch(torch.arange(600))
    return a, la, b, lb


def test_feature_network_classifies_held_out_digits(digits):
    net = feature_network("digits")
    assert net.accuracy > 0.9  # measured on the held-out writers when it was trained
    a, la, _, _ = digits
    assert class_agreement(a, la) > 0.9
    assert classify(a[:5]).shape == (5,)


def test_fid_lite_sanity_real_vs_real_is_far_below_noise_and_blur(digits):
    a, _, b, _ = digits
    real = fid_lite(a, b)
    blur = fid_lite(a, F.avg_pool2d(b, 3, stride=1, padding=1))
    noise = fid_lite(a, torch.rand_like(b) * 2 - 1)
    assert real < blur / 10 and real < noise / 100
    assert fid_lite(a, b) == real  # deterministic


def test_fid_lite_compares_videos_frame_by_frame(digits):
    a, _, b, _ = digits
    videos = b[:300].view(100, 3, 1, 28, 28).transpose(1, 2)  # (N, C, T, H, W)
    assert extract_features(videos).shape == (300, 64)
    assert fid_lite(a, videos) == pytest.approx(fid_lite(a, b[:300]), rel=1e-6)


def test_feature_network_is_cached_on_disk(digits, monkeypatch):
    from vdlearn.metrics import features
    net = feature_network("digits")
    assert features._cache_path("digits").is_file()
    features._load_or_train.cache_clear()  # forget the in-memory copy: load from disk
    monkeypatch.setattr(features, "_train", lambda *a, **k: pytest.fail("retrained"))
    again = feature_network("digits")
    a = digits[0][:50]
    assert again is not net and torch.equal(again.features(a), net.features(a))


def test_metric_input_errors_are_explained(digits):
    a = digits[0]
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 1, 28, 28\)"):
        fid_lite(a, torch.zeros(10, 3, 28, 28))
    with pytest.raises(ValueError, match=r"\[-1, 1\].*127.5"):
        extract_features((a + 1) * 127.5)
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        fid_lite(a, a, dataset="cifar")
    with pytest.raises(ValueError, match=r"labels must have shape \(600,\)"):
        class_agreement(a, torch.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        extract_features(torch.full((2, 1, 28, 28), float("nan")))


def test_every_metric_is_exported_from_the_package():
    import vdlearn.metrics as metrics
    for name in metrics.__all__:
        assert getattr(metrics, name) is not None
    for name in ("fid_lite", "fvd_lite", "physics_score", "motion_stats", "psnr", "ssim", "best_of_k",
                 "nearest_neighbour_distance", "shuffle_frames", "freeze_frames"):
        assert name in metrics.__all__, f"{name} is not exported by vdlearn.metrics"
