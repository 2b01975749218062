"""Tests of vdlearn.data: shapes, ranges, determinism, physics, rendering, digits, 2-D toys."""
import math
import time

import numpy as np
import pytest
import torch

from vdlearn.data import (
    PALETTE,
    TOY2D_NAMES,
    BouncingShapes,
    DigitImages,
    MovingDigits,
    ShapeImages,
    Toy2D,
    bounce,
    load_digit_source,
    mixture_modes,
    mixture_std,
    mode_coverage,
    sample_toy2d,
)
from vdlearn.data import digits as digits_module

torch.set_num_threads(1)


def small_shapes(**kw):
    args = dict(num_clips=16, frames=12, size=32, seed=0)
    args.update(kw)
    return BouncingShapes(**args)


# --------------------------------------------------------------------------- bouncing shapes
def test_bouncing_shapes_shape_and_range():
    ds = small_shapes(num_shapes=2)
    clip = ds[0]
    assert len(ds) == 16
    assert clip.shape == (3, 12, 32, 32) and clip.dtype == torch.float32
    assert clip.min() == -1 and clip.max() <= 1 and clip.max() > 0
    assert (clip == -1).float().mean() > 0.5  # mostly black background


def test_bouncing_shapes_deterministic_and_batch_equals_items():
    ds = small_shapes(num_shapes=2, seed=3)
    again = small_shapes(num_shapes=2, seed=3)
    assert torch.equal(ds[5], again[5])
    assert not torch.equal(ds[5], ds[6])
    assert not torch.equal(ds[5], small_shapes(num_shapes=2, seed=4)[5])
    batch = ds.get_batch([7, 5, 0])
    assert torch.equal(batch, torch.stack([ds[7], ds[5], ds[0]]))
    assert torch.equal(ds.get_batch(torch.tensor([5]))[0], ds.get_batch([1, 2, 5])[2])  # batch composition
    assert torch.equal(ds[-1], ds[15])


def test_return_trajectory_items_and_batches():
    ds = small_shapes(num_shapes=3, return_trajectory=True)
    clip, traj = ds[2]
    assert clip.shape == (3, 12, 32, 32) and traj.shape == (3, 12, 2)
    clips, trajs = ds.get_batch([2, 4])
    assert torch.equal(clips[0], clip) and torch.equal(trajs[0], traj)
    assert torch.equal(ds.trajectories([2, 4]), trajs)


def test_trajectories_obey_elastic_bounce_physics():
    """A step-by-step simulation (move, then reflect off a wall) must reproduce the closed form."""
    ds = small_shapes(num_clips=32, frames=40, kinds=("circle",), speed=(1.0, 2.5))
    traj = ds.trajectories(range(32)).double()
    for i in range(32):
        (info,) = ds.describe(i)
        r, lo, hi = info["radius"], info["radius"] - 0.5, 32 - 0.5 - info["radius"]
        assert 1.0 <= math.hypot(*info["velocity"]) <= 2.5
        pos, vel = torch.tensor(info["start"], dtype=torch.float64), torch.tensor(info["velocity"], dtype=torch.float64)
        for t in range(40):
            assert torch.allclose(traj[i, 0, t], pos, atol=1e-4), (i, t)
            pos = pos + vel
            for axis in range(2):  # elastic: mirror the overshoot, flip that velocity component
                if pos[axis] > hi:
                    pos[axis], vel[axis] = 2 * hi - pos[axis], -vel[axis]
                elif pos[axis] < lo:
                    pos[axis], vel[axis] = 2 * lo - pos[axis], -vel[axis]
        assert (traj[i] >= lo - 1e-4).all() and (traj[i] <= hi + 1e-4).all()
        assert r > 0
    steps = traj[:, :, 1:] - traj[:, :, :-1]
    assert (steps.abs() <= 2.5 + 1e-4).all()  # never faster than the fastest speed
    bounced = (steps[..., 1:, :] * steps[..., :-1, :] < 0).any()
    assert bounced  # the test really saw bounces


def test_bounce_closed_form():
    t = torch.arange(10.0)
    x = bounce(torch.tensor(1.0), torch.tensor(1.0), t, torch.tensor(0.0), torch.tensor(3.0))
    assert x.tolist() == [1, 2, 3, 2, 1, 0, 1, 2, 3, 2]
    assert bounce(torch.tensor(2.0), torch.tensor(1.0), t, torch.tensor(2.0), torch.tensor(2.0)).eq(2).all()


