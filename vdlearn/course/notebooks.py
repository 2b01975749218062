"""Lesson notebooks: the canonical setup cell, the student version, and the hygiene check.

``solutions/NN_name.ipynb`` is the source of truth. :func:`student_version` turns it into the
student notebook: every answer between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's
markers) becomes ``raise NotImplementedError("Exercise: ...")``, and the exercise and check
cells are tagged ``raises-exception`` so that nbval accepts their (expected) errors.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

from .lessons import LESSONS, Lesson, repo_root

__all__ = [
    "REPO_URL",
    "BEGIN",
    "END",
    "setup_cell_source",
    "colab_url",
    "student_version",
    "strip_outputs",
    "build",
    "check",
]

#: The one place the repository's address is written; a fork changes this line.
REPO_URL = "https://github.com/vdlearn/vdlearn"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
SETUP_TAG, PARAMETERS_TAG, BADGE_TAG = "setup", "parameters", "colab-badge"
EXERCISE_TAG, CHECK_TAG, RAISES_TAG = "exercise", "check", "raises-exception"


def setup_cell_source(repo_url: str = REPO_URL) -> str:
    """The first code cell of every lesson: makes vdlearn importable in JupyterLab and in Colab.

    Where vdlearn is missing it installs the course checkout around the notebook, or (in Colab)
    clones the repository first, so that the shipped data/ (pretrained checkpoints) comes along.
    """
    return f'''# Setup: run this first. In Colab (or any Python without the course) it installs vdlearn.
REPO_URL = "{repo_url}"
import importlib.util, pathlib, subprocess, sys
if importlib.util.find_spec("vdlearn") is None:
    here = next((p for p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]
                 if (p / "pyproject.toml").is_file() and (p / "vdlearn").is_dir()), None)
    if here is None:  # Colab: fetch the course next to the notebook
        here = pathlib.Path("vdlearn-course").resolve()
        if not here.exists():
            subprocess.run(["git", "clone", "--depth", "1", REPO_URL, str(here)], check=True)
    print(f"Installing vdlearn from {{here}} ...")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", str(here)], check=True)
    sys.path.insert(0, str(here))
import vdlearn
print(f"vdlearn {{vdlearn.__version__}} is ready.")'''


def colab_url(lesson: Lesson, folder: str = "notebooks", repo_url: str = REPO_URL) -> str:
    """The "Open in Colab" address of a lesson notebook."""
    path = repo_url.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/main/{folder}/{lesson.filename}"


def badge_cell_source(lesson: Lesson, folder: str) -> str:
    """The "Open in Colab" badge that tops every notebook."""
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_url(lesson, folder)})")


def _with_badge(nb: nbformat.NotebookNode, lesson: Lesson, folder: str) -> nbformat.NotebookNode:
    """Put (or refresh) the Colab badge cell at the top of ``nb``."""
    cells = [c for c in nb.cells if BADGE_TAG not in _tags(c)]
    badge = nbformat.v4.new_markdown_cell(badge_cell_source(lesson, folder))
    badge.metadata["tags"] = [BADGE_TAG]
    old = next((c for c in nb.cells if BADGE_TAG in _tags(c)), None)
    if old is not None and "id" in old:
        badge["id"] = old["id"]
    nb.cells = [badge] + cells
    return nb


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _set_tags(cell, tags: list[str]) -> None:
    cell.setdefault("metadata", {})["tags"] = sorted(set(tags))


def strip_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove outputs, execution counts and per-run metadata (what is committed has none)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        for key in ("execution", "papermill", "collapsed", "scrolled", "jp-MarkdownHeadingCollapsed"):
            cell.get("metadata", {}).pop(key, None)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    return nb


def _exercise_name(lines: list[str], upto: int) -> str:
    for line in reversed(lines[:upto]):
        m = re.match(r"\s*def\s+(\w+)\s*\(", line)
        if m:
            return m.group(1)
    return "write your answer here"


def _replace_solutions(source: str, where: str) -> str:
    """Replace each BEGIN/END SOLUTION block of ``source`` by a NotImplementedError stub."""
    lines, out, i = source.split("\n"), [], 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == BEGIN:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == END), None)
            if end is None:
                raise ValueError(f"{where}: '{BEGIN}' has no matching '{END}'")
            indent = line[: len(line) - len(line.lstrip())]
            name = _exercise_name(lines, i)
            out.append(f'{indent}raise NotImplementedError("Exercise: {name}")')
            i = end + 1
            continue
        if line.strip() == END:
            raise ValueError(f"{where}: '{END}' without a '{BEGIN}' before it")
        out.append(line)
        i += 1
    return "\n".join(out)


def _nbgrader(cell, grade_id: str, *, solution: bool) -> None:
    """nbgrader metadata, so a teacher using nbgrader can keep using it."""
    meta = {"grade": not solution, "grade_id": grade_id, "locked": not solution,
            "schema_version": 3, "solution": solution, "task": False}
    if not solution:
        meta["points"] = 1
    cell.setdefault("metadata", {})["nbgrader"] = meta


def normalise_solution(nb: nbformat.NotebookNode, lesson: Lesson) -> nbformat.NotebookNode:
    """The solution as committed: outputs stripped, canonical setup cell, nbgrader metadata."""
    nb = strip_outputs(nb)
    exercises = checks = 0
    for cell in nb.cells:
        tags = _tags(cell)
        if SETUP_TAG in tags:
            cell.source = setup_cell_source()
        if EXERCISE_TAG in tags:
            exercises += 1
            _nbgrader(cell, f"{lesson.stem}-exercise-{exercises}", solution=True)
        elif CHECK_TAG in tags:
            checks += 1
            _nbgrader(cell, f"{lesson.stem}-check-{checks}", solution=False)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    return _with_badge(nb, lesson, "solutions")


def student_version(solution: nbformat.NotebookNode, lesson: Lesson) -> nbformat.NotebookNode:
    """The student notebook generated from a (normalised) solution notebook."""
    nb = normalise_solution(solution, lesson)
    for k, cell in enumerate(nb.cells):
        tags = _tags(cell)
        if cell.cell_type != "code":
            continue
        has_marker = BEGIN in cell.source
        if has_marker:
            cell.source = _replace_solutions(cell.source, f"{lesson.filename}, cell {k}")
        if has_marker or EXERCISE_TAG in tags or CHECK_TAG in tags:
            _set_tags(cell, tags + [RAISES_TAG])
    nb.metadata["vdlearn"] = {"generated_from": f"solutions/{lesson.filename}",
                              "note": "student version: generated by `python -m vdlearn build`"}
    return _with_badge(nb, lesson, "notebooks")


def _dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb, version=4) + "\n"


def _read(path: Path) -> nbformat.NotebookNode:
    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - json and validation errors
        raise ValueError(f"'{path}' is not a readable notebook: {err}") from err


def build(root: str | Path | None = None) -> list[Path]:
    """Normalise every solution notebook in place and (re)write its student copy; returns what changed."""
    root = repo_root(root)
    changed = []
    (root / "notebooks").mkdir(exist_ok=True)
    for lesson in LESSONS:
        src = root / "solutions" / lesson.filename
        if not src.exists():
            continue
        solution = normalise_solution(_read(src), lesson)
        for path, nb in ((src, solution), (root / "notebooks" / lesson.filename,
                                           student_version(solution, lesson))):
            text = _dumps(nb)
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                changed.append(path)
    return changed


def _has_outputs(nb: nbformat.NotebookNode) -> bool:
    return any(c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)
               for c in nb.cells)


def check(root: str | Path | None = None) -> list[str]:
    """Problems that would confuse a student or break CI; an empty list means all is well."""
    root = repo_root(root)
    problems: list[str] = []
    known = {lesson.filename for lesson in LESSONS}
    for folder in ("solutions", "notebooks"):
        for path in sorted((root / folder).glob("*.ipynb")):
            if path.name not in known:
                problems.append(f"{folder}/{path.name} is not a lesson of the registry "
                                "(vdlearn/course/lessons.py); rename it or register it")
    for lesson in LESSONS:
        src, dst = root / "solutions" / lesson.filename, root / "notebooks" / lesson.filename
        if not src.exists():
            if dst.exists():
                problems.append(f"notebooks/{lesson.filename} has no solutions/ source; delete it")
            continue
        try:
            nb = _read(src)
        except ValueError as err:
            problems.append(str(err))
            continue
        where = f"solutions/{lesson.filename}"
        if _has_outputs(nb):
            problems.append(f"{where} is committed with outputs: run `python -m vdlearn build`")
        code = [c for c in nb.cells if c.cell_type == "code"]
        if not code or SETUP_TAG not in _tags(code[0]):
            problems.append(f"{where}: the first code cell must be the setup cell (tag 'setup')")
        elif code[0].source != setup_cell_source():
            problems.append(f"{where}: the setup cell is not the canonical one: run `python -m vdlearn build`")
        for k, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if BEGIN in cell.source and EXERCISE_TAG not in _tags(cell):
                problems.append(f"{where}, cell {k}: an answer cell ('{BEGIN}') must be tagged '{EXERCISE_TAG}' "
                                "(nbgrader metadata and the grader find exercises by it)")
            if re.search(r"^\s*checks\.check_\w+\(", cell.source, re.M) and CHECK_TAG not in _tags(cell):
                problems.append(f"{where}, cell {k}: a cell that runs checks.check_... must be tagged "
                                f"'{CHECK_TAG}' (in the student copy it fails until the exercise is written)")
        params = [c for c in code if PARAMETERS_TAG in _tags(c)]
        if len(params) != 1:
            problems.append(f"{where}: needs exactly one papermill 'parameters' cell, found {len(params)}")
        elif not re.search(r'^PRESET\s*=\s*"auto"', params[0].source, re.M):
            problems.append(f'{where}: the parameters cell must set PRESET = "auto"')
        try:
            expected = _dumps(student_version(nb, lesson))
        except ValueError as err:
            problems.append(str(err))
            continue
        if not dst.exists():
            problems.append(f"notebooks/{lesson.filename} is missing: run `python -m vdlearn build`")
        elif dst.read_text(encoding="utf-8") != expected:
            problems.append(f"notebooks/{lesson.filename} is stale (or edited by hand): "
                            "run `python -m vdlearn build`")
        if _dumps(normalise_solution(nb, lesson)) != src.read_text(encoding="utf-8"):
            if not any(p.startswith(where) for p in problems):
                problems.append(f"{where} is not normalised (metadata or tags): run `python -m vdlearn build`")
    return problems
