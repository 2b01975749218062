"""Grade a submission: run the lesson with the student's answers, cell by cell, and read each check.

**How a pass is decided.** The grader reads results from outside the student's kernel; nothing the
student's code can write into is trusted (the old results registry ``vdlearn.checks.RESULTS`` is not
read at all). An exercise passes when its check cell, the course's own source, run right after
the course's package ``vdlearn`` is imported afresh from disk (the lesson's own modules are put
back after the check) and the libraries the checks use (``torch``, ``torch.Tensor``,
``torch.nn.functional``, ``torch.linalg``, ``numpy``, ``math``, ``builtins``) are restored to what
they were before any answer ran,

1. finished without an error (IPython shows ``SystemExit`` as an error, so an answer that exits
   does not pass), and
2. printed, itself, the line ``✅ <exercise name>: correct`` that the checks print on success.

An answer that replaces ``RESULTS``, rebinds or monkeypatches the check module or the package
function a check compares with (``vdlearn.data.shapes.bounce = ...``), rewrites ``torch.equal`` in its
cell, prints a fake ``✅`` or raises ``SystemExit`` therefore cannot pass an exercise whose answer is
wrong. What an in-process check cannot stop: code that rewrites a library *while the check runs*
(inside the answer's function), or one the grader does not restore, or the grader's own helpers,
or IPython's input transformers: it runs in the same interpreter as the check and could fool it.
Such answers reach for names no honest answer needs; the report flags them ("review: ...", e.g.
"changing a library") for a teacher to read, without changing the score.

**Time limits.** Every cell has ``timeout`` seconds (an interrupt first, then the kernel is killed
if the cell ignores it) and the notebook ``total_timeout`` seconds. An answer that runs too long or
kills the kernel (``os._exit``, ``exit()``, a crash in native code) scores 0 for its exercise; the
kernel is restarted, the cells that ran before are replayed, and grading goes on with the next
exercise. Exercises the total limit leaves unrun score 0 with that reason.

Score: passed exercises / exercises of the lesson (each check cell's exercises count one each).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .lesson import Plan, Step, identify_lesson, lesson_notebook, plan_grading, read_submission
from .sandbox import CellRun, Kernel, Sandbox, resolve_isolation

__all__ = ["DEFAULT_TIMEOUT", "DEFAULT_TOTAL_TIMEOUT", "ExerciseResult", "Grade", "grade_notebook",
           "format_report"]

DEFAULT_TIMEOUT = 120.0  # seconds per cell: the slowest smoke cell takes ~20 s on a busy laptop
DEFAULT_TOTAL_TIMEOUT = 900.0  # seconds per notebook: smoke lessons run in one to two minutes

#: Run once, before any answer: remember the namespaces of the libraries the checks use, and define
#: ``_vdlearn_grader_restore()``, which puts back every attribute an answer rebound (and, on a class,
#: removes what it added).
_SNAPSHOT = """
def _vdlearn_grader_snapshot():
    import builtins, math
    import numpy, torch, torch.linalg, torch.nn.functional
    missing = object()
    saved = [(space, dict(vars(space)), isinstance(space, type))
             for space in (builtins, math, numpy, torch, torch.linalg, torch.nn.functional, torch.Tensor)]

    def restore():
        for space, attributes, is_class in saved:
            now = dict(vars(space))
            for name, value in attributes.items():
                if now.get(name, missing) is not value:
                    setattr(space, name, value)
            if is_class:
                for name in now.keys() - attributes.keys():
                    delattr(space, name)
    return restore


