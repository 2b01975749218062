"""Generative adversarial networks: losses, models, the training loop (lessons 03 and 04).

- :mod:`vdlearn.gan.theory`: the game on 1-D densities (optimal discriminator, JS divergence).
- :mod:`vdlearn.gan.losses`: minimax, non-saturating and hinge losses; the R1 penalty.
- :mod:`vdlearn.gan.models`: 2-D toy MLPs, DCGAN for images, a small video GAN.
- :mod:`vdlearn.gan.training`: :func:`train_gan`, two optimisers, checkpoints, history.
"""
from .losses import LOSSES, check_loss_name, discriminator_loss, generator_loss, r1_penalty
from .models import (
    Discriminator,
    FrameAndClipDiscriminator,
    Generator,
    MotionContentGenerator,
    MovingImageGenerator,
    FrameDiscriminator,
    MinibatchStd,
    MLPDiscriminator,
    MLPGenerator,
    VideoDiscriminator,
    VideoGenerator,
    check_pair,
    dcgan_init,
)
from .theory import gaussian_pdf, js_divergence, kl_divergence, optimal_discriminator, value_on_grid
from .training import GANResult, train_gan

__all__ = [
    "LOSSES", "check_loss_name", "discriminator_loss", "generator_loss", "r1_penalty",
    "MLPGenerator", "MLPDiscriminator", "Generator", "Discriminator",
    "VideoGenerator", "VideoDiscriminator", "MotionContentGenerator", "FrameAndClipDiscriminator",
    "MovingImageGenerator", "FrameDiscriminator", "check_pair", "dcgan_init", "MinibatchStd",
    "gaussian_pdf", "optimal_discriminator", "value_on_grid", "kl_divergence", "js_divergence",
    "GANResult", "train_gan",
]
