"""Train a shipped model from its recipe, over as many sittings as it takes (``python -m vdlearn pretrain NAME``).

The run lives in ``<workdir>/<NAME>/`` (default ``~/.cache/vdlearn/pretrain``, or ``$VDLEARN_PRETRAIN_DIR``):
``checkpoint.pt`` (written atomically every ``checkpoint_every`` steps by :func:`vdlearn.train.fit`, so an
interrupted run loses at most the steps since the last one), the recipe's cached data, and
``sittings.json`` (when, where and how far each sitting trained). Running the command again resumes.
When the recipe's last step is reached, the EMA weights are saved in ``data/checkpoints`` and the
manifest entry is written: the recipe, the steps, the hours and machine, and the model's metrics.
A recipe that ``continues`` another starts from that one's finished run (a first stage with ``ships=False``
is kept there and ships nothing).
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from ..files import atomic_write
from ..train import fit
from ..train.checkpoint import load_checkpoint
from .recipes import RECIPES, Recipe, get_recipe
from .shipped import checkpoint_dir, flow_clips, load_pretrained, manifest, sample, save_pretrained

__all__ = ["default_workdir", "pretrain", "machine", "Sittings", "finished_run", "run_model", "evaluate_run",
           "record_curve_point", "read_curve"]


def default_workdir() -> Path:
    """Where pretraining runs keep their state: ``$VDLEARN_PRETRAIN_DIR`` or ``~/.cache/vdlearn/pretrain``."""
    return Path(os.environ.get("VDLEARN_PRETRAIN_DIR") or Path.home() / ".cache" / "vdlearn" / "pretrain")


def machine() -> str:
    """A short description of this machine: CPU cores and threads, or the GPU."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


class Sittings:
    """``sittings.json``: one record per sitting (start, machine, first and last step, wall seconds)."""

    def __init__(self, path: Path, first_step: int):
        self.path = path
        self.records: list[dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else []
        self.started = time.time()
        self.records.append({"started": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
                             "from_step": first_step, "to_step": first_step, "seconds": 0.0})

    def update(self, step: int, _model: Any = None) -> None:
        self.records[-1].update(to_step=int(step), seconds=round(time.time() - self.started, 1))
        text = json.dumps(self.records, indent=1)
        atomic_write(self.path, lambda f: f.write(text.encode()))

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        return json.loads(path.read_text()) if path.is_file() else []

    @property
    def hours(self) -> float:
        return sum(r["seconds"] for r in self.records) / 3600


def _steps_done(path: Path) -> int:
    if not path.is_file():
        return 0
    return int(load_checkpoint(path)["step"])


def pretrain(name: str, *, workdir: str | os.PathLike | None = None, until: int | None = None,
             folder: str | os.PathLike | None = None, progress: bool = True,
             device: str | None = None) -> dict[str, Any]:
    """Train recipe ``name`` (resuming its run if there is one) up to step ``until`` (default: the recipe's end).

    Reaching the recipe's last step ships the model into ``folder`` (default ``data/checkpoints``) with
    its manifest entry and metrics. Returns a summary: steps done, hours, and the metrics once shipped.
    """
    recipe: Recipe = get_recipe(name)
    total = recipe.num_steps
    until = total if until is None else int(until)
    if not 0 < until <= total:
        raise ValueError(f"until must be a step in 1..{total} (the recipe's {total:,} steps), got {until}")
    run_dir = Path(workdir or default_workdir()) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "checkpoint.pt"
    data = recipe.data(run_dir)
    model = recipe.build()
    if recipe.continues and not ckpt.is_file():     # a second stage starts where the first one finished
        model.load_state_dict(finished_run(recipe.continues, workdir).state_dict())
    sittings = Sittings(run_dir / "sittings.json", _steps_done(ckpt))
    result = fit(model, recipe.loss, data, num_steps=until, batch_size=recipe.batch_size, lr=recipe.lr,
                 warmup_steps=recipe.warmup_steps, decay_steps=recipe.decay_steps, schedule_steps=total,
                 ema_decay=recipe.ema_decay, seed=recipe.seed, device=device,
                 checkpoint_path=ckpt, checkpoint_every=recipe.checkpoint_every, log_every=50, progress=progress,
                 callback=sittings.update, config={"recipe": name, "builder": recipe.builder, "kwargs": recipe.kwargs})
    sittings.update(until)
    summary: dict[str, Any] = {"name": name, "steps": until, "of": total, "hours": round(sittings.hours, 3),
                               "run": str(run_dir)}
    if until < total:
        return summary
    if not recipe.ships:
        followers = sorted(r.name for r in RECIPES.values() if r.continues == name)
        return {**summary, "kept": str(ckpt), "continued_by": followers}
    folder = Path(folder or checkpoint_dir())
    trained = (f"`python -m vdlearn pretrain {name}`: {total:,} steps of {recipe.batch_size} in "
               f"{sittings.hours:.1f} h on {sittings.records[-1]['machine']}")
    curve, before = read_curve(name, workdir), {}
    if recipe.continues:      # the learning curve runs on from the first stage's, in its steps and hours
        first = Sittings.read(Path(workdir or default_workdir()) / recipe.continues / "sittings.json")
        before = {"continues": recipe.continues, "steps": get_recipe(recipe.continues).num_steps,
                  "hours": round(sum(r["seconds"] for r in first) / 3600, 2)}
        curve = read_curve(recipe.continues, workdir) + [
            {**p, "step": p["step"] + before["steps"], "hours": round(p["hours"] + before["hours"], 3)} for p in curve]
        trained = (f"`python -m vdlearn pretrain {recipe.continues}` ({before['steps']:,} steps in "
                   f"{before['hours']:.1f} h), then {trained}, started from its EMA weights")
    trained_model = result.best_model.cpu().eval()
    if recipe.finish is not None:
        recipe.finish(trained_model, data)
    save_pretrained(trained_model, name, lesson=recipe.lesson, builder=recipe.builder,
                    kwargs=recipe.kwargs, trained=f"by {trained}", sampling=recipe.sampling, folder=folder,
                    dtype=recipe.weights_dtype)
    if recipe.evaluate is None:
        metrics = {}
    elif recipe.sampling:                 # a generator is judged by what the public API samples from it
        metrics = recipe.evaluate(lambda n, seed, **condition: sample(name, n, seed, folder=folder, **condition))
    else:                                 # a model other models use (an autoencoder) is judged by itself
        metrics = recipe.evaluate(load_pretrained(name, folder))
    entries = manifest(folder)
    entries[name]["pretrain"] = {"steps": total, "hours": round(sittings.hours, 2),
                                 "machine": sittings.records[-1]["machine"], "metrics": metrics, "curve": curve,
                                 **({"first_stage": before} if before else {})}
    text = json.dumps(entries, indent=2, sort_keys=True) + "\n"
    atomic_write(folder / "manifest.json", lambda f: f.write(text.encode("utf-8")))
    return {**summary, "metrics": metrics, "shipped": str(folder / f"{name}.pt")}


def finished_run(name: str, workdir: str | os.PathLike | None = None) -> torch.nn.Module:
    """The EMA model of recipe ``name``'s finished run (what a second stage starts from), or a ValueError that
    says to finish it first."""
    total = get_recipe(name).num_steps
    path = Path(workdir or default_workdir()) / name / "checkpoint.pt"
    step = _steps_done(path)
    if step < total:
        raise ValueError(f"this recipe continues the finished run of {name!r}, which has done {step:,} of its "
                         f"{total:,} steps in '{path.parent}': run `python -m vdlearn pretrain {name}` to the end "
                         "first (with the same --workdir)")
    return run_model(name, workdir)[0]


def run_model(name: str, workdir: str | os.PathLike | None = None) -> tuple[torch.nn.Module, int]:
    """The EMA model of an unfinished run's latest checkpoint, and its step: to watch a run as it trains."""
    recipe = get_recipe(name)
    path = Path(workdir or default_workdir()) / name / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no run of {name!r} in '{path.parent}'; start one with "
                                f"`python -m vdlearn pretrain {name}`")
    state = load_checkpoint(path)
    model = recipe.build()
    ema = state.get("ema") or {}
    weights = {k[len("module."):]: v for k, v in ema.items() if k.startswith("module.")} or state["modules"]["model"]
    model.load_state_dict(weights)
    return model.eval(), int(state["step"])


