"""python -m vdlearn grade: blank, partly solved and solved notebooks, and a notebook that is not ours."""
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from vdlearn.__main__ import main
from vdlearn.course.grade import grade_notebook

ROOT = Path(__file__).resolve().parents[1]
UINT8 = '''def to_uint8_frames(video):
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0)'''
BOUNCE = '''def bounce(p0, v, t, lo, hi):
    L = hi - lo
    u = torch.remainder(p0 + v * t - lo, 2 * L)
    return lo + L - (u - L).abs()'''
STUB = '''def {name}(*args):
    raise NotImplementedError("Exercise: {name}")'''


def _cell(src, *tags):
    cell = new_code_cell(src)
    cell.metadata["tags"] = list(tags)
    return cell


def _notebook(path, uint8=None, bounce=None, broken=False):
    nb = new_notebook(cells=[
        new_markdown_cell("# A lesson"),
        _cell('PRESET = "auto"', "parameters"),
        _cell("import torch\nfrom vdlearn.checks import lesson00 as checks\nassert PRESET == 'smoke'"),
        _cell(uint8 or STUB.format(name="to_uint8_frames"), "exercise"),
        _cell("checks.check_to_uint8_frames(to_uint8_frames)", "check"),
        _cell("def bounce(:\n" if broken else (bounce or STUB.format(name="bounce")), "exercise"),
        _cell("checks.check_bounce(bounce)", "check"),
    ])
    nbformat.write(nb, path)
    return path


def _score(results):
    return sum(r.passed for r in results), len(results)


def test_blank_partly_and_fully_solved(tmp_path):
    blank = grade_notebook(_notebook(tmp_path / "blank.ipynb"))
    assert _score(blank) == (0, 2)
    assert all("not attempted" in r.message for r in blank)
    partly = grade_notebook(_notebook(tmp_path / "partly.ipynb", uint8=UINT8))
    assert _score(partly) == (1, 2) and partly[0].name == "00.to_uint8_frames" and partly[0].passed
    solved = grade_notebook(_notebook(tmp_path / "solved.ipynb", uint8=UINT8, bounce=BOUNCE))
    assert _score(solved) == (2, 2)


def test_wrong_and_broken_answers_are_explained(tmp_path):
    wrong = UINT8.replace(".permute(1, 2, 3, 0)", "")
    results = grade_notebook(_notebook(tmp_path / "wrong.ipynb", uint8=wrong, broken=True))
    assert _score(results) == (0, 2)
    assert "shape" in results[0].message
    assert results[1].name == "check cell 2" and "NameError" in results[1].message


def test_cli_report_and_json(tmp_path, capsys):
    path = _notebook(tmp_path / "partly.ipynb", uint8=UINT8)
    assert main(["grade", str(path)]) == 0
    out = capsys.readouterr().out
    assert "PASS  00.to_uint8_frames" in out and "Score: 1/2" in out
    assert main(["grade", "--json", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["passed"], data["total"]) == (1, 2)


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


@pytest.mark.notebooks
def test_grading_the_real_lesson_00(tmp_path):
    student = grade_notebook(ROOT / "notebooks" / "00_video_as_data.ipynb")
    assert _score(student) == (0, 2)