@pytest.mark.parametrize("kind", ["circle", "square", "triangle"])
def test_rendered_centroid_matches_trajectory(kind):
    ds = small_shapes(num_clips=4, frames=10, kinds=(kind,), speed=(2.0, 3.0), return_trajectory=True)
    clips, traj = ds.get_batch(range(4))
    weight = (clips.mean(1) + 1) / 2  # (B, T, H, W) coverage times brightness
    grid = torch.arange(32.0)
    mass = weight.sum((-1, -2))
    cx = (weight * grid).sum((-1, -2)) / mass
    cy = (weight * grid[:, None]).sum((-1, -2)) / mass
    centroid = torch.stack([cx, cy], -1)  # (B, T, 2)
    assert (centroid - traj[:, 0]).abs().max() < 1.0
    assert (mass.std(1) / mass.mean(1)).max() < 0.05  # the shape never leaves the canvas


def test_describe_and_palette():
    ds = small_shapes(num_shapes=3)
    info = ds.describe(1)
    assert len(info) == 3
    for shape in info:
        assert shape["kind"] in ("circle", "square", "triangle")
        assert tuple(round(c, 4) for c in shape["color"]) in {tuple(round(c, 4) for c in p) for p in PALETTE}
    one = small_shapes(colors=[(0.0, 1.0, 0.0)], kinds=("square",))
    assert one[0][0].max() == -1 and one[0][1].max() == 1  # pure green square: no red at all


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(size=10, shape_size=5.0), "too small"),
        (dict(frames=0), "frames"),
        (dict(kinds=("hexagon",)), "circle"),
        (dict(speed=(3.0, 1.0)), "speed"),
        (dict(colors=[(2.0, 0.0, 0.0)]), "colors"),
    ],
)
def test_bouncing_shapes_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_shapes(**kwargs)


def test_index_out_of_range():
    ds = small_shapes()
    with pytest.raises(IndexError, match="out of range"):
        ds[16]
    with pytest.raises(IndexError, match="0..15"):
        ds.get_batch([0, 99])


def test_bouncing_shapes_labels_name_the_kind_and_colour_of_each_clip():
    ds = BouncingShapes(40, frames=4, size=32, seed=3)
    labels = ds.labels(range(40))
    assert labels.shape == (40,) and ds.num_classes == 18 and len(ds.class_names()) == 18
    assert set(labels.tolist()) <= set(range(18)) and len(set(labels.tolist())) > 10
    for i in range(40):
        (shape,) = ds.describe(i)
        kind, colour = divmod(int(labels[i]), len(PALETTE))
        assert ds.kinds[kind] == shape["kind"]
        assert np.allclose(PALETTE[colour], shape["color"])
        assert ds.class_names()[int(labels[i])].endswith(shape["kind"])
    assert ds.class_names()[0] == "red circle"
    some = BouncingShapes(6, kinds=("triangle", "square"), colors=[(1, 1, 1), (1, 0, 0)], num_shapes=2, seed=1)
    assert some.labels(range(6)).shape == (6, 2) and some.labels(range(6)).max() < some.num_classes == 4
    assert some.class_names() == ["colour 0 triangle", "colour 1 triangle", "colour 0 square", "colour 1 square"]


def test_reverse_some_plays_a_share_of_the_clips_backwards():
    from vdlearn.data import reverse_some
    clips = torch.randn(400, 1, 5, 2, 2)
    out = reverse_some(clips, 0.3, generator=torch.Generator().manual_seed(0))
    backwards = torch.tensor([torch.equal(o, c.flip(1)) for o, c in zip(out, clips)])
    forwards = torch.tensor([torch.equal(o, c) for o, c in zip(out, clips)])
    assert (backwards ^ forwards).all() and 0.22 < backwards.float().mean() < 0.38
    assert torch.equal(reverse_some(clips, 0.0), clips) and torch.equal(reverse_some(clips, 1.0), clips.flip(2))
    with pytest.raises(ValueError, match="probability"):
        reverse_some(clips, 1.5)


# --------------------------------------------------------------------------- shape images
def test_shape_images_labels_match_the_shapes():
    ds = ShapeImages(num_images=60, size=32, kinds=("square", "circle", "triangle"), seed=1)
    assert ds.classes == ["square", "circle", "triangle"]
    images, labels = ds.get_batch(range(60))
    assert images.shape == (60, 3, 32, 32) and labels.dtype == torch.long
    image, label = ds[3]
    assert torch.equal(image, images[3]) and label == int(labels[3])
    assert set(labels.tolist()) == {0, 1, 2}
    for image, label in zip(images, labels):
        mask = image.max(0).values > 0  # covered more than half
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        fill = mask.sum() / box  # square ~1, circle ~pi/4, triangle ~1/2
        expected = {0: (0.9, 1.01), 1: (0.65, 0.9), 2: (0.35, 0.65)}[int(label)]
        assert expected[0] <= fill <= expected[1], (int(label), float(fill))


