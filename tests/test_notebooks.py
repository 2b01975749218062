"""Execute every lesson: the solution with papermill in the smoke preset, the student copy with nbval.

In the student copy only the cells tagged ``raises-exception`` (the exercises and their checks)
may fail; every other cell must run, because later cells use vdlearn's reference answers.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vdlearn.course import LESSONS
from vdlearn.course.execute import run_lesson

ROOT = Path(__file__).resolve().parents[1]
WRITTEN = [lesson for lesson in LESSONS if (ROOT / "solutions" / lesson.filename).exists()]
pytestmark = pytest.mark.notebooks


def test_the_first_lesson_exists():
    assert WRITTEN and WRITTEN[0].number == 0


@pytest.mark.parametrize("lesson", WRITTEN, ids=[lesson.stem for lesson in WRITTEN])
def test_solution_runs_in_the_smoke_preset(lesson, tmp_path):
    out = run_lesson(lesson.stem, preset="smoke", output_dir=tmp_path, cwd=tmp_path, timeout=600)
    assert out.exists()


@pytest.mark.parametrize("lesson", WRITTEN, ids=[lesson.stem for lesson in WRITTEN])
def test_student_notebook_runs_with_nbval(lesson, tmp_path):
    env = {**os.environ, "VDLEARN_PRESET": "smoke"}
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
           "-p", "no:xdist", "--rootdir", str(tmp_path), str(ROOT / "notebooks" / lesson.filename)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
