"""Run a lesson notebook top to bottom with papermill, in a chosen preset."""
from __future__ import annotations

import os
import time
from pathlib import Path

from .lessons import find_lesson, repo_root

__all__ = ["run_lesson"]


def run_lesson(lesson: str | int, preset: str = "smoke", output_dir: str | Path | None = None,
               student: bool = False, cwd: str | Path | None = None,
               timeout: int | None = None, parameters: dict | None = None) -> Path:
    """Execute ``solutions/`` (or, with ``student=True``, ``notebooks/``) lesson in ``preset``.

    The executed notebook is written to ``output_dir`` (default ``outputs/executed/``) and its
    path returned. The lesson runs with ``cwd`` as working directory (default: the course root),
    so the files it writes land in ``cwd/outputs/``. ``parameters`` overrides more names of the
    ``parameters`` cell (e.g. ``{"USE_PRETRAINED": True}``). A failing cell raises papermill's
    ``PapermillExecutionError``, which names the cell. A progress bar counts the cells as they run,
    so a long lesson shows that it is alive.
    """
    import papermill

    entry = find_lesson(lesson)
    root = repo_root()
    src = root / ("notebooks" if student else "solutions") / entry.filename
    if not src.exists():
        raise FileNotFoundError(f"'{src}' does not exist yet: lesson {entry.stem} is not written")
    out_dir = Path(output_dir) if output_dir else root / "outputs" / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{entry.stem}.{preset}.ipynb"
    env_before = os.environ.get("VDLEARN_PRESET")
    os.environ["VDLEARN_PRESET"] = preset  # the kernel inherits it: preset wins over CI too
    start = time.perf_counter()
    print(f"{entry.stem}: running in the {preset!r} preset (the bar counts cells; a training cell can take minutes)",
          flush=True)
    try:
        # the kernel talks to this process over loopback TCP; its warning about unencrypted TCP is noise
        # here, so the kernel logs errors only (a failing cell still raises, with its traceback)
        papermill.execute_notebook(
            str(src), str(out), parameters={**(parameters or {}), "PRESET": preset}, kernel_name="python3",
            cwd=str(cwd or root), progress_bar=True, execution_timeout=timeout,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    finally:
        if env_before is None:
            os.environ.pop("VDLEARN_PRESET", None)
        else:
            os.environ["VDLEARN_PRESET"] = env_before
    print(f"{entry.stem}: executed in the {preset!r} preset in {time.perf_counter() - start:.1f} s -> {out}")
    return out
