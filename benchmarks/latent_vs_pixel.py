"""Pixel against latent video diffusion: what a training step and sampling cost (lesson 09).

The same SpaceTimeUNet configuration is run on clips (B, 3, T, S, S) in pixel space and on their
FrameVAE latents (B, 4, T, S/4, S/4), for S = 32 and 64, in one run:

- train step: forward, backward and AdamW update of the v-prediction loss (the fastest of a few
  repeats, which is the least disturbed by other work on a shared machine);
  "latent" trains on latents encoded once beforehand (vdlearn.video.latent.encode_dataset), "latent +
  encode" also runs the frozen encoder on every batch, as a model with no latent cache would;
- sampling: DPM-Solver++(2M) from noise to clips (for latents, including decoding every frame);
- memory: the activations autograd keeps for the backward pass (every device), and CUDA's peak.

    python benchmarks/latent_vs_pixel.py                 # CPU: small batch, few sampler steps
    python benchmarks/latent_vs_pixel.py --device cuda   # GPU: batch 16, 64 channels, 20 steps

The VAE's weights do not change its cost, so an untrained FrameVAE is used. The target
(lesson 09): latent at least 3x faster per training step than pixel at the same clip size.
"""
from __future__ import annotations

import argparse
import time

import torch

from vdlearn.diffusion import diffusion_loss, dpm_solver_pp_sample, make_schedule
from vdlearn.video import decode_clips, encode_clips, latent_diffusion_loss
from vdlearn.train import train_step_cost
from vdlearn.nn import count_parameters, prepare_model
from vdlearn.nn.spacetime_unet import SpaceTimeUNet
from vdlearn.runtime import autocast, get_device
from vdlearn.vae import FrameVAE, calibrate_scaling_factor


def unet(channels: int, args: argparse.Namespace, device: torch.device) -> SpaceTimeUNet:
    torch.manual_seed(0)
    net = SpaceTimeUNet(channels, base_channels=args.base_channels, channel_mults=(1, 2, 2), num_res_blocks=1,
                        attention_levels=(2,), temporal_attention_levels=(2,), max_frames=args.frames)
    return prepare_model(net, device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sampling_seconds(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    with torch.no_grad(), autocast(device):
        fn()
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, default=None, help="clips per step (CPU 2, GPU 16)")
    parser.add_argument("--base-channels", type=int, default=None, help="U-Net width (CPU 16, GPU 64)")
    parser.add_argument("--sample-steps", type=int, default=None, help="sampler steps (CPU 4, GPU 20)")
    parser.add_argument("--repeats", type=int, default=None, help="timed train steps (CPU 3, GPU 10)")
    args = parser.parse_args()
    device = get_device(args.device)
    gpu = device.type == "cuda"
    args.batch = args.batch or (16 if gpu else 2)
    args.base_channels = args.base_channels or (64 if gpu else 16)
    args.sample_steps = args.sample_steps or (20 if gpu else 4)
    args.repeats = args.repeats or (10 if gpu else 3)
    schedule = make_schedule("cosine", 1000)
    torch.manual_seed(0)
    vae = FrameVAE(3, latent_channels=4, downsample=4, width=32).to(device).eval()
    for p in vae.parameters():
        p.requires_grad_(False)
    print(f"device {device} · {args.frames} frames · batch {args.batch} clips · U-Net width {args.base_channels} "
          f"· {args.sample_steps} sampler steps · torch {torch.__version__} · {torch.get_num_threads()} threads")

    rows = []
    for size in args.sizes:
        clips = torch.rand(args.batch, 3, args.frames, size, size, device=device) * 2 - 1
        calibrate_scaling_factor(vae, clips)          # unit-variance latents, as in training
        latents = encode_clips(vae, clips)
        pixel_net, latent_net = unet(3, args, device), unet(4, args, device)

        def pixel_loss(net, x):
            return diffusion_loss(lambda a, t: net(a, t), x, schedule, prediction_type="v")

        def latent_loss(net, z):
            return latent_diffusion_loss(net, z, schedule)

        costs = {
            "pixel": train_step_cost(pixel_net, pixel_loss, clips, repeats=args.repeats),
            "latent": train_step_cost(latent_net, latent_loss, latents, repeats=args.repeats),
            "latent + encode": train_step_cost(latent_net, lambda n, x: latent_loss(n, encode_clips(vae, x)),
                                               clips, repeats=args.repeats),
        }
        gen = torch.Generator(device=device)
        noise_px = torch.randn(clips.shape, device=device, generator=gen.manual_seed(0))
        noise_lat = torch.randn(latents.shape, device=device, generator=gen.manual_seed(0))
        sample_px = sampling_seconds(lambda: dpm_solver_pp_sample(pixel_net.eval(), noise_px, schedule,
                                                                  steps=args.sample_steps, prediction_type="v"),
                                     device)
        sample_lat = sampling_seconds(lambda: decode_clips(vae, dpm_solver_pp_sample(
            latent_net.eval(), noise_lat, schedule, steps=args.sample_steps, prediction_type="v")), device)
        for name, cost in costs.items():
            rows.append(dict(size=size, space=name, shape=tuple((latents if name == "latent" else clips).shape[1:]),
                             params=count_parameters(latent_net if "latent" in name else pixel_net), **cost,
                             sample=sample_px if name == "pixel" else (sample_lat if name == "latent" else None)))

    print()
    print("| clip | space | model input | params | train step (s) | speed-up | sampling (s) | speed-up "
          "| activations (MiB) | CUDA peak (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ref = next(p for p in rows if p["size"] == r["size"] and p["space"] == "pixel")
        sample = "—" if r["sample"] is None else f"{r['sample']:.2f}"
        sample_x = "—" if r["sample"] is None else f"{ref['sample'] / r['sample']:.1f}×"
        peak = "—" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        print(f"| {r['size']}×{r['size']}×{args.frames} | {r['space']} | {'×'.join(map(str, r['shape']))} "
              f"| {r['params'] / 1e6:.2f} M | {r['min_seconds']:.3f} | {ref['min_seconds'] / r['min_seconds']:.1f}× "
              f"| {sample} | {sample_x} | {r['activation_mb']:.0f} | {peak} |")
    for size in args.sizes:
        px = next(r for r in rows if r["size"] == size and r["space"] == "pixel")
        lat = next(r for r in rows if r["size"] == size and r["space"] == "latent")
        ratio = px["min_seconds"] / lat["min_seconds"]
        print(f"{size}×{size}: latent train step {ratio:.1f}× faster than pixel "
              f"({'meets' if ratio >= 3 else 'misses'} the 3× target)")


if __name__ == "__main__":
    main()
