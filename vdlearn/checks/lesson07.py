"""Checks for lesson 07, video diffusion with a factorised space-time U-Net."""
from __future__ import annotations

import torch

from ..nn.spacetime_unet import frames_to_sequences as reference_sequences
from ..video.baselines import shift as reference_shift
from ..video.baselines import warp as reference_warp
from . import exercise, expect, expect_close, expect_shape

__all__ = ["check_frames_to_sequences", "check_relative_position_bias", "check_frame_difference_energy",
           "check_move_frame"]


def _same(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-6) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=atol)


@exercise("07.frames_to_sequences")
def check_frames_to_sequences(frames_to_sequences) -> None:
    """(B·T, C, H, W) frames -> (B·H·W, T, C): one sequence over time per pixel of every clip."""
    b, t, c, h, w = 2, 3, 4, 2, 5
    # every entry names its own position: x[b*T + t, c, h, w] = b*1e4 + t*1e3 + c*1e2 + h*10 + w
    idx = [torch.arange(n).float() for n in (b, t, c, h, w)]
    x = (idx[0].view(-1, 1, 1, 1, 1) * 1e4 + idx[1].view(1, -1, 1, 1, 1) * 1e3 + idx[2].view(1, 1, -1, 1, 1) * 1e2
         + idx[3].view(1, 1, 1, -1, 1) * 10 + idx[4].view(1, 1, 1, 1, -1)).reshape(b * t, c, h, w)
    got = frames_to_sequences(x, t)
    expect_shape(got, (b * h * w, t, c), f"frames_to_sequences(x of shape {tuple(x.shape)}, frames={t})")
    want = reference_sequences(x, t)
    if _same(got, want):
        return
    slips = {
        "a plain reshape without moving the axes: the numbers of a sequence come from different frames "
        "and pixels. Unflatten (B·T) into (B, T), permute to (B, H, W, T, C), then reshape":
            x.reshape(b * h * w, t, c),
        "(B·H·W, C, T): the channels and the frames are swapped; attention wants tokens (T) before "
        "features (C)": want.transpose(1, 2).contiguous(),
    }
    for what, value in slips.items():
        expect(not _same(got, value), f"your answer is {what}.")
    expect_close(got, want, what="the sequences", atol=1e-6,
                 hint="x.unflatten(0, (-1, frames)) is (B, T, C, H, W); .permute(0, 3, 4, 1, 2) makes it "
                      "(B, H, W, T, C); .reshape(-1, frames, C)")


@exercise("07.relative_position_bias")
def check_relative_position_bias(relative_position_bias) -> None:
    """bias[h, i, j] = table[i - j + max_frames - 1, h] for a table (2·max_frames - 1, heads)."""
    max_frames, heads, frames = 6, 2, 4
    table = torch.arange((2 * max_frames - 1) * heads, dtype=torch.float32).view(2 * max_frames - 1, heads)
    got = relative_position_bias(table, frames, max_frames)
    expect_shape(got, (heads, frames, frames),
                 f"relative_position_bias(table (11, 2), frames={frames}, max_frames={max_frames})")
    i = torch.arange(frames)
    offsets = i[:, None] - i[None, :]
    want = table[offsets + max_frames - 1].permute(2, 0, 1)
    if _same(got, want):
        expect(_same(relative_position_bias(table, 1, max_frames), table[max_frames - 1].view(heads, 1, 1)),
               "with a single frame the bias should be the offset-0 entry, table[max_frames - 1]")
        return
    slips = {
        "indexed by j - i instead of i - j (query i, key j): transpose the offsets":
            table[-offsets + max_frames - 1].permute(2, 0, 1),
        "shifted by frames - 1 instead of max_frames - 1: offset 0 sits at row max_frames - 1 of the "
        "table, whatever the clip length": table[offsets + frames - 1].permute(2, 0, 1),
        "(T, T, heads): move the heads first with .permute(2, 0, 1)": want.permute(1, 2, 0),
    }
    for what, value in slips.items():
        expect(not (isinstance(got, torch.Tensor) and got.numel() == value.numel()
                    and _same(got.reshape(value.shape), value)), f"your bias is {what}.")
    expect_close(got, want, what="the bias", hint="offsets = arange(T)[:, None] - arange(T)[None, :]; "
                 "return table[offsets + max_frames - 1].permute(2, 0, 1)")