def evaluate_run(name: str, workdir: str | os.PathLike | None = None, n: int = 64,
                 folder: str | os.PathLike | None = None) -> dict[str, Any]:
    """The recipe's metrics of a run's latest checkpoint (``n`` clips), with its step and training hours.

    Points of the learning curve: quality against hours of training on this machine.
    """
    recipe = get_recipe(name)
    kind = recipe.sampling.get("kind")
    if recipe.evaluate is None or kind not in ("flow_video", "latent_flow_video"):
        raise ValueError(f"{name!r} has no metrics to follow during training")
    model, step = run_model(name, workdir)
    vae = load_pretrained(recipe.sampling["vae"], folder) if kind == "latent_flow_video" else None
    shape = tuple(recipe.sampling["shape"])

    def draw(count: int, seed: int) -> torch.Tensor:    # as pretrained.sample draws: each class in turn
        labels = torch.arange(count) % model.num_classes if getattr(model, "num_classes", 0) else None
        return flow_clips(model, vae, count, shape, {}, recipe.sampling["steps"],
                          recipe.sampling.get("shift", 1.0), torch.Generator().manual_seed(seed), labels=labels,
                          guidance_scale=recipe.sampling.get("guidance_scale", 1.0))

    sittings = Sittings.read(Path(workdir or default_workdir()) / name / "sittings.json")
    seconds = 0.0
    for r in sittings:   # whole sittings before the step, and the share of the one it falls in
        span = max(r["to_step"] - r["from_step"], 1)
        seconds += r["seconds"] * min(max(step - r["from_step"], 0), span) / span
    hours = seconds / 3600
    return {"step": step, "hours": round(hours, 3), **recipe.evaluate(draw, n)}


def _curve_path(name: str, workdir: str | os.PathLike | None) -> Path:
    return Path(workdir or default_workdir()) / name / "curve.jsonl"


def record_curve_point(name: str, workdir: str | os.PathLike | None = None, n: int = 64,
                       folder: str | os.PathLike | None = None) -> dict[str, Any]:
    """Evaluate a run's latest checkpoint (:func:`evaluate_run`) and append the point to its ``curve.jsonl``.

    Run it now and then while a model trains (``python -m vdlearn pretrain NAME --evaluate``); the
    points go into the manifest entry when the model ships.
    """
    point = evaluate_run(name, workdir, n=n, folder=folder)
    path = _curve_path(name, workdir)
    text = (path.read_text() if path.is_file() else "") + json.dumps(point) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
    return point


def read_curve(name: str, workdir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The learning-curve points recorded for a run, by step (the last point of each step)."""
    path = _curve_path(name, workdir)
    points = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    return sorted({p["step"]: p for p in points}.values(), key=lambda p: p["step"])
