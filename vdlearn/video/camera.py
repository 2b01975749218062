"""Camera-controlled image to video: a photograph and a camera motion in, a clip out (lesson 08).

A camera motion (:data:`vdlearn.data.camera.CAMERA_MOTIONS`) says, for every pixel of every frame,
where it was in the given first frame, or that it was not in it (:func:`vdlearn.data.camera.warp_from_first`).
The model is told both, as camera-controlled video models are (the given view warped to each frame,
as in ViewCrafter or MotionCtrl's camera branch):

- in the latent space of a frame autoencoder, the first frame's latent :math:`z_0` is warped to
  frame :math:`t` by the motion's map :math:`g_t`, and a mask :math:`m_t` marks where it lands;
  the condition is :math:`[m_t \\odot z_0(g_t),\\ m_t]` (:func:`camera_condition`), and the motion's
  index is the class label of a class-conditional :class:`~vdlearn.nn.video_dit.VideoDiT`;
- the velocity of flow matching (lesson 05) is learned on every frame but the first:

  .. math:: \\mathcal L = \\mathbb E\\,\\bigl\\|v_\\theta(z_t, t, c, y) - (\\varepsilon - z)\\bigr\\|^2_{\\text{frames } 1..T-1};

- sampling (:func:`animate_photo`) integrates the ODE, decodes, and then *keeps what the photograph
  shows*: a pixel the first frame holds is taken from it, warped (bilinear, as the Ken Burns
  baseline does); the network's frames fill only what comes into view. ``keep_given=False``
  returns the network's own frames, to judge them.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.camera import CAMERA_MOTIONS, motion_warp
from ..diffusion import flow_matching as fm
from ..diffusion.guidance import drop_labels
from .flow import guided_velocity
from .latent import decode_clips, encode_clips

__all__ = ["motion_indices", "warp_condition", "camera_condition", "camera_flow_loss", "animate_photo"]


def motion_indices(motions: str | int | Sequence[str | int] | torch.Tensor, n: int) -> torch.Tensor:
    """(n,) indices into :data:`CAMERA_MOTIONS` from one motion or n of them, by name or index."""
    if isinstance(motions, (str, int)):
        motions = [motions] * n
    motions = motions.tolist() if torch.is_tensor(motions) else list(motions)
    if len(motions) != n:
        raise ValueError(f"one camera motion, or one for each of the {n} images; got {len(motions)}")
    out = []
    for m in motions:
        if isinstance(m, str) and m not in CAMERA_MOTIONS or not isinstance(m, str) and not 0 <= int(m) < len(
                CAMERA_MOTIONS):
            raise ValueError(f"unknown camera motion {m!r}; the motions are {', '.join(CAMERA_MOTIONS)}")
        out.append(CAMERA_MOTIONS.index(m) if isinstance(m, str) else int(m))
    return torch.tensor(out)


def warp_condition(z0: torch.Tensor, grid: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """``[m ⊙ z0(g_t), m]`` (B, c + 1, T, h, w): first frames ``z0`` (B, c, h, w) warped to every frame by
    ``grid`` (B, T, h, w, 2) (bilinear, ``grid_sample`` coordinates) and zeroed where ``visible`` (B, T, h, w)
    is False, followed by the mask itself."""
    b, c, h, w = z0.shape
    frames = grid.shape[1]
    repeated = z0[:, None].expand(-1, frames, -1, -1, -1).reshape(b * frames, c, h, w)
    warped = F.grid_sample(repeated, grid.reshape(b * frames, h, w, 2).to(z0), mode="bilinear",
                           padding_mode="border", align_corners=False)
    warped = warped.reshape(b, frames, c, h, w).transpose(1, 2)
    mask = visible.to(z0)[:, None]                                     # (B, 1, T, h, w)
    return torch.cat([warped * mask, mask], dim=1)


def camera_condition(z0: torch.Tensor, motions: torch.Tensor, frames: int) -> torch.Tensor:
    """:func:`warp_condition` for camera motions (B,) (indices into :data:`CAMERA_MOTIONS`)."""
    b, c, h, w = z0.shape
    if h != w:
        raise ValueError(f"camera motions are defined on square frames; got latents of {h}x{w}")
    grids, masks = zip(*(motion_warp(int(m), frames, h) for m in motions))
    return warp_condition(z0, torch.stack(grids), torch.stack(masks))


def camera_flow_loss(model: nn.Module, batch: Sequence[torch.Tensor], *, p_uncond: float = 0.1,
                     time_distribution: str = "logit_normal") -> torch.Tensor:
    """The loss above for a batch ``(latents (B, c, T, h, w), motions (B,))``: the first frame given."""
    z, motions = batch
    b, _, frames = z.shape[:3]
    cond = camera_condition(z[:, :, 0], motions, frames)
    labels = drop_labels(motions.long(), p_uncond, model.null_label)
    t = fm.sample_time(b, time_distribution, device=z.device, dtype=z.dtype)
    noise = torch.randn_like(z)
    v = model(fm.flow_path(z, noise, t, check=False), t, cond, labels)
    return ((v - fm.velocity_target(z, noise))[:, :, 1:] ** 2).mean()


@torch.no_grad()
def animate_photo(model: nn.Module, vae: nn.Module, image: torch.Tensor,
                  motion: str | int | Sequence[str | int] | torch.Tensor, *, steps: int = 20,
                  guidance_scale: float = 1.0, keep_given: bool = True,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Clips (B, 3, T, S, S) in [-1, 1] that move through ``image`` (B, 3, S, S) as camera ``motion`` says.

    ``model`` is a class-conditional VideoDiT over ``vae``'s latents with ``cond_channels = c + 1`` and
    ``num_classes = len(CAMERA_MOTIONS)``. The first frame is ``image`` itself.
    """
    if image.ndim != 4 or image.shape[1] != 3 or image.shape[-1] != image.shape[-2]:
        raise ValueError(f"image must be square RGB frames (B, 3, S, S) in [-1, 1], got {tuple(image.shape)}; "
                         "load a photograph with vdlearn.videoio.load_image(path, size=64)")
    f = vae.downsample
    if image.shape[-1] != model.size * f:
        raise ValueError(f"this model makes {model.size * f}x{model.size * f} frames; got images of "
                         f"{image.shape[-1]}x{image.shape[-1]}: load them with size={model.size * f}")
    b, frames = image.shape[0], model.frames
    motions = motion_indices(motion, b)
    z0 = encode_clips(vae, image[:, :, None].clamp(-1, 1))[:, :, 0]
    cond = camera_condition(z0, motions, frames)
    noise = torch.randn((b, z0.shape[1], frames, *z0.shape[-2:]), generator=generator, dtype=z0.dtype)
    z = fm.flow_euler_sample(guided_velocity(model, cond, motions, guidance_scale), noise, steps=steps)
    z[:, :, 0] = z0
    clips = decode_clips(vae, z).clamp(-1, 1)
    clips[:, :, 0] = image
    if not keep_given:
        return clips
    size = image.shape[-1]
    for i in range(b):
        grid, visible = motion_warp(int(motions[i]), frames, size)
        warped = F.grid_sample(image[i:i + 1].expand(frames, -1, -1, -1), grid.to(image), mode="bilinear",
                               padding_mode="border", align_corners=False)
        clips[i] = torch.where(visible[None].to(image.device), warped.transpose(0, 1), clips[i])
    return clips
