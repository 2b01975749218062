"""Run a lesson notebook top to bottom with papermill, in a chosen preset (or a dry run of it)."""
from __future__ import annotations

import os
import time
from pathlib import Path

from ..runtime import dry_run as dry_run_from_env
from .lessons import find_lesson, repo_root

__all__ = ["run_lesson"]


def run_lesson(lesson: str | int, preset: str = "smoke", output_dir: str | Path | None = None,
               student: bool = False, cwd: str | Path | None = None,
               timeout: int | None = None, parameters: dict | None = None, dry_run: bool = False) -> Path:
    """Execute ``solutions/`` (or, with ``student=True``, ``notebooks/``) lesson in ``preset``.

    The executed notebook is written to ``output_dir`` (default ``outputs/executed/``) and its
    path returned. The lesson runs with ``cwd`` as working directory (default: the course root),
    so the files it writes land in ``cwd/outputs/``. ``parameters`` overrides more names of the
    ``parameters`` cell (e.g. ``{"USE_PRETRAINED": True}``). A failing cell raises papermill's
    ``PapermillExecutionError``, which names the cell. A progress bar counts the cells as they run,
    so a long lesson shows that it is alive.

    ``dry_run=True`` (the default when ``VDLEARN_DRY_RUN`` is set here) executes the preset's configuration at its real sizes with every count cut
    (``VDLEARN_DRY_RUN=1`` in the kernel; see :mod:`vdlearn.runtime`), on the CPU unless
    ``VDLEARN_DEVICE`` names another device, in ``outputs/dry-run/`` by default (so that its
    one-step checkpoints are never resumed by a real run); the notebook is ``NN_name.PRESET-dry-run.ipynb``.
    """
    import papermill

    entry = find_lesson(lesson)
    root = repo_root()
    dry_run = bool(dry_run) or dry_run_from_env()
    src = root / ("notebooks" if student else "solutions") / entry.filename
    if not src.exists():
        raise FileNotFoundError(f"'{src}' does not exist yet: lesson {entry.stem} is not written")
    out_dir = Path(output_dir) if output_dir else root / "outputs" / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    run_name = f"{preset}-dry-run" if dry_run else preset
    out = out_dir / f"{entry.stem}.{run_name}.ipynb"
    if dry_run and cwd is None:
        cwd = root / "outputs" / "dry-run"
        cwd.mkdir(parents=True, exist_ok=True)
    # the kernel inherits these: the preset wins over CI too; a dry run says so, on the CPU by default
    env = {"VDLEARN_PRESET": preset, "VDLEARN_DRY_RUN": "1" if dry_run else None,
           "VDLEARN_DEVICE": (os.environ.get("VDLEARN_DEVICE") or "cpu") if dry_run else os.environ.get("VDLEARN_DEVICE")}
    env_before = {k: os.environ.get(k) for k in env}
    _set_env(env)
    start = time.perf_counter()
    what = f"a dry run of the {preset!r} preset" if dry_run else f"the {preset!r} preset"
    print(f"{entry.stem}: running {what} (the bar counts cells; a training cell can take minutes)", flush=True)
    try:
        # the kernel talks to this process over loopback TCP; its warning about unencrypted TCP is noise
        # here, so the kernel logs errors only (a failing cell still raises, with its traceback)
        papermill.execute_notebook(
            str(src), str(out), parameters={**(parameters or {}), "PRESET": preset}, kernel_name="python3",
            cwd=str(cwd or root), progress_bar=True, execution_timeout=timeout,
            request_save_on_cell_execute=not dry_run,  # a dry run writes its notebook once: its outputs are big
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    finally:
        _set_env(env_before)
    print(f"{entry.stem}: executed {what} in {time.perf_counter() - start:.1f} s -> {out}")
    return out


def _set_env(values: dict[str, str | None]) -> None:
    """Set (or, for None, remove) environment variables."""
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