# --------------------------------------------------------------------------- digits
def test_offline_digit_source_is_split_and_mnist_like():
    train_x, train_y = load_digit_source("offline", train=True)
    test_x, test_y = load_digit_source("offline", train=False)
    assert train_x.shape[1:] == (1, 28, 28) and len(train_x) + len(test_x) == 1797
    assert abs(len(test_x) / 1797 - 0.2) < 0.01
    assert not (torch.cdist(test_x.flatten(1), train_x.flatten(1)) < 1e-6).any()  # disjoint samples
    assert set(train_y.tolist()) == set(range(10)) and set(test_y.tolist()) == set(range(10))
    border = torch.cat([train_x[..., :3, :].flatten(1), train_x[..., -3:, :].flatten(1)], 1)
    assert border.max() == 0  # MNIST-like: strokes in the central 20x20 box, black border
    assert (train_x > 0.9).float().mean() > 0.05  # with strong, white strokes


def test_digit_images():
    ds = DigitImages(num_images=3000, size=28, seed=0)
    image, label = ds[2999]
    assert image.shape == (1, 28, 28) and isinstance(label, int) and 0 <= label <= 9
    images, labels = ds.get_batch([2999, 4, 4])
    assert torch.equal(images[0], image) and torch.equal(images[1], images[2])
    assert images.min() >= -1 and images.max() <= 1 and images.max() > 0.9
    assert not torch.equal(ds[0][0], ds[1][0])
    assert torch.equal(DigitImages(num_images=3000, seed=0)[17][0], ds[17][0])
    # items beyond the 1437 training digits are new jitters, not copies
    assert not torch.equal(ds[0][0], ds[len(ds._order)][0])
    assert DigitImages(num_images=10, size=32, train=False)[0][0].shape == (1, 32, 32)


def test_digit_errors():
    with pytest.raises(ValueError, match="offline"):
        DigitImages(source="kmnist")
    with pytest.raises(IndexError):
        DigitImages(num_images=5)[5]


