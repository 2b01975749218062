"""Where and how a lesson runs: device, seeds, presets and the autocast dtype.

Every lesson starts with

    PRESET = "auto"                      # papermill `parameters` cell
    preset = resolve_preset(PRESET)      # "smoke", "cpu" or "gpu"
    cfg = choose(preset, smoke=dict(...), cpu=dict(...), gpu=dict(...))

so the sizes of a lesson live in one place, and CI (which sets ``CI``) runs every
lesson in the seconds-long ``smoke`` preset.

A **dry run** (``VDLEARN_DRY_RUN=1``, or ``python -m vdlearn run LESSON --preset gpu --dry-run``)
executes a preset's configuration at its real sizes in a minute on a CPU, to catch configuration
errors (a shape that only appears at 16 frames, a step that needs more memory than the GPU the preset
is for) before a student meets them. :func:`dry_run` is the one place it is read; :func:`choose` cuts
the configuration's *counts* (steps, evaluation and sample counts, dataset sizes) and keeps its
*sizes* (models, frames, resolutions, batch sizes), and the training loop runs at most
:data:`DRY_RUN_STEPS` step on :data:`DRY_RUN_BATCH` examples of its batch, estimating the GPU memory
of the preset's whole batch (see :func:`vdlearn.train.training_loop`). The batch is cut for time, not
memory: a GPU preset's step takes minutes on a CPU.
"""
from __future__ import annotations

import contextlib
import os
import random
import re
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
    "dry_run",
    "dry_run_batch",
    "dry_run_cuts",
    "gpu_memory_budget_gib",
    "DRY_RUN_STEPS",
    "DRY_RUN_BATCH",
    "DRY_RUN_EVAL",
]

#: The presets every lesson defines, fastest first.
PRESETS = ("smoke", "cpu", "gpu")

#: A dry run's most training steps per loop, and most sampling steps: one shows every shape a step makes.
DRY_RUN_STEPS = 1
#: A dry run's examples per training step: the loop takes this many of each batch (drawn at the preset's
#: size) and scales the memory they take to the whole batch. Two, because batch norm needs two.
DRY_RUN_BATCH = 2
#: A dry run's most evaluation samples (a count whose name has the word ``eval``): generating them
#: at a GPU preset's model size is what a dry run spends most of its time on (two: the fewest a
#: Fréchet distance, a diversity or a best-of-k accepts).
DRY_RUN_EVAL = 2
#: The GPU memory a dry run allows a training step of the preset's batch, in GiB, unless
#: ``VDLEARN_GPU_MEMORY_GB`` says otherwise: Colab's T4 (16 GB, 15 GiB usable; it has no bf16, so
#: training there is float32 as on the CPU where the dry run measures). The README promises that
#: Colab's GPU is enough for the ``gpu`` preset.
DEFAULT_GPU_MEMORY_GIB = 15.0


def dry_run() -> bool:
    """Whether this is a dry run: the environment variable ``VDLEARN_DRY_RUN`` is set (and not 0/false/no).

    The one place the setting is read: :func:`choose`, :func:`get_device`, :func:`cache_dir` and the
    training loop ask here.
    """
    return os.environ.get("VDLEARN_DRY_RUN", "").strip().lower() not in ("", "0", "false", "no")


def dry_run_batch(batch_size: int) -> int:
    """How many examples of a ``batch_size`` batch a training step uses: all of them, or in a dry run
    at most :data:`DRY_RUN_BATCH` (a CPU could not run a GPU batch in seconds)."""
    return min(batch_size, DRY_RUN_BATCH) if dry_run() else batch_size


def gpu_memory_budget_gib() -> float:
    """The GPU memory (GiB) a dry run lets one training step of a preset's batch need:
    ``VDLEARN_GPU_MEMORY_GB`` (e.g. 15 for Colab's T4), default :data:`DEFAULT_GPU_MEMORY_GIB`."""
    text = os.environ.get("VDLEARN_GPU_MEMORY_GB", "").strip()
    if not text:
        return DEFAULT_GPU_MEMORY_GIB
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ValueError(f"VDLEARN_GPU_MEMORY_GB={text!r} is not a positive number of GiB (e.g. 15 or 80)")
    return value


def get_device(prefer: str | None = None) -> torch.device:
    """The best device here: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` (or the environment variable ``VDLEARN_DEVICE``) forces one, e.g. ``"cpu"``. A dry
    run (:func:`dry_run`) runs on the CPU unless one of them names another device.
    """
    prefer = prefer or os.environ.get("VDLEARN_DEVICE") or ("cpu" if dry_run() else None)
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


