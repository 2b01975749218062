"""The video DiT and flow matching of clips with given frames (vdlearn.nn.video_dit, vdlearn.video.flow)."""
import pytest
import torch

from vdlearn.nn.video_dit import VideoDiT, apply_rope, rope_angles
from vdlearn.video import task_mask
from vdlearn.video.flow import condition_channels, guided_velocity, masked_flow_loss, sample_masked_flow


def tiny(**kw):
    torch.manual_seed(0)
    options = dict(in_channels=2, frames=4, size=4, patch=2, tubelet=2, dim=16, depth=2, heads=2)
    return VideoDiT(**{**options, **kw})


@pytest.mark.parametrize("patch,tubelet", [(1, 1), (2, 2), (1, 4), (4, 4)])
def test_patchify_is_inverted_by_unpatchify(patch, tubelet):
    model = tiny(patch=patch, tubelet=tubelet)
    x = torch.randn(3, 2, 4, 4, 4)
    tokens = model.patchify(x)
    assert tokens.shape == (3, (4 // tubelet) * (4 // patch) ** 2, 2 * tubelet * patch * patch)
    assert torch.equal(model.unpatchify(tokens), x)


def test_a_token_holds_one_place_of_the_whole_clip_when_the_tubelet_spans_it():
    model = tiny(patch=1, tubelet=4)
    x = torch.zeros(1, 2, 4, 4, 4)
    x[0, :, :, 1, 2] = 1.0                      # one place, every frame and channel
    tokens = model.patchify(x)[0]
    assert tokens.shape == (16, 8)
    assert torch.equal(tokens.abs().sum(1).nonzero().flatten(), torch.tensor([1 * 4 + 2]))


def test_the_untrained_model_outputs_zero_and_then_learns():
    model = tiny()
    x = torch.randn(4, 2, 4, 4, 4)
    t = torch.rand(4)
    assert torch.equal(model(x, t), torch.zeros_like(x))          # adaLN-Zero and a zero output layer
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = (model(x, t) - x).pow(2).mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_rope_rotates_so_that_scores_depend_only_on_the_offset():
    angles = rope_angles(10, 8)
    q, k = torch.randn(8), torch.randn(8)
    qs = apply_rope(q.expand(10, 8), angles)
    ks = apply_rope(k.expand(10, 8), angles)
    assert torch.allclose(qs.norm(dim=-1), q.norm().expand(10), atol=1e-5)      # a rotation keeps length
    score = qs @ ks.T                                                          # score[p, p'] = f(p - p')
    assert torch.allclose(score[3, 1], score[7, 5], atol=1e-5)
    assert torch.allclose(score[2, 6], score[5, 9], atol=1e-5)
    assert not torch.allclose(score[3, 1], score[3, 2], atol=1e-3)


def test_bad_shapes_and_conditions_are_explained():
    model = tiny()
    with pytest.raises(ValueError, match=r"expects clips \(B, 2, 4, 4, 4\)"):
        model(torch.randn(1, 3, 4, 4, 4), torch.rand(1))
    with pytest.raises(ValueError, match="cond_channels=0"):
        model(torch.randn(1, 2, 4, 4, 4), torch.rand(1), cond=torch.randn(1, 3, 4, 4, 4))
    with pytest.raises(ValueError, match="cond_channels=3"):
        tiny(cond_channels=3)(torch.randn(1, 2, 4, 4, 4), torch.rand(1))
    with pytest.raises(ValueError, match="divisible by tubelet"):
        tiny(tubelet=3)


def test_a_class_conditional_model_tells_its_labels_apart_and_the_null_label_is_the_default():
    model = tiny(num_classes=3)
    assert model.null_label == 3
    torch.nn.init.normal_(model.out.weight)                   # a non-zero output, so labels can show
    for block in model.blocks:
        torch.nn.init.normal_(block.ada[1].weight, std=0.1)
    torch.nn.init.normal_(model.ada_out[1].weight, std=0.1)
    x, t = torch.randn(2, 2, 4, 4, 4), torch.rand(2)
    a = model(x, t, y=torch.tensor([0, 0]))
    b = model(x, t, y=torch.tensor([1, 1]))
    assert not torch.allclose(a, b, atol=1e-4)
    assert torch.equal(model(x, t), model(x, t, y=torch.tensor([3, 3])))
    with pytest.raises(ValueError, match="labels in \\[0, 3\\]"):
        model(x, t, y=torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="unconditional; build it with num_classes"):
        tiny()(x, t, y=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="num_classes must be an int"):
        tiny(num_classes=-1)


class Oracle(torch.nn.Module):
    """The exact velocity when every clip is the same clip x0: v = (x_t - x0) / t."""

    def __init__(self, x0, wrong_frame=None):
        super().__init__()
        self.x0, self.wrong_frame = x0, wrong_frame

    def forward(self, x_t, t, cond):
        v = (x_t - self.x0) / t.view(-1, 1, 1, 1, 1)
        if self.wrong_frame is not None:
            v[:, :, self.wrong_frame] += 5.0
        return v


def test_masked_flow_loss_is_zero_for_the_exact_velocity_and_ignores_given_frames():
    x0 = torch.randn(1, 2, 4, 4, 4)
    clips = x0.expand(8, -1, -1, -1, -1).clone()
    g = torch.Generator().manual_seed(0)
    assert float(masked_flow_loss(Oracle(x0), clips, generator=g)) < 1e-8
    wrong_given = Oracle(x0, wrong_frame=0)          # wrong only where the frame is given
    assert float(masked_flow_loss(wrong_given, clips, probs={"image_to_video": 1.0}, generator=g)) < 1e-8
    assert float(masked_flow_loss(wrong_given, clips, probs={"unconditional": 1.0}, generator=g)) > 1.0


def test_mirrored_tasks_give_the_last_frames_instead_of_the_first():
    x0 = torch.randn(1, 2, 4, 4, 4)
    clips = x0.expand(8, -1, -1, -1, -1).clone()
    wrong_first, wrong_last = Oracle(x0, wrong_frame=0), Oracle(x0, wrong_frame=3)
    i2v = {"image_to_video": 1.0}
    g = lambda: torch.Generator().manual_seed(0)             # noqa: E731
    # unmirrored, frame 0 is always given (its error is never counted) and the last frame always learned
    assert float(masked_flow_loss(wrong_first, clips, probs=i2v, generator=g())) < 1e-8
    assert float(masked_flow_loss(wrong_last, clips, probs=i2v, generator=g())) > 1.0
    # all mirrored: the last frame is the given one
    assert float(masked_flow_loss(wrong_last, clips, probs=i2v, mirror=1.0, generator=g())) < 1e-8
    assert float(masked_flow_loss(wrong_first, clips, probs=i2v, mirror=1.0, generator=g())) > 1.0
    # half mirrored: both frames are learned in some clips
    losses = [float(masked_flow_loss(m, clips, probs=i2v, mirror=0.5, generator=g()))
              for m in (wrong_first, wrong_last)]
    assert min(losses) > 0.3
    with pytest.raises(ValueError, match="mirror"):
        masked_flow_loss(wrong_first, clips, mirror=1.5)


def test_sampling_the_exact_velocity_returns_the_clip_and_keeps_given_frames():
    x0 = torch.randn(1, 2, 4, 4, 4)
    known = torch.randn(3, 2, 4, 4, 4)
    mask = task_mask("prediction", 4, k=2, batch=3)
    out = sample_masked_flow(Oracle(x0), known, mask, steps=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, :, :2], known[:, :, :2])
    assert torch.allclose(out[:, :, 2:], x0[:, :, 2:].expand(3, -1, -1, -1, -1), atol=1e-4)


def test_condition_channels_hold_the_given_frames_and_the_mask():
    known = torch.randn(2, 3, 4, 2, 2)
    mask = torch.tensor([[True, False, False, True], [False] * 4])
    cond = condition_channels(known, mask)
    assert cond.shape == (2, 4, 4, 2, 2)
    assert torch.equal(cond[0, :3, 0], known[0, :, 0]) and torch.equal(cond[0, :3, 1], torch.zeros(3, 2, 2))
    assert torch.equal(cond[:, 3, :, 0, 0], mask.float())


class Labelled(torch.nn.Module):
    """v = label + x: what each call's labels were is visible in its output."""

    null_label = 9

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, t, cond, y):
        self.seen.append(y.clone())
        return x + y.float().view(-1, 1, 1, 1, 1)


