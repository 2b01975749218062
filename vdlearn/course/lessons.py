"""The lessons of the course, in order: number, file name, title and what each teaches."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Lesson", "LESSONS", "find_lesson", "repo_root"]


@dataclass(frozen=True)
class Lesson:
    """One lesson: ``solutions/{stem}.ipynb`` is its source, ``notebooks/{stem}.ipynb`` the student copy."""

    number: int
    name: str
    title: str
    teaches: str

    @property
    def stem(self) -> str:
        return f"{self.number:02d}_{self.name}"

    @property
    def filename(self) -> str:
        return f"{self.stem}.ipynb"


LESSONS: tuple[Lesson, ...] = (
    Lesson(0, "video_as_data", "Video as data",
           "video tensors, the course datasets, video files, classical ways to animate a still image"),
    Lesson(1, "vae_math", "The mathematics of VAEs",
           "latent variables, the ELBO two ways, Gaussian KL, reparameterisation vs score-function gradients"),
    Lesson(2, "vae_frames", "A VAE that makes video",
           "a convolutional VAE on digits, samples, latent interpolation as video, a frames-to-video pipeline"),
    Lesson(3, "gan_math", "The mathematics of GANs",
           "the minimax game, the optimal discriminator, JS divergence, generator losses, mode collapse"),
    Lesson(4, "gan_video", "GANs for images and video",
           "DCGAN on digits, training dynamics, a small video GAN baseline"),
    Lesson(5, "diffusion_math", "The mathematics of diffusion",
           "the forward process, diffusion as a hierarchical VAE, eps/x0/v targets, DDPM and DDIM, flow matching"),
    Lesson(6, "image_diffusion", "Diffusion for images",
           "a U-Net with time embedding and attention, classifier-free guidance, fast samplers"),
    Lesson(7, "video_diffusion", "Video diffusion",
           "a factorised space-time U-Net, training on moving data, video metrics and baselines"),
    Lesson(8, "image_to_video", "Animate, predict, interpolate, edit",
           "masked conditioning: image-to-video, prediction, interpolation, SDEdit-style editing"),
    Lesson(9, "latent_video_diffusion", "Latent video diffusion",
           "a frame VAE as compressor, diffusion in latent space, pixel vs latent trade-offs"),
    Lesson(10, "capstone_comparison", "Capstone: which generative model for video?",
           "VAE vs GAN vs pixel vs latent diffusion on one task, with one results table"),
)


def repo_root(start: str | Path | None = None) -> Path:
    """The course checkout: the nearest folder above ``start`` (default: here) with ``solutions/``."""
    candidates = [Path(start).resolve()] if start else [Path.cwd().resolve(), Path(__file__).resolve()]
    for base in candidates:
        for folder in (base, *base.parents):
            if (folder / "solutions").is_dir() and (folder / "vdlearn").is_dir():
                return folder
    raise FileNotFoundError(
        "could not find the course folder (one with solutions/ and vdlearn/) above "
        f"{candidates[0]}; run this from inside your clone of the repository"
    )


def find_lesson(key: str | int) -> Lesson:
    """A lesson by number (``6``, ``"06"``), name (``"image_diffusion"``) or stem (``"06_image_diffusion"``)."""
    text = str(key).strip().removesuffix(".ipynb")
    text = Path(text).name
    for lesson in LESSONS:
        if text in (lesson.name, lesson.stem) or (text.isdigit() and int(text) == lesson.number):
            return lesson
    names = ", ".join(lesson.stem for lesson in LESSONS)
    raise KeyError(f"no lesson {key!r}; the lessons are: {names}")
