"""Train-step speed and peak memory of vdlearn's SpaceTimeUNet against two video U-Nets.

The peers, at about the same number of parameters (each within ±10 % of ours):

- video-diffusion-pytorch's ``Unet3D(dim=32, dim_mults=(1, 2, 4, 8))``: factorised too, with
  linear spatial attention and temporal attention at every level, einops rearranges, no SDPA;
- diffusers' ``UNet3DConditionModel`` with ``block_out_channels=(24, 48, 96, 128)``: ResNet
  blocks, a 4-layer temporal convolution, a spatial transformer (self- and cross-attention, fed an
  empty one-token text context) and a temporal transformer at three of four levels.

Ours: ``SpaceTimeUNet`` with the same channel multipliers (1, 2, 4, 8), two ResBlocks per level,
spatial attention only at the lowest resolution, temporal convolution and temporal attention at
every level, and the base width whose parameter count is nearest to the peers'.

All three get the same job in the same run: the same batch of clips (B, 3, T, H, W), the same
diffusion loss (eps-prediction on a cosine schedule) and AdamW. Steps of the models alternate, so a
busy machine slows them alike; the table reports the median step time. Peak memory is measured
in a fresh subprocess per model: the growth of the resident set on a CPU,
``torch.cuda.max_memory_allocated`` on a GPU. On a GPU every model runs under bf16 autocast and in
channels_last; ``--compile`` compiles every model with ``torch.compile``.

Measured on a shared 2-core CPU (1 thread, under heavy load from other jobs, so absolute times are
inflated; the models alternate, so the ratios hold), torch 2.14.1, video-diffusion-pytorch 0.7.0,
diffusers 0.42.1, batch 2 clips of 3 x 8 x 32 x 32, float32::

    model                                           params   ms/step  clips/s   peak MB
    vdlearn SpaceTimeUNet (base 22)              9,393,387    6261.7     0.32      2248
    video-diffusion-pytorch Unet3D               9,969,475   16627.0     0.12      2315
    diffusers UNet3DConditionModel              10,076,587   48145.3     0.04      2168
    SpaceTimeUNet: 2.66x video-diffusion-pytorch, 7.69x diffusers

    pip install video-diffusion-pytorch diffusers     # the peers; benchmark-only
    python benchmarks/spacetime_unet_vs_peers.py       # CPU: batch 2 of 8 frames at 32x32
    python benchmarks/spacetime_unet_vs_peers.py --device cuda --batch-size 16 --frames 16 --compile
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import warnings

import torch

from _measure import Trainer, memory_in_subprocess, peak_memory_mb, random_batch
from vdlearn.nn.spacetime_unet import SpaceTimeUNet
from vdlearn.nn.unet2d import count_parameters

MULTS = (1, 2, 4, 8)
VDP = dict(dim=32, dim_mults=MULTS)
DIFFUSERS = dict(block_out_channels=(24, 48, 96, 128), layers_per_block=2, norm_num_groups=8,
                 cross_attention_dim=64, attention_head_dim=4)
NAMES = {"ours": "vdlearn SpaceTimeUNet", "vdp": "video-diffusion-pytorch Unet3D",
         "diffusers": "diffusers UNet3DConditionModel"}


class DiffusersAdapter(torch.nn.Module):
    """``model(x, t)`` for diffusers' UNet3DConditionModel, with a one-token all-zero text context."""

    def __init__(self, channels: int):
        super().__init__()
        try:
            from diffusers import UNet3DConditionModel
        except ImportError:
            sys.exit("a peer is missing: pip install diffusers (benchmark only)")
        self.net = UNet3DConditionModel(in_channels=channels, out_channels=channels, **DIFFUSERS)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        context = x.new_zeros(x.shape[0], 1, DIFFUSERS["cross_attention_dim"])
        return self.net(x, t, encoder_hidden_states=context).sample


def build_peer(name: str, channels: int) -> torch.nn.Module:
    if name == "vdp":
        try:
            from video_diffusion_pytorch import Unet3D
        except ImportError:
            sys.exit("a peer is missing: pip install video-diffusion-pytorch (benchmark only)")
        return Unet3D(channels=channels, **VDP)
    return DiffusersAdapter(channels)


