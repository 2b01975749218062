"""Which lesson a submission is, and the notebook that is graded.

The graded notebook is built from the **course's** lesson, never from the submission: the student
notebook that ``python -m vdlearn build`` makes from ``solutions/NN_name.ipynb``, in which only the
answer cells (tag ``exercise``) are replaced by the student's. A check cell the student deleted or
edited is therefore the course's check again, and an answer cell the student deleted scores 0.

An answer cell of the lesson is found in the submission by, in this order:

1. its cell id (Jupyter keeps ids when a notebook is edited and saved);
2. its nbgrader id (``metadata.nbgrader.grade_id``, e.g. ``00_video_as_data-exercise-2``);
3. the function it asks for: a code cell of the submission that defines ``def bounce(`` (cells
   tagged ``exercise`` first);
4. its position: the k-th cell tagged ``exercise``, when the submission has as many as the lesson.

Each cell of the submission answers at most one exercise.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..lessons import LESSONS, Lesson, find_lesson, repo_root
from ..notebooks import CHECK_TAG, EXERCISE_TAG, PARAMETERS_TAG, _tags, student_version

__all__ = ["SubmissionError", "Step", "Exercise", "Plan", "read_submission", "identify_lesson",
           "lesson_notebook", "exercise_names", "plan_grading", "review_flags"]

#: The lesson checks, read as text (the grader never imports them: it stays below vdlearn.checks).
CHECKS_DIR = Path(__file__).resolve().parents[2] / "checks"

#: What in an answer cell deserves a teacher's look: it reaches for the grading machinery or the
#: machine rather than computing an answer. Flagged for review only; it changes no score.
_REVIEW = {
    "the check module": r"vdlearn\.checks|\bchecks\s*\.|\bRESULTS\b",
    "sys.modules": r"sys\s*\.\s*modules",
    "the IPython kernel": r"get_ipython|\bIPython\b|ipykernel",
    "builtins": r"\bbuiltins\b|__builtins__",
    "imports by name": r"importlib|__import__",
    "exiting the kernel": r"os\s*\.\s*_exit|SystemExit|sys\s*\.\s*exit|\bexit\s*\(|\bquit\s*\(",
    "other processes": r"subprocess|os\s*\.\s*system|os\s*\.\s*(kill|fork|exec)|\bpty\b",
    "deleting files": r"rmtree|os\s*\.\s*(remove|unlink|rmdir)|\.unlink\s*\(",
    "the network": r"\bsocket\b|urllib|requests\.|http\.client",
    "native code": r"\bctypes\b|\bcffi\b",
    "the grader's own names": r"_vdlearn",
}

#: Names that stand for modules in the lessons' answers (the lessons import them so), whatever the answer imports.
_MODULE_NAMES = {"torch", "np", "numpy", "math", "F", "nn", "vdlearn", "builtins", "sys", "checks", "scipy"}


class SubmissionError(ValueError):
    """A file that cannot be graded: not a notebook, or no lesson of the course."""


@dataclass
class Step:
    """One code cell of the graded notebook, in order."""

    kind: str  # "context" (the course's), "answer" (the student's), "check" (the course's)
    source: str
    exercise: int | None = None  # index into Plan.exercises, for answers and checks
    wanted: str = ""  # answers: the function the lesson asks for
    found: bool = True  # answers: False when the submission has no cell for it (the stub runs)


@dataclass
class Exercise:
    """One check cell of the lesson and the answer cells above it."""

    names: list[str]  # e.g. ["00.bounce"]: the exercise names the check prints on success
    answers: list[str] = field(default_factory=list)  # the functions asked for, e.g. ["bounce"]
    missing: list[str] = field(default_factory=list)  # answers not found in the submission
    review: list[str] = field(default_factory=list)  # reasons for a teacher to read the answer


@dataclass
class Plan:
    """What to execute for one submission, and how its exercises are named."""

    lesson: Lesson
    steps: list[Step]
    exercises: list[Exercise]
    check_imports: str  # the lesson's ``from vdlearn.checks import lessonNN as checks`` lines
    notes: list[str] = field(default_factory=list)


def read_submission(path: str | Path) -> nbformat.NotebookNode:
    """The submitted notebook, or a clear error when the file is missing or not a notebook."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at '{path}'")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - not JSON, not a notebook, an unknown nbformat
        raise SubmissionError(
            f"'{path}' is not a Jupyter notebook ({type(err).__name__}: {str(err)[:200]}); "
            "expected the .ipynb file the student saved from Jupyter or Colab") from None
    if not isinstance(nb.get("cells"), list) or not isinstance(nb.get("metadata"), dict):
        raise SubmissionError(f"'{path}' is not a Jupyter notebook: it has no list of cells")
    return nb


