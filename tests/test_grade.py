"""python -m vdlearn grade: scores from the lesson's own checks, in a sandbox, whatever the student hands in.

The graded tests use a two-exercise lesson written here (lesson 00's file name and checks, three
code cells around them) so that each grading takes seconds; the real lesson 00 is graded once, in
the ``notebooks`` tests. Each probe below made the old grader report a wrong score or lose files.
"""
import csv
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from vdlearn.__main__ import main
from vdlearn.course import find_lesson, student_version
from vdlearn.course.grading import grade_many, grade_notebook, write_gradebook
from vdlearn.course.grading.lesson import identify_lesson, plan_grading, SubmissionError

ROOT = Path(__file__).resolve().parents[1]
UINT8 = '''def to_uint8_frames(video):
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0)'''
BOUNCE = '''def bounce(p0, v, t, lo, hi):
    L = hi - lo
    u = torch.remainder(p0 + v * t - lo, 2 * L)
    return lo + L - (u - L).abs()'''
WRONG_UINT8 = "def to_uint8_frames(video):\n    return video"
WRONG_BOUNCE = "def bounce(p0, v, t, lo, hi):\n    return p0 + v * t"
LESSON = find_lesson(0)
FAST = dict(timeout=60, total_timeout=300)


def _cell(src, *tags):
    cell = new_code_cell(src)
    cell.metadata["tags"] = list(tags)
    return cell


def _solution(answer: str) -> str:
    head, body = answer.split("\n", 1)
    return f"{head}\n    ### BEGIN SOLUTION\n{body}\n    ### END SOLUTION"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A small course: solutions/00_video_as_data.ipynb with lesson 00's two exercises and checks."""
    folder = tmp_path_factory.mktemp("course") / "solutions"
    folder.mkdir()
    nb = new_notebook(cells=[
        new_markdown_cell("# A lesson"),
        _cell('PRESET = "auto"', "parameters"),
        _cell("import torch\nfrom vdlearn.runtime import resolve_preset\nprint(resolve_preset(PRESET))"),
        _cell(_solution(UINT8), "exercise"),
        _cell("from vdlearn.checks import lesson00 as checks\nchecks.check_to_uint8_frames(to_uint8_frames)", "check"),
        _cell(_solution(BOUNCE), "exercise"),
        _cell("checks.check_bounce(bounce)", "check"),
    ])
    nbformat.write(nb, folder / LESSON.filename)
    return folder


def _submission(course, path, uint8=None, bounce=None, edit=None):
    """The student notebook of ``course`` with answers filled in, as a student hands it in."""
    nb = student_version(nbformat.read(course / LESSON.filename, as_version=4), LESSON)
    for cell in nb.cells:
        if "exercise" in cell.metadata.get("tags", []):
            answer = uint8 if "to_uint8_frames" in cell.source else bounce
            cell.source = answer if answer is not None else cell.source
    if edit:
        edit(nb)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _score(results):
    return sum(r.passed for r in results), len(results)


def test_blank_partly_and_fully_solved(course, tmp_path):
    blank = grade_notebook(_submission(course, tmp_path / "blank_00_video_as_data.ipynb"), solutions=course, **FAST)
    assert _score(blank) == (0, 2)
    assert all("not attempted" in r.message for r in blank)
    partly = grade_notebook(_submission(course, tmp_path / "partly.ipynb", uint8=UINT8), solutions=course, **FAST)
    assert _score(partly) == (1, 2) and partly[0].name == "00.to_uint8_frames" and partly[0].passed
    solved = grade_notebook(_submission(course, tmp_path / "solved.ipynb", uint8=UINT8, bounce=BOUNCE),
                            solutions=course, **FAST)
    assert _score(solved) == (2, 2) and solved.lesson == "00_video_as_data"


