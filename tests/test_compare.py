"""vdlearn.compare: nearest-neighbour distance, Pareto front, tables, earlier results, reuse."""
import json
import math

import pytest
import torch

from vdlearn.compare import (earlier_results, load_earlier_models, markdown_table, pareto_front, real_system_status)
from vdlearn.metrics import nearest_neighbour_distance
from vdlearn.train import save_checkpoint


def test_nearest_neighbour_distance_matches_brute_force_and_finds_copies():
    g = torch.Generator().manual_seed(1)
    ref = torch.randn(300, 3, 4, 5, 5, generator=g)
    samples = torch.randn(6, 3, 4, 5, 5, generator=g)
    samples[2] = ref[250]                                   # in the second chunk
    got = nearest_neighbour_distance(samples, ref, chunk_size=128)
    want = torch.stack([min(((s - r).pow(2).mean().sqrt()) for r in ref) for s in samples])
    assert torch.allclose(got, want.float(), atol=1e-5)
    assert got[2] == 0
    # a sample moved away by a constant c from its copy is at RMS distance at most |c|
    assert nearest_neighbour_distance(ref[:1] + 0.1, ref)[0] <= 0.1 + 1e-6


def test_nearest_neighbour_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        nearest_neighbour_distance(torch.zeros(2, 3, 4), torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match="non-empty tensor"):
        nearest_neighbour_distance([1, 2], torch.zeros(2, 3))


def test_pareto_front_small_cases():
    assert pareto_front([1, 2, 3], [3, 2, 1]) == [True, True, True]
    assert pareto_front([1, 2, 3], [1, 2, 3]) == [True, False, False]
    assert pareto_front([1, 1, 2], [2, 1, 0.5]) == [False, True, True]
    assert pareto_front([2, 2], [1, 1]) == [True, True]
    assert pareto_front([1, math.nan, 0.5], [1, 0, 2]) == [True, False, True]
    with pytest.raises(ValueError, match="one entry per model"):
        pareto_front([1, 2], [1])


def test_pareto_front_against_brute_force_on_random_points():
    g = torch.Generator().manual_seed(0)
    pts = torch.randint(0, 6, (40, 2), generator=g).tolist()
    got = pareto_front([p[0] for p in pts], [p[1] for p in pts])
    for (c, v), on in zip(pts, got):
        beaten = any(c2 <= c and v2 <= v and (c2 < c or v2 < v) for c2, v2 in pts)
        assert on == (not beaten)


def test_markdown_table():
    rows = {"a": {"x": 1.234, "y": "s"}, "b": {"x": None}}
    text = markdown_table(rows, [("x", "X", ".1f"), ("y", "Y")], first_header="model")
    assert text.splitlines() == ["| model | X | Y |", "|---|---|---|", "| a | 1.2 | s |", "| b | — | — |"]
    assert "| 12 |" in markdown_table({"r": {"x": 12}}, [("x", "X", lambda v: str(v))])
    with pytest.raises(ValueError, match="at least one"):
        markdown_table(rows, [])


def test_earlier_results(tmp_path):
    assert earlier_results(tmp_path / "missing") == {}
    (tmp_path / "07_video_diffusion").mkdir()
    (tmp_path / "07_video_diffusion" / "results.json").write_text(json.dumps({"fvd": 1.0}))
    (tmp_path / "09_latent").mkdir()
    (tmp_path / "09_latent" / "results.json").write_text("{not json")
    found = earlier_results(tmp_path)
    assert found["07_video_diffusion"] == {"fvd": 1.0}
    assert "could not read" in found["09_latent"]["error"]
    assert list(earlier_results(tmp_path, lessons=["07"])) == ["07_video_diffusion"]


def test_load_earlier_models(tmp_path, capsys):
    path = tmp_path / "models.pt"
    assert load_earlier_models(path, {"frames": 16}) is None
    assert "no models" in capsys.readouterr().out
    save_checkpoint({"config": {"frames": 16, "size": 32}, "w": torch.ones(2)}, path)
    state = load_earlier_models(path, {"frames": 16, "size": 32})
    assert torch.equal(state["w"], torch.ones(2))
    assert load_earlier_models(path, {"frames": 8}) is None
    assert "other settings" in capsys.readouterr().out
    path.write_bytes(b"damaged")
    assert load_earlier_models(path, {"frames": 16}) is None
    assert "damaged" in capsys.readouterr().out


def test_real_system_status_says_why_not():
    ready, reason = real_system_status()
    assert isinstance(reason, str) and reason
    if not torch.cuda.is_available():
        assert not ready and "GPU" in reason
