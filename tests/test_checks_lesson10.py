"""The lesson 10 checks accept the right answers and explain typical wrong ones."""
import pytest
import torch

from vdlearn.checks import ExerciseError
from vdlearn.checks import lesson10 as checks


def nearest(samples, reference, *, reduce="mean", root=True, pick="min"):
    d2 = (samples.flatten(1)[:, None] - reference.flatten(1)[None]).pow(2)
    d = d2.mean(-1) if reduce == "mean" else d2.sum(-1)
    d = d.sqrt() if root else d
    return {"min": d.min(1).values, "max": d.max(1).values, "mean": d.mean(1)}[pick]


def front(costs, losses, *, strict=False):
    out = []
    for i, (c, v) in enumerate(zip(costs, losses)):
        if strict:   # beaten only by a point strictly better on both axes
            beaten = any(c2 < c and v2 < v for c2, v2 in zip(costs, losses))
        else:
            beaten = any(c2 <= c and v2 <= v and (c2, v2) != (c, v) for c2, v2 in zip(costs, losses))
        out.append(not beaten)
    return out


def test_nearest_right_answer_passes(capsys):
    checks.check_nearest_neighbour_distance(nearest)
    assert "✅ 10.nearest_neighbour_distance" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    (dict(reduce="sum"), "SUM of squares"),
    (dict(root=False), "square root"),
    (dict(pick="mean"), "NEAREST"),
    (dict(pick="max"), "farthest"),
])
def test_nearest_wrong_answers_are_explained(options, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_nearest_neighbour_distance(lambda s, r: nearest(s, r, **options))


def test_nearest_wrong_shape():
    with pytest.raises(ExerciseError, match=r"shape \(5,\)"):
        checks.check_nearest_neighbour_distance(lambda s, r: nearest(s, r)[:, None])


def test_pareto_right_answer_passes(capsys):
    checks.check_pareto_front(front)
    assert "✅ 10.pareto_front" in capsys.readouterr().out


def test_pareto_strict_dominance_is_caught():
    with pytest.raises(ExerciseError, match="tie on cost"):
        checks.check_pareto_front(lambda c, v: front(c, v, strict=True))


def test_pareto_all_on_front_is_caught():
    with pytest.raises(ExerciseError, match="front is"):
        checks.check_pareto_front(lambda c, v: [True] * len(c))


def test_pareto_tensor_answer_is_accepted(capsys):
    checks.check_pareto_front(lambda c, v: torch.tensor(front(c, v)))
    assert "✅" in capsys.readouterr().out
