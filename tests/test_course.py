import subprocess
import sys
import types

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from vdlearn.__main__ import main
from vdlearn.course import LESSONS, build, check, colab_url, find_lesson, setup_cell_source, student_version
from vdlearn.course import notebooks as nbs

EXERCISE = '''def double(x):
    """Return 2 x."""
    ### BEGIN SOLUTION
    y = 2 * x
    return y
    ### END SOLUTION'''


def _lesson_nb():
    def code(src, *tags):
        cell = new_code_cell(src)
        cell.metadata["tags"] = list(tags)
        return cell

    return new_notebook(cells=[
        new_markdown_cell("# Lesson"),
        code("# Setup (filled in by python -m vdlearn build)", "setup"),
        code('PRESET = "auto"\nSEED = 0', "parameters"),
        code(EXERCISE, "exercise"),
        code("assert double(2) == 4", "check"),
        code("print(double(3))"),
    ])


@pytest.fixture
def course(tmp_path):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "vdlearn").mkdir()
    nbformat.write(_lesson_nb(), tmp_path / "solutions" / "00_video_as_data.ipynb")
    return tmp_path


def test_registry_is_ordered_and_findable():
    assert [lesson.number for lesson in LESSONS] == list(range(11))
    assert find_lesson("6").name == "image_diffusion"
    assert find_lesson("06_image_diffusion.ipynb").number == 6
    assert find_lesson("vae_math").stem == "01_vae_math"
    with pytest.raises(KeyError, match="00_video_as_data"):
        find_lesson("99")


def test_student_version_stubs_answers_and_tags_cells():
    lesson = find_lesson(0)
    student = student_version(_lesson_nb(), lesson)
    assert "colab-badge" in student.cells[0].metadata.tags
    assert "/blob/main/notebooks/00_video_as_data.ipynb" in student.cells[0].source
    ex, chk = student.cells[4], student.cells[5]
    assert "2 * x" not in ex.source and "BEGIN SOLUTION" not in ex.source
    assert '    raise NotImplementedError("Exercise: double")' in ex.source
    assert ex.source.startswith('def double(x):\n    """Return 2 x."""')
    assert "raises-exception" in ex.metadata.tags and "raises-exception" in chk.metadata.tags
    assert "raises-exception" not in student.cells[6].metadata.tags
    assert ex.metadata.nbgrader["solution"] is True and chk.metadata.nbgrader["grade"] is True
    assert student.cells[2].source == setup_cell_source()
    namespace = {}
    exec(ex.source, namespace)
    with pytest.raises(NotImplementedError, match="Exercise: double"):
        namespace["double"](1)


def test_unbalanced_markers_are_reported():
    nb = _lesson_nb()
    nb.cells[3].source = "def f():\n    ### BEGIN SOLUTION\n    return 1"
    with pytest.raises(ValueError, match="no matching '### END SOLUTION'"):
        student_version(nb, find_lesson(0))


def test_build_then_check_is_clean_and_idempotent(course):
    changed = build(course)
    assert {p.name for p in changed} == {"00_video_as_data.ipynb"} and len(changed) == 2
    assert check(course) == []
    assert build(course) == []  # a second build changes nothing


def test_check_finds_stale_outputs_and_missing_cells(course):
    build(course)
    sol = course / "solutions" / "00_video_as_data.ipynb"
    nb = nbformat.read(sol, as_version=4)
    last = nb.cells[-1]
    last.source = "print(double(4))"  # a change outside the answers
    last.outputs = [nbformat.v4.new_output("stream", text="6\n")]
    last.execution_count = 1
    nbformat.write(nb, sol)
    problems = "\n".join(check(course))
    assert "committed with outputs" in problems
    assert "notebooks/00_video_as_data.ipynb is stale" in problems

    nb.cells = [c for c in nb.cells if "parameters" not in c.metadata.get("tags", [])]
    next(c for c in nb.cells if "setup" in c.metadata.get("tags", [])).metadata["tags"] = []
    nbformat.write(nb, sol)
    problems = "\n".join(check(course))
    assert "setup cell" in problems and "'parameters' cell" in problems


def test_check_finds_unknown_and_orphan_notebooks(course):
    build(course)
    nbformat.write(_lesson_nb(), course / "solutions" / "42_extra.ipynb")
    (course / "notebooks" / "01_vae_math.ipynb").write_text("{}")
    problems = "\n".join(check(course))
    assert "42_extra.ipynb is not a lesson" in problems
    assert "notebooks/01_vae_math.ipynb has no solutions/ source" in problems