_vdlearn_grader_restore = _vdlearn_grader_snapshot()
del _vdlearn_grader_snapshot
"""

#: Run before every check cell: restore the libraries, and set aside every ``vdlearn`` module (which
#: an answer may have patched or replaced), so that the lesson's import lines that follow load the
#: check code, and the package functions it compares with, afresh from disk.
_FRESH_CHECKS = (
    "_vdlearn_grader_restore()\n"
    "import sys as _vdlearn_sys\n"
    "_vdlearn_grader_lesson_modules = {_n: _vdlearn_sys.modules.pop(_n) for _n in list(_vdlearn_sys.modules)"
    " if _n == 'vdlearn' or _n.startswith('vdlearn.')}\n"
    "del _vdlearn_sys\n"
)

#: Run after every check cell: put the lesson's own ``vdlearn`` modules back, so that the cells after
#: the check use the same classes as the objects made before it.
_AFTER_CHECK = (
    "import sys as _vdlearn_sys\n"
    "for _vdlearn_n in [_n for _n in _vdlearn_sys.modules if _n == 'vdlearn' or _n.startswith('vdlearn.')]:\n"
    "    del _vdlearn_sys.modules[_vdlearn_n]\n"
    "_vdlearn_sys.modules.update(_vdlearn_grader_lesson_modules)\n"
    "del _vdlearn_sys, _vdlearn_n, _vdlearn_grader_lesson_modules\n"
)


@dataclass
class ExerciseResult:
    """One exercise's outcome; ``review`` lists what in the answer deserves a teacher's look."""

    name: str
    passed: bool
    message: str
    review: list[str] = field(default_factory=list)


@dataclass
class Grade:
    """The grade of one submission. Iterating over it gives its :class:`ExerciseResult` in order."""

    submission: str
    lesson: str | None
    results: list[ExerciseResult] = field(default_factory=list)
    error: str | None = None  # set when the submission could not be graded at all
    isolation: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def total(self) -> int:
        return len(self.results)

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index):
        return self.results[index]

    def as_dict(self) -> dict:
        return {"submission": self.submission, "lesson": self.lesson, "preset": "smoke",
                "passed": self.passed, "total": self.total, "error": self.error,
                "isolation": self.isolation, "seconds": round(self.seconds, 1), "notes": self.notes,
                "results": [asdict(r) for r in self.results]}


def _shorten(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_message(run: CellRun) -> str:
    ename, evalue = run.error or ("", "")
    if ename == "NotImplementedError":
        return f"not attempted yet ({_shorten(evalue)})"
    if ename == "ExerciseError":
        return _shorten(evalue)
    return _shorten(f"{ename}: {evalue}") if ename else "the check failed without saying why"


class _Grading:
    """The state of one submission's run: outcomes so far, what to replay after a restart."""

    def __init__(self, plan: Plan, kernel: Kernel, timeout: float, total_timeout: float) -> None:
        self.plan, self.kernel = plan, kernel
        self.timeout, self.total = timeout, total_timeout
        self.start = time.monotonic()
        self.outcome: dict[int, tuple[bool, str]] = {}  # exercise -> (passed, message)
        self.answer_error: dict[int, str] = {}
        self.done: list[Step] = []  # steps to replay after a restart, in order
        self.notes: list[str] = []
        self.lost = False  # the kernel could not be restored: the rest is not graded

    def left(self) -> float:
        return self.total - (time.monotonic() - self.start)

    def limit(self, step: Step | None = None) -> tuple[float, str]:
        """This cell's time limit and how to explain it when it runs out."""
        if step is not None and step.kind == "warm-up":  # the grader's imports, before any answer ran
            return max(min(self.left(), max(self.timeout, Kernel.STARTUP_TIMEOUT)), 0.0), "importing took too long"
        if self.left() < self.timeout:
            return max(self.left(), 0.0), f"the notebook's total time limit ({self.total:g} s) ran out"
        return self.timeout, f"it ran longer than the per-cell limit of {self.timeout:g} s (an endless loop?)"

    def fail(self, step: Step, message: str) -> None:
        if step.exercise is not None and step.exercise not in self.outcome:
            self.outcome[step.exercise] = (False, message)

    def execute(self, step: Step, code: str) -> CellRun | None:
        """Run one step; a death or a timeout fails its exercise and restores a working kernel."""
        limit, why = self.limit(step)
        if limit <= 0:
            return None
        run = self.run_step(step, code, limit)
        if run.status == "dead" and run.seconds == 0.0 and self.done:
            # the kernel died after the previous cell had replied (exit(), quit(), a delayed os._exit)
            culprit = self.done.pop()
            self.fail(culprit, "the kernel exited right after this answer ran (exit(), quit() or "
                               "os._exit?); it was restarted")
            if not self.restore():
                return None
            if step.exercise is not None and step.exercise in self.outcome:
                return None
            run = self.run_step(step, code, self.limit(step)[0])
        if run.status == "timeout":
            self.fail(step, f"stopped: {why}")
            if not self.kernel.alive() and not self.restore():
                return None
            return run
        if run.status == "exit":  # exit() or quit(): the kernel stops a moment after this reply
            what = "your answer cell" if step.kind == "answer" else "your answer, run by the check,"
            self.fail(step, f"{what} called exit() or quit(), which ends the kernel; it was restarted "
                            "without that cell")
            if step.kind == "context":
                self.notes.append(f"a lesson cell called exit() ({_shorten(step.source, 60)!r}); it was skipped")
            if not self.restore():
                return None
            return run
        if run.status == "dead":
            what = "your answer cell" if step.kind == "answer" else "the check of your answer"
            self.fail(step, f"the kernel died while running {what} (os._exit, a crash in native code, "
                            "or too much memory?); it was restarted")
            if step.kind == "context":
                self.notes.append(f"the kernel died in a lesson cell ({_shorten(step.source, 60)!r}); "
                                  "it was restarted and the cell skipped")
            if not self.restore():
                return None
            return run
        self.done.append(step)
        return run

    def restore(self) -> bool:
        """A fresh kernel with the cells that ran before replayed; False if that cannot be done."""
        try:
            self.kernel.start()
        except RuntimeError as err:
            self.notes.append(f"the kernel could not be restarted: {err}")
            self.lost = True
            return False
        for step in self.done:
            limit, _ = self.limit(step)
            code = self.check_code(step) if step.kind == "check" else step.source
            if limit <= 0 or self.run_step(step, code, limit).status in ("dead", "timeout", "exit"):
                self.notes.append("the lesson could not be replayed after a restart; the exercises "
                                  "after this point were not graded")
                self.lost = True
                return False
        return True

    def run_step(self, step: Step, code: str, limit: float):
        """Run a step's code; after a check, put the lesson's own modules back (if the kernel lives)."""
        run = self.kernel.run(code, limit)
        if step.kind == "check" and self.kernel.alive():
            self.kernel.run(_AFTER_CHECK, max(min(self.left(), 30.0), 5.0))
        return run

    def check_code(self, step: Step) -> str:
        return f"{_FRESH_CHECKS}{self.plan.check_imports}\n{step.source}"

    def run_all(self) -> None:
        # Import the checks (and with them torch and the course) before any answer runs: the per-cell
        # limits then time the student's code, not the first import of a large library.
        warm_up = Step("warm-up", f"import vdlearn.checks\n{self.plan.check_imports}\n{_SNAPSHOT}")
        for step in [warm_up, *self.plan.steps]:
            ex = step.exercise
            if ex is not None and ex in self.outcome:
                continue  # this exercise is decided (its answer hung or crashed): skip the rest of it
            if step.kind == "answer" and not step.found:
                self.fail(step, f"the answer cell is missing from the submission (no cell defines "
                                f"'{step.wanted}'); the lesson's empty exercise cell was run instead")
            code = self.check_code(step) if step.kind == "check" else step.source
            run = self.execute(step, code)
            if self.lost or self.left() <= 0:
                break
            if run is None:
                continue
            if step.kind == "answer" and run.status == "error" and ex is not None:
                self.answer_error[ex] = _shorten(f"{run.error[0]}: {run.error[1]}" if run.error else "an error")
            if step.kind == "check" and ex is not None and ex not in self.outcome:
                self.outcome[ex] = self.judge(ex, run)

    def judge(self, ex: int, run: CellRun) -> tuple[bool, str]:
        names = self.plan.exercises[ex].names
        if run.status == "ok":
            printed = {line.strip() for line in run.stdout.splitlines()}
            if all(f"✅ {name}: correct" in printed for name in names):
                return True, "correct"
            return False, "the check finished without confirming the answer (it printed no ✅ line)"
        message = _check_message(run)
        if ex in self.answer_error:
            message = f"your answer cell raised {self.answer_error[ex]}; then the check: {message}"
        return False, message

    def results(self) -> list[ExerciseResult]:
        out = []
        for k, exercise in enumerate(self.plan.exercises):
            passed, message = self.outcome.get(k, (False, "not graded: the notebook's total time limit "
                                                          f"({self.total:g} s) ran out or the kernel was lost"))
            out += [ExerciseResult(name, passed, message, list(exercise.review)) for name in exercise.names]
        return out


