"""Small pretrained checkpoints shipped in ``data/checkpoints/``, verified by SHA-256 before loading.

A lesson that trains for minutes on a GPU offers ``USE_PRETRAINED = True`` so that a student on a
laptop sees good samples in seconds. Each checkpoint is listed in ``data/checkpoints/manifest.json``
with its file, SHA-256, the lesson it serves, the class that builds its model and that class's
keyword arguments, and how it was trained::

    model = load_pretrained("06_unet2d_digits")     # checksum verified, weights_only=True
    clips = sample("07_spacetime_unet_shapes", 8)    # eight clips with the sampler its recipe names

A file whose checksum does not match is refused: it was damaged or altered.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..files import atomic_write

__all__ = ["checkpoint_dir", "manifest", "sha256", "verify", "load_state", "builder_class", "load_pretrained",
           "save_pretrained", "CONDITIONS", "sample"]


def checkpoint_dir() -> Path:
    """``data/checkpoints`` of the course checkout that this vdlearn comes from."""
    return Path(__file__).resolve().parents[2] / "data" / "checkpoints"


def manifest(folder: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The shipped checkpoints: name -> entry (file, sha256, lesson, builder, kwargs, trained)."""
    path = Path(folder or checkpoint_dir()) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint manifest at '{path}'. Pretrained weights ship with a clone of the course "
            "repository (data/checkpoints/); install the course from a clone, or set USE_PRETRAINED = False "
            "to train the model in the lesson instead."
        )
    return json.loads(path.read_text(encoding="utf-8"))


def sha256(path: str | Path) -> str:
    """The SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _entry(name: str, folder: Path) -> dict[str, Any]:
    entries = manifest(folder)
    if name not in entries:
        raise KeyError(f"no pretrained checkpoint {name!r}; shipped: {sorted(entries)}")
    return entries[name]


def verify(name: str, folder: str | Path | None = None) -> Path:
    """Check the checkpoint's SHA-256 against the manifest; return its path, or raise ValueError."""
    folder = Path(folder or checkpoint_dir())
    entry = _entry(name, folder)
    path = folder / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file '{path}' of {name!r} is missing")
    actual = sha256(path)
    if actual != entry["sha256"]:
        raise ValueError(
            f"checkpoint '{path}' fails its checksum (SHA-256 {actual[:16]}…, expected "
            f"{entry['sha256'][:16]}…): the file is damaged or was altered, so it is not loaded. "
            "Restore it with `git checkout -- data/checkpoints`, or train the model in the lesson."
        )
    return path


