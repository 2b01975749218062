"""Latent diffusion on a FrameVAE's latents against a causal video VAE's: what a training step costs (lesson 09).

A 16-frame clip of 32x32 is (4, 16, 8, 8) in the FrameVAE's latents (every frame on its own), (8, 9, 8, 8)
in the causal VAE's at 2x time compression and (16, 5, 8, 8) at 4x. Lesson 09's SpaceTimeUNet is
trained on each, at the lesson's cpu size (width 16, 16 clips a step) and at its gpu size (width 48,
32 clips a step), in one run: the speed-up is a ratio of two steps timed on the same machine.

A step has a part that grows with the latent frames (every layer runs on every frame) and a part
that does not (the optimiser's update of every weight, Python's overhead): the smaller the network
and the batch, the more the fixed part weighs, and the less fewer frames buy.

    python benchmarks/frame_vs_causal_latents.py
    python benchmarks/frame_vs_causal_latents.py --device cuda

The VAEs' weights do not change a step's cost: the latents are random tensors of the right shapes.
The target (lesson 09): a step on the causal latents at least 2x faster than on the FrameVAE's.
"""
from __future__ import annotations

import argparse

import torch

from vdlearn.diffusion import make_schedule
from vdlearn.nn.spacetime_unet import SpaceTimeUNet
from vdlearn.nn import prepare_model
from vdlearn.runtime import get_device
from vdlearn.train import train_step_cost
from vdlearn.video import latent_diffusion_loss

#: latent space -> (channels, latent frames) of a 16-frame clip
SPACES = {"FrameVAE": (4, 16), "causal s=2": (8, 9), "causal s=4": (16, 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--sizes", default="16x16,48x32",
                        help="U-Net width x clips per step, comma-separated (default: lesson 09's cpu and gpu)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps (the fastest counts)")
    args = parser.parse_args()
    device = get_device(args.device)
    schedule = make_schedule("cosine", 1000)
    print(f"device {device} · torch {torch.__version__} · {torch.get_num_threads()} threads")
    print()
    print("| U-Net width | clips a step | latents | input | train step (s) | speed-up | activations (MiB) |")
    print("|---|---|---|---|---|---|---|")
    verdicts = []
    for size in args.sizes.split(","):
        width, batch = (int(v) for v in size.split("x"))
        seconds = {}
        for name, (channels, frames) in SPACES.items():
            torch.manual_seed(0)
            net = prepare_model(SpaceTimeUNet(channels, base_channels=width, channel_mults=(1, 2, 2),
                                              num_res_blocks=1, attention_levels=(2,), temporal_attention_levels=(2,),
                                              max_frames=16), device)
            z = torch.randn(batch, channels, frames, 8, 8, device=device)
            cost = train_step_cost(net, lambda m, x: latent_diffusion_loss(m, x, schedule, prediction_type="v"), z,
                                   repeats=args.repeats)
            seconds[name] = cost["min_seconds"]
            print(f"| {width} | {batch} | {name} | {channels}×{frames}×8×8 | {cost['min_seconds']:.3f} "
                  f"| {seconds['FrameVAE'] / cost['min_seconds']:.2f}× | {cost['activation_mb']:.0f} |")
        best = seconds["FrameVAE"] / seconds["causal s=4"]
        verdicts.append(f"width {width}, {batch} clips: causal s=4 {best:.2f}× faster a step than the FrameVAE "
                        f"({'meets' if best >= 2 else 'misses'} the 2× target), s=2 "
                        f"{seconds['FrameVAE'] / seconds['causal s=2']:.2f}×")
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
