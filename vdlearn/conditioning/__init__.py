"""One masked-conditional video diffusion model for many tasks (lesson 08).

- :mod:`.masks`: per-frame masks of the tasks (unconditional, image to video, prediction,
  interpolation), random training masks, validation;
- :mod:`.model`: :class:`MaskedVideoDiffusion` (known frames and mask as extra input channels,
  noise augmentation of the condition) and its training loss with condition dropout;
- :mod:`.sample`: conditional sampling with classifier-free guidance; :func:`animate`,
  :func:`predict`, :func:`interpolate`;
- :mod:`.extend`: videos longer than the training clips, window by window;
- :mod:`.edit`: SDEdit, editing a clip by partial noising and denoising;
- :mod:`.images`: :func:`load_image`, any image file or array in the model's format;
- :mod:`.scores`: PSNR, SSIM and the best of k samples.

    model = MaskedVideoDiffusion(channels=3, frames=8, base_channels=32, channel_mults=(1, 2))
    loss = masked_diffusion_loss(model, clips, schedule)
    video = animate(model, load_image("photo.jpg", size=32), schedule, guidance_scale=2.0)
"""
from .edit import check_strength, sdedit, sdedit_start
from .extend import extend_video
from .images import FITS, load_image, to_channels
from .masks import DEFAULT_TASK_PROBS, TASKS, check_mask, mask_to_channel, random_masks, task_mask
from .model import MaskedVideoDiffusion, augment_condition, masked_diffusion_loss, model_input, nearest_given
from .sample import animate, conditional_model, interpolate, predict, sample_video
from .scores import best_of_k, psnr, ssim

__all__ = [
    "TASKS", "DEFAULT_TASK_PROBS", "task_mask", "random_masks", "check_mask", "mask_to_channel",
    "nearest_given", "model_input", "augment_condition", "MaskedVideoDiffusion", "masked_diffusion_loss",
    "conditional_model", "sample_video", "animate", "predict", "interpolate",
    "extend_video",
    "check_strength", "sdedit_start", "sdedit",
    "FITS", "load_image", "to_channels",
    "psnr", "ssim", "best_of_k",
]
