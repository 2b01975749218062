"""vdlearn: the helper package of a course from VAE math to video diffusion.

Modules, in the order the lessons use them: ``runtime`` (device, seeds, presets), ``data``
(offline datasets), ``videoio`` (mp4/gif files), ``viz`` (pictures and animations), ``train``
(the training loop), ``baselines`` (classical video prediction), then one module per family
of models. Each is imported on its own: ``from vdlearn.data import BouncingShapes``.
"""
__version__ = "0.1.0"
