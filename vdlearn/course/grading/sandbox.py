"""Where a submission runs: a throwaway folder, a minimal environment, and (on Linux) namespaces.

Each submission gets a fresh temporary folder that is its working directory, its ``HOME``, its
``TMPDIR`` and its ``VDLEARN_CACHE``; the folder is deleted afterwards. The kernel is a separate
process started with a minimal environment built from nothing (not a copy of the grader's):

* ``VDLEARN_PRESET=smoke`` always, whatever the grader's environment says; ``CI`` is not passed on;
* grading runs on the CPU (``CUDA_VISIBLE_DEVICES`` empty, ``VDLEARN_DEVICE=cpu``);
* no network by convention: no proxy settings of the grader's, every ``*_proxy`` variable points at
  a closed port (``http://127.0.0.1:9``), Hugging Face and pip are told to stay offline.

What the operating system enforces, with ``isolation``:

``"namespace"`` (Linux with unprivileged user namespaces, the default where it works) runs the
kernel under ``unshare --user --map-root-user --mount --net --pid --fork --kill-child --mount-proc``:
a new network namespace with no interface but a loopback that is down (no network at all, sockets
fail at once); a private mount namespace in which every mount of the machine is re-mounted
**read-only** except the sandbox folder; and a process namespace, so that the kernel sees no other
process of the machine and every process an answer starts ends with the kernel. Answers cannot
delete or change a file outside the sandbox; they can still *read* what the grader's user can
read, and use all the CPU and memory they like. The kernel talks to the grader over Unix sockets
inside the sandbox.

``"none"`` (macOS, Windows, Linux without user namespaces) only changes the working directory,
``HOME`` and the environment: an answer that deletes an absolute path deletes it. For that case,
and for limits on memory, CPU, processes and reading, grade inside a container. With Docker::

    docker run --rm --network none --read-only --tmpfs /tmp:rw,exec,size=2g \\
        --memory 4g --cpus 2 --pids-limit 256 --security-opt no-new-privileges \\
        -v "$PWD:/course:ro" -v "$PWD/submissions:/submissions:ro" -v "$PWD/grades:/grades" \\
        -w /course vdlearn-grader \\
        python -m vdlearn grade /submissions --out /grades/gradebook.csv --isolation none

(``vdlearn-grader`` is an image with the course's environment installed), or with bubblewrap::

    bwrap --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --bind "$PWD/grades" "$PWD/grades" \\
        --unshare-all --die-with-parent \\
        python -m vdlearn grade submissions/ --out grades/gradebook.csv --isolation none
"""
from __future__ import annotations

import functools
import os
import queue
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ISOLATIONS", "CellRun", "Sandbox", "Kernel", "namespace_problem", "resolve_isolation"]

ISOLATIONS = ("auto", "namespace", "none")

#: Run inside ``unshare -rmn``: keep the sandbox writable, make every other mount read-only,
#: give /dev/shm a private tmpfs (torch's data loaders need it), then become the kernel.
_READ_ONLY = r'''set -e
BOX="$1"; shift
mount --bind "$BOX" "$BOX"
awk '{print $2}' /proc/self/mounts | sort -r | while read -r m; do
  m=$(printf '%b' "$m")
  [ "$m" = "$BOX" ] && continue
  mount -o remount,bind,ro "$m" 2>/dev/null || echo "vdlearn grade: could not make $m read-only" >&2
done
if [ -d /dev/shm ]; then mount -t tmpfs -o size=512m tmpfs /dev/shm 2>/dev/null || true; fi
cd "$(pwd)"  # the working folder was entered before the bind mount: enter it again, through it
exec "$@"'''

_DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, connections fail at once
_PASSED_ON = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LANG", "TZ")
_OUTPUT_LIMIT = 200_000  # characters of a cell's printed output kept (the end of it)


def _namespace_command(box: Path) -> list[str]:
    return ["unshare", "--user", "--map-root-user", "--mount", "--net", "--pid", "--fork", "--kill-child",
            "--mount-proc", "sh", "-c", _READ_ONLY, "sh", str(box)]