def _lesson_of(text: str) -> Lesson | None:
    """The lesson whose stem (``00_video_as_data``) appears in ``text``, if exactly one does."""
    found = {lesson for lesson in LESSONS if lesson.stem in text}
    return found.pop() if len(found) == 1 else None


def identify_lesson(nb: nbformat.NotebookNode, path: str | Path, lesson: str | int | None = None) -> Lesson:
    """The lesson a submission answers: ``lesson`` if given, else what the notebook says.

    Clues, strongest first: the metadata the course writes into every student notebook
    (``metadata.vdlearn.generated_from``), the nbgrader ids of its cells, then the file name
    (``alice_00_video_as_data.ipynb`` is lesson 00).
    """
    if lesson is not None:
        try:
            return find_lesson(lesson)
        except KeyError as err:
            raise SubmissionError(str(err.args[0])) from None
    seen = []
    origin = nb.metadata.get("vdlearn", {})
    origin = origin.get("generated_from") if isinstance(origin, dict) else None
    if isinstance(origin, str):
        seen.append(f"its metadata says it comes from '{origin}'")
        if (found := _lesson_of(origin)) is not None:
            return found
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        if isinstance(grade_id, str) and (found := _lesson_of(grade_id)) is not None:
            return found
    if (found := _lesson_of(Path(path).name)) is not None:
        return found
    seen.append(f"its file name '{Path(path).name}' contains no lesson name")
    stems = ", ".join(lesson.stem for lesson in LESSONS)
    raise SubmissionError(
        f"'{path}' is not a course notebook of a known lesson: {'; '.join(seen)}. The lessons are {stems}. "
        "Keep the lesson's name in the file name (e.g. alice_00_video_as_data.ipynb) or say which "
        "lesson it is with --lesson N.")


def lesson_notebook(lesson: Lesson, solutions: str | Path | None = None) -> nbformat.NotebookNode:
    """The course's student notebook of ``lesson``, made from ``solutions/`` (default: this checkout's)."""
    folder = Path(solutions) if solutions is not None else repo_root() / "solutions"
    src = folder / lesson.filename
    if not src.is_file():
        raise SubmissionError(f"lesson {lesson.stem} cannot be graded: '{src}' does not exist "
                              "(the lesson is not written yet, or the course folder is elsewhere)")
    return student_version(nbformat.read(src, as_version=4), lesson)


def exercise_names(lesson: Lesson) -> dict[str, str]:
    """``{check function: exercise name}`` of a lesson, read from ``vdlearn/checks/lessonNN.py``.

    E.g. ``{"check_bounce": "00.bounce"}``, from ``@exercise("00.bounce") def check_bounce(...)``.
    """
    path = CHECKS_DIR / f"lesson{lesson.number:02d}.py"
    if not path.is_file():
        return {}
    names = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                if (isinstance(deco, ast.Call) and getattr(deco.func, "id", None) == "exercise"
                        and deco.args and isinstance(deco.args[0], ast.Constant)):
                    names[node.name] = str(deco.args[0].value)
    return names


