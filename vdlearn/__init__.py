"""vdlearn: the helper package of a course from VAE math to video diffusion.

Packages, from the bottom layer up (CONTRIBUTING.md draws them): ``runtime`` (device, seeds,
presets), ``data`` (offline datasets, the clip convention), ``videoio`` (video and image files),
``viz`` (pictures and animations), ``nn`` (networks), ``vae``, ``gan`` and ``diffusion`` (the math
of each family), ``train`` (the one training loop), ``video`` (what video models do) and
``metrics``, ``pretrained`` (shipped checkpoints), then the course's own tooling. Each is imported
on its own: ``from vdlearn.data import BouncingShapes``.
"""
__version__ = "0.1.0"