def _count_kind(name: str) -> str | None:
    """What kind of count a configuration entry is, by its name (None: a size, which a dry run keeps).

    - ``"steps"``: a name with the word ``steps`` (``num_steps``, ``vae_steps``, ``sampler_steps``, ``d_steps_1d``);
    - ``"every"``: an interval in steps (``log_every``, ``eval_every``);
    - ``"data"``: a dataset's size (``num_clips``, ``hi_num_clips``, ``num_images``, ``num_train``, ``num_points``);
    - ``"eval"``: how many things are generated or scored for an evaluation (``num_eval``, ``video_eval``,
      ``eval_clips``, ``elbo_eval``);
    - ``"samples"``: how many other things are drawn, tried or shown (``num_test``, ``iw_samples``,
      ``samples_per_clip``, ``num_mc``, ``num_sim``, ``num_seeds``, ``num_long``,
      ``per_class``, ``anim_frames``).
    """
    words = name.lower().split("_")
    if "steps" in words:
        return "steps"
    if "every" in words:
        return "every"
    if re.search(r"(^|_)num_(clips|images|train|points)$", name.lower()):
        return "data"
    if "eval" in words:
        return "eval"
    if name.lower() == "per_class" or set(words) & {"samples", "mc", "sim", "seeds", "long", "test", "points",
                                                     "anim"}:
        return "samples"
    return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def dry_run_cuts(chosen: dict[str, Any], smoke: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """What a dry run changes in the configuration ``chosen`` (``smoke`` is the smoke preset's): ``{name: (old, new)}``.

    Sizes stay (numbers, and tuples such as ``channel_mults``). Counts take the smoke preset's value
    when it is smaller, and then steps and intervals at most :data:`DRY_RUN_STEPS` (a list of steps: the
    smoke preset's list, so capped) and evaluation counts at most :data:`DRY_RUN_EVAL`. A list (``[...]``)
    is what a lesson tries one after the other (guidance scales, strengths): the smoke preset's list.
    A dataset can so become smaller than the preset's batch: the training loop of a dry run then draws
    its batches from what there is.
    """
    cuts: dict[str, tuple[Any, Any]] = {}
    for name, value in chosen.items():
        kind, small = _count_kind(name), smoke.get(name, value)
        if kind is None:
            if isinstance(value, list) and isinstance(small, list) and small != value:
                cuts[name] = (value, small)  # values tried one by one: as many as the smoke preset tries
            continue
        if isinstance(value, (list, tuple)) and kind == "steps" and isinstance(small, (list, tuple)) \
                and all(_is_count(v) for v in (*value, *small)):
            new: Any = type(value)(min(v, DRY_RUN_STEPS) if v else v for v in small)
        elif _is_count(value) and _is_count(small):
            new = min(value, small)
            if kind in ("steps", "every") and new:
                new = min(new, DRY_RUN_STEPS)
            elif kind == "eval" and new:
                new = min(new, DRY_RUN_EVAL)
        else:
            continue
        if new != value:
            cuts[name] = (value, new)
    return cuts


def choose(preset: str, **options: Any) -> Any:
    """Pick the option for ``preset`` from ``smoke=..., cpu=..., gpu=...``.

    Dicts come back as a ``SimpleNamespace`` so a lesson can write ``cfg.num_steps``. In a dry run
    (:func:`dry_run`) the counts of a dict are cut and the cuts printed (see :func:`dry_run_cuts`):
    the preset's sizes with few steps and few samples.
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
    if isinstance(value, dict) and dry_run() and isinstance(options["smoke"], dict):
        cuts = dry_run_cuts(value, options["smoke"])
        value = {**value, **{k: new for k, (_, new) in cuts.items()}}
        print(f"dry run of the {preset!r} preset: its sizes, with "
              + (", ".join(f"{k} {old} -> {new}" for k, (old, new) in cuts.items()) if cuts else "no count to cut"))
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

    ``VDLEARN_CACHE`` overrides; the default is ``~/.cache/vdlearn``. A dry run keeps its own
    ``dry-run`` folder inside it, so that a helper network it trains for a step is never taken for
    the real one.
    """
    from pathlib import Path

    path = Path(os.environ.get("VDLEARN_CACHE", Path.home() / ".cache" / "vdlearn")).expanduser()
    if dry_run():
        path = path / "dry-run"
    path.mkdir(parents=True, exist_ok=True)
    return path