def _defined(source: str) -> list[str]:
    """Top-level functions and classes a cell defines (by regular expression if it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return re.findall(r"^(?:def|class)\s+(\w+)", source, re.M)
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def _checks_called(source: str, known: dict[str, str], lesson: Lesson, k: int) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = ast.Module(body=[], type_ignores=[])
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func.startswith("check_"):
                name = known.get(func, f"{lesson.number:02d}.{func.removeprefix('check_')}")
                if name not in names:
                    names.append(name)
    return names or [f"{lesson.number:02d}.check_{k}"]


def _check_imports(sources: list[str]) -> str:
    lines = []
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            module = node.module if isinstance(node, ast.ImportFrom) else (
                node.names[0].name if isinstance(node, ast.Import) else "")
            if (module or "").startswith("vdlearn.checks") and ast.unparse(node) not in lines:
                lines.append(ast.unparse(node))
    return "\n".join(lines)


def _root(node: ast.AST) -> str:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def changes_a_library(source: str) -> bool:
    """Whether ``source`` assigns to (or deletes) an attribute of a module, e.g. ``torch.equal = ...``,
    ``torch.Tensor.__eq__ = ...``, ``vdlearn.data.shapes.bounce = ...``, or calls ``setattr`` on one."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        names = "|".join(sorted(_MODULE_NAMES))
        return bool(re.search(rf"\b({names})(\s*\.\s*\w+)+\s*([-+*/]?=(?!=))|\b(setattr|delattr)\s*\(", source))
    modules = set(_MODULE_NAMES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules |= {alias.asname or alias.name for alias in node.names}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("setattr", "delattr") and node.args:
            targets = [ast.Attribute(value=node.args[0], attr="?")]
        else:
            continue
        for target in targets:
            for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if isinstance(t, ast.Attribute) and _root(t) in modules:
                    return True
    return False


def review_flags(source: str) -> list[str]:
    """Why a teacher may want to read this answer: what it reaches for besides computing."""
    flags = [why for why, pattern in _REVIEW.items() if re.search(pattern, source)]
    return flags + (["changing a library"] if changes_a_library(source) else [])


def _match_answers(course: list, submitted: list) -> list[int | None]:
    """For each answer cell of the lesson, the index of the submission's code cell that answers it."""
    code = [i for i, c in enumerate(submitted) if c.get("cell_type") == "code"]
    tagged = [i for i in code if EXERCISE_TAG in _tags(submitted[i])]
    used: set[int] = set()
    found: list[int | None] = [None] * len(course)

    def take(k: int, candidates) -> None:
        if found[k] is None:
            for i in candidates:
                if i not in used:
                    found[k] = i
                    used.add(i)
                    return

    for k, cell in enumerate(course):  # 1. cell id
        take(k, [i for i in code if cell.get("id") and submitted[i].get("id") == cell.get("id")])
    for k, cell in enumerate(course):  # 2. nbgrader id
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        take(k, [i for i in code if gid and submitted[i].get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid])
    for k, cell in enumerate(course):  # 3. the function asked for
        wanted = _defined(cell.source)[:1]
        if wanted:
            cands = [i for i in code if wanted[0] in _defined(str(submitted[i].get("source", "")))]
            take(k, sorted(cands, key=lambda i: i not in tagged))
    if len(tagged) == len(course):  # 4. position among the exercise cells
        for k in range(len(course)):
            take(k, [tagged[k]])
    return found


def plan_grading(submission: nbformat.NotebookNode, course: nbformat.NotebookNode, lesson: Lesson) -> Plan:
    """The graded notebook: the lesson's code cells with the student's answers in the exercise cells."""
    known = exercise_names(lesson)
    cells = [c for c in course.cells if c.cell_type == "code"]
    answer_cells = [c for c in cells if EXERCISE_TAG in _tags(c)]
    found = _match_answers(answer_cells, submission.cells)
    answer_of = {id(c): f for c, f in zip(answer_cells, found)}
    exercises: list[Exercise] = []
    steps: list[Step] = []
    pending: list[Step] = []  # answers waiting for their check cell
    for cell in cells:
        tags = _tags(cell)
        if EXERCISE_TAG in tags:
            index = answer_of[id(cell)]
            wanted = (_defined(cell.source) or ["the answer"])[0]
            step = Step("answer", cell.source if index is None else str(submission.cells[index].source),
                        wanted=wanted, found=index is not None)
            pending.append(step)
            steps.append(step)
        elif CHECK_TAG in tags:
            ex = Exercise(_checks_called(cell.source, known, lesson, len(exercises) + 1))
            for step in pending:
                step.exercise = len(exercises)
                ex.answers.append(step.wanted)
                if not step.found:
                    ex.missing.append(step.wanted)
                else:
                    ex.review += [r for r in review_flags(step.source) if r not in ex.review]
            pending = []
            exercises.append(ex)
            steps.append(Step("check", cell.source, len(exercises) - 1))
        else:
            steps.append(Step("context", cell.source))
            if PARAMETERS_TAG in tags:  # as papermill does: the grader's values after the defaults
                steps.append(Step("context", 'PRESET = "smoke"'))
    if not exercises:
        raise SubmissionError(f"lesson {lesson.stem} has no exercise checks (code cells tagged "
                              f"'{CHECK_TAG}'): there is nothing to grade")
    imports = _check_imports([s.source for s in steps if s.kind == "check"])
    notes = []
    unused = [i for i, c in enumerate(submission.cells) if c.get("cell_type") == "code"
              and EXERCISE_TAG in _tags(c) and i not in set(found)]
    if unused:
        notes.append(f"cells {unused} of the submission are tagged '{EXERCISE_TAG}' but answer no "
                     "exercise of the lesson; they were not run")
    return Plan(lesson, steps, exercises, imports, notes)
