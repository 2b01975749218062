"""The course's command line: ``python -m vdlearn {lessons,build,check,run,grade,pretrain,doctor}``."""
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
    run.add_argument("--dry-run", action="store_true",
                     help="the preset's configuration at its real sizes, with every training loop cut to 1 step "
                          "of 2 examples and every sample count to a handful, on the CPU: catches configuration "
                          "errors (a shape, a step that does not fit the GPU the preset is for) in a minute")
    grade = sub.add_parser(
        "grade", help="score students' notebooks exercise by exercise, in a sandbox",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grade submissions in the smoke preset: the lesson's own cells and checks, with only\n"
                    "the students' answer cells taken from each notebook; each submission in a fresh\n"
                    "folder, without network, with time limits.",
        epilog="Isolation: 'namespace' (Linux with user namespaces) runs each kernel without network,\n"
               "with every folder but its sandbox read-only; 'none' only changes the working folder,\n"
               "HOME and environment. For full isolation run the grader in a container, e.g.\n"
               "  docker run --rm --network none --read-only --tmpfs /tmp:rw,exec --memory 4g \\\n"
               "    -v \"$PWD:/course:ro\" -v \"$PWD/grades:/grades\" -w /course IMAGE \\\n"
               "    python -m vdlearn grade /course/submissions --out /grades/gradebook.csv --isolation none\n"
               "(docs/teaching.md has the details).")
    grade.add_argument("paths", nargs="+", metavar="NOTEBOOK_OR_FOLDER",
                       help="submitted .ipynb files, or folders of them")
    grade.add_argument("--out", default=None, help="write a gradebook: a .csv (1/0 per exercise) or .json file")
    grade.add_argument("--json", action="store_true", help="print the results as JSON instead of reports")
    grade.add_argument("--lesson", default=None, help="grade every submission as this lesson (number or name) "
                       "instead of reading the lesson from each notebook")
    grade.add_argument("--solutions", default=None, metavar="FOLDER",
                       help="the course's lesson notebooks to grade against (default: solutions/ of this checkout)")
    grade.add_argument("--timeout", type=float, default=None, help="seconds per cell (default 120)")
    grade.add_argument("--total-timeout", type=float, default=None,
                       help="seconds per notebook (default 900)")
    grade.add_argument("--isolation", default="auto", choices=["auto", "namespace", "none"],
                       help="how the kernel is confined (default: namespace where it works, else none)")
    pre = sub.add_parser(
        "pretrain", help="train a shipped model again from its recipe (resumable; --list shows the recipes)",
        description="Train a shipped model from the recipe kept in vdlearn.pretrained.recipes. The run's state\n"
                    "lives in WORKDIR/NAME (checkpoints every few hundred steps): run the same command again to\n"
                    "resume after any interruption. At the recipe's last step the model is saved in\n"
                    "data/checkpoints with its manifest entry (steps, hours, machine, metrics).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    pre.add_argument("name", nargs="?", help="the recipe, e.g. 07_causal_dit_shapes")
    pre.add_argument("--list", action="store_true", help="show the recipes and stop")
    pre.add_argument("--evaluate", action="store_true", help="score the run's latest checkpoint and add the "
                     "point to its learning curve, while it trains (run it in another terminal)")
    pre.add_argument("--until", type=int, default=None,
                     help="stop this sitting at this step (default: the recipe's last step)")
    pre.add_argument("--workdir", default=None, help="where runs keep their state (default "
                     "$VDLEARN_PRETRAIN_DIR or ~/.cache/vdlearn/pretrain)")
    pre.add_argument("--folder", default=None, help="where the finished model is shipped (default data/checkpoints)")
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

        run_lesson(args.lesson, preset=args.preset, output_dir=args.output_dir, student=args.student,
                   dry_run=args.dry_run)
        return 0
    if args.command == "grade":
        return _grade(args)
    if args.command == "pretrain":
        from .runtime import dry_run

        if dry_run():  # a dry run trains a step of 2 examples: nothing to ship
            print("error: VDLEARN_DRY_RUN is set, and a dry run trains nothing worth keeping; unset it to pretrain",
                  file=sys.stderr)
            return 2
        return _pretrain(args)
    if args.command == "doctor":
        from .course.doctor import doctor

        return doctor()
    return 2


def _pretrain(args: argparse.Namespace) -> int:
    """``--list``, or one sitting of a recipe's training (exit 2 with a message on bad input)."""
    from .pretrained import get_recipe, pretrain, recipe_table, record_curve_point

    if args.list or not args.name:
        print(recipe_table())
        return 0 if args.list else 2
    try:
        get_recipe(args.name)
        if args.evaluate:
            print(f"{args.name}: {record_curve_point(args.name, args.workdir, folder=args.folder)}")
            return 0
        summary = pretrain(args.name, workdir=args.workdir, until=args.until, folder=args.folder)
    except (KeyError, ValueError, FileNotFoundError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    done = f"{summary['steps']:,} of {summary['of']:,} steps in {summary['hours']:.2f} h"
    if "shipped" in summary:
        done += f"; shipped {summary['shipped']}, metrics {summary['metrics']}"
    elif "kept" in summary:
        done += (f"; finished and kept in {summary['kept']} for the recipe(s) that continue it: "
                 + ", ".join(f"`python -m vdlearn pretrain {n}`" for n in summary["continued_by"]))
    else:
        done += f"; run again to continue ({summary['run']})"
    print(f"{args.name}: {done}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    """One notebook: its report (exit 2 if it cannot be graded). Several: reports, then a gradebook
    if ``--out`` is given (exit 1 if any submission could not be graded)."""
    import json
    from pathlib import Path

    from .course.grading import (DEFAULT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT, format_report, grade_many,
                                 grade_notebook, write_gradebook)

    options = dict(lesson=args.lesson, isolation=args.isolation, solutions=args.solutions,
                   timeout=DEFAULT_TIMEOUT if args.timeout is None else args.timeout,
                   total_timeout=DEFAULT_TOTAL_TIMEOUT if args.total_timeout is None else args.total_timeout)
    single = len(args.paths) == 1 and not Path(args.paths[0]).is_dir()
    try:
        if single:
            grades = [grade_notebook(args.paths[0], **options)]
        else:
            grades = grade_many(args.paths, progress=None if args.json else
                                (lambda g: print(format_report(g), flush=True)), **options)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        data = [g.as_dict() for g in grades]
        print(json.dumps(data[0] if single else data, indent=2, ensure_ascii=False))
    elif single:
        print(format_report(grades[0]))
    if args.out:
        try:
            print(f"gradebook: {write_gradebook(grades, args.out)}", file=sys.stderr if args.json else sys.stdout)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    broken = [g for g in grades if g.error]
    for g in broken:
        print(f"could not grade {g.submission}: {g.error}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
