"""``python -m vdlearn grade NOTEBOOK``: score a student's notebook exercise by exercise.

The notebook is executed in the ``smoke`` preset (seconds) with errors allowed. After each check
cell (tag ``check``) a small cell reports what the checks in it recorded in
:data:`vdlearn.checks.RESULTS`; a check cell that crashed before any check ran (say, the
exercise cell above it has a syntax error) counts as failed, with the error it raised.
The score is the number of passed checks over the number of checks.
"""
from __future__ import annotations

import copy
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .notebooks import CHECK_TAG, PARAMETERS_TAG, _tags

__all__ = ["ExerciseResult", "grade_notebook", "format_report"]

_MARK = "VDLEARN_GRADE "


@dataclass
class ExerciseResult:
    """One check's outcome."""

    name: str
    passed: bool
    message: str


def _report_cell(index: int) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(
        "import json as _json, vdlearn.checks as _checks\n"
        f"print({_MARK!r} + _json.dumps({{'cell': {index}, 'results': _checks.RESULTS}}))\n"
        "_checks.RESULTS.clear()"
    )


def _error_of(cell) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out['ename']}: {out['evalue']}"
    return None


def grade_notebook(path: str | Path, timeout: int = 600) -> list[ExerciseResult]:
    """Execute a course notebook in the smoke preset and return one result per check."""
    from nbclient import NotebookClient

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at '{path}'")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - not JSON, not a notebook
        raise ValueError(f"'{path}' is not a Jupyter notebook: {err}") from err
    checks = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and CHECK_TAG in _tags(c)]
    if not checks:
        raise ValueError(
            f"'{path}' is not a course notebook: it has no exercise checks (code cells tagged "
            f"'{CHECK_TAG}'). Grade a lesson from notebooks/ or solutions/, as a student handed it in."
        )
    run = copy.deepcopy(nb)
    cells = []
    for i, cell in enumerate(run.cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
        if cell.cell_type == "code" and PARAMETERS_TAG in _tags(cell):
            cells.append(nbformat.v4.new_code_cell('PRESET = "smoke"'))
        if i in checks:
            cells.append(_report_cell(i))
    run.cells = cells
    with tempfile.TemporaryDirectory() as workdir:
        client = NotebookClient(run, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": workdir}})
        client.execute()

    reported: dict[int, dict] = {}
    for cell in run.cells:
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            for line in text.splitlines():
                if line.startswith(_MARK):
                    data = json.loads(line[len(_MARK):])
                    reported[data["cell"]] = data["results"]
    results: list[ExerciseResult] = []
    executed = [c for c in run.cells if c.cell_type == "code" and CHECK_TAG in _tags(c)]
    for n, (index, cell) in enumerate(zip(checks, executed), start=1):
        found = reported.get(index)
        if found:
            results += [ExerciseResult(name, r["passed"], r["message"]) for name, r in found.items()]
        else:
            results.append(ExerciseResult(f"check cell {n}", False,
                                          _error_of(cell) or "the check did not run"))
    return results


def format_report(path: str | Path, results: list[ExerciseResult]) -> str:
    """A teacher-readable report: one line per check, then the score."""
    width = max(len(r.name) for r in results)
    lines = [f"Grading {path} (smoke preset)"]
    for r in results:
        lines.append(f"  {'PASS' if r.passed else 'FAIL'}  {r.name:<{width}}  {r.message}")
    passed = sum(r.passed for r in results)
    lines.append(f"Score: {passed}/{len(results)}")
    return "\n".join(lines)
