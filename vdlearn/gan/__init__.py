"""Generative adversarial networks: the game, its losses and its networks (lessons 03 and 04).

- :mod:`vdlearn.gan.theory`: the game on 1-D densities (optimal discriminator, JS divergence).
- :mod:`vdlearn.gan.losses`: minimax, non-saturating and hinge losses; the R1 penalty.
- :mod:`vdlearn.gan.models`: 2-D toy MLPs and DCGAN for images; :mod:`vdlearn.gan.video_models`: video GANs.

Training a GAN is a step of the course's one training loop: :func:`vdlearn.train.train_gan`.
"""
from .losses import LOSSES, check_loss_name, discriminator_loss, generator_loss, r1_penalty
from .models import Discriminator, Generator, MinibatchStd, MLPDiscriminator, MLPGenerator, check_pair, dcgan_init
from .theory import gaussian_pdf, js_divergence, kl_divergence, optimal_discriminator, value_on_grid
from .video_models import (FrameAndClipDiscriminator, FrameDiscriminator, MotionContentGenerator,
                           MovingImageGenerator, VideoDiscriminator, VideoGenerator)

__all__ = [
    "LOSSES", "check_loss_name", "discriminator_loss", "generator_loss", "r1_penalty",
    "MLPGenerator", "MLPDiscriminator", "Generator", "Discriminator",
    "VideoGenerator", "VideoDiscriminator", "MotionContentGenerator", "FrameAndClipDiscriminator",
    "MovingImageGenerator", "FrameDiscriminator", "check_pair", "dcgan_init", "MinibatchStd",
    "gaussian_pdf", "optimal_discriminator", "value_on_grid", "kl_divergence", "js_divergence",
]
