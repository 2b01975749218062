"""``python -m vdlearn grade``: score students' notebooks, exercise by exercise, in a sandbox.

* :mod:`.lesson` - which lesson a submission is, and the graded notebook: the course's lesson with
  only the student's answer cells taken from the submission;
* :mod:`.sandbox` - a throwaway folder, a minimal environment, read-only file system and no network
  through Linux namespaces where available (and the container command lines where not);
* :mod:`.grader` - running cell by cell with time limits, reading each check from outside the kernel;
* :mod:`.gradebook` - a folder of submissions into one CSV or JSON gradebook.
"""
from .gradebook import find_submissions, grade_many, write_gradebook
from .grader import DEFAULT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT, ExerciseResult, Grade, format_report, grade_notebook
from .lesson import SubmissionError
from .sandbox import ISOLATIONS

__all__ = ["DEFAULT_TIMEOUT", "DEFAULT_TOTAL_TIMEOUT", "ISOLATIONS", "ExerciseResult", "Grade",
           "SubmissionError", "find_submissions", "format_report", "grade_many", "grade_notebook",
           "write_gradebook"]