@exercise("07.frame_difference_energy")
def check_frame_difference_energy(frame_difference_energy) -> None:
    """Per-clip motion energy (B,): mean over t, c, h, w of (x_{t+1} - x_t)^2."""
    clips = -torch.ones(3, 1, 4, 2, 2)
    clips[0, :, 1::2] = 1.0     # flips between -1 and 1: 4 everywhere
    clips[1, :, 3, 0, 0] = 0.0  # one pixel changes by 1 once: 1 / (3 differences * 4 pixels)
    got = frame_difference_energy(clips)
    expect_shape(got, (3,), "frame_difference_energy(clips of shape (3, 1, 4, 2, 2))")
    want = torch.tensor([4.0, 1 / 12, 0.0])
    if _same(got, want):
        g = torch.Generator().manual_seed(0)
        x = torch.rand(2, 3, 5, 4, 4, generator=g) * 2 - 1
        expect_close(frame_difference_energy(x), (x[:, :, 1:] - x[:, :, :-1]).pow(2).mean(dim=(1, 2, 3, 4)),
                     what="the energy of random clips (B, C, T, H, W)",
                     hint="difference along the frame axis, dim=2: x[:, :, 1:] - x[:, :, :-1]")
        return
    slips = {
        "the mean absolute difference, not the squared difference": torch.tensor([2.0, 1 / 12, 0.0]),
        "averaged over T frames instead of the T - 1 differences": torch.tensor([3.0, 1 / 16, 0.0]),
        "the root of the mean square: the energy is the mean square itself": torch.tensor([2.0, (1 / 12) ** 0.5, 0.0]),
        "differences along the width (the last axis); frames are the third axis of (B, C, T, H, W): "
        "x[:, :, 1:] - x[:, :, :-1]": torch.tensor([0.0, 1 / 8, 0.0]),
    }
    for what, value in slips.items():
        expect(not _same(got, value, atol=1e-5), f"your energy is {what}.")
    expect_close(got, want, what="the energy of three test clips",
                 hint="(x[:, :, 1:] - x[:, :, :-1]).pow(2).mean(dim=(1, 2, 3, 4))")


@exercise("07.move_frame")
def check_move_frame(move_frame) -> None:
    """frames (B, C, H, W) moved by offsets (B, 2) pixels (x, y): out(p) = frame(p - d), bilinear, black (-1)
    where nothing comes into view."""
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(3, 2, 6, 7, generator=g) * 2 - 1
    offsets = torch.tensor([[2.0, 0.0], [0.0, -1.0], [1.5, 0.25]])
    got = move_frame(frames, offsets)
    expect_shape(got, tuple(frames.shape), "move_frame(frames of shape (3, 2, 6, 7), offsets (3, 2))")
    want = reference_shift(frames, offsets)
    if _same(got, want, atol=1e-5):
        expect(_same(move_frame(frames, torch.zeros(3, 2)), frames, atol=1e-5),
               "a zero offset should return the frames unchanged")
        return
    slips = {
        "moved the opposite way: backward sampling reads the frame at p - d, so content moves by +d":
            reference_shift(frames, -offsets),
        "moved by (y, x) instead of (x, y): offsets[:, 0] is the horizontal shift, along the width":
            reference_shift(frames, offsets.flip(-1)),
        "filled with 0 (grey) where nothing comes into view: black is -1; sample (frames + 1), then subtract 1":
            reference_warp(frames, offsets[:, :, None, None].expand(3, 2, 6, 7), fill=0.0),
    }
    for what, value in slips.items():
        expect(not _same(got, value, atol=1e-4), f"your frames are {what}.")
    whole = torch.roll(frames[0], shifts=2, dims=-1)
    expect(_same(got[0, :, :, 2:], whole[:, :, 2:], atol=1e-4),
           "moving by 2 whole pixels to the right should give frame[..., x - 2] at every x >= 2; check how pixel "
           "coordinates map to grid_sample's [-1, 1] (with align_corners=True, pixel i is at 2 i / (W - 1) - 1)")
    expect_close(got, want, what="the moved frames", atol=1e-4,
                 hint="with align_corners=True the revealed border of a sub-pixel move blends with the fill")
