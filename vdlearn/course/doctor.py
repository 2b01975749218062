"""``python -m vdlearn doctor``: what a student needs to know about this machine."""
from __future__ import annotations

import importlib
import platform
import sys

__all__ = ["doctor"]

#: module -> (pip package, what it is for)
OPTIONAL = {
    "av": ("av", "reading and writing mp4/gif"),
    "papermill": ("papermill", "running lessons from the command line"),
    "ipywidgets": ("ipywidgets", "sliders and widgets in the lessons"),
    "scipy": ("scipy", "the Fréchet distance"),
    "sklearn": ("scikit-learn", "the offline handwritten digits"),
    "jupyterlab": ("jupyterlab", "opening the lessons (pip install -e '.[lab]')"),
    "nbval": ("nbval", "the test suite (pip install -e '.[test]')"),
}


def _version(module: str) -> str | None:
    try:
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception:  # noqa: BLE001 - a broken install is reported, not raised
        return None


def doctor() -> int:
    """Print the report; return 0 when everything a lesson needs is there, 1 otherwise."""
    fix = "pip install -c constraints.txt -e '.[lab,test]'  (from the course folder, in .venv)"
    ok = True
    print(f"Python      {sys.version.split()[0]} ({platform.system()} {platform.machine()})  {sys.executable}")
    if sys.version_info < (3, 10):
        ok = False
        print("  ! the course needs Python 3.10 or newer")
    import vdlearn

    print(f"vdlearn     {vdlearn.__version__}  {vdlearn.__file__}")
    torch_version = _version("torch")
    if torch_version is None:
        print(f"torch       MISSING  -> {fix}")
        return 1
    import torch

    print(f"torch       {torch_version}")
    tv = _version("torchvision")
    if tv is None:
        ok = False
        print("torchvision MISSING or does not import with this torch -> "
              "pip install -c constraints.txt torch torchvision")
    else:
        print(f"torchvision {tv}")
    from vdlearn.runtime import autocast_dtype, cache_dir, get_device, resolve_preset

    device = get_device()
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else ""
    print(f"device      {device} {name}".rstrip())
    print(f"autocast    {autocast_dtype(device) or 'off (float32)'}")
    print(f"preset      {resolve_preset('auto')!r} for PRESET='auto' (VDLEARN_PRESET overrides)")
    print(f"cache       {cache_dir()}")
    for module, (package, purpose) in OPTIONAL.items():
        version = _version(module)
        if version is None:
            print(f"{module:<11} missing ({purpose}) -> pip install {package}")
            ok = ok and module in ("jupyterlab", "nbval")
        else:
            print(f"{module:<11} {version}")
    print("All set." if ok else "Something a lesson needs is missing: see the lines above.")
    return 0 if ok else 1
