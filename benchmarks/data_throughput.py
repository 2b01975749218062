"""Is making the data ever the bottleneck? Clips/s of the procedural datasets vs one training step.

Times ``BouncingShapes.get_batch`` and ``MovingDigits.get_batch`` at a smoke-sized clip and, in the same
run, one forward + backward + AdamW step of a small 3-D conv network on that batch. The ratio
data time / step time should be much smaller than 1.

    python benchmarks/data_throughput.py                # 16 clips of 16 frames, 32x32
    python benchmarks/data_throughput.py --size 64 --batch 32 --threads 2
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from vdlearn.data import BouncingShapes, MovingDigits
from vdlearn.runtime import get_device


def median_seconds(fn, repeats: int, sync=lambda: None) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def small_video_net(channels: int) -> nn.Module:
    """Three 3x3x3 convolutions, 32 wide: about the smallest video denoiser worth training."""
    return nn.Sequential(
        nn.Conv3d(channels, 32, 3, padding=1), nn.SiLU(),
        nn.Conv3d(32, 32, 3, padding=1), nn.SiLU(),
        nn.Conv3d(32, channels, 3, padding=1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    datasets = {
        "BouncingShapes": BouncingShapes(num_clips=100_000, frames=args.frames, size=args.size, num_shapes=2),
        "MovingDigits": MovingDigits(num_clips=100_000, frames=args.frames, size=args.size,
                                     digit_size=max(4, args.size * 7 // 16)),
    }
    gen = torch.Generator().manual_seed(0)
    print(f"device {device}, {torch.get_num_threads()} CPU threads, batch {args.batch} x {args.frames} frames "
          f"x {args.size}x{args.size}")
    for name, ds in datasets.items():
        def random_batch(ds=ds):
            return ds.get_batch(torch.randint(len(ds), (args.batch,), generator=gen))

        data_s = median_seconds(random_batch, args.repeats)
        clips = ds.get_batch(torch.arange(args.batch)).to(device)
        net = small_video_net(clips.shape[1]).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)

        def step():
            noise = torch.randn_like(clips)
            loss = nn.functional.mse_loss(net(clips + noise), noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step_s = median_seconds(step, args.repeats, sync)
        print(f"{name:>15}: {args.batch / data_s:8.0f} clips/s ({1000 * data_s:6.1f} ms/batch) | "
              f"train step {1000 * step_s:7.1f} ms | data/step = {data_s / step_s:.3f}")


if __name__ == "__main__":
    main()