def grade_notebook(path: str | Path, *, lesson: str | int | None = None,
                   timeout: float = DEFAULT_TIMEOUT, total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
                   isolation: str = "auto", solutions: str | Path | None = None) -> Grade:
    """Grade one submitted notebook in the smoke preset, in its own sandbox; see the module docstring.

    ``lesson`` forces the lesson (number or name) instead of reading it from the notebook;
    ``solutions`` is the folder of the course's lessons (default: this checkout's ``solutions/``);
    ``isolation`` is ``"auto"``, ``"namespace"`` or ``"none"`` (see :mod:`.sandbox`).
    Raises ``FileNotFoundError`` or ``ValueError`` (:class:`SubmissionError`) for a file that cannot
    be graded at all.
    """
    if timeout <= 0 or total_timeout <= 0:
        raise ValueError(f"time limits must be positive, got timeout={timeout}, total_timeout={total_timeout}")
    began = time.monotonic()
    submission = read_submission(path)
    entry = identify_lesson(submission, path, lesson)
    plan = plan_grading(submission, lesson_notebook(entry, solutions), entry)
    mode = resolve_isolation(isolation)
    sandbox = Sandbox()
    try:
        kernel = Kernel(sandbox, mode)
        try:
            grading = _Grading(plan, kernel, float(timeout), float(total_timeout))
            grading.run_all()
        finally:
            kernel.stop()
    finally:
        sandbox.close()
    return Grade(str(path), entry.stem, grading.results(), None, mode, time.monotonic() - began,
                 plan.notes + grading.notes)


def format_report(grade: Grade) -> str:
    """A teacher-readable report: one line per exercise, then the score."""
    if grade.error:
        return f"Grading {grade.submission}: could not be graded: {grade.error}"
    width = max((len(r.name) for r in grade.results), default=0)
    lines = [f"Grading {grade.submission} as lesson {grade.lesson} (smoke preset, isolation: {grade.isolation})"]
    for r in grade.results:
        lines.append(f"  {'PASS' if r.passed else 'FAIL'}  {r.name:<{width}}  {r.message}")
        if r.review:
            lines.append(f"        {'':<{width}}  review: the answer uses {', '.join(r.review)}")
    lines += [f"  note: {note}" for note in grade.notes]
    lines.append(f"Score: {grade.passed}/{grade.total}")
    return "\n".join(lines)
