"""environment.yml (conda) must ask for what pyproject.toml (pip) asks for, with the same bounds."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")


def _requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in ("lab", "test"):
        reqs += project["optional-dependencies"][extra]
    return {re.split(r"[<>=!~ ]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in reqs}


def _environment():
    text = (ROOT / "environment.yml").read_text()
    lines = [line.strip() for line in text.split("dependencies:", 1)[1].splitlines()]
    specs = [line[2:].strip() for line in lines if line.startswith("- ") and not line.startswith("- -")]
    return {re.split(r"[<>=!~ ]", s, maxsplit=1)[0].lower(): s.replace(" ", "") for s in specs
            if s and not s.endswith(":")}


def test_every_requirement_is_in_the_environment_with_the_same_bound():
    env = _environment()
    for name, spec in _requirements().items():
        assert name in env, f"{name} is in pyproject.toml but not in environment.yml"
        assert env[name] == spec, f"environment.yml has {env[name]!r}, pyproject.toml has {spec!r}"


def test_environment_has_nothing_pyproject_lacks():
    extra = set(_environment()) - set(_requirements()) - {"python", "pip"}
    assert not extra, f"environment.yml asks for {sorted(extra)} that pyproject.toml does not"


def test_python_floor_and_constraints_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"python{project['requires-python']}" == _environment()["python"]
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert set(pins) == {"torch", "torchvision"}
    text = (ROOT / "environment.yml").read_text()
    assert "-c constraints.txt" in text and "-e ." in text