def test_wrong_and_broken_answers_are_explained(course, tmp_path):
    wrong = UINT8.replace(".permute(1, 2, 3, 0)", "")
    results = grade_notebook(_submission(course, tmp_path / "wrong.ipynb", uint8=wrong, bounce="def bounce(:\n"),
                             solutions=course, **FAST)
    assert _score(results) == (0, 2)
    assert "shape" in results[0].message
    assert results[1].name == "00.bounce" and "NameError" in results[1].message
    assert "SyntaxError" in results[1].message  # the answer cell's own error comes first


def test_cli_report_and_json(course, tmp_path, capsys):
    path = _submission(course, tmp_path / "partly.ipynb", uint8=UINT8)
    assert main(["grade", str(path), "--solutions", str(course)]) == 0
    out = capsys.readouterr().out
    assert "PASS  00.to_uint8_frames" in out and "Score: 1/2" in out and "smoke preset" in out
    assert main(["grade", "--json", str(path), "--solutions", str(course)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["passed"], data["total"]) == (1, 2) and data["preset"] == "smoke"


def test_not_a_course_notebook_is_refused(tmp_path, capsys):
    plain = tmp_path / "plain.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("1 + 1")]), plain)
    assert main(["grade", str(plain)]) == 2
    assert "not a course notebook" in capsys.readouterr().err
    junk = tmp_path / "junk.ipynb"
    junk.write_text("not json")
    with pytest.raises(ValueError, match="not a Jupyter notebook"):
        grade_notebook(junk)
    with pytest.raises(FileNotFoundError):
        grade_notebook(tmp_path / "missing.ipynb")
    with pytest.raises(ValueError, match="not a course notebook"):  # metadata naming no lesson
        nb = new_notebook(cells=[new_code_cell("1 + 1")])
        nb.metadata["vdlearn"] = {"generated_from": "solutions/99_time_travel.ipynb"}
        nbformat.write(nb, tmp_path / "other.ipynb")
        grade_notebook(tmp_path / "other.ipynb")


def test_answers_are_matched_to_the_lesson_without_running(course, tmp_path):
    """By metadata, nbgrader id or file name for the lesson; by id, function name or position for the answers."""
    real = nbformat.read(ROOT / "notebooks" / LESSON.filename, as_version=4)
    assert identify_lesson(real, "renamed.ipynb") == LESSON  # the metadata the course writes
    bare = new_notebook(cells=[new_code_cell("x = 1")])
    assert identify_lesson(bare, "bob-00_video_as_data(1).ipynb") == LESSON  # the file name
    with pytest.raises(SubmissionError, match="--lesson"):
        identify_lesson(bare, "bob.ipynb")
    lesson = student_version(nbformat.read(course / LESSON.filename, as_version=4), LESSON)
    # the answers moved into new, untagged cells with new ids, in reverse order: found by function name
    moved = new_notebook(cells=[new_code_cell(BOUNCE), new_code_cell(UINT8 + "\n# mine")])
    plan = plan_grading(moved, lesson, LESSON)
    answers = [s.source for s in plan.steps if s.kind == "answer"]
    assert answers == [UINT8 + "\n# mine", BOUNCE]
    assert [e.names for e in plan.exercises] == [["00.to_uint8_frames"], ["00.bounce"]]
    # the checks and lesson cells are the course's, whatever the submission holds
    assert [s.source for s in plan.steps if s.kind == "check"][1] == "checks.check_bounce(bounce)"
    empty = plan_grading(new_notebook(cells=[new_code_cell("pass")]), lesson, LESSON)
    assert [e.missing for e in empty.exercises] == [["to_uint8_frames"], ["bounce"]]


def test_deleting_answer_cannot_touch_folders_outside_its_sandbox(course, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "canary").mkdir(parents=True)
    (tmp_path / "canary").mkdir()
    (tmp_path / "canary" / "egg.txt").write_text("still here")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    vandal = (f"import os, shutil\n"
              f"shutil.rmtree(os.path.expanduser('~/canary'), ignore_errors=True)\n"
              f"shutil.rmtree({str(tmp_path / 'canary')!r}, ignore_errors=True)\n"
              f"open('left_behind.txt', 'w').write('x')\n" + UINT8)
    grade = grade_notebook(_submission(course, tmp_path / "subs" / "vandal.ipynb", uint8=vandal),
                           solutions=course, **FAST)
    assert (home / "canary").is_dir()  # HOME is the sandbox's
    assert not (tmp_path / "left_behind.txt").exists()  # so is the working folder
    assert grade[0].passed and "deleting files" in grade[0].review
    if grade.isolation == "namespace":  # the file system outside the sandbox is read-only
        assert (tmp_path / "canary" / "egg.txt").read_text() == "still here"
    else:
        pytest.skip("this machine has no user namespaces: absolute paths are protected only in a container")


def test_deleted_checks_and_cells_do_not_raise_the_score(course, tmp_path):
    """The total is the lesson's; the checks are the course's even when deleted or edited."""
    def vandalise(nb):
        checks = [c for c in nb.cells if "check" in c.metadata.get("tags", [])]
        checks[1].source = 'print("✅ 00.bounce: correct")'  # an edited check
        nb.cells = [c for c in nb.cells if c is not checks[0]  # a deleted check
                    and not c.source.startswith("def bounce")]  # a deleted exercise cell
    path = _submission(course, tmp_path / "00_video_as_data.ipynb", uint8=UINT8, edit=vandalise)
    grade = grade_notebook(path, solutions=course, **FAST)
    assert _score(grade) == (1, 2)
    assert grade[0].passed and not grade[1].passed and "missing" in grade[1].message


FORGE_RESULTS = '''import vdlearn.checks, vdlearn.checks.lesson00 as c
vdlearn.checks.RESULTS = {"00.to_uint8_frames": {"passed": True, "message": "correct"}}
def _fake(*args):
    print("✅ 00.to_uint8_frames: correct")
c.check_to_uint8_frames = _fake
vdlearn.checks.exercise = lambda name: (lambda check: _fake)
class checks:  # the name the check cells use
    check_to_uint8_frames = check_bounce = staticmethod(_fake)
print("✅ 00.to_uint8_frames: correct")
''' + WRONG_UINT8
FORGE_EXIT = '''def bounce(p0, v, t, lo, hi):
    print("✅ 00.bounce: correct")
    raise SystemExit(0)'''
FORGE_MODULES = '''import sys, types
fake = types.ModuleType("vdlearn.checks.lesson00")
fake.check_to_uint8_frames = fake.check_bounce = lambda *a: print("✅ 00.bounce: correct")
sys.modules["vdlearn.checks.lesson00"] = fake
print("✅ 00.bounce: correct")
''' + WRONG_BOUNCE + "\nraise SystemExit"


def test_forging_answers_cannot_pass(course, tmp_path):
    """Replacing RESULTS, patching or replacing the check module, fake ✅ lines, SystemExit: all FAIL."""
    a = _submission(course, tmp_path / "a" / "00_video_as_data.ipynb", uint8=FORGE_RESULTS, bounce=FORGE_EXIT)
    def edit(nb):  # and an edited check cell that only prints
        next(c for c in nb.cells if "check_bounce" in c.source and "check" in c.metadata["tags"]).source = 'print("✅ 00.bounce: correct")'
    b = _submission(course, tmp_path / "b" / "00_video_as_data.ipynb", uint8=WRONG_UINT8, bounce=FORGE_MODULES,
                    edit=edit)
    first, second = grade_many([a, b], solutions=course, **FAST)
    for grade in (first, second):
        assert grade.error is None and _score(grade) == (0, 2), [(r.name, r.message) for r in grade]
    assert "the check module" in first[0].review and "exiting the kernel" in first[1].review
    assert "SystemExit" in first[1].message
    assert "sys.modules" in second[1].review


# right at the corners and for one-frame clips, one too bright in the middle frames: only torch.equal catches it
WRONG_UINT8_MIDDLE = UINT8.replace(".permute(1, 2, 3, 0)", ".permute(1, 2, 3, 0).clone()\n"
                                   "    out[1:-1] += 1\n    return out").replace("    return ((video", "    out = ((video", 1)
FORGE_LIBRARY = "import torch\ntorch.equal = lambda a, b: True   # every comparison agrees\n" + WRONG_UINT8_MIDDLE
WRONG_BOUNCE_CLAMP = "def bounce(p0, v, t, lo, hi):\n    return (p0 + v * t).clamp(lo, hi)"
FORGE_REFERENCE = ("import vdlearn.data.shapes\n" + WRONG_BOUNCE_CLAMP
                   + "\nvdlearn.data.shapes.bounce = bounce   # the check's reference is now this answer")


def test_answers_that_patch_a_library_or_the_reference_cannot_pass(course, tmp_path):
    """An answer cell that rewrites torch.equal, or the package function a check compares with, fails (and is flagged)."""
    forged = _submission(course, tmp_path / "f" / "00_video_as_data.ipynb", uint8=FORGE_LIBRARY, bounce=FORGE_REFERENCE)
    honest = _submission(course, tmp_path / "h" / "00_video_as_data.ipynb", uint8=WRONG_UINT8_MIDDLE, bounce=BOUNCE)
    forged, honest = grade_many([forged, honest], solutions=course, **FAST)
    assert _score(forged) == (0, 2), [(r.name, r.message) for r in forged]
    assert "changing a library" in forged[0].review and "changing a library" in forged[1].review
    assert "off by one" in forged[0].message and "off by" in forged[1].message
    # the same wrong answer without the patch fails the same way; the lesson's own imports still work after the checks
    assert _score(honest) == (1, 2) and honest[0].message == forged[0].message and not honest[0].review


def test_review_flags_name_what_an_in_process_check_cannot_stop():
    """A library rewritten while the check runs (inside the answer's function) could fool it: the report says so."""
    from vdlearn.course.grading.lesson import review_flags

    inside = "def to_uint8_frames(video):\n    torch.equal = lambda a, b: True\n    return video"
    assert "changing a library" in review_flags(inside)
    assert "changing a library" in review_flags("import numpy as xp\nsetattr(xp, 'allclose', print)")
    assert "the grader's own names" in review_flags("_vdlearn_grader_restore = lambda: None")
    honest = "def f(x):\n    out = x.clone()\n    out[1:] += 1\n    self_like = out\n    return out"
    assert review_flags(honest) == [] and review_flags("model.weight = w\nx.data = y") == []


def test_the_grader_preset_wins_over_the_environment(course, tmp_path, monkeypatch):
    monkeypatch.setenv("VDLEARN_PRESET", "cpu")
    monkeypatch.setenv("CI", "")
    probe = ("import os\nfrom vdlearn.runtime import resolve_preset\n"
             "assert os.environ['VDLEARN_PRESET'] == 'smoke' and resolve_preset('auto') == 'smoke', os.environ\n"
             "assert PRESET == 'smoke'\n" + UINT8)
    grade = grade_notebook(_submission(course, tmp_path / "env.ipynb", uint8=probe), solutions=course, **FAST)
    assert grade[0].passed, grade[0].message


def test_endless_loops_are_stopped_and_the_rest_is_scored(course, tmp_path, capsys):
    looping = _submission(course, tmp_path / "loop.ipynb", uint8="while True:\n    pass", bounce=BOUNCE)
    assert main(["grade", str(looping), "--solutions", str(course), "--timeout", "3"]) == 0
    out = capsys.readouterr().out
    assert "FAIL  00.to_uint8_frames  stopped: it ran longer than the per-cell limit of 3 s" in out
    assert "PASS  00.bounce" in out and "Score: 1/2" in out
    # a function that loops only when the check calls it; and a notebook over its total limit
    calls = _submission(course, tmp_path / "calls.ipynb", bounce=BOUNCE,
                        uint8="def to_uint8_frames(video):\n    while True:\n        try:\n            pass\n"
                              "        except KeyboardInterrupt:\n            pass")
    grade = grade_notebook(calls, solutions=course, timeout=3, total_timeout=300)
    assert not grade[0].passed and "per-cell limit" in grade[0].message and grade[1].passed
    over = grade_notebook(looping, solutions=course, timeout=60, total_timeout=12)
    assert _score(over) == (0, 2) and all("total time limit" in r.message for r in over)


def test_a_crash_scores_its_exercise_zero_and_the_rest_is_scored(course, tmp_path):
    in_cell = _submission(course, tmp_path / "a" / "00_video_as_data.ipynb", uint8="import os\nos._exit(1)",
                          bounce=BOUNCE)
    in_check = _submission(course, tmp_path / "b" / "00_video_as_data.ipynb", bounce=BOUNCE,
                           uint8="def to_uint8_frames(video):\n    import os\n    os._exit(3)")
    for grade in grade_many([in_cell, in_check], solutions=course, **FAST):
        assert _score(grade) == (1, 2), [(r.name, r.message) for r in grade]
        assert "kernel died" in grade[0].message and grade[1].passed


def test_an_answer_that_calls_exit_scores_zero_and_is_not_replayed(course, tmp_path):
    """exit() ends an IPython kernel a moment *after* its cell replies: the check that follows at once
    must not pass, and the restarted kernel must not replay the exit (it would die again after every cell)."""
    path = _submission(course, tmp_path / "exit" / "00_video_as_data.ipynb", uint8="exit()\n" + UINT8, bounce=BOUNCE)
    grade = grade_notebook(path, solutions=course, **FAST)
    assert _score(grade) == (1, 2), [(r.name, r.message) for r in grade]
    assert not grade[0].passed and "exit()" in grade[0].message and grade[1].passed
    assert not any("died" in note for note in grade.notes), grade.notes


def test_a_batch_makes_one_gradebook(course, tmp_path, capsys):
    folder = tmp_path / "submissions"
    _submission(course, folder / "alice_00_video_as_data.ipynb", uint8=UINT8, bounce=BOUNCE)
    _submission(course, folder / "bob_00_video_as_data.ipynb", uint8=UINT8)
    (folder / "carol_00_video_as_data.ipynb").write_text("{ not json")
    nbformat.write(new_notebook(cells=[new_code_cell("1 + 1")]), folder / "dave.ipynb")
    book = tmp_path / "gradebook.csv"
    assert main(["grade", str(folder), "--out", str(book), "--solutions", str(course)]) == 1  # some broke
    rows = {Path(r["submission"]).name: r for r in csv.DictReader(book.open(encoding="utf-8"))}
    assert set(rows) == {"alice_00_video_as_data.ipynb", "bob_00_video_as_data.ipynb",
                         "carol_00_video_as_data.ipynb", "dave.ipynb"}
    alice, bob = rows["alice_00_video_as_data.ipynb"], rows["bob_00_video_as_data.ipynb"]
    assert (alice["00.to_uint8_frames"], alice["00.bounce"], alice["passed"], alice["total"]) == ("1", "1", "2", "2")
    assert (bob["00.to_uint8_frames"], bob["00.bounce"], bob["passed"]) == ("1", "0", "1")
    assert "not a Jupyter notebook" in rows["carol_00_video_as_data.ipynb"]["error"]
    assert "not a course notebook" in rows["dave.ipynb"]["error"]
    assert "could not grade" in capsys.readouterr().err
    broken = grade_many([folder / "carol_00_video_as_data.ipynb", folder / "dave.ipynb"], solutions=course)
    data = json.loads(write_gradebook(broken, tmp_path / "gradebook.json").read_text(encoding="utf-8"))
    assert [bool(s["error"]) for s in data["submissions"]] == [True, True]


@pytest.mark.notebooks
def test_grading_the_real_lesson_00(tmp_path):
    student = grade_notebook(ROOT / "notebooks" / "00_video_as_data.ipynb")
    assert _score(student) == (0, 2)