def test_guidance_extrapolates_from_the_null_label_to_the_asked_one():
    model, x = Labelled(), torch.randn(3, 2, 4, 4, 4)
    cond = torch.zeros(3, 3, 4, 4, 4)
    labels = torch.tensor([1, 2, 3])
    for scale in (0.0, 1.0, 2.5):
        v = guided_velocity(model, cond, labels, scale)(x, torch.rand(3))
        expected = x + (9 + scale * (labels - 9)).float().view(-1, 1, 1, 1, 1)   # u + s (c - u)
        assert torch.allclose(v, expected, atol=1e-5)
    with pytest.raises(ValueError, match="guidance_scale must be a number >= 0"):
        guided_velocity(model, cond, labels, -1.0)
    with pytest.raises(ValueError, match="needs a class-conditional model"):
        guided_velocity(lambda x, t, c: x, cond, labels, 2.0)
    with pytest.raises(ValueError, match=r"labels must be \(2,\)"):
        sample_masked_flow(model, torch.zeros(2, 2, 4, 4, 4), torch.zeros(4, dtype=torch.bool), labels=[1, 2, 3])


def test_the_labelled_loss_drops_labels_to_the_null_label_as_often_as_asked():
    model, clips = Labelled(), torch.randn(400, 2, 4, 4, 4)
    labels = torch.randint(0, 9, (400,))
    masked_flow_loss(model, clips, labels=labels, p_uncond=0.0)
    assert torch.equal(model.seen[-1], labels)
    masked_flow_loss(model, clips, labels=labels, p_uncond=1.0)
    assert (model.seen[-1] == 9).all()
    masked_flow_loss(model, clips, labels=labels, p_uncond=0.25, generator=torch.Generator().manual_seed(0))
    dropped = (model.seen[-1] == 9).float().mean().item()
    assert 0.17 < dropped < 0.33 and torch.equal(model.seen[-1][model.seen[-1] != 9], labels[model.seen[-1] != 9])
