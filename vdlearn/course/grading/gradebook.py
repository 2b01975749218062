"""Many submissions into one gradebook: one row per submission, one column per exercise, a total.

A submission that cannot be graded (not JSON, not a notebook, no known lesson) gets a row with the
reason in ``error`` and grading goes on with the next one.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable

from .grader import DEFAULT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT, Grade, grade_notebook

__all__ = ["find_submissions", "grade_many", "write_gradebook"]


def find_submissions(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders become their ``*.ipynb`` files (recursively, without checkpoints)."""
    found: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            inside = sorted(p for p in item.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            if not inside:
                raise FileNotFoundError(f"no .ipynb files in the folder '{item}'")
            found += inside
        else:
            found.append(item)
    return found


def grade_many(paths: Iterable[str | Path], *, lesson: str | int | None = None,
               timeout: float = DEFAULT_TIMEOUT, total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
               isolation: str = "auto", solutions: str | Path | None = None,
               progress=None) -> list[Grade]:
    """Grade every submission, each in its own sandbox; ``progress(grade)`` is called after each."""
    grades = []
    for path in find_submissions(paths):
        try:
            grade = grade_notebook(path, lesson=lesson, timeout=timeout, total_timeout=total_timeout,
                                   isolation=isolation, solutions=solutions)
        except (FileNotFoundError, ValueError) as err:
            grade = Grade(str(path), None, error=str(err))
        except Exception as err:  # noqa: BLE001 - one broken submission must not stop the batch
            grade = Grade(str(path), None, error=f"the grader failed on it: {type(err).__name__}: {err}")
        grades.append(grade)
        if progress is not None:
            progress(grade)
    return grades


def _columns(grades: list[Grade]) -> list[str]:
    names: list[str] = []
    for grade in grades:
        names += [r.name for r in grade.results if r.name not in names]
    return names


def write_gradebook(grades: list[Grade], out: str | Path) -> Path:
    """Write ``out`` as CSV (``.csv``: 1/0 per exercise) or JSON (``.json``: with every message)."""
    out = Path(out)
    if out.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"the gradebook must be a .csv or .json file, got '{out}'")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".json":
        out.write_text(json.dumps({"preset": "smoke", "submissions": [g.as_dict() for g in grades]},
                                  indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return out
    names = _columns(grades)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", "lesson", *names, "passed", "total", "review", "error"])
        for g in grades:
            marks = {r.name: int(r.passed) for r in g.results}
            review = sorted({f"{r.name}: {', '.join(r.review)}" for r in g.results if r.review})
            writer.writerow([g.submission, g.lesson or "", *[marks.get(n, "") for n in names],
                             g.passed if not g.error else "", g.total if not g.error else "",
                             "; ".join(review), g.error or ""])
    return out