def test_mnist_without_network_fails_fast(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    import torchvision.datasets  # noqa: F401  (import time is not what this test measures)

    monkeypatch.setattr(digits_module.socket, "create_connection", no_network)
    start = time.perf_counter()
    with pytest.raises(RuntimeError) as err:
        DigitImages(source="mnist", root=tmp_path / "mnist")
    assert time.perf_counter() - start < 5
    assert 'source="offline"' in str(err.value) and "MNIST could not be downloaded" in str(err.value)


def test_moving_digits():
    ds = MovingDigits(num_clips=8, frames=6, size=48, num_digits=1, digit_size=20, return_trajectory=True)
    clip, traj = ds[3]
    assert clip.shape == (1, 6, 48, 48) and traj.shape == (1, 6, 2)
    assert clip.min() == -1 and clip.max() > 0.5
    clips, trajs = ds.get_batch([3, 1])
    assert torch.equal(clips[0], clip) and torch.equal(trajs[0], traj)
    lo, hi = (20 - 1) / 2, 48 - 1 - (20 - 1) / 2
    assert (trajs >= lo - 1e-4).all() and (trajs <= hi + 1e-4).all()
    # every lit pixel lies inside the digit's box around its trajectory point (jitter stays inside the box)
    grid = torch.arange(48.0)
    for t in range(6):
        lit = clip[0, t] > -0.9
        x, y = traj[0, t]
        inside = ((grid[None, :] - x).abs() <= 10.5) & ((grid[:, None] - y).abs() <= 10.5)
        assert lit.any() and not (lit & ~inside).any()
    two = MovingDigits(num_clips=4, frames=5, size=64, num_digits=2)
    assert two.get_batch([0, 1]).shape == (2, 1, 5, 64, 64)
    assert len(two.describe(0)) == 2 and all(0 <= d["label"] <= 9 for d in two.describe(0))
    with pytest.raises(ValueError, match="digit_size"):
        MovingDigits(size=16, digit_size=28)


# --------------------------------------------------------------------------- 2-D toys
@pytest.mark.parametrize("name", TOY2D_NAMES)
def test_toy2d_scale_and_determinism(name):
    x = sample_toy2d(name, 4000, seed=1)
    assert x.shape == (4000, 2) and x.dtype == torch.float32
    assert x.mean(0).abs().max() < 0.1
    assert 0.6 < x.std(0).min() and x.std(0).max() < 1.3
    assert torch.equal(x, sample_toy2d(name, 4000, seed=1))
    assert not torch.equal(x, sample_toy2d(name, 4000, seed=2))
    g = torch.Generator().manual_seed(1)
    assert torch.equal(sample_toy2d(name, 10, generator=g), sample_toy2d(name, 10, seed=1))


@pytest.mark.parametrize("name, k", [("gaussian_mixture", 8), ("grid", 25)])
def test_mixture_statistics_and_mode_coverage(name, k):
    modes = mixture_modes(name)
    assert modes.shape == (k, 2)
    x = sample_toy2d(name, 200 * k, seed=0)
    nearest = torch.cdist(x, modes).argmin(1)
    for m in range(k):
        cluster = x[nearest == m]
        assert abs(len(cluster) / len(x) - 1 / k) < 0.5 / k
        assert (cluster.mean(0) - modes[m]).abs().max() < 0.03
        assert abs(cluster.std(0).mean() - mixture_std(name)) < 0.3 * mixture_std(name)
    real = mode_coverage(x, name)
    assert real == dict(modes_hit=k, num_modes=k, high_quality=real["high_quality"])
    assert real["high_quality"] > 0.95
    collapsed = modes[3] + mixture_std(name) * torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    assert mode_coverage(collapsed, name)["modes_hit"] == 1
    assert mode_coverage(torch.full((100, 2), 10.0), name) == dict(modes_hit=0, num_modes=k, high_quality=0.0)


def test_toy2d_errors_and_dataset():
    with pytest.raises(ValueError, match="swiss_roll"):
        sample_toy2d("spiral", 10)
    with pytest.raises(ValueError, match="gaussian_mixture"):
        mixture_modes("rings")
    ds = Toy2D("moons", n=50, seed=0)
    assert len(ds) == 50 and ds[3].shape == (2,)
    assert torch.equal(ds.get_batch([3, 0]), torch.stack([ds[3], ds[0]]))
    with pytest.raises(IndexError):
        ds[50]


# --------------------------------------------------------------------------- indices and sizes
_DATASETS = {
    "BouncingShapes": lambda: BouncingShapes(num_clips=4, frames=2, size=16),
    "ShapeImages": lambda: ShapeImages(num_images=4, size=16),
    "DigitImages": lambda: DigitImages(num_images=4),
    "MovingDigits": lambda: MovingDigits(num_clips=4, frames=2, size=32),
    "Toy2D": lambda: Toy2D(n=4),
}


def _item(x):
    return x[0] if isinstance(x, tuple) else x


@pytest.mark.parametrize("name", list(_DATASETS))
def test_non_integer_indices_are_a_type_error(name):
    ds = _DATASETS[name]()
    for bad in (1.7, 1.0, "1", True, np.float32(1), torch.tensor(1.5), None):
        with pytest.raises(TypeError, match=rf"{name} indices must be integers.*int\(i\)"):
            ds[bad]
    for bad in ([0.5, 1], "01", np.array([1.0]), torch.tensor([True, False])):
        with pytest.raises(TypeError, match="indices must be integers"):
            ds.get_batch(bad)
    one = _item(ds[1])
    for same in (np.int64(1), np.int32(1), torch.tensor(1), torch.tensor(1, dtype=torch.int32), -3):
        assert torch.equal(_item(ds[same]), one)
    batch = _item(ds.get_batch(np.array([1, 2])))
    assert torch.equal(batch, _item(ds.get_batch(range(1, 3)))) and torch.equal(batch[0], one)


def test_clip_labels_name_the_digit_of_each_clip():
    one = MovingDigits(num_clips=6, frames=3, size=28, num_digits=1, digit_size=18)
    labels = one.clip_labels(range(6))
    assert labels.shape == (6,) and labels.dtype == torch.long
    assert labels.tolist() == [one.describe(i)[0]["label"] for i in range(6)]
    two = MovingDigits(num_clips=4, frames=3, size=64, num_digits=2)
    assert two.clip_labels([0, 3]).tolist() == [[d["label"] for d in two.describe(i)] for i in (0, 3)]


def test_moving_digits_move_at_every_size():
    ds = MovingDigits(num_clips=8, frames=8, size=28, return_trajectory=True)
    assert ds.digit_size == 12  # Moving MNIST's proportion, 28 px in 64 px
    clips, traj = ds.get_batch(range(8))
    assert ((clips[:, :, 1:] - clips[:, :, :-1]).abs().amax(dim=(1, 2, 3, 4)) > 0.5).all()  # every clip moves
    assert ((traj.amax(2) - traj.amin(2)).norm(dim=-1) > 3).all()  # each digit travels, not stuck between walls
    assert MovingDigits(num_clips=1, size=64).digit_size == 28  # the default clips are unchanged
    with pytest.raises(ValueError, match=r"digit_size=28 leaves no room to move in size=28.*smaller than size"):
        MovingDigits(size=28, digit_size=28)
