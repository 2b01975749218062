"""Putting models side by side (lesson 10): novelty, trade-offs, one results table.

- novelty, how far each generated clip is from the closest training clip, is
  :func:`vdlearn.metrics.nearest_neighbour_distance`;
- :func:`pareto_front`: which models are not beaten on cost *and* quality at once.
- :func:`markdown_table`: a table of results (rows of dicts) as Markdown, for the notebook and the README.
- :func:`earlier_results` and :func:`load_earlier_models`: what the earlier lessons measured and
  trained, when their ``outputs/`` folders exist.
- :func:`real_system_status`: whether a real video model (Stable Video Diffusion through
  ``diffusers``) can run here, and if not, why not.
"""
from __future__ import annotations

import importlib.util
import json
import math
import socket
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from .train import load_checkpoint

__all__ = [
    "pareto_front",
    "markdown_table",
    "earlier_results",
    "load_earlier_models",
    "real_system_status",
]


def pareto_front(costs: Sequence[float], losses: Sequence[float]) -> list[bool]:
    """Which points are Pareto-optimal when both ``costs`` and ``losses`` are to be minimised.

    Point i is on the front unless some j is at least as good on both and strictly better on
    one: :math:`c_j \\le c_i,\\ \\ell_j \\le \\ell_i` and :math:`(c_j, \\ell_j) \\ne (c_i, \\ell_i)`.
    ``nan`` values (not measured) are never on the front and beat nothing.
    """
    costs, losses = [float(c) for c in costs], [float(v) for v in losses]
    if len(costs) != len(losses):
        raise ValueError(f"costs and losses must have one entry per model, got {len(costs)} and {len(losses)}")
    ok = [not (math.isnan(c) or math.isnan(v)) for c, v in zip(costs, losses)]
    front = []
    for i, (c, v) in enumerate(zip(costs, losses)):
        dominated = any(ok[j] and costs[j] <= c and losses[j] <= v and (costs[j], losses[j]) != (c, v)
                        for j in range(len(costs)))
        front.append(ok[i] and not dominated)
    return front


def _cell(value: Any, fmt: str | Callable[[Any], str] | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if callable(fmt):
        return fmt(value)
    if fmt and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, fmt)
    return str(value)


def markdown_table(rows: Mapping[str, Mapping[str, Any]], columns: Sequence[tuple[str, str] | tuple[str, str, Any]],
                   *, first_header: str = "") -> str:
    """Rows ``{name: {key: value}}`` as a Markdown table with one column per ``(key, header[, format])``.

    A missing or ``None`` value prints as "—"; ``format`` is a format spec (``".1f"``) or a function.
    """
    if not columns:
        raise ValueError("columns must name at least one (key, header) pair")
    specs = [(c[0], c[1], c[2] if len(c) > 2 else None) for c in columns]
    lines = ["| " + " | ".join([first_header] + [h for _, h, _ in specs]) + " |",
             "|" + "---|" * (len(specs) + 1)]
    for name, row in rows.items():
        lines.append("| " + " | ".join([str(name)] + [_cell(row.get(k), f) for k, _, f in specs]) + " |")
    return "\n".join(lines)


def earlier_results(outputs: str | Path = "outputs", lessons: Sequence[str] | None = None) -> dict[str, dict]:
    """The ``results.json`` of each earlier lesson found under ``outputs`` (lesson folder name -> dict).

    Missing folders are skipped (a student may not have run every lesson); a damaged file is
    reported in the dict as ``{"error": ...}`` rather than stopping the caller.
    """
    root = Path(outputs)
    found: dict[str, dict] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.glob("*/results.json")):
        name = path.parent.name
        if lessons is not None and not any(name.startswith(str(l)) for l in lessons):
            continue
        try:
            found[name] = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            found[name] = {"error": f"could not read {path}: {err}"}
    return found


def load_earlier_models(path: str | Path, expected: Mapping[str, Any]) -> dict[str, Any] | None:
    """Load the models an earlier lesson saved at ``path`` if they were made with the ``expected`` settings.

    The checkpoint (written with :func:`vdlearn.train.save_checkpoint`) holds a ``"config"`` dict;
    every key of ``expected`` must match it. Returns the checkpoint, or ``None`` with a printed
    reason (no file, other settings, damaged file), so that the caller trains its own models.
    """

    path = Path(path)
    if not path.is_file():
        print(f"no models from an earlier lesson at {path}: training them here")
        return None
    try:
        state = load_checkpoint(path)
    except ValueError as err:
        print(f"{err}\ntraining the models here instead")
        return None
    config = state.get("config", {}) if isinstance(state, dict) else {}
    differ = {k: (config.get(k), v) for k, v in expected.items() if config.get(k) != v}
    if differ:
        print(f"{path} was made with other settings ({', '.join(f'{k}: {a!r} there, {b!r} here' for k, (a, b) in differ.items())}): "
              "training the models here")
        return None
    print(f"reusing the models saved by an earlier lesson: {path}")
    return state


def _can_reach(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def real_system_status(*, min_gpu_gb: float = 16.0, host: str = "huggingface.co") -> tuple[bool, str]:
    """Whether a real image-to-video model can run here: ``(ready, reason)``.

    Needs a CUDA GPU with at least ``min_gpu_gb`` GiB (Stable Video Diffusion in fp16 needs about
    that much), the ``diffusers`` package and a connection to ``host`` to download the weights.
    """
    if not torch.cuda.is_available():
        return False, "no CUDA GPU here (Stable Video Diffusion needs one with about 16 GiB)"
    gib = torch.cuda.get_device_properties(0).total_memory / 2 ** 30
    if gib < min_gpu_gb:
        return False, f"the GPU has {gib:.0f} GiB; Stable Video Diffusion needs about {min_gpu_gb:.0f} GiB"
    if importlib.util.find_spec("diffusers") is None:
        return False, "the diffusers package is not installed (pip install diffusers transformers accelerate)"
    if not _can_reach(host):
        return False, f"no network connection to {host} to download the weights (about 4 GB)"
    return True, "CUDA GPU, diffusers and a network connection are all here"