def load_state(name: str, folder: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The verified state dict of checkpoint ``name`` (loaded with ``weights_only=True``)."""
    path = verify(name, folder)
    return torch.load(path, map_location="cpu", weights_only=True)


def builder_class(builder: str) -> type[nn.Module]:
    """The model class a manifest's ``"module:Class"`` names, or a ValueError unless it is one of vdlearn's own.

    Only modules of this package are imported, and only a ``torch.nn.Module`` subclass defined in
    vdlearn is accepted: an edited manifest cannot make the loader import or run anything else.
    """
    module_name, _, class_name = str(builder).partition(":")
    refuse = (f"the manifest names the builder {builder!r}, but shipped models are built only by vdlearn's own "
              "model classes, written 'vdlearn.package:Class' (e.g. 'vdlearn.nn:UNet2D'); restore the manifest "
              "with `git checkout -- data/checkpoints`")
    if not (module_name == "vdlearn" or module_name.startswith("vdlearn.")) or not class_name.isidentifier():
        raise ValueError(refuse)
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{refuse} ({err})") from err
    if not (isinstance(cls, type) and issubclass(cls, nn.Module) and cls.__module__.startswith("vdlearn.")):
        raise ValueError(refuse)
    return cls


def load_pretrained(name: str, folder: str | Path | None = None) -> nn.Module:
    """Build the model of checkpoint ``name`` and load its verified weights (eval mode).

    The file's checksum is verified first, then the builder is checked to be one of vdlearn's model
    classes (:func:`builder_class`), and only then is anything built.
    """
    folder = Path(folder or checkpoint_dir())
    state = load_state(name, folder)
    entry = _entry(name, folder)
    cls = builder_class(entry["builder"])
    kwargs = entry.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ValueError(f"the manifest's kwargs of {name!r} must be a mapping of keyword arguments, got {kwargs!r}")
    model = cls(**kwargs)
    model.load_state_dict(state)
    return model.eval()


def save_pretrained(model: nn.Module, name: str, *, lesson: int, builder: str, kwargs: dict[str, Any],
                    trained: str, sampling: dict[str, Any] | None = None, folder: str | Path | None = None,
                    dtype: str = "float32") -> Path:
    """Save ``model``'s weights atomically and record them, with their SHA-256, in the manifest.

    ``builder`` is ``"module:Class"`` and ``kwargs`` rebuild the model; ``trained`` says how it was
    trained (preset, steps, device, minutes); ``sampling`` is the recipe :func:`sample` follows (kind,
    shape, schedule, prediction type, sampler, steps). ``dtype="float16"`` stores the floating-point
    weights in half precision (half the file; a relative rounding of at most :math:`2^{-11}`, far below
    what training moves them by); :func:`load_pretrained` copies them back into a float32 model.
    """
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be 'float32' or 'float16' (how the weights are stored); got {dtype!r}")
    folder = Path(folder or checkpoint_dir())
    folder.mkdir(parents=True, exist_ok=True)
    builder_class(builder)
    store = getattr(torch, dtype)
    state = {k: (v.detach().cpu().to(store) if v.is_floating_point() else v.detach().cpu()).clone()
             for k, v in model.state_dict().items()}
    path = atomic_write(folder / f"{name}.pt", lambda f: torch.save(state, f))
    manifest_path = folder / "manifest.json"
    entries = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    entries[name] = {"file": path.name, "sha256": sha256(path), "lesson": lesson, "builder": builder,
                     "kwargs": kwargs, "trained": trained, "bytes": path.stat().st_size}
    if dtype != "float32":
        entries[name]["dtype"] = dtype
    if sampling is not None:
        entries[name]["sampling"] = sampling
    text = json.dumps(entries, indent=2, sort_keys=True) + "\n"
    atomic_write(manifest_path, lambda f: f.write(text.encode("utf-8")))
    return path


#: What :func:`sample` accepts as a condition, per kind of shipped model (the manifest's ``sampling.kind``).
CONDITIONS = {"image": ("labels",), "video": (), "latent_video": (),
              "masked_video": ("image", "context", "first", "last"),
              "latent_flow_video": ("image", "context", "first", "last", "labels"),
              "flow_video": ("image", "context", "first", "last", "labels"),
              "camera_video": ("image", "labels", "keep_given"),
              "trajectory_video": ("image", "labels", "context")}


@torch.no_grad()
def sample(name: str, n: int, seed: int = 0, *, steps: int | None = None, sampler: str | None = None,
           folder: str | Path | None = None, **condition: Any) -> torch.Tensor:
    """``n`` samples of shipped model ``name`` in the course convention, with the sampler its recipe names.

    Images come back as (n, C, H, W), clips as (n, C, T, H, W), in [-1, 1]. ``seed`` fixes the noise;
    ``steps`` and ``sampler`` override the recipe's. Conditions, by kind of model:

    - a class-conditional image model takes ``labels`` (n,) (default: 0, 1, 2, ... cycling through the
      classes) and ``guidance_scale``; one trained by flow matching (``"objective": "flow"``) runs its
      velocity through any sampler (the flow samplers directly, the others by exact conversion);
    - the masked video model takes ``image`` (n, C, H, W) (image to video), ``context`` (n, C, k, H, W)
      (prediction), or ``first`` and ``last`` (interpolation); nothing samples it unconditionally;
    - a latent video model is decoded by the frame VAE its recipe names; a latent flow model
      (``latent_flow_video``) also takes ``image``, ``context`` or ``first`` and ``last``, and samples
      unconditionally without them. A class-conditional one also takes ``labels`` (n,): class indices
      or names from its recipe's ``classes`` (e.g. ``"red triangle"``; default: the classes in turn, or
      the null class when frames are given, since they show the class)
      and ``guidance_scale`` (default: its recipe's). One in a *causal* VAE's latents runs forwards only:
      it takes ``image`` and ``context``, not ``first`` and ``last``;
    - a camera-controlled image-to-video model (``camera_video``) takes ``image`` (n, 3, S, S), required,
      and ``labels``: camera motions by name (``"pan_left"``, ``"zoom_in"``, ...; default: each in turn);
      ``keep_given=False`` returns the network's frames without the photograph's pixels put back.

    - a trajectory model (``trajectory_video``) moves a first frame along displacements it generates for
      it: ``image`` (n, C, H, W) is that frame (image to video); without it the frame is drawn by the image
      model its recipe names (``first_frame``), told ``labels`` (class indices or names; default: each in
      turn) and ``guidance_scale``. One that predicts (its recipe's ``given`` > 1) takes ``context``, the
      first ``given`` frames (n, C, given, H, W), and nothing else.

    A condition the model was not trained for is an error that lists the ones it takes.
    """
    from ..diffusion import FLOW_SAMPLERS, classifier_free_guidance, make_schedule
    from ..diffusion import sample as run_sampler
    from ..video import animate, interpolate, predict, sample_latent_clips, sample_video

    folder = Path(folder or checkpoint_dir())
    entry = _entry(name, folder)
    recipe = entry.get("sampling")
    if not recipe:
        raise ValueError(f"shipped model {name!r} is not a generator with a sampling recipe (it is used by another "
                         f"model); sample one of {sorted(k for k, e in manifest(folder).items() if e.get('sampling'))}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n is the number of samples, a positive int; got {n!r}")
    kind = recipe["kind"]
    guidance = condition.pop("guidance_scale", recipe.get("guidance_scale", 1.0))
    unknown = sorted(set(condition) - set(CONDITIONS[kind]))
    if unknown:
        takes = ", ".join(CONDITIONS[kind]) or "no condition"
        raise ValueError(f"{name!r} was not trained for the condition(s) {unknown}; it takes {takes}")
    generator = torch.Generator().manual_seed(seed)
    model = load_pretrained(name, folder)
    shape = tuple(recipe["shape"])
    if kind == "camera_video":
        from ..video.camera import animate_photo
        if "image" not in condition:
            raise ValueError(f"{name!r} animates a photograph: pass image=(n, 3, S, S) in [-1, 1] (e.g. "
                             "vdlearn.videoio.load_image(path, size=64)) and labels=camera motion(s)")
        image = torch.as_tensor(condition["image"], dtype=torch.float32)
        if image.ndim != 4 or image.shape[0] != n:
            raise ValueError(f"image must be (n, 3, S, S) = ({n}, 3, S, S), got shape {tuple(image.shape)}")
        motions = condition.get("labels")
        motions = [recipe["classes"][i % len(recipe["classes"])] for i in range(n)] if motions is None else motions
        vae = load_pretrained(recipe["vae"], folder)
        return animate_photo(model, vae, image, motions, steps=steps or recipe["steps"], guidance_scale=guidance,
                             keep_given=bool(condition.get("keep_given", True)), generator=generator)
    if kind == "trajectory_video":
        if sampler not in (None, "flow-euler"):
            raise ValueError(f"{name!r} is a flow-matching model sampled with 'flow-euler'; got sampler={sampler!r}")
        return _trajectory_clips(name, model, recipe, n, seed, condition, steps or recipe["steps"], guidance,
                                 generator, folder)
    if kind in ("flow_video", "latent_flow_video"):
        if sampler not in (None, "flow-euler"):
            raise ValueError(f"{name!r} is a flow-matching model sampled with 'flow-euler'; got sampler={sampler!r}")
        vae = load_pretrained(recipe["vae"], folder) if kind == "latent_flow_video" else None
        given = any(k in condition for k in ("image", "context", "first", "last"))
        asked = condition.pop("labels", None)
        # with given frames the class is in them: unless asked for, the model runs with its null class
        labels = None if given and asked is None else _class_labels(name, model, asked, n, recipe.get("classes"))
        return flow_clips(model, vae, n, shape, condition, steps or recipe["steps"], recipe.get("shift", 1.0),
                          generator, labels=labels, guidance_scale=guidance)
    schedule = make_schedule(recipe.get("schedule", "cosine"), recipe.get("num_timesteps", 1000))
    options = {"steps": steps or recipe["steps"], "prediction_type": recipe.get("prediction_type", "velocity")}
    sampler = sampler or recipe["sampler"]
    if kind == "latent_video":
        vae = load_pretrained(recipe["vae"], folder)
        return sample_latent_clips(model, vae, n, shape[1], shape[2:], schedule, sampler=sampler,
                                   generator=generator, **options).clamp(-1, 1)
    if kind == "masked_video":
        options = {**options, "sampler": sampler, "guidance_scale": guidance, "generator": generator}
        if "image" in condition:
            return animate(model, condition["image"], schedule, **options)
        if "context" in condition:
            return predict(model, condition["context"], schedule, **options)
        if "first" in condition or "last" in condition:
            if not ("first" in condition and "last" in condition):
                raise ValueError("interpolation needs both first and last images (n, C, H, W)")
            return interpolate(model, condition["first"], condition["last"], schedule, **options)
        known = torch.zeros((n, *shape))
        return sample_video(model, known, torch.zeros(n, shape[1], dtype=torch.bool), schedule, **options)
    noise = torch.randn((n, *shape), generator=generator)
    if kind == "image":
        labels = torch.as_tensor(condition.get("labels", torch.arange(n) % model.num_classes)).long()
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), one class per sample; got {tuple(labels.shape)}")
        model = classifier_free_guidance(model, labels, guidance)
    if recipe.get("objective") == "flow":     # a velocity network called at t·time_scale, t in [0, 1]
        network, scale = model, float(recipe.get("time_scale", 1.0))
        model = lambda x, t: network(x, t * scale)  # noqa: E731
        options["prediction_type"] = "velocity"
        schedule = None if sampler in FLOW_SAMPLERS else schedule
    out = run_sampler(sampler, model, noise, schedule, clip_x0=True, generator=generator, **options)
    return out.clamp(-1, 1)


def _trajectory_clips(name: str, model: nn.Module, recipe: dict[str, Any], n: int, seed: int,
                      condition: dict[str, Any], steps: int, guidance: float, generator: torch.Generator,
                      folder: Path) -> torch.Tensor:
    """A trajectory model's clips: its given frames (``context``, or ``image``, or a first frame drawn by the
    image model its recipe names, told ``labels``) and the last of them moved along the paths it generates."""
    from ..video.trajectory import animate_along_trajectories, predict_along_trajectories
    shape, given = tuple(recipe["shape"]), recipe.get("given", 1)
    if given > 1 or "context" in condition:
        want = (n, shape[0], given, *shape[2:])
        context = condition.get("context")
        if given == 1 or set(condition) != {"context"} or tuple(torch.as_tensor(context).shape) != want:
            raise ValueError(f"{name!r} " + (f"predicts from the first {given} frames: pass only context= "
                                             f"(n, C, {given}, H, W) = {want} in [-1, 1]" if given > 1 else
                                             "animates one first frame: pass image= (n, C, H, W) or labels=, "
                                             "not context="))
        return predict_along_trajectories(model, context, steps=steps, generator=generator)
    if "image" in condition:
        if "labels" in condition:
            raise ValueError(f"{name!r} moves the image it is given, whose content is already drawn: pass image= "
                             "or labels=, not both")
        image = torch.as_tensor(condition["image"], dtype=torch.float32)
        want = (n, shape[0], *shape[2:])
        if tuple(image.shape) != want:
            raise ValueError(f"image must be the first frames (n, C, H, W) = {want} in [-1, 1], got shape "
                             f"{tuple(image.shape)}; resize with vdlearn.videoio.load_image(path, size=...)")
    else:
        labels = condition.get("labels")
        if labels is not None:
            labels = _class_labels(name, load_pretrained(recipe["first_frame"], folder), labels, n,
                                   recipe.get("classes"))
        image = sample(recipe["first_frame"], n, seed, folder=folder, guidance_scale=guidance,
                       **({} if labels is None else {"labels": labels}))
    return animate_along_trajectories(model, image, steps=steps, generator=generator)


def _class_labels(name: str, model: nn.Module, labels: Any, n: int, classes: list[str] | None) -> torch.Tensor | None:
    """The (n,) class indices a class-conditional model samples: given as indices or names, or each class in turn."""
    num_classes = getattr(model, "num_classes", 0) or 0
    if not num_classes:
        if labels is not None:
            raise ValueError(f"{name!r} is not class-conditional: it takes no labels")
        return None
    if labels is None:
        return torch.arange(n) % num_classes
    if isinstance(labels, str) or (isinstance(labels, (list, tuple)) and labels and isinstance(labels[0], str)):
        names = [labels] * n if isinstance(labels, str) else list(labels)
        unknown = [x for x in names if x not in (classes or [])]
        if unknown:
            raise ValueError(f"{name!r} knows no class {unknown[0]!r}; its classes are: {', '.join(classes or [])}")
        labels = [classes.index(x) for x in names]
    labels = torch.as_tensor(labels).long()
    if labels.ndim == 0:
        labels = labels.expand(n)
    if labels.shape != (n,) or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be {n} class indices in [0, {num_classes - 1}] or class names; got "
                         f"{labels.tolist()}")
    return labels


def _given_frames(condition: dict[str, Any], n: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips (n, C, T, H, W) holding the given frames of a condition, and the (n, T) mask of which they are."""
    channels, frames, size = shape[0], shape[1], shape[2:]
    known = torch.zeros((n, *shape))
    mask = torch.zeros(n, frames, dtype=torch.bool)

    def put(name: str, value: Any, at: slice, ndim: int) -> None:
        value = torch.as_tensor(value, dtype=torch.float32)
        want = f"(n, C, H, W) = ({n}, {channels}, {size[0]}, {size[1]})" if ndim == 4 else \
            f"(n, C, k, H, W) = ({n}, {channels}, k, {size[0]}, {size[1]}) with 1 <= k < {frames}"
        k = value.shape[2] if value.ndim == 5 else 1
        if value.ndim != ndim or value.shape[0] != n or value.shape[1] != channels or tuple(value.shape[-2:]) != size \
                or not 1 <= k < frames:
            raise ValueError(f"{name} must be {want} in [-1, 1], got shape {tuple(value.shape)}; resize with "
                             "vdlearn.videoio.load_image(path, size=...) and pass n of them")
        known[:, :, at] = value if ndim == 5 else value[:, :, None]
        mask[:, at] = True

    if "image" in condition:
        put("image", condition["image"], slice(0, 1), 4)
    elif "context" in condition:
        k = torch.as_tensor(condition["context"]).shape[2] if torch.as_tensor(condition["context"]).ndim == 5 else 0
        put("context", condition["context"], slice(0, max(k, 1)), 5)
    elif "first" in condition or "last" in condition:
        if not ("first" in condition and "last" in condition):
            raise ValueError("interpolation needs both first and last images (n, C, H, W)")
        put("first", condition["first"], slice(0, 1), 4)
        put("last", condition["last"], slice(frames - 1, frames), 4)
    return known, mask


def flow_clips(model: nn.Module, vae: nn.Module | None, n: int, shape: tuple[int, ...], condition: dict[str, Any],
               steps: int, shift: float, generator: torch.Generator, *, labels: torch.Tensor | None = None,
               guidance_scale: float = 1.0) -> torch.Tensor:
    """Sample a flow-matching video model of pixels (``vae=None``) or of a frame VAE's latents (the given
    frames are encoded, the result decoded); given frames are returned exactly as given. A class-conditional
    model takes ``labels`` (n,) and ``guidance_scale``."""
    from ..vae import CausalVideoVAE
    from ..video import decode_clips, encode_clips, known_latent_frames
    from ..video.flow import sample_masked_flow

    known, mask = _given_frames(condition, n, shape)
    causal = isinstance(vae, CausalVideoVAE)
    if causal and "last" in condition:
        raise ValueError("this model works in a causal VAE's latents, which run forwards only: it takes image= "
                         "(image to video) or context= (prediction), not first= and last= (interpolation)")
    # grey clips through an autoencoder of colour ones: repeated to RGB in, the channels' mean out
    grey = vae is not None and shape[0] == 1 and vae.in_channels == 3
    x = known.clamp(-1, 1) if vae is None else encode_clips(vae, known.clamp(-1, 1).expand(-1, 3 if grey else -1,
                                                                                              -1, -1, -1))
    x = sample_masked_flow(model, x, mask if vae is None else known_latent_frames(vae, mask), steps=steps,
                           shift=shift, labels=labels, guidance_scale=guidance_scale, generator=generator)
    if vae is None:
        clips = x
    else:
        clips = decode_clips(vae, x, frames=shape[1])
        clips = clips.mean(dim=1, keepdim=True) if grey else clips
    return torch.where(mask[:, None, :, None, None], known, clips.clamp(-1, 1))

