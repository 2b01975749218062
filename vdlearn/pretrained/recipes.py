"""The recipes of the shipped models: everything needed to train one again (``python -m vdlearn pretrain NAME``).

A :class:`Recipe` names the data, the network (its builder and keyword arguments), the objective,
the optimiser's settings, the EMA, the seed and the sampler; :mod:`.runs` runs it. Data that is
expensive to make (clips encoded by a frame VAE) is made once and kept in the run's folder, so a
resumed run trains on exactly the same examples.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..data import BouncingShapes, DigitImages, reverse_some
from ..diffusion import diffusion_loss, drop_labels, flow_matching_loss, make_schedule
from ..files import atomic_write
from ..metrics import fid_lite, label_agreement, motion_stats, object_constancy, physics_score
from ..video import encode_dataset
from ..video.flow import masked_flow_loss
from .shipped import builder_class, load_pretrained

__all__ = ["Recipe", "RECIPES", "get_recipe", "recipe_table"]


@dataclass(frozen=True)
class Recipe:
    """How one shipped model is trained, sampled and judged."""

    name: str
    lesson: int
    summary: str
    builder: str                                   # "vdlearn.module:Class"
    kwargs: dict[str, Any]
    data: Callable[[Path], Any]                    # run folder -> training examples
    loss: Callable[[nn.Module, Any], torch.Tensor]
    num_steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    ema_decay: float
    decay_steps: int = 0                           # the learning rate falls linearly to 0 over the last ones
    seed: int = 0
    checkpoint_every: int = 250
    sampling: dict[str, Any] = field(default_factory=dict)
    evaluate: Callable[[Callable[[int, int], torch.Tensor]], dict[str, float]] | None = None  # sample(n, seed) -> metrics

    def build(self) -> nn.Module:
        torch.manual_seed(self.seed)
        return builder_class(self.builder)(**self.kwargs)

    def describe(self) -> dict[str, Any]:
        """What the recipe says, as plain values (for ``--list`` and the manifest)."""
        return {"lesson": self.lesson, "summary": self.summary, "builder": self.builder, "kwargs": self.kwargs,
                "steps": self.num_steps, "batch_size": self.batch_size, "lr": self.lr,
                "warmup_steps": self.warmup_steps, "decay_steps": self.decay_steps, "ema_decay": self.ema_decay,
                "seed": self.seed,
                "sampling": self.sampling}


def _cached(folder: Path, name: str, make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``make()`` once, kept in ``folder/name`` (atomically) so that a resumed run sees the same tensor."""
    path = folder / name
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    value = make()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(value, f))
    return value


def _latents(dataset: Callable[[], Any], vae: str) -> Callable[[Path], torch.Tensor]:
    def make(folder: Path) -> torch.Tensor:
        return _cached(folder, "latents.pt", lambda: encode_dataset(load_pretrained(vae), dataset(), batch_size=128))
    return make


def _labelled_latents(dataset: Callable[[], Any], vae: str) -> Callable[[Path], TensorDataset]:
    """Latent clips with each clip's class (``dataset().labels``): batches ``[latents, labels]``."""
    def make(folder: Path) -> TensorDataset:
        latents = _latents(dataset, vae)(folder)
        return TensorDataset(latents, dataset().labels(range(len(latents))))
    return make


#: Half the clips are generated from nothing, the rest continue, animate or join given frames.
_TASKS = {"unconditional": 0.5, "prediction": 0.3, "image_to_video": 0.1, "interpolation": 0.1}


def _video_metrics(dataset: str, real: Callable[[], torch.Tensor], n: int = 128,
                   num_classes: int = 0) -> Callable[..., dict[str, float]]:
    """Metrics of ``n`` sampled clips (``sample(n, seed)``, the public API's sampler) against ``n`` held-out real ones.

    A class-conditional model's clips are drawn for each class in turn (as ``sample`` does), and
    ``label_agreement`` says how many show the class asked for."""
    def evaluate(sample: Callable[[int, int], torch.Tensor], n: int = n) -> dict[str, float]:
        clips = sample(n, 0)
        ref = real()[:n]
        out = {"energy_ratio": motion_stats(clips, ref)["energy_ratio"]}
        if dataset == "shapes":
            c = object_constancy(clips)
            out.update(constant=c["constant"], kind_constant=c["kind_constant"], colour_constant=c["colour_constant"],
                       exactly_one=c["exactly_one"], physics_px=physics_score(clips)["score"])
            if num_classes:
                out["label_agreement"] = label_agreement(clips, torch.arange(n) % num_classes)
        return {k: round(float(v), 4) for k, v in out.items()}
    return evaluate


