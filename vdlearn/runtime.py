"""Where and how a lesson runs: device, seeds, presets and the autocast dtype.

Every lesson starts with

    PRESET = "auto"                      # papermill `parameters` cell
    preset = resolve_preset(PRESET)      # "smoke", "cpu" or "gpu"
    cfg = choose(preset, smoke=dict(...), cpu=dict(...), gpu=dict(...))

so the sizes of a lesson live in one place, and CI (which sets ``CI``) runs every
lesson in the seconds-long ``smoke`` preset.
"""
from __future__ import annotations

import contextlib
import os
import random
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

__all__ = [
    "PRESETS",
    "get_device",
    "seed_everything",
    "resolve_preset",
    "choose",
    "autocast_dtype",
    "autocast",
    "cache_dir",
]

#: The presets every lesson defines, fastest first.
PRESETS = ("smoke", "cpu", "gpu")


def get_device(prefer: str | None = None) -> torch.device:
    """The best device here: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` (or the environment variable ``VDLEARN_DEVICE``) forces one, e.g. ``"cpu"``.
    """
    prefer = prefer or os.environ.get("VDLEARN_DEVICE")
    if prefer:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"device {prefer!r} was asked for but CUDA is not available here; "
                "use get_device() to pick the best available device, or prefer='cpu'."
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same.

    The same seed gives the same numbers on the same machine.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def resolve_preset(preset: str = "auto") -> str:
    """Turn a lesson's ``PRESET`` into ``"smoke"``, ``"cpu"`` or ``"gpu"``.

    Order: the environment variable ``VDLEARN_PRESET`` wins; else ``CI`` being set means
    ``"smoke"``; else an explicit preset is kept; else ``"auto"`` picks ``"gpu"`` when CUDA
    is available and ``"cpu"`` otherwise.
    """
    env = os.environ.get("VDLEARN_PRESET", "").strip().lower()
    if env:
        if env not in PRESETS + ("auto",):
            raise ValueError(
                f"VDLEARN_PRESET={env!r} is not a preset; expected one of {PRESETS + ('auto',)}"
            )
        preset = env
    elif os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return "smoke"
    preset = str(preset).strip().lower()
    if preset == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected 'auto' or one of {PRESETS}")
    return preset


def choose(preset: str, **options: Any) -> Any:
    """Pick the option for ``preset`` from ``smoke=..., cpu=..., gpu=...``.

    Dicts come back as a ``SimpleNamespace`` so a lesson can write ``cfg.num_steps``.
    """
    missing = [p for p in PRESETS if p not in options]
    unknown = [k for k in options if k not in PRESETS]
    if missing or unknown:
        raise ValueError(
            f"choose() needs exactly the presets {PRESETS}; missing {missing}, unknown {unknown}"
        )
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; call resolve_preset() first")
    value = options[preset]
    return SimpleNamespace(**value) if isinstance(value, dict) else value


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The mixed-precision dtype for ``device``: bf16 on CUDA GPUs that support it, else None.

    On the CPU training stays in float32 (bf16 there is slower and less exact on most laptops).
    """
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: torch.device | str):
    """A context manager for bf16 autocast on CUDA; a no-op elsewhere."""
    device = torch.device(device)
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def cache_dir() -> "os.PathLike[str]":
    """Folder for cached datasets and small trained helper networks.

    ``VDLEARN_CACHE`` overrides; the default is ``~/.cache/vdlearn``.
    """
    from pathlib import Path

    path = Path(os.environ.get("VDLEARN_CACHE", Path.home() / ".cache" / "vdlearn")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
