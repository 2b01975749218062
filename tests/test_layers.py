"""The package's layers (pyproject.toml's import-linter contract) hold, and a broken one is caught."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("importlinter")


def lint(config: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run import-linter on ``config`` in ``cwd`` (its package first on the path)."""
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True, no_logo=True))")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"}, timeout=300)


def probe_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the package under another name (so the installed one cannot shadow it) and its contract."""
    shutil.copytree(ROOT / "vdlearn", tmp_path / "vdprobe", ignore=shutil.ignore_patterns("__pycache__"))
    text = (ROOT / "pyproject.toml").read_text()
    contract = re.sub(r"\bvdlearn\b", "vdprobe", text[text.index("[tool.importlinter]"):])
    config = tmp_path / "layers.toml"
    config.write_text(contract)
    return tmp_path / "vdprobe", config


def test_the_layers_hold():
    result = lint(ROOT / "pyproject.toml", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, forbidden", [
    ("nn/blocks.py", "from ..diffusion.schedules import NoiseSchedule"),   # a network that knows a noise process
    ("diffusion/samplers.py", "from ..train import fit"),                 # diffusion math that knows the loop
    ("data/shapes.py", "from ..viz import show_video"),                   # siblings of one layer
])
def test_an_import_against_the_layers_fails(tmp_path, module, forbidden):
    package, config = probe_copy(tmp_path)
    path = package / module
    path.write_text(path.read_text() + f"\n{forbidden}  # noqa\n")
    result = lint(config, tmp_path)
    assert result.returncode != 0, "import-linter accepted an import that breaks the layers:\n" + result.stdout
    assert "BROKEN" in result.stdout or "broken" in result.stdout