def _flow_loss(model: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    return masked_flow_loss(model, clips, probs=_TASKS, max_k=4)


def _labelled_flow_loss(model: nn.Module, batch: list[torch.Tensor]) -> torch.Tensor:
    """The same tasks, half the clips played backwards (bouncing is time-reversible, and so the first
    frame is generated as often as the last), the clip's class given and dropped to the null label one
    time in ten."""
    clips, labels = batch
    return masked_flow_loss(model, reverse_some(clips, 0.5), probs=_TASKS, max_k=4, labels=labels, p_uncond=0.1)


def _digit_loss(objective: str, time_distribution: str = "logit_normal") -> Callable[[nn.Module, Any], torch.Tensor]:
    """Lesson 06's loss with label dropout (p = 0.1, null label 10): v-prediction on the cosine schedule,
    or flow matching with the network called at t·1000."""
    schedule = make_schedule("cosine", 1000)

    def loss(model: nn.Module, batch: Any) -> torch.Tensor:
        images, labels = batch
        labels = drop_labels(labels, 0.1, 10)
        if objective == "v":
            return diffusion_loss(lambda x, t: model(x, t, labels), images, schedule, prediction_type="v")
        return flow_matching_loss(lambda x, t: model(x, t * 1000, labels), images, time_distribution=time_distribution)
    return loss


def _fid(n: int = 500) -> Callable[..., dict[str, float]]:
    """FID-lite of ``n`` samples (classes 0-9 cycling, no guidance) against ``n`` held-out digits."""
    def evaluate(sample: Callable[[int, int], torch.Tensor], n: int = n) -> dict[str, float]:
        real = DigitImages(n, seed=100).get_batch(torch.arange(n))[0]
        return {"fid_lite": round(float(fid_lite(real, sample(n, 1), "digits")), 3), "samples": n}
    return evaluate


_UNET06 = {"in_channels": 1, "base_channels": 16, "channel_mults": [1, 2, 4], "attention_levels": [2],
           "num_res_blocks": 1, "num_classes": 10}
_DIGITS06 = dict(builder="vdlearn.nn:UNet2D", kwargs=_UNET06, data=lambda folder: DigitImages(20_000, seed=0),
                 num_steps=2_500, batch_size=64, lr=2e-3, warmup_steps=100, ema_decay=0.999, evaluate=_fid())

RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe(name="06_unet2d_digits", lesson=6, **_DIGITS06, loss=_digit_loss("v"),
           summary="lesson 06's cpu U-Net on 20,000 digits, class-conditional with label dropout; v-prediction, "
                   "cosine schedule",
           sampling={"kind": "image", "shape": [1, 28, 28], "schedule": "cosine", "num_timesteps": 1000,
                     "prediction_type": "v", "sampler": "dpm++2m", "steps": 20, "guidance_scale": 1.0}),
    Recipe(name="06_unet2d_digits_flow", lesson=6, **_DIGITS06, loss=_digit_loss("flow"),
           summary="the same U-Net, data and budget trained by flow matching (rectified flow), logit-normal t",
           sampling={"kind": "image", "shape": [1, 28, 28], "objective": "flow", "time_scale": 1000,
                     "sampler": "flow-heun", "steps": 10, "guidance_scale": 1.0}),
    Recipe(name="06_unet2d_digits_flow_uniform", lesson=6, **_DIGITS06, loss=_digit_loss("flow", "uniform"),
           summary="the same, flow matching with t drawn uniformly",
           sampling={"kind": "image", "shape": [1, 28, 28], "objective": "flow", "time_scale": 1000,
                     "sampler": "flow-heun", "steps": 10, "guidance_scale": 1.0}),
    Recipe(
        name="07_latent_dit_shapes", lesson=7,
        summary="BouncingShapes 8x32x32 in the FrameVAE's latents (4x8x8 a frame); a video DiT whose tokens "
                "span all 8 frames, told each clip's kind and colour (18 classes, dropped one time in ten for "
                "guidance); flow matching, logit-normal t, half the clips played backwards; generation, "
                "prediction, image to video and interpolation from one set of weights; the learning rate "
                "decays to 0 over the last 4,500 steps",
        builder="vdlearn.nn.video_dit:VideoDiT",
        kwargs={"in_channels": 4, "frames": 8, "size": 8, "patch": 1, "tubelet": 8, "dim": 128, "depth": 8,
                "heads": 4, "cond_channels": 5, "num_classes": 18},
        data=_labelled_latents(lambda: BouncingShapes(8192, frames=8, size=32, seed=0), "09_frame_vae_shapes"),
        loss=_labelled_flow_loss, num_steps=18_000, batch_size=16, lr=5e-4, warmup_steps=200, decay_steps=4_500,
        ema_decay=0.999,
        sampling={"kind": "latent_flow_video", "shape": [3, 8, 32, 32], "sampler": "flow-euler", "steps": 20,
                  "vae": "09_frame_vae_shapes", "guidance_scale": 2.0,
                  "classes": BouncingShapes(1).class_names()},
        evaluate=_video_metrics("shapes", lambda: BouncingShapes(128, frames=8, size=32, seed=10_000)
                                .get_batch(torch.arange(128)), num_classes=18),
    ),
]}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``, or a KeyError that lists them."""
    if name not in RECIPES:
        raise KeyError(f"no pretraining recipe {name!r}; the recipes are: {', '.join(sorted(RECIPES))} "
                       "(`python -m vdlearn pretrain --list` describes them)")
    return RECIPES[name]


def recipe_table() -> str:
    """One line per recipe: name, lesson, steps, batch, learning rate, and what it trains."""
    return "\n".join(f"{r.name:30s} lesson {r.lesson:02d}  {r.num_steps:>6,} steps x {r.batch_size:<3d} lr {r.lr:g}"
                     f"  EMA {r.ema_decay}\n    {r.summary}" for r in RECIPES.values())

