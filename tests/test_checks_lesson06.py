"""The lesson 06 checks accept the right answers and explain typical wrong ones."""
import math

import pytest
import torch

from vdlearn.checks import ExerciseError
from vdlearn.checks import lesson06 as checks


def embedding(t, dim, *, order="cos-sin", denom=None, sign=-1):
    half = dim // 2
    w = torch.exp(sign * math.log(10000.0) * torch.arange(half) / (denom or half))
    a = t.float()[:, None] * w
    parts = [a.cos(), a.sin()] if order == "cos-sin" else [a.sin(), a.cos()]
    return torch.cat(parts, dim=1)


def test_timestep_embedding_right_answer_passes(capsys):
    checks.check_timestep_embedding(embedding)
    assert "✅ 06.timestep_embedding" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    (dict(order="sin-cos"), "sin first"),
    (dict(denom=7), "half-1"),
    (dict(sign=+1), "negative"),
])
def test_timestep_embedding_wrong_answers_are_explained(options, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_timestep_embedding(lambda t, dim: embedding(t, dim, **options))


def test_timestep_embedding_wrong_shape():
    with pytest.raises(ExerciseError, match=r"shape \(5, 16\)"):
        checks.check_timestep_embedding(lambda t, dim: embedding(t, dim)[:, :8])


def attention(q, k, v, scale=None, dim=-1):
    scores = q @ k.transpose(-1, -2) / (math.sqrt(q.shape[-1]) if scale is None else scale)
    return scores.softmax(dim) @ v


def test_attention_right_and_wrong():
    checks.check_attention(attention)
    with pytest.raises(ExerciseError, match="no scaling"):
        checks.check_attention(lambda q, k, v: attention(q, k, v, scale=1.0))
    with pytest.raises(ExerciseError, match="instead of sqrt"):
        checks.check_attention(lambda q, k, v: attention(q, k, v, scale=q.shape[-1]))
    with pytest.raises(ExerciseError, match="over the queries"):
        checks.check_attention(lambda q, k, v: attention(q, k, v, dim=-2))


def guided(model, x, t, labels, scale, null_label, *, formula="right", two_calls=False):
    null = torch.full_like(labels, null_label)
    if two_calls:
        cond, uncond = model(x, t, labels), model(x, t, null)
    else:
        cond, uncond = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null])).chunk(2)
    return {"right": uncond + scale * (cond - uncond), "swapped": cond + scale * (uncond - cond),
            "paper": (1 + scale) * cond - scale * uncond, "cond": cond}[formula]


def test_guided_prediction_right_answer_passes(capsys):
    checks.check_guided_prediction(guided)
    assert "✅ 06.guided_prediction" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    (dict(formula="swapped"), "swapped"),
    (dict(formula="paper"), "paper"),
    (dict(formula="cond"), "scale was not used"),
    (dict(two_calls=True), "call it once"),
])
def test_guided_prediction_wrong_answers_are_explained(options, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_guided_prediction(lambda *a: guided(*a, **options))


def heun(velocity, x, t, t_next, *, mode="right"):
    h = (t_next - t).view(-1, *([1] * (x.ndim - 1)))
    u0 = velocity(x, t)
    if mode == "euler":
        return x + h * u0
    if mode == "backwards":
        h = -h
        return x + h / 2 * (u0 + velocity(x + h * u0, t_next))
    if mode == "old_time":
        return x + h / 2 * (u0 + velocity(x + h * u0, t))
    if mode == "three_calls":
        velocity(x, t)
    return x + h / 2 * (u0 + velocity(x + h * u0, t_next))


def test_heun_step_right_answer_passes(capsys):
    checks.check_heun_step(heun)
    assert "✅ 06.heun_step" in capsys.readouterr().out


@pytest.mark.parametrize("mode, message", [
    ("euler", "an Euler step"),
    ("backwards", "negative"),
    ("old_time", "old time t"),
    ("three_calls", "called 3 times"),
])
def test_heun_step_wrong_answers_are_explained(mode, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_heun_step(lambda *a: heun(*a, mode=mode))