@functools.lru_cache(maxsize=None)
def namespace_problem() -> str | None:
    """``None`` when namespace isolation works on this machine, else why not (tried once, cached)."""
    if not sys.platform.startswith("linux"):
        return f"namespaces are a Linux feature and this is {sys.platform}"
    if shutil.which("unshare") is None:
        return "the 'unshare' command (util-linux) is not installed"
    with tempfile.TemporaryDirectory() as box, tempfile.TemporaryDirectory() as outside:
        probe = 'echo ok > "$1/inside" && ! (echo no > "$2/outside") 2>/dev/null'
        try:
            done = subprocess.run(_namespace_command(Path(box)) + ["sh", "-c", probe, "sh", box, outside],
                                  capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"unshare could not run: {err}"
        if done.returncode != 0 or not Path(box, "inside").is_file() or Path(outside, "outside").exists():
            why = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
            return f"unprivileged user namespaces are not available ({why[0]})"
    return None


def resolve_isolation(isolation: str) -> str:
    """``"auto"`` becomes ``"namespace"`` where it works, else ``"none"``; an impossible request fails."""
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
    if isolation == "none":
        return "none"
    problem = namespace_problem()
    if problem is None:
        return "namespace"
    if isolation == "auto":
        return "none"
    raise RuntimeError(f"namespace isolation is not available here: {problem}. Grade with "
                       "--isolation none inside a container instead (see `python -m vdlearn grade --help`)")


class Sandbox:
    """A fresh temporary folder for one submission: ``work/`` (the cwd), ``home/``, ``tmp/``, ``cache/``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="vdlearn-grade-")).resolve()
        for name in ("work", "home", "tmp", "cache", "kernel"):
            (self.root / name).mkdir()
        self.work = self.root / "work"
        # the grader's own files (connection files with the kernel's key) live outside the sandbox,
        # where an answer cannot replace them by, say, a link to one of the teacher's files
        self.control = Path(tempfile.mkdtemp(prefix="vdlearn-grade-control-")).resolve()

    def environment(self) -> dict[str, str]:
        """The kernel's whole environment (nothing else of the grader's is passed on)."""
        package_root = str(Path(__file__).resolve().parents[3])  # the folder holding vdlearn/
        env = {name: os.environ[name] for name in _PASSED_ON if name in os.environ}
        env.update({
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(self.root / "home"), "USERPROFILE": str(self.root / "home"),
            "TMPDIR": str(self.root / "tmp"), "TMP": str(self.root / "tmp"), "TEMP": str(self.root / "tmp"),
            "PYTHONPATH": package_root, "PYTHONNOUSERSITE": "1", "PYTHONIOENCODING": "utf-8",
            "LC_ALL": "C.UTF-8", "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(self.root / "home" / ".matplotlib"),
            "VDLEARN_PRESET": "smoke", "VDLEARN_CACHE": str(self.root / "cache"), "VDLEARN_DEVICE": "cpu",
            "CUDA_VISIBLE_DEVICES": "", "JUPYTER_PLATFORM_DIRS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PIP_NO_INDEX": "1",
            "no_proxy": "", "NO_PROXY": "",
        })
        for name in ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy"):
            env[name] = env[name.upper()] = _DEAD_PROXY
        return env

    def close(self) -> None:
        """Delete the folder, even the parts an answer made read-only."""
        def unlock(func, path, _exc):
            try:
                os.chmod(os.path.dirname(path), stat.S_IRWXU)
                os.chmod(path, stat.S_IRWXU)
                func(path)
            except OSError:
                pass
        shutil.rmtree(self.root, onerror=unlock)
        shutil.rmtree(self.control, ignore_errors=True)


@dataclass
class CellRun:
    """What happened when one cell ran."""

    status: str  # "ok", "error", "timeout" (stopped, kernel alive), "dead" (the kernel is gone), "exit"
    # (the cell called exit() or quit(): IPython stops the kernel a moment after the reply)
    stdout: str = ""
    error: tuple[str, str] | None = None  # (exception name, message) of the first error shown
    seconds: float = 0.0


class Kernel:
    """An IPython kernel in a sandbox, run cell by cell with a time limit, restartable."""

    STARTUP_TIMEOUT = 120.0
    INTERRUPT_GRACE = 5.0  # after a timeout, how long an interrupted cell may take to stop

    def __init__(self, sandbox: Sandbox, isolation: str) -> None:
        self.sandbox, self.isolation = sandbox, isolation
        self.starts = 0
        self.km = self.kc = None
        self.start()

    def start(self) -> None:
        """Start a fresh kernel (new sockets, new key): the previous one, if any, is killed first."""
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

        self.stop()
        self.starts += 1
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        if self.isolation == "namespace":
            argv = _namespace_command(self.sandbox.root) + argv
        spec = KernelSpec(argv=argv, display_name="vdlearn grading", language="python",
                          interrupt_mode="signal")

        class _Specs(KernelSpecManager):
            def get_kernel_spec(self, kernel_name):  # the grader's spec only: nothing on disk to edit
                return spec

        # the kernel's Unix sockets: in a new, unpredictable folder of the sandbox for every start
        sockets = Path(tempfile.mkdtemp(prefix=f"{self.starts}-", dir=self.sandbox.root / "kernel")) / "k"
        ipc = os.name == "posix"
        self.km = KernelManager(kernel_name="vdlearn-grading", kernel_spec_manager=_Specs(),
                                transport="ipc" if ipc else "tcp", ip=str(sockets) if ipc else "127.0.0.1",
                                connection_file=str(self.sandbox.control / f"kernel-{self.starts}.json"))
        self.km.start_kernel(env=self.sandbox.environment(), cwd=str(self.sandbox.work))
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=self.STARTUP_TIMEOUT)
        except RuntimeError as err:
            self.stop()
            raise RuntimeError(f"the grading kernel did not start ({err}); check that ipykernel is "
                               f"installed for {sys.executable}") from None

    def alive(self) -> bool:
        return self.km is not None and self.km.is_alive()

    def stop(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None:
            try:
                self.km.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.km = self.kc = None

    def run(self, code: str, timeout: float) -> CellRun:
        """Execute ``code``; stop it after ``timeout`` seconds (interrupt, then kill if it ignores that)."""
        start = time.monotonic()
        if not self.alive():
            return CellRun("dead", seconds=0.0)
        msg_id = self.kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        out: list[str] = []
        kept = 0
        error = None
        interrupted = None
        while True:
            now = time.monotonic()
            if interrupted is None and now - start > timeout:
                self.km.interrupt_kernel()
                interrupted = now
            if interrupted is not None and now - interrupted > self.INTERRUPT_GRACE:
                self.stop()  # it ignored the interrupt: the kernel is killed, the grader restarts it
                return CellRun("timeout", "".join(out), error, now - start)
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                if not self.km.is_alive():
                    return CellRun("dead", "".join(out), error, time.monotonic() - start)
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                out.append(content.get("text", ""))
                kept += len(out[-1])
                while kept > _OUTPUT_LIMIT and len(out) > 1:
                    kept -= len(out.pop(0))
            elif kind == "error" and error is None:
                error = (str(content.get("ename", "")), str(content.get("evalue", "")))
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        status, exiting = "ok", False
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                reply = self.kc.get_shell_msg(timeout=1)
            except queue.Empty:
                if not self.km.is_alive():
                    break
                continue
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                status = reply["content"].get("status", "error")
                exiting = any(isinstance(p, dict) and p.get("source") == "ask_exit"
                              for p in reply["content"].get("payload") or [])
                break
        if interrupted is not None:
            status = "timeout"
        elif exiting:  # the kernel stops in 0.1 s: whatever the grader sends next could still run, or not
            status = "exit"
        elif error is not None:
            status = "error"  # IPython reports SystemExit as "ok" with an error shown: not a success
        return CellRun(status, "".join(out), error, time.monotonic() - start)
