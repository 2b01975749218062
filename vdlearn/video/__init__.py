"""Video generation as tasks and models: one package for everything a video model *does* (lessons 00, 07-10).

- :mod:`.loss`: the video diffusion loss, with joint image-and-video training;
- :mod:`.masks`: per-frame masks of the tasks (unconditional, image to video, prediction,
  interpolation), random training masks, validation;
- :mod:`.masked_model`: :class:`MaskedVideoDiffusion` (known frames and mask as extra input
  channels, noise augmentation of the condition) and its training loss with condition dropout;
- :mod:`.tasks`: conditional sampling (guided by :func:`vdlearn.diffusion.conditional_model`);
  :func:`animate`, :func:`predict`, :func:`interpolate`;
- :mod:`.extend`: videos longer than the training clips, window by window;
- :mod:`.edit`: SDEdit, editing a clip by partial noising and denoising;
- :mod:`.latent`: latent video diffusion over a FrameVAE's or a causal video VAE's latents;
- :mod:`.flow`: flow matching of clips with given frames (one velocity model for every task);
- :mod:`.camera`: camera-controlled image to video: a photograph and a camera motion in, a clip out;
- :mod:`.trajectory`: image to video as a generated trajectory: the first frame moved along displacements
  that a flow-matching model draws for it;
- :mod:`.baselines`: the classical methods every model must beat (copy, constant velocity,
  optical flow, designed motion, Ken Burns).

    model = MaskedVideoDiffusion(channels=3, frames=8, base_channels=32, channel_mults=(1, 2))
    loss = masked_diffusion_loss(model, clips, schedule)
    video = animate(model, vdlearn.videoio.load_image("photo.jpg", size=32), schedule, guidance_scale=2.0)
"""
from .baselines import (affine_flow, affine_video, animate_with_flow, centroid, constant_velocity, copy_last_frame,
                        flow_warp, lucas_kanade, shift, warp)
from .edit import check_strength, sdedit, sdedit_start
from .extend import extend_video
from .latent import (decode_clips, encode_clips, encode_dataset, known_latent_frames, latent_diffusion_loss,
                     latent_frames, latent_stats,
                     sample_latent_clips)
from .flow import condition_channels, masked_flow_loss, sample_masked_flow
from .loss import video_diffusion_loss
from .masked_model import MaskedVideoDiffusion, augment_condition, masked_diffusion_loss, model_input, nearest_given
from .masks import DEFAULT_TASK_PROBS, TASKS, check_mask, mask_to_channel, random_masks, task_mask
from .tasks import animate, interpolate, predict, sample_video
from .trajectory import (TrajectoryNet, animate_along_trajectories, displacements, move_along,
                         predict_along_trajectories, sample_trajectories, trajectory_flow_loss)

__all__ = [
    "video_diffusion_loss",
    "TASKS", "DEFAULT_TASK_PROBS", "task_mask", "random_masks", "check_mask", "mask_to_channel",
    "nearest_given", "model_input", "augment_condition", "MaskedVideoDiffusion", "masked_diffusion_loss",
    "sample_video", "animate", "predict", "interpolate",
    "extend_video",
    "check_strength", "sdedit_start", "sdedit",
    "encode_clips", "decode_clips", "encode_dataset", "latent_stats", "latent_frames", "known_latent_frames",
    "latent_diffusion_loss", "sample_latent_clips",
    "condition_channels", "masked_flow_loss", "sample_masked_flow",
    "copy_last_frame", "centroid", "constant_velocity", "shift", "warp", "lucas_kanade", "flow_warp",
    "affine_flow", "animate_with_flow", "affine_video",
    "TrajectoryNet", "displacements", "move_along", "trajectory_flow_loss", "sample_trajectories",
    "animate_along_trajectories", "predict_along_trajectories",
]