def build_ours(channels: int, frames: int, targets: list[int]) -> SpaceTimeUNet:
    """SpaceTimeUNet with the peers' multipliers and the even base width nearest to their parameters."""
    goal = (targets[0] * targets[-1]) ** 0.5
    best = None
    for base in range(8, 97, 2):
        model = SpaceTimeUNet(channels, base_channels=base, channel_mults=MULTS, num_res_blocks=2,
                              attention_levels=(len(MULTS) - 1,), num_heads=2, max_frames=frames)
        gap = abs(count_parameters(model) - goal)
        if best is None or gap < best[0]:
            best = (gap, model)
    model = best[1]
    for target in targets:
        if not 0.9 <= count_parameters(model) / target <= 1.1:
            sys.exit(f"no SpaceTimeUNet width within ±10 % of every peer ({targets} parameters)")
    return model


def build_all(channels: int, frames: int) -> dict[str, torch.nn.Module]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {name: build_peer(name, channels) for name in ("vdp", "diffusers")}
    models = {"ours": build_ours(channels, frames, [count_parameters(m) for m in models.values()]), **models}
    return models


def batch_of(args) -> torch.Tensor:
    return random_batch((args.batch_size, args.channels, args.frames, args.resolution, args.resolution))


def measure_memory(args) -> None:
    """Subprocess entry: peak memory of a few training steps of one model, printed as JSON."""
    model = build_all(args.channels, args.frames)[args.memory_of]
    trainer = Trainer(model, torch.device(args.device), batch_of(args), args.compile)
    print(json.dumps({"peak_mb": peak_memory_mb(trainer, steps=2)}))


def memory_of(name: str, args) -> float | None:
    return memory_in_subprocess(__file__, [
        "--memory-of", name, "--device", args.device, "--batch-size", str(args.batch_size),
        "--frames", str(args.frames), "--resolution", str(args.resolution), "--channels", str(args.channels)]
        + (["--compile"] if args.compile else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--compile", action="store_true", help="torch.compile every model")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--memory-of", choices=list(NAMES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_of:
        return measure_memory(args)

    device = torch.device(args.device)
    torch.manual_seed(0)
    models = build_all(args.channels, args.frames)
    params = {k: count_parameters(m) for k, m in models.items()}
    names = {**NAMES, "ours": f"{NAMES['ours']} (base {models['ours'].image.input_conv.out_channels})"}
    trainers = {k: Trainer(m, device, batch_of(args), args.compile) for k, m in models.items()}
    for _ in range(args.warmup):
        for trainer in trainers.values():
            trainer.step()
    times: dict[str, list[float]] = {k: [] for k in trainers}
    for _ in range(args.steps):  # alternate, so that a busy machine slows every model alike
        for k, trainer in trainers.items():
            times[k].append(trainer.step())
    memory = {k: (None if args.no_memory else memory_of(k, args)) for k in trainers}

    from importlib.metadata import version
    clip = f"{args.channels} x {args.frames} x {args.resolution} x {args.resolution}"
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"video-diffusion-pytorch {version('video-diffusion-pytorch')}, diffusers {version('diffusers')}, "
          f"batch {args.batch_size} clips of {clip}, "
          f"{'bf16 autocast, channels_last, ' if device.type == 'cuda' else 'float32, '}"
          f"{'compiled, ' if args.compile else ''}median of {args.steps} alternating steps")
    header = f"{'model':42s} {'params':>11s} {'ms/step':>9s} {'clips/s':>8s} {'peak MB':>9s}"
    print(header)
    print("-" * len(header))
    for k in models:
        med = statistics.median(times[k])
        mem = f"{memory[k]:9.0f}" if memory[k] is not None else f"{'n/a':>9s}"
        print(f"{names[k]:42s} {params[k]:11,d} {1000 * med:9.1f} {args.batch_size / med:8.2f} {mem}")
    ours = statistics.median(times["ours"])
    for k in ("vdp", "diffusers"):
        print(f"SpaceTimeUNet trains {statistics.median(times[k]) / ours:.2f}x as fast per step as "
              f"{NAMES[k]} (parameters {params['ours'] / params[k] - 1:+.1%})")
    faster = min(("vdp", "diffusers"), key=lambda k: statistics.median(times[k]))
    print(f"against the faster peer ({NAMES[faster]}): {statistics.median(times[faster]) / ours:.2f}x")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
