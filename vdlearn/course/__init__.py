"""Course tooling: the lesson registry, notebook build and check, running lessons, doctor."""
from .lessons import LESSONS, Lesson, find_lesson, repo_root
from .notebooks import REPO_URL, build, check, colab_url, setup_cell_source, student_version

__all__ = ["LESSONS", "Lesson", "find_lesson", "repo_root", "REPO_URL", "build", "check",
           "colab_url", "setup_cell_source", "student_version"]