def test_setup_cell_in_colab_installs_from_the_repository(monkeypatch, tmp_path):
    """Simulate Colab: vdlearn missing, google.colab loaded, no checkout around the notebook."""
    calls = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.chdir(tmp_path)
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "vdlearn" else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append(cmd))
    monkeypatch.setattr(sys, "path", list(sys.path))
    namespace = {}
    exec(setup_cell_source(), namespace)
    clone = str(tmp_path / "vdlearn-course")
    assert calls == [["git", "clone", "--depth", "1", nbs.REPO_URL, clone],
                     [sys.executable, "-m", "pip", "install", "-q", "-e", clone]]
    assert sys.path[0] == clone  # importable at once, without restarting the kernel
    assert namespace["REPO_URL"] == nbs.REPO_URL


def test_setup_cell_in_a_checkout_installs_the_checkout(monkeypatch, tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "vdlearn").mkdir()
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "vdlearn" else real_find_spec(name, *a))
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append(cmd))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(setup_cell_source(), {})
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", "-e", str(tmp_path)]]


def test_setup_cell_does_nothing_when_installed(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    exec(setup_cell_source(), {})
    assert calls == []


def test_repo_url_is_written_once():
    import pathlib

    root = pathlib.Path(nbs.__file__).resolve().parents[2]
    hits = [p for p in (root / "vdlearn").rglob("*.py") if nbs.REPO_URL in p.read_text(encoding="utf-8")]
    assert hits == [pathlib.Path(nbs.__file__).resolve()]
    assert colab_url(find_lesson(2)).endswith("vdlearn/vdlearn/blob/main/notebooks/02_vae_frames.ipynb")


def test_cli_lessons_and_check(capsys, course, monkeypatch):
    monkeypatch.chdir(course)
    assert main(["lessons"]) == 0
    assert "Video as data" in capsys.readouterr().out
    assert main(["check"]) == 1
    assert "run `python -m vdlearn build`" in capsys.readouterr().out
    assert main(["build"]) == 0
    assert main(["check"]) == 0


def test_repository_notebooks_pass_the_course_checks():
    """The committed lessons themselves: notebooks/ in step, no outputs, setup and parameters cells."""
    problems = check()
    assert problems == [], "\n".join(problems)


def test_doctor_reports(capsys):
    assert main(["doctor"]) in (0, 1)
    out = capsys.readouterr().out
    assert "torch" in out and "device" in out and "preset" in out


def test_readme_lists_every_lesson_with_its_colab_badge():
    import pathlib

    readme = (pathlib.Path(nbs.__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    root = pathlib.Path(nbs.__file__).resolve().parents[2]
    for lesson in LESSONS:
        assert f"| {lesson.number:02d} |" in readme and lesson.name in readme
        written = (root / "solutions" / lesson.filename).exists()
        assert (colab_url(lesson) in readme) == written, (
            f"README should link {lesson.stem} to Colab exactly when the lesson is written")


def test_a_dry_run_reaches_the_kernel_on_the_cpu_in_its_own_folder(course, monkeypatch):
    """run_lesson(dry_run=True): the kernel sees VDLEARN_DRY_RUN and the CPU; its files go to outputs/dry-run."""
    import json
    import os

    from vdlearn.course.execute import run_lesson

    nb = _lesson_nb()
    nb.cells.append(new_code_cell("import os\nfrom vdlearn.runtime import dry_run, get_device\n"
                                  "print('probe', dry_run(), get_device(), os.environ['VDLEARN_PRESET'], os.getcwd())"))
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(nb, course / "solutions" / "00_video_as_data.ipynb")
    monkeypatch.chdir(course)
    monkeypatch.delenv("VDLEARN_DRY_RUN", raising=False)
    monkeypatch.delenv("VDLEARN_DEVICE", raising=False)
    out = run_lesson(0, preset="gpu", dry_run=True, timeout=120)
    assert out == course / "outputs" / "executed" / "00_video_as_data.gpu-dry-run.ipynb"
    printed = "".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"]
                      for o in c.get("outputs", []))
    assert f"probe True cpu gpu {course / 'outputs' / 'dry-run'}" in printed
    assert "VDLEARN_DRY_RUN" not in os.environ and "VDLEARN_DEVICE" not in os.environ  # this process: as before


def test_cli_dry_run_flag_and_no_pretraining_in_a_dry_run(monkeypatch, capsys):
    from vdlearn.course import execute

    calls = []
    monkeypatch.setattr(execute, "run_lesson", lambda *a, **k: calls.append((a, k)))
    assert main(["run", "7", "--preset", "gpu", "--dry-run"]) == 0
    assert calls[-1][1]["dry_run"] is True and calls[-1][1]["preset"] == "gpu"
    assert main(["run", "7"]) == 0 and calls[-1][1]["dry_run"] is False
    monkeypatch.setenv("VDLEARN_DRY_RUN", "1")
    assert main(["pretrain", "06_unet2d_digits"]) == 2
    assert "dry run trains nothing worth keeping" in capsys.readouterr().err
