"""The course's command line: ``python -m vdlearn {lessons,build,check,run,grade,doctor}``."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vdlearn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lessons", help="list the lessons in order")
    sub.add_parser("build", help="generate notebooks/ from solutions/ (and normalise solutions/)")
    sub.add_parser("check", help="fail, saying why, if notebooks/ is stale or a lesson breaks a convention")
    run = sub.add_parser("run", help="execute a lesson notebook with papermill")
    run.add_argument("lesson", help="number or name, e.g. 0 or video_as_data")
    run.add_argument("--preset", default="smoke", choices=["smoke", "cpu", "gpu"])
    run.add_argument("--output-dir", default=None, help="where the executed notebook goes")
    run.add_argument("--student", action="store_true", help="run the student notebook instead")
    grade = sub.add_parser("grade", help="score a student's notebook exercise by exercise")
    grade.add_argument("notebook", help="path to the student's .ipynb")
    grade.add_argument("--json", action="store_true", help="print the results as JSON")
    sub.add_parser("doctor", help="what this machine has, and what is missing")
    args = parser.parse_args(argv)

    if args.command == "lessons":
        from .course import LESSONS, repo_root

        try:
            root = repo_root()
        except FileNotFoundError:
            root = None
        for lesson in LESSONS:
            here = "" if root is None or (root / "solutions" / lesson.filename).exists() else "  (not written yet)"
            print(f"{lesson.number:02d}  {lesson.title:<45} {lesson.teaches}{here}")
        return 0
    if args.command == "build":
        from .course import build

        changed = build()
        for path in changed:
            print(f"wrote {path}")
        print(f"{len(changed)} file(s) changed" if changed else "notebooks/ is up to date")
        return 0
    if args.command == "check":
        from .course import check

        problems = check()
        for problem in problems:
            print(f"- {problem}")
        print(f"{len(problems)} problem(s)" if problems else "All lessons pass the course checks.")
        return 1 if problems else 0
    if args.command == "run":
        from .course.execute import run_lesson

        run_lesson(args.lesson, preset=args.preset, output_dir=args.output_dir, student=args.student)
        return 0
    if args.command == "grade":
        import json
        from dataclasses import asdict

        from .course.grade import format_report, grade_notebook

        try:
            results = grade_notebook(args.notebook)
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps({"notebook": args.notebook, "passed": sum(r.passed for r in results),
                              "total": len(results), "results": [asdict(r) for r in results]}, indent=2))
        else:
            print(format_report(args.notebook, results))
        return 0
    if args.command == "doctor":
        from .course.doctor import doctor

        return doctor()
    return 2


if __name__ == "__main__":
    sys.exit(main())
