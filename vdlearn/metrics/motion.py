"""Motion statistics, and the clips that test a video metric: shuffled and frozen frames (lesson 07).

The frame-difference energy of a clip,
:math:`E = \\operatorname{mean}_{t,c,h,w}\\,(x_{t+1} - x_t)^2`, compared with real clips: a ratio
far below 1 means frozen video, far above 1 flicker. A clip is *near-static* when its energy is
below ``static_threshold`` (0.1) times the median energy of real clips.

A metric that sees time must score :func:`shuffle_frames` (every frame perfect, the order broken)
and :func:`freeze_frames` (one perfect frame repeated) worse than real clips; a metric of object
constancy must score :func:`mix_frames` (each frame from another clip) worse.
"""
from __future__ import annotations

import torch

from ..data.clips import check_clips

__all__ = ["shuffle_frames", "freeze_frames", "mix_frames", "frame_difference_energy", "motion_stats"]


def shuffle_frames(clips: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The same frames in a random order (a different permutation per clip, never the identity)."""
    b, _, t = clips.shape[:3]
    keys = torch.rand(b, t, generator=generator)
    order = keys.argsort(dim=1)
    same = (order == torch.arange(t)).all(1)
    order[same] = order[same].roll(1, dims=1)  # a cyclic shift: still every frame, surely moved
    index = order.to(clips.device).view(b, 1, t, 1, 1).expand(-1, clips.shape[1], -1, *clips.shape[3:])
    return clips.gather(2, index)


def freeze_frames(clips: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One random frame of each clip, repeated T times: a perfect image that does not move."""
    b, _, t = clips.shape[:3]
    pick = torch.randint(0, t, (b,), generator=generator).to(clips.device)
    frame = clips[torch.arange(b, device=clips.device), :, pick]  # (B, C, H, W)
    return frame.unsqueeze(2).expand(-1, -1, t, -1, -1).clone()


def frame_difference_energy(clips: torch.Tensor) -> torch.Tensor:
    """Per-clip motion energy (B,): :math:`E = \\operatorname{mean}_{t,c,h,w}(x_{t+1} - x_t)^2`."""
    clips = check_clips(clips, min_frames=2).detach().to("cpu", torch.float32).clamp(-1, 1)
    return (clips[:, :, 1:] - clips[:, :, :-1]).pow(2).mean(dim=(1, 2, 3, 4))


def motion_stats(clips: torch.Tensor, real: torch.Tensor, static_threshold: float = 0.1) -> dict[str, float]:
    """Frame-difference energy of ``clips`` against ``real`` clips, and the fraction of near-static clips.

    Returns ``energy`` and ``energy_real`` (means over clips), ``energy_ratio`` (their ratio: 1 is
    the real amount of change, < 1 too still, > 1 flicker), ``static_fraction`` and
    ``static_fraction_real``: the share of clips whose energy is below ``static_threshold`` times
    the median energy of the real clips.
    """
    if not 0 < static_threshold < 1:
        raise ValueError(f"static_threshold is a fraction of the real clips' median energy, in (0, 1); "
                         f"got {static_threshold}")
    e, e_real = frame_difference_energy(clips), frame_difference_energy(real)
    cut = static_threshold * e_real.median()
    return {"energy": e.mean().item(), "energy_real": e_real.mean().item(),
            "energy_ratio": (e.mean() / e_real.mean().clamp(min=1e-12)).item(),
            "static_fraction": (e < cut).float().mean().item(),
            "static_fraction_real": (e_real < cut).float().mean().item()}


def mix_frames(clips: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Clips whose frame t comes from a random clip of the batch (mixed content, not just reordered)."""
    b, _, t = clips.shape[:3]
    src = torch.randint(0, b, (b, t), generator=generator)
    frame_idx = torch.randint(0, t, (b, t), generator=generator)
    return torch.stack([clips[src[:, j], :, frame_idx[:, j]] for j in range(t)], dim=2)
