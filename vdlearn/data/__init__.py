"""Procedural, offline datasets of the course: bouncing shapes, handwritten digits, 2-D toys.

Every dataset makes its items from ``(seed, index)`` alone and has a vectorised ``get_batch(indices)``
that returns what stacking the items would. Videos are (C, T, H, W) and images (C, H, W) in [-1, 1].

- :mod:`.shapes`, :mod:`.digits`, :mod:`.toy2d`: the datasets;
- :mod:`.photos`: real photographs bundled in installed packages, with a fixed evaluation split;
- :mod:`.camera`: a virtual camera moving through a photograph (pan, zoom), with its truth;
- :mod:`.clips`: the course's clip convention (B, C, T, H, W): validation, reshapes, blur;
- :mod:`.batches`: batches as a pure function of (seed, step), the way every training loop draws them.
"""
from .batches import BatchIndices, make_batch
from .camera import CAMERA_MOTIONS, CameraClips, camera_path, motion_warp, render_path, warp_from_first
from .clips import batch_to_frames, check_clips, frames_to_batch, gaussian_blur, gaussian_kernel, reverse_some
from .photos import EVAL_PHOTOS, PHOTOS, TRAIN_PHOTOS, load_photo, photo_names
from .digits import DIGIT_SOURCES, DigitImages, MovingDigits, load_digit_source
from .shapes import PALETTE, SHAPE_KINDS, BouncingShapes, ShapeImages, bounce, render_shapes
from .toy2d import TOY2D_NAMES, Toy2D, mixture_modes, mixture_std, mode_coverage, sample_toy2d

__all__ = [
    "CAMERA_MOTIONS",
    "CameraClips",
    "camera_path",
    "render_path",
    "warp_from_first",
    "motion_warp",
    "PHOTOS",
    "TRAIN_PHOTOS",
    "EVAL_PHOTOS",
    "load_photo",
    "photo_names",
    "BouncingShapes",
    "ShapeImages",
    "PALETTE",
    "SHAPE_KINDS",
    "bounce",
    "render_shapes",
    "DigitImages",
    "MovingDigits",
    "DIGIT_SOURCES",
    "load_digit_source",
    "Toy2D",
    "TOY2D_NAMES",
    "sample_toy2d",
    "mixture_modes",
    "mixture_std",
    "mode_coverage",
    "check_clips",
    "frames_to_batch",
    "batch_to_frames",
    "gaussian_kernel",
    "reverse_some",
    "gaussian_blur",
    "make_batch",
    "BatchIndices",
]
