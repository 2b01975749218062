"""Object constancy: real, shuffled and static clips keep their objects; mixed clips and noise do not."""
import pytest
import torch

from vdlearn.data import PALETTE, BouncingShapes
from vdlearn.metrics import (classify_frames, freeze_frames, label_agreement, mix_frames, object_constancy,
                             shuffle_frames)
from vdlearn.metrics.constancy import KINDS


@pytest.fixture(scope="module")
def real():
    return BouncingShapes(48, frames=8, size=32, seed=321).get_batch(torch.arange(48))


def test_real_clips_keep_their_objects(real):
    score = object_constancy(real)
    assert score["constant"] == 1.0 and score["constant_one"] == 1.0 and score["exactly_one"] == 1.0
    assert score["misfit"] < 0.1 and score["blob_objects"] == 0.0


def test_the_classifier_names_kind_and_colour_of_real_frames():
    data = BouncingShapes(24, frames=4, size=32, seed=5)
    clips = data.get_batch(torch.arange(24))
    frames = classify_frames(clips)
    for i, clip in enumerate(frames):
        truth = data.describe(i)[0]
        for frame in clip:
            (kind, colour), = frame["objects"]
            assert KINDS[kind] == truth["kind"]
            palette = torch.tensor(PALETTE)
            expected = int(((palette - torch.tensor(truth["color"])) ** 2).sum(1).argmin())
            assert colour == expected


def test_controls_order_blind_but_content_sensitive(real):
    g = torch.Generator().manual_seed(0)
    assert object_constancy(shuffle_frames(real, g))["constant"] == 1.0      # blind to order, by design
    assert object_constancy(freeze_frames(real, g))["constant"] == 1.0
    mixed = object_constancy(mix_frames(real, g))
    assert mixed["constant"] < 0.1 and mixed["exactly_one"] == 1.0           # every frame fine, the clip not


def test_a_colour_or_kind_change_within_a_clip_is_caught(real):
    clips = real[:8].clone()
    clips[:, :, 4:] = clips[:, [1, 2, 0], 4:]       # the same shape, another colour from frame 4 on
    score = object_constancy(clips)
    assert score["colour_constant"] < 0.5 and score["constant"] < 0.5


def test_label_agreement_wants_the_labelled_object_in_every_frame():
    data = BouncingShapes(24, frames=4, size=32, seed=8)
    clips, labels = data.get_batch(torch.arange(24)), data.labels(torch.arange(24))
    assert label_agreement(clips, labels) == 1.0
    assert label_agreement(clips, (labels + 1) % 18) == 0.0            # the next colour
    assert label_agreement(clips, (labels + 6) % 18) == 0.0            # the next kind
    changed = clips.clone()
    changed[:12, :, 3] = changed[:12, [1, 2, 0], 3]                    # half change colour in the last frame
    assert label_agreement(changed, labels) == 0.5
    with pytest.raises(ValueError, match="one label per clip: 24 clips but 3 labels"):
        label_agreement(clips, labels[:3])


def test_noise_is_no_object():
    noise = torch.rand(4, 3, 4, 32, 32) * 2 - 1
    score = object_constancy(noise)
    assert score["constant"] == 0.0


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="3 are expected"):
        object_constancy(torch.zeros(2, 1, 4, 32, 32))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        object_constancy(torch.full((2, 3, 4, 32, 32), 2.0))
