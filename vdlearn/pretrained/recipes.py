"""The recipes of the shipped models: everything needed to train one again (``python -m vdlearn pretrain NAME``).

A :class:`Recipe` names the data, the network (its builder and keyword arguments), the objective,
the optimiser's settings, the EMA, the seed and the sampler; :mod:`.runs` runs it. Data that is
expensive to make (clips encoded by a video autoencoder) is made once and kept in the run's folder, so a
resumed run trains on exactly the same examples.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..data import CAMERA_MOTIONS, BouncingShapes, CameraClips, DigitImages, MovingDigits
from ..diffusion import diffusion_loss, drop_labels, flow_matching_loss, make_schedule
from ..files import atomic_write
from ..metrics import (best_of_k, digit_constancy, fid_lite, frame_difference_energy, label_agreement, motion_stats,
                       object_constancy, physics_score, psnr, ssim)
from ..vae import calibrate_scaling_factor, inflate_frame_vae, vae_loss
from ..video import encode_dataset, latent_diffusion_loss, masked_diffusion_loss, video_diffusion_loss
from ..video.baselines import constant_velocity
from ..video.camera import camera_flow_loss
from ..video.trajectory import displacements, trajectory_flow_loss
from ..video.flow import masked_flow_loss
from .shipped import builder_class, load_pretrained

__all__ = ["Recipe", "RECIPES", "get_recipe", "recipe_table"]

#: the noise schedule of the course's v-prediction models (lessons 06-09)
_COSINE = make_schedule("cosine", 1000)


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
    ema_decay: float | None                         # None: ship the trained weights themselves
    decay_steps: int = 0                           # the learning rate falls linearly to 0 over the last ones
    seed: int = 0
    checkpoint_every: int = 250
    weights_dtype: str = "float32"                 # how the shipped file stores them ("float16": half the bytes)
    sampling: dict[str, Any] = field(default_factory=dict)
    #: run on the freshly built model before training (a resumed run loads its checkpoint over it): e.g. the
    #: weights of a trained model to start from
    start: Callable[[nn.Module], None] | None = None
    #: run on the trained (EMA) model before it ships, with the run's data: e.g. an autoencoder's latent scale
    finish: Callable[[nn.Module, Any], None] | None = None
    #: metrics of the shipped model: given ``sample(n, seed)`` for a generator (a recipe with ``sampling``),
    #: else given the model itself
    evaluate: Callable[[Any], dict[str, float]] | None = None
    #: a second stage: the name of the recipe whose *finished* run this one starts from (its EMA weights), e.g.
    #: more steps with a fresh warmup-stable-decay cycle at a lower learning rate
    continues: str | None = None
    #: False for a first stage that only another recipe continues: its finished run is kept, nothing is shipped
    ships: bool = True

    def build(self) -> nn.Module:
        torch.manual_seed(self.seed)
        model = builder_class(self.builder)(**self.kwargs)
        if self.start is not None:
            self.start(model)
        return model

    def describe(self) -> dict[str, Any]:
        """What the recipe says, as plain values (for ``--list`` and the manifest)."""
        return {"lesson": self.lesson, "summary": self.summary, "builder": self.builder, "kwargs": self.kwargs,
                "steps": self.num_steps, "batch_size": self.batch_size, "lr": self.lr,
                "warmup_steps": self.warmup_steps, "decay_steps": self.decay_steps, "ema_decay": self.ema_decay,
                "seed": self.seed, "weights_dtype": self.weights_dtype,
                "sampling": self.sampling, **({"continues": self.continues} if self.continues else {}),
                **({} if self.ships else {"ships": False})}


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


def _held_out_shapes(frames: int, n: int = 128) -> Callable[[], torch.Tensor]:
    """``n`` BouncingShapes clips of ``frames`` frames of 32x32 that no recipe trains on (seed 10,000)."""
    return lambda: BouncingShapes(n, frames=frames, size=32, seed=10_000).get_batch(torch.arange(n))


def _video_metrics(dataset: str, real: Callable[[], torch.Tensor], n: int = 128,
                   num_classes: int = 0) -> Callable[..., dict[str, float]]:
    """Metrics of ``n`` sampled clips (``sample(n, seed)``, the public API's sampler) against ``n`` held-out real ones.

    A class-conditional model's clips are drawn for each class in turn (as ``sample`` does), and
    ``label_agreement`` says how many show the class asked for (for digits ``label_accuracy``: how many
    clear frames show the digit asked for)."""
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
        if dataset == "digits":
            c = digit_constancy(clips, labels=torch.arange(n) % num_classes if num_classes else None)
            out.update(digit_constant=c["digit_constant"], exactly_one=c["exactly_one"])
            if num_classes:
                out["label_accuracy"] = c["accuracy"]
        return {k: round(float(v), 4) for k, v in out.items()}
    return evaluate


def _digit_loss(objective: str, time_distribution: str = "logit_normal") -> Callable[[nn.Module, Any], torch.Tensor]:
    """Lesson 06's loss with label dropout (p = 0.1, null label 10): v-prediction on the cosine schedule,
    or flow matching with the network called at t·1000."""
    def loss(model: nn.Module, batch: Any) -> torch.Tensor:
        images, labels = batch
        labels = drop_labels(labels, 0.1, 10)
        if objective == "v":
            return diffusion_loss(lambda x, t: model(x, t, labels), images, _COSINE, prediction_type="v")
        return flow_matching_loss(lambda x, t: model(x, t * 1000, labels), images, time_distribution=time_distribution)
    return loss


def _fid(n: int = 500) -> Callable[..., dict[str, float]]:
    """FID-lite of ``n`` samples (classes 0-9 cycling, no guidance) against ``n`` held-out digits."""
    def evaluate(sample: Callable[[int, int], torch.Tensor], n: int = n) -> dict[str, float]:
        real = DigitImages(n, seed=100).get_batch(torch.arange(n))[0]
        return {"fid_lite": round(float(fid_lite(real, sample(n, 1), "digits")), 3), "samples": n}
    return evaluate


def _photo_reconstruction(n: int = 512) -> Callable[[nn.Module], dict[str, float]]:
    """PSNR and SSIM of the autoencoder's reconstructions of ``n`` 64x64 views of the evaluation photographs
    (:data:`vdlearn.data.photos.EVAL_PHOTOS`, never trained on)."""
    def evaluate(vae: nn.Module) -> dict[str, float]:
        from ..data import EVAL_PHOTOS
        views = CameraClips(n, frames=1, size=64, photos=list(EVAL_PHOTOS), motions=["static"], seed=10_000)
        clips = views.get_batch(range(n))[0]
        with torch.no_grad():
            recon = vae.decode_video(vae.encode_video(clips)).clamp(-1, 1)
        return {"psnr": round(float(psnr(recon, clips).mean()), 2), "ssim": round(float(ssim(recon, clips).mean()), 4),
                "views": n}
    return evaluate


class _ShapesAndDigits:
    """``n`` BouncingShapes clips then ``n`` MovingDigits clips (grey, repeated to RGB): ``frames`` frames of 32x32."""

    def __init__(self, n: int, frames: int, seed: int = 0):
        self.n = n
        self.shapes = BouncingShapes(n, frames=frames, size=32, seed=seed)
        self.digits = MovingDigits(n, frames=frames, size=32, seed=seed)

    def __len__(self) -> int:
        return 2 * self.n

    def get_batch(self, indices: Any) -> torch.Tensor:
        indices = torch.as_tensor(indices)
        shapes, digits = indices[indices < self.n], indices[indices >= self.n] - self.n
        parts = ([self.shapes.get_batch(shapes)] if len(shapes) else []) + \
                ([self.digits.get_batch(digits).expand(-1, 3, -1, -1, -1)] if len(digits) else [])
        return torch.cat(parts)


def _video_vae_reconstruction(n: int = 64, frames: int = 16) -> Callable[[nn.Module], dict[str, float]]:
    """PSNR of a video autoencoder's reconstructions of ``n`` held-out BouncingShapes and ``n`` MovingDigits
    clips (``frames`` frames of 32x32), and the frame-difference energy of the reconstructions over the
    input's (1: no added flicker, no motion lost)."""
    def evaluate(vae: nn.Module) -> dict[str, float]:
        out: dict[str, float] = {}
        held_out = _ShapesAndDigits(n, frames, seed=10_000)
        for name, part in (("shapes", range(n)), ("digits", range(n, 2 * n))):
            clips = held_out.get_batch(list(part))
            with torch.no_grad():
                recon = vae.decode_video(vae.encode_video(clips), frames=frames)
            out[f"psnr_{name}"] = round(float(psnr(recon, clips).mean()), 2)
            out[f"energy_ratio_{name}"] = round(float(frame_difference_energy(recon).mean()
                                                      / frame_difference_energy(clips).mean()), 3)
        return {**out, "clips": 2 * n, "frames": frames}
    return evaluate


def _moving_digits(num_clips: int, seed: int, frames: int = 8) -> MovingDigits:
    """Lesson 07's MovingDigits: one digit of 18 px moving 1-2 px a frame in a 28 x 28 box, 8 frames (the first
    ``frames`` of them)."""
    return MovingDigits(num_clips, frames=frames, size=28, num_digits=1, digit_size=18, speed=(1.0, 2.0), seed=seed)


class _FirstFrames:
    """The first frames of a MovingDigits dataset and each clip's digit: batches ``(images (B, 1, H, W), labels)``,
    what an image model of "frame 0 of a clip showing digit y" trains on."""

    def __init__(self, data: MovingDigits):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def get_batch(self, indices: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.get_batch(indices)[:, :, 0], self.data.clip_labels(indices)


class _GivenAndPaths:
    """The first ``given`` frames of the clips of ``dataset(frames)`` (a MovingDigits or BouncingShapes maker) and
    where the object goes from the last of them: batches ``(given frames, displacements (B, 8 - given, 2) px)``,
    the frames (B, C, H, W) for one, (B, C, given, H, W) for more (:func:`vdlearn.video.trajectory.displacements`)."""

    def __init__(self, dataset: Callable[[int], Any], given: int = 1, frames: int = 8):
        self.given, self.context, self.clips = given, dataset(given), dataset(frames)

    def __len__(self) -> int:
        return len(self.clips)

    def get_batch(self, indices: Any) -> tuple[torch.Tensor, torch.Tensor]:
        context = self.context.get_batch(indices)
        return (context[:, :, 0] if self.given == 1 else context,
                displacements(self.clips.trajectories(indices)[:, 0, self.given - 1:]))


def _trajectory_metrics(n: int = 128) -> Callable[..., dict[str, float]]:
    """Lesson 07's digit metrics of ``n`` generated clips (:func:`_video_metrics`), the same for clips grown from
    ``n`` held-out real first frames (image to video), and the physics score of both beside the real clips'
    (the score tracks the ink's centre, so real digit clips score above 0: they are the reference)."""
    generated = _video_metrics("digits", lambda: _moving_digits(n, seed=10_000).get_batch(torch.arange(n)),
                               n=n, num_classes=10)

    def evaluate(sample: Callable[..., torch.Tensor], n: int = n) -> dict[str, float]:
        real = _moving_digits(n, seed=10_000).get_batch(torch.arange(n))
        clips = sample(n, 0)
        out = generated(lambda *_: clips, n)                 # the same clips: draw them once
        grown = sample(n, 0, image=real[:, :, 0])
        c = digit_constancy(grown)
        speed = _moving_digits(1, 0).speed
        out.update(physics_px=physics_score(clips, speed=speed)["score"],
                   physics_px_real=physics_score(real, speed=speed)["score"],
                   image_to_video_digit_constant=c["digit_constant"],
                   image_to_video_energy_ratio=motion_stats(grown, real)["energy_ratio"],
                   image_to_video_physics_px=physics_score(grown, speed=speed)["score"], clips=n)
        return {k: round(float(v), 4) for k, v in out.items()}
    return evaluate


def _first_frame_metrics(n: int = 500) -> Callable[..., dict[str, float]]:
    """FID-lite of ``n`` sampled first frames (digits 0-9 cycling) against ``n`` held-out real ones, and how many
    show the digit asked for, read by :func:`vdlearn.metrics.digit_constancy`'s classifier."""
    def evaluate(sample: Callable[[int, int], torch.Tensor], n: int = n) -> dict[str, float]:
        real = _FirstFrames(_moving_digits(n, seed=10_000, frames=1)).get_batch(torch.arange(n))[0]
        made = sample(n, 0)
        read = digit_constancy(made[:, :, None], labels=torch.arange(n) % 10)
        return {"fid_lite": round(float(fid_lite(real, made, "digits")), 3),
                "label_accuracy": round(float(read["accuracy"]), 4), "one_digit": round(float(read["exactly_one"]), 4),
                "samples": n}
    return evaluate


class _Grey:
    """A grey clip dataset repeated to RGB (for an autoencoder of colour clips)."""

    def __init__(self, data: Any):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def get_batch(self, indices: Any) -> torch.Tensor:
        return self.data.get_batch(indices).expand(-1, 3, -1, -1, -1)


def _labelled_latents(dataset: Callable[[], Any], labels: Callable[[Any, torch.Tensor], torch.Tensor],
                             vae: str) -> Callable[[Path], TensorDataset]:
    """Clips of ``dataset()`` encoded once by the video autoencoder ``vae``, with ``labels(dataset, indices)``:
    batches ``[latents, labels]``."""
    def make(folder: Path) -> TensorDataset:
        data = dataset()
        latents = _latents(lambda: data, vae)(folder)
        return TensorDataset(latents, labels(data, torch.arange(len(latents))))
    return make


#: Tasks on a causal VAE's latents: latent frame 0 is frame 0 alone, so "the first k latent frames" is a
#: clip's beginning; the last latent frame is not the last frame alone (no interpolation), nor does a
#: latent clip run backwards (no reversal, no mirrored tasks).
_CAUSAL_TASKS = {"unconditional": 0.6, "prediction": 0.3, "image_to_video": 0.1}


def _causal_flow_loss(model: nn.Module, batch: list[torch.Tensor]) -> torch.Tensor:
    """Flow matching on labelled causal latents: the tasks above (up to 2 given latent frames, that is up to
    3 frames at 2x time compression), the class dropped to the null label one time in ten."""
    latents, labels = batch
    return masked_flow_loss(model, latents, probs=_CAUSAL_TASKS, max_k=2, labels=labels, p_uncond=0.1)


def _camera_latents(num_clips: int, vae: str) -> Callable[[Path], TensorDataset]:
    """``num_clips`` camera clips of the training photographs (8 frames of 64x64) encoded by ``vae``, and their
    motions: batches ``[latents, motions]``."""
    def make(folder: Path) -> TensorDataset:
        clips = CameraClips(num_clips, frames=8, size=64, seed=0)
        latents = _cached(folder, "latents.pt", lambda: encode_dataset(load_pretrained(vae), clips, batch_size=64))
        motions = _cached(folder, "motions.pt", lambda: torch.tensor([clips.path(i)[1] for i in range(num_clips)]))
        return TensorDataset(latents, motions)
    return make


def _camera_metrics(n: int = 140) -> Callable[..., dict[str, float]]:
    """Every camera motion on ``n / 7`` views of the evaluation photographs (never trained on): is the
    requested motion the estimated one, what the model invents where the view opens against the truth and
    the Ken Burns baselines, and how its own frames keep the photograph."""
    def evaluate(sample: Callable[..., torch.Tensor], n: int = n) -> dict[str, float]:
        import numpy as np
        from ..data import CAMERA_MOTIONS, EVAL_PHOTOS
        from ..metrics import camera_clip_scores, estimate_camera_motion
        from ..video.baselines import ken_burns
        per = n // len(CAMERA_MOTIONS)
        truths, paths, motions = [], [], []
        for k, name in enumerate(CAMERA_MOTIONS):
            views = CameraClips(per, frames=8, size=64, photos=list(EVAL_PHOTOS), motions=[name], seed=10_000 + k)
            for i in range(per):
                truths.append(views[i][0])
                paths.append(views.path(i)[2])
                motions.append(name)
        truth, n = torch.stack(truths), len(truths)
        image = truth[:, :, 0]
        made = sample(n, 0, image=image, labels=motions)
        own = sample(n, 0, image=image, labels=motions, keep_given=False)
        scores = {key: [] for key in ("model", "own", "edge", "inpaint")}
        for i in range(n):
            scores["model"].append(camera_clip_scores(made[i], truth[i], paths[i]))
            scores["own"].append(camera_clip_scores(own[i], truth[i], paths[i]))
            for fill in ("edge", "inpaint"):
                moved = ken_burns(image[i:i + 1], motions[i], 8, fill=fill)[0]
                scores[fill].append(camera_clip_scores(moved, truth[i], paths[i]))

        def mean(key: str, field: str) -> float:
            values = [s[field] for s in scores[key] if not np.isnan(s[field])]
            return round(float(np.mean(values)), 3)

        estimated = estimate_camera_motion(made)["motion"]
        return {"motion_accuracy": round(float(np.mean([e == m for e, m in zip(estimated, motions)])), 4),
                "revealed_psnr": mean("model", "revealed_psnr"), "revealed_psnr_edge": mean("edge", "revealed_psnr"),
                "revealed_psnr_inpaint": mean("inpaint", "revealed_psnr"),
                "revealed_ssim": mean("model", "revealed_ssim"), "revealed_ssim_edge": mean("edge", "revealed_ssim"),
                "own_kept_psnr": mean("own", "kept_psnr"), "own_last_correlation": mean("own", "last_correlation"),
                "last_correlation": mean("model", "last_correlation"), "clips": n}
    return evaluate


def _prediction_scores(sample: Callable[..., torch.Tensor], clips: torch.Tensor, k: int) -> tuple[dict, torch.Tensor]:
    """Lesson 08's prediction task on held-out 8-frame ``clips``: 2 frames given, ``k`` samples (seeds 0..k-1); the
    best of ``k`` and the first sample's PSNR on the 6 frames predicted, constant velocity's and optical-flow
    warping's. Returns the scores and the first sample's whole clips."""
    from ..video.baselines import flow_warp
    context, truth = clips[:, :, :2], clips[:, :, 2:]
    made = [sample(len(clips), j, context=context) for j in range(k)]
    predicted = torch.stack([m[:, :, 2:] for m in made])
    scores = {f"prediction_psnr_best_of_{k}": best_of_k(predicted, truth, psnr).mean(),
              "prediction_psnr_one_sample": psnr(predicted[0], truth).mean(),
              "prediction_psnr_constant_velocity": psnr(constant_velocity(context, 6).clamp(-1, 1), truth).mean(),
              "prediction_psnr_optical_flow": psnr(flow_warp(context, 6).clamp(-1, 1), truth).mean()}
    return {key: round(float(v), 2) for key, v in scores.items()}, made[0]


def _masked_video_metrics(n: int = 64, k: int = 4) -> Callable[..., dict[str, float]]:
    """Lesson 08's two tasks on ``n`` held-out BouncingShapes clips: image to video (the physics score and
    constancy of clips grown from each first frame) and prediction from 2 given frames
    (:func:`_prediction_scores`)."""
    def evaluate(sample: Callable[..., torch.Tensor], n: int = n) -> dict[str, float]:
        clips = _held_out_shapes(8, n)()
        grown = sample(n, 0, image=clips[:, :, 0])
        c = object_constancy(grown)
        return {"image_to_video_physics_px": round(physics_score(grown)["score"], 3),
                "image_to_video_constant": round(c["constant"], 4), "exactly_one": round(c["exactly_one"], 4),
                **_prediction_scores(sample, clips, k)[0], "clips": n}
    return evaluate


def _prediction_metrics(dataset: str = "shapes", n: int = 64, k: int = 4) -> Callable[..., dict[str, float]]:
    """Lesson 08's prediction task (:func:`_prediction_scores`) on ``n`` held-out clips of ``dataset`` (``"shapes"``:
    BouncingShapes; ``"digits"``: lesson 07's MovingDigits), and the physics score (beside the real clips') and the
    constancy of the first sample's whole clips."""
    def evaluate(sample: Callable[..., torch.Tensor], n: int = n) -> dict[str, float]:
        if dataset == "shapes":
            clips, speed = _held_out_shapes(8, n)(), BouncingShapes(1).speed
        else:
            clips, speed = _moving_digits(n, seed=10_000).get_batch(torch.arange(n)), _moving_digits(1, 0).speed
        scores, made = _prediction_scores(sample, clips, k)
        constant = (object_constancy(made)["constant"] if dataset == "shapes"
                    else digit_constancy(made)["digit_constant"])
        return {**scores, "physics_px": round(physics_score(made, speed=speed)["score"], 3),
                "physics_px_real": round(physics_score(clips, speed=speed)["score"], 3),
                "constant": round(float(constant), 4), "clips": n}
    return evaluate


def _frame_vae_frames(folder: Path) -> torch.Tensor:
    """Lesson 09's FrameVAE training frames: the 16 frames of 256 BouncingShapes clips of 32x32 and 32x32 crops
    (at random places) of the frames of 256 clips of 64x64: (8192, 3, 32, 32)."""
    whole = BouncingShapes(256, frames=16, size=32, seed=0).get_batch(torch.arange(256)).transpose(1, 2).flatten(0, 1)
    big = BouncingShapes(256, frames=16, size=64, seed=1).get_batch(torch.arange(256)).transpose(1, 2).flatten(0, 1)
    dx, dy = torch.randint(0, 64 - 32 + 1, (2, len(big)), generator=torch.Generator().manual_seed(0)).tolist()
    crops = torch.stack([f[:, y:y + 32, x:x + 32] for f, x, y in zip(big, dx, dy)])
    return torch.cat([whole, crops])


def _frame_reconstruction(n: int = 512) -> Callable[[nn.Module], dict[str, float]]:
    """PSNR and SSIM of a frame autoencoder's reconstructions of ``n`` held-out 32x32 BouncingShapes frames."""
    def evaluate(vae: nn.Module) -> dict[str, float]:
        clips = _held_out_shapes(8, n // 8)()
        with torch.no_grad():
            recon = vae.decode_video(vae.encode_video(clips)).clamp(-1, 1)
        return {"psnr": round(float(psnr(recon, clips).mean()), 2), "ssim": round(float(ssim(recon, clips).mean()), 4),
                "frames": n // 8 * 8}
    return evaluate


#: the sampler of lessons 07-09's diffusion (not flow) video models
_V_SAMPLING = {"num_timesteps": 1000, "prediction_type": "v", "sampler": "dpm++2m", "schedule": "cosine",
               "steps": 20}


_UNET06 = {"in_channels": 1, "base_channels": 16, "channel_mults": [1, 2, 4], "attention_levels": [2],
           "num_res_blocks": 1, "num_classes": 10}
_DIGITS06 = dict(builder="vdlearn.nn:UNet2D", kwargs=_UNET06, data=lambda folder: DigitImages(20_000, seed=0),
                 num_steps=2_500, batch_size=64, lr=2e-3, warmup_steps=100, ema_decay=0.999, evaluate=_fid())

def _causal_vae_kwargs(temporal_down: int, latent_channels: int) -> dict[str, Any]:
    return {"in_channels": 3, "latent_channels": latent_channels, "width": 16, "spatial_down": 4,
            "temporal_down": temporal_down, "image_size": 32, "frames": 17}


#: the causal VAEs of lesson 09: started from the shipped FrameVAE inflated to 3D, trained on shapes and digits
_CAUSAL_VAE = dict(builder="vdlearn.vae:CausalVideoVAE",
                   start=lambda vae: inflate_frame_vae(vae, load_pretrained("09_frame_vae_shapes")),
                   data=lambda folder: _ShapesAndDigits(100_000, frames=17),
                   loss=lambda model, batch: vae_loss(model, batch, beta=0.1), batch_size=16, lr=1e-3,
                   warmup_steps=50, ema_decay=0.995, evaluate=_video_vae_reconstruction(),
                   finish=lambda vae, data: calibrate_scaling_factor(vae, data, num_examples=256))


def _motion_prediction(name: str, dataset: str, data: str, thing: str, channels: int, size: int,
                       clips: Callable[[int], Any]) -> Recipe:
    """Lesson 08's prediction by a model of motion alone on ``dataset``: a TrajectoryNet shown 2 frames of
    ``clips(frames)`` generates the object's steps over the 6 frames to come; the second frame is moved along them."""
    return Recipe(
        name=name, lesson=8,
        summary=f"prediction on {data}: given 2 frames, the {thing}'s steps over the 6 frames to come (6 x 2 numbers) "
                "generated by flow matching, conditioned on both given frames (TrajectoryNet, given=2), and the second "
                "frame moved along their sums",
        builder="vdlearn.video.trajectory:TrajectoryNet",
        kwargs={"frames": 7, "size": size, "channels": channels, "given": 2, "dim": 128, "depth": 4, "width": 32,
                "scale": 1.0},
        data=lambda folder: _GivenAndPaths(clips, given=2), loss=trajectory_flow_loss,
        num_steps=4_000, batch_size=128, lr=1e-3, warmup_steps=100, decay_steps=1_000, ema_decay=0.999,
        weights_dtype="float16",
        sampling={"kind": "trajectory_video", "shape": [channels, 8, size, size], "given": 2, "sampler": "flow-euler",
                  "steps": 20},
        evaluate=_prediction_metrics(dataset))


#: lesson 07's video DiT of BouncingShapes, trained in two stages (the second continues the first)
_DIT_SHAPES = dict(
    builder="vdlearn.nn.video_dit:VideoDiT",
    kwargs={"in_channels": 8, "frames": 5, "size": 8, "patch": 1, "tubelet": 5, "dim": 128, "depth": 8, "heads": 4,
            "cond_channels": 9, "num_classes": 18},
    data=_labelled_latents(lambda: BouncingShapes(16_384, frames=8, size=32, seed=0), lambda data, i: data.labels(i),
                           "09_causal_vae"),
    loss=_causal_flow_loss, batch_size=16, ema_decay=0.999, weights_dtype="float16",
    sampling={"kind": "latent_flow_video", "shape": [3, 8, 32, 32], "sampler": "flow-euler", "steps": 30,
              "shift": 3.0, "vae": "09_causal_vae", "guidance_scale": 2.0, "classes": BouncingShapes(1).class_names()},
    evaluate=_video_metrics("shapes", _held_out_shapes(8), num_classes=18))

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
        name="07_spacetime_unet_shapes", lesson=7,
        summary="lesson 07's cpu space-time U-Net (factorised space and time attention) on 4,096 BouncingShapes "
                "clips of 8x32x32; joint image-video training (one clip in five becomes independent frames), "
                "v-prediction, cosine schedule",
        builder="vdlearn.nn.spacetime_unet:SpaceTimeUNet",
        kwargs={"in_channels": 3, "base_channels": 32, "channel_mults": [1, 2], "num_res_blocks": 1,
                "attention_levels": [1], "num_heads": 4, "max_frames": 8, "patch_size": 2},
        data=lambda folder: BouncingShapes(4_096, frames=8, size=32, seed=0),
        loss=lambda model, clips: video_diffusion_loss(model, clips, _COSINE, p_image=0.2, prediction_type="v"),
        num_steps=3_000, batch_size=16, lr=2e-3, warmup_steps=50, ema_decay=0.995,
        sampling={"kind": "video", "shape": [3, 8, 32, 32], **_V_SAMPLING},
        evaluate=_video_metrics("shapes", _held_out_shapes(8)),
    ),
    Recipe(
        name="08_masked_video_shapes", lesson=8,
        summary="lesson 08's masked-conditional U-Net on 8,192 BouncingShapes clips of 8x32x32: given frames "
                "(image to video, prediction, interpolation, none) as input channels, dropped one time in ten for "
                "guidance and noised up to 0.2; v-prediction, cosine schedule",
        builder="vdlearn.video:MaskedVideoDiffusion",
        kwargs={"channels": 3, "frames": 8, "base_channels": 32, "channel_mults": [1, 2], "num_res_blocks": 1,
                "attention_levels": [1], "patch_size": 2},
        data=lambda folder: BouncingShapes(8_192, frames=8, size=32, seed=0),
        loss=lambda model, clips: masked_diffusion_loss(model, clips, _COSINE, p_uncond=0.1, max_aug=0.2,
                                                        prediction_type="v"),
        num_steps=3_000, batch_size=16, lr=2e-3, warmup_steps=100, ema_decay=0.995,
        sampling={"kind": "masked_video", "shape": [3, 8, 32, 32], "guidance_scale": 1.0, **_V_SAMPLING},
        evaluate=_masked_video_metrics(),
    ),
    Recipe(
        name="09_frame_vae_shapes", lesson=9,
        summary="lesson 09's FrameVAE (4x downsampling, 4 latent channels, width 16) of 32x32 BouncingShapes "
                "frames and 32x32 crops of 64x64 ones; beta 0.1, calibrated Gaussian decoder",
        builder="vdlearn.vae:FrameVAE",
        kwargs={"in_channels": 3, "latent_channels": 4, "downsample": 4, "width": 16, "image_size": 32},
        data=_frame_vae_frames, loss=lambda model, batch: vae_loss(model, batch, beta=0.1), num_steps=1_000,
        batch_size=64, lr=2e-3, warmup_steps=50, ema_decay=None, evaluate=_frame_reconstruction(),
        finish=lambda vae, data: calibrate_scaling_factor(vae, data),
    ),
    Recipe(
        name="09_latent_unet_shapes", lesson=9,
        summary="lesson 09's latent U-Net (space-time attention at the lowest level) on 1,024 BouncingShapes clips "
                "of 16x32x32 encoded by the shipped FrameVAE (4x16x8x8 each); v-prediction, cosine schedule",
        builder="vdlearn.nn.spacetime_unet:SpaceTimeUNet",
        kwargs={"in_channels": 4, "base_channels": 16, "channel_mults": [1, 2, 2], "num_res_blocks": 1,
                "attention_levels": [2], "temporal_attention_levels": [2], "max_frames": 16},
        data=_latents(lambda: BouncingShapes(1_024, frames=16, size=32, seed=0), "09_frame_vae_shapes"),
        loss=lambda model, z: latent_diffusion_loss(model, z, _COSINE, prediction_type="v"),
        num_steps=4_000, batch_size=16, lr=2e-3, warmup_steps=100, ema_decay=0.995,
        sampling={"kind": "latent_video", "shape": [3, 16, 32, 32], "vae": "09_frame_vae_shapes", **_V_SAMPLING},
        evaluate=_video_metrics("shapes", _held_out_shapes(16)),
    ),
    Recipe(
        name="08_photo_vae", lesson=8,
        summary="a FrameVAE (4x downsampling, 4 latent channels) of 64x64 views of the training photographs, "
                "at random places, scales and small rotations; beta 0.1, calibrated Gaussian decoder",
        builder="vdlearn.vae:FrameVAE",
        kwargs={"in_channels": 3, "latent_channels": 4, "downsample": 4, "width": 16, "image_size": 64},
        data=lambda folder: CameraClips(1_000_000, frames=1, size=64, motions=["static"], seed=0),
        loss=lambda model, batch: vae_loss(model, batch, beta=0.1), num_steps=4_000, batch_size=32, lr=1e-3,
        warmup_steps=100, decay_steps=1_000, ema_decay=0.999, evaluate=_photo_reconstruction(),
        finish=lambda vae, data: calibrate_scaling_factor(vae, data, num_examples=1024),
    ),
    Recipe(
        name="09_causal_vae", lesson=9,
        summary="a causal 3D VAE (4x space, 2x time, 8 latent channels: 17 frames of 32x32 -> 8x9x8x8) of "
                "BouncingShapes and MovingDigits clips, started from the shipped FrameVAE's weights inflated to "
                "3D (each kernel on the present frame); beta 0.1, calibrated Gaussian decoder",
        kwargs=_causal_vae_kwargs(temporal_down=2, latent_channels=8), num_steps=1_600, decay_steps=400,
        **_CAUSAL_VAE),
    Recipe(
        name="09_causal_vae_t4", lesson=9,
        summary="the same causal 3D VAE with 4x time compression and 16 latent channels (17 frames of 32x32 -> "
                "16x5x8x8), started the same way; for latent diffusion on a quarter of the frames",
        kwargs=_causal_vae_kwargs(temporal_down=4, latent_channels=16), num_steps=2_000, decay_steps=500,
        weights_dtype="float16", **_CAUSAL_VAE),
    Recipe(
        name="08_camera_dit_photos", lesson=8,
        summary="camera-controlled image to video: 8 frames of 64x64 moving through the training photographs "
                "(pan left/right/up/down, zoom in/out, still), in the photo VAE's latents (4x16x16 a frame); a "
                "video DiT told the first frame's latent warped to every frame, where it lands, and the motion; "
                "flow matching on the frames after the first",
        builder="vdlearn.nn.video_dit:VideoDiT",
        kwargs={"in_channels": 4, "frames": 8, "size": 16, "patch": 2, "tubelet": 8, "dim": 128, "depth": 8,
                "heads": 4, "cond_channels": 5, "num_classes": 7},
        data=_camera_latents(16_384, "08_photo_vae"), loss=camera_flow_loss, num_steps=4_000, batch_size=16,
        lr=5e-4, warmup_steps=200, decay_steps=1_000, ema_decay=0.999, weights_dtype="float16",
        sampling={"kind": "camera_video", "shape": [3, 8, 64, 64], "sampler": "flow-euler", "steps": 20,
                  "vae": "08_photo_vae", "guidance_scale": 1.0, "classes": list(CAMERA_MOTIONS)},
        evaluate=_camera_metrics(),
    ),
    Recipe(
        name="07_causal_dit_digits", lesson=7,
        summary="MovingDigits 8x28x28 (one 18 px digit moving 1-2 px a frame) in the causal VAE's latents "
                "(8 frames, repeated to RGB -> 8x5x7x7); a video DiT whose tokens span all 5 latent frames, told "
                "each clip's digit (dropped one time in ten for guidance); flow matching, logit-normal t; "
                "generation, prediction and image to video from one set of weights; the learning rate decays to 0 "
                "over the last 4,000 steps",
        builder="vdlearn.nn.video_dit:VideoDiT",
        kwargs={"in_channels": 8, "frames": 5, "size": 7, "patch": 1, "tubelet": 5, "dim": 128, "depth": 8,
                "heads": 4, "cond_channels": 9, "num_classes": 10},
        data=_labelled_latents(lambda: _Grey(_moving_digits(16_384, seed=0)),
                                      lambda data, i: data.data.clip_labels(i), "09_causal_vae"),
        loss=_causal_flow_loss, num_steps=15_000, batch_size=16, lr=5e-4, warmup_steps=200, decay_steps=4_000,
        ema_decay=0.999, weights_dtype="float16",
        sampling={"kind": "latent_flow_video", "shape": [1, 8, 28, 28], "sampler": "flow-euler", "steps": 20,
                  "vae": "09_causal_vae", "guidance_scale": 2.0, "classes": [str(d) for d in range(10)]},
        evaluate=_video_metrics("digits", lambda: _moving_digits(128, seed=10_000).get_batch(torch.arange(128)),
                                num_classes=10),
    ),
    Recipe(
        name="07_first_frame_digits", lesson=7, builder=_DIGITS06["builder"], kwargs=_UNET06, num_steps=1_500,
        batch_size=64, lr=1e-3, warmup_steps=100, ema_decay=0.999,
        summary="the first frames of lesson 07's MovingDigits clips (one 18 px digit anywhere in 28 x 28), told the "
                "digit: lesson 06's U-Net fine-tuned from the shipped 06_unet2d_digits; v-prediction, label dropout",
        data=lambda folder: _FirstFrames(_moving_digits(1_000_000, seed=0, frames=1)), loss=_digit_loss("v"),
        start=lambda model: model.load_state_dict(load_pretrained("06_unet2d_digits").state_dict()),
        weights_dtype="float16",
        sampling={"kind": "image", "shape": [1, 28, 28], "schedule": "cosine", "num_timesteps": 1000,
                  "prediction_type": "v", "sampler": "dpm++2m", "steps": 20, "guidance_scale": 2.0},
        evaluate=_first_frame_metrics()),
    Recipe(
        name="07_trajectory_digits", lesson=7,
        summary="MovingDigits 8x28x28 as a first frame and a trajectory: the digit's 7 steps from frame to frame "
                "(7 x 2 numbers) generated by flow matching, conditioned on the first frame (TrajectoryNet: "
                "CoordConv encoder and a residual MLP), and frame 0 moved along their sums; the first frame "
                "drawn by 07_first_frame_digits, told the digit",
        builder="vdlearn.video.trajectory:TrajectoryNet",
        kwargs={"frames": 8, "size": 28, "channels": 1, "dim": 128, "depth": 4, "width": 32, "scale": 1.0},
        data=lambda folder: _GivenAndPaths(lambda frames: _moving_digits(1_000_000, 0, frames)),
        loss=trajectory_flow_loss,
        num_steps=8_000, batch_size=128, lr=1e-3, warmup_steps=100, decay_steps=2_000, ema_decay=0.999,
        weights_dtype="float16",
        sampling={"kind": "trajectory_video", "shape": [1, 8, 28, 28], "sampler": "flow-euler", "steps": 20,
                  "first_frame": "07_first_frame_digits", "guidance_scale": 2.0,
                  "classes": [str(d) for d in range(10)]},
        evaluate=_trajectory_metrics()),
    _motion_prediction("08_trajectory_shapes", "shapes", "BouncingShapes 8x32x32", "shape", channels=3, size=32,
                       clips=lambda frames: BouncingShapes(1_000_000, frames=frames, size=32, seed=0)),
    _motion_prediction("08_trajectory_digits", "digits", "lesson 07's MovingDigits 8x28x28", "digit", channels=1,
                       size=28, clips=lambda frames: _moving_digits(1_000_000, 0, frames)),
    Recipe(
        name="07_causal_dit_shapes_base", lesson=7, ships=False, **_DIT_SHAPES,
        summary="the first stage of 07_causal_dit_shapes (which says what it is): 22,000 steps at lr 5e-4, the "
                "last 6,000 decaying to 0",
        num_steps=22_000, lr=5e-4, warmup_steps=200, decay_steps=6_000),
    Recipe(
        name="07_causal_dit_shapes", lesson=7, continues="07_causal_dit_shapes_base", **_DIT_SHAPES,
        summary="BouncingShapes 8x32x32 in the causal VAE's latents (8 frames -> 8x5x8x8); a video DiT whose "
                "tokens span all 5 latent frames, told each clip's kind and colour (18 classes, dropped one time in "
                "ten for guidance); flow matching, logit-normal t; generation, prediction and image to video from "
                "one set of weights. Two stages: 07_causal_dit_shapes_base (22,000 steps at lr 5e-4, the last 6,000 "
                "decaying to 0), then 8,000 more at lr 2e-4 (the last 4,000 decaying); sampled with 30 Euler steps, "
                "time shift 3, guidance 2",
        num_steps=8_000, lr=2e-4, warmup_steps=100, decay_steps=4_000),
]}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``, or a KeyError that lists them."""
    if name not in RECIPES:
        raise KeyError(f"no pretraining recipe {name!r}; the recipes are: {', '.join(sorted(RECIPES))} "
                       "(`python -m vdlearn pretrain --list` describes them)")
    return RECIPES[name]


def recipe_table() -> str:
    """One line per recipe: name, lesson, steps, batch, learning rate, and what it trains."""
    def stage(r: Recipe) -> str:
        return (f"  (continues {r.continues})" if r.continues else "") + ("" if r.ships else "  (not shipped)")
    return "\n".join(f"{r.name:30s} lesson {r.lesson:02d}  {r.num_steps:>6,} steps x {r.batch_size:<3d} lr {r.lr:g}"
                     f"  EMA {r.ema_decay}{stage(r)}\n    {r.summary}" for r in RECIPES.values())

