"""Train-step speed and peak memory of vdlearn's UNet2D against denoising-diffusion-pytorch's Unet.

Both networks get the same job in the same run: the same batch of images, the same resolution,
the same diffusion loss (eps-prediction on a cosine schedule) and AdamW. The peer is
``Unet(dim=32, dim_mults=(1, 2, 4, 8))``, the configuration of its README; our UNet2D uses the
same channel multipliers and the base width whose parameter count is closest (it must be within
±10 %). Steps of the two models alternate, so a busy machine slows both alike; the table reports
the median step time. Peak memory is measured in a fresh subprocess per model: the growth of the
resident set on a CPU, ``torch.cuda.max_memory_allocated`` on a GPU.

On a GPU both models run under bf16 autocast, ours in channels_last (``vdlearn.nn.prepare_model``);
``--compile`` compiles both with ``torch.compile``.

    pip install denoising-diffusion-pytorch        # the peer; benchmark-only
    python benchmarks/unet2d_vs_peer.py            # CPU: batch 32 at 32x32
    python benchmarks/unet2d_vs_peer.py --device cuda --batch-size 128 --compile
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys

import torch

from _measure import Trainer, memory_in_subprocess, peak_memory_mb, random_batch
from vdlearn.nn import UNet2D, count_parameters

PEER = dict(dim=32, dim_mults=(1, 2, 4, 8))


def build_peer(channels: int) -> torch.nn.Module:
    try:
        from denoising_diffusion_pytorch import Unet
    except ImportError:
        sys.exit("the peer is missing: pip install denoising-diffusion-pytorch (benchmark only)")
    return Unet(channels=channels, **PEER)


def build_ours(channels: int, target_params: int) -> torch.nn.Module:
    """UNet2D with the peer's multipliers and the base width (a multiple of 4) closest in parameters."""
    best = None
    for base in range(8, 129, 4):
        model = UNet2D(channels, base_channels=base, channel_mults=PEER["dim_mults"], num_res_blocks=2,
                       attention_levels=(len(PEER["dim_mults"]) - 1,))
        gap = abs(count_parameters(model) - target_params)
        if best is None or gap < best[0]:
            best = (gap, model)
    model = best[1]
    ratio = count_parameters(model) / target_params
    if not 0.9 <= ratio <= 1.1:
        sys.exit(f"no UNet2D width within ±10 % of the peer's {target_params} parameters")
    return model


def build(name: str, channels: int) -> torch.nn.Module:
    peer = build_peer(channels)
    return peer if name == "peer" else build_ours(channels, count_parameters(peer))


def batch_of(args) -> torch.Tensor:
    return random_batch((args.batch_size, args.channels, args.resolution, args.resolution))


def measure_memory(args) -> None:
    """Subprocess entry: peak memory of a few training steps of one model, printed as JSON."""
    trainer = Trainer(build(args.memory_of, args.channels), torch.device(args.device), batch_of(args), args.compile)
    print(json.dumps({"peak_mb": peak_memory_mb(trainer, steps=3)}))


def memory_of(name: str, args) -> float | None:
    return memory_in_subprocess(__file__, [
        "--memory-of", name, "--device", args.device, "--batch-size", str(args.batch_size),
        "--resolution", str(args.resolution), "--channels", str(args.channels)] + (["--compile"] if args.compile else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--memory-of", choices=["ours", "peer"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_of:
        return measure_memory(args)

    device = torch.device(args.device)
    torch.manual_seed(0)
    models = {"peer": build("peer", args.channels)}
    models["ours"] = build_ours(args.channels, count_parameters(models["peer"]))
    names = {"ours": f"vdlearn UNet2D (base {models['ours'].input_conv.out_channels})",
             "peer": f"denoising-diffusion-pytorch Unet (dim {PEER['dim']})"}
    params = {k: count_parameters(m) for k, m in models.items()}
    trainers = {k: Trainer(m, device, batch_of(args), args.compile) for k, m in models.items()}
    for _ in range(args.warmup):
        for trainer in trainers.values():
            trainer.step()
    times: dict[str, list[float]] = {k: [] for k in trainers}
    for _ in range(args.steps):  # alternate, so that a busy machine slows both alike
        for k, trainer in trainers.items():
            times[k].append(trainer.step())
    memory = {k: memory_of(k, args) for k in trainers}

    from importlib.metadata import version
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"denoising-diffusion-pytorch {version('denoising-diffusion-pytorch')}, "
          f"batch {args.batch_size} x {args.channels} x {args.resolution} x {args.resolution}, "
          f"{'bf16 autocast, ' if device.type == 'cuda' else 'float32, '}"
          f"{'compiled, ' if args.compile else ''}median of {args.steps} alternating steps")
    header = f"{'model':42s} {'params':>10s} {'ms/step':>9s} {'img/s':>8s} {'peak MB':>9s}"
    print(header)
    print("-" * len(header))
    for k in ("ours", "peer"):
        med = statistics.median(times[k])
        mem = f"{memory[k]:9.0f}" if memory[k] is not None else f"{'n/a':>9s}"
        print(f"{names[k]:42s} {params[k]:10,d} {1000 * med:9.1f} {args.batch_size / med:8.1f} {mem}")
    speedup = statistics.median(times["peer"]) / statistics.median(times["ours"])
    print(f"UNet2D trains {speedup:.2f}x as fast per step as the peer "
          f"(parameters {params['ours'] / params['peer'] - 1:+.1%})")


if __name__ == "__main__":
    main()
