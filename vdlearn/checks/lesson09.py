"""Checks for lesson 09, latent video diffusion."""
from __future__ import annotations

import torch

from ..vae.models import FrameVAE
from . import exercise, expect, expect_close, expect_shape

__all__ = ["check_encode_clips", "check_decode_clips"]


def _setup(seed: int = 0) -> tuple[FrameVAE, torch.Tensor]:
    """A small random FrameVAE with a scaling factor of 0.5 and 2 clips (2, 3, 5, 8, 12) whose frames differ."""
    torch.manual_seed(seed)
    vae = FrameVAE(3, latent_channels=4, downsample=4, width=8, image_size=8).eval()
    vae.scaling_factor.fill_(0.5)
    g = torch.Generator().manual_seed(seed)
    clips = torch.rand(2, 3, 5, 8, 12, generator=g) * 2 - 1
    return vae, clips


def _same(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-4) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=atol)


@exercise("09.encode_clips")
def check_encode_clips(encode_clips) -> None:
    """Clips (B, C, T, H, W) -> posterior means of every frame, times the scaling factor: (B, c, T, H/f, W/f)."""
    vae, clips = _setup()
    with torch.no_grad():
        got = encode_clips(vae, clips)
        expect_shape(got, (2, 4, 5, 2, 3), "encode_clips(vae, clips of shape (2, 3, 5, 8, 12))")
        means = vae.encode_video(clips, scaled=False)          # (B, c, T, h, w), unscaled
        want = means * vae.scaling_factor
        if _same(got, want):
            again = encode_clips(vae, clips)
            expect(_same(again, got, atol=1e-6),
                   "encode_clips gives different latents on two calls: use the posterior mean mu "
                   "(the first output of vae.encode), not a random sample, to encode a dataset.")
            return
        b, c, t, h, w = clips.shape
        mixed = vae.encode(clips.reshape(b * t, c, h, w))[0]
        slips = [
            (means, "your latents are not scaled: multiply them by vae.scaling_factor, so that they have "
                    "the unit variance the noise schedule assumes."),
            (means / vae.scaling_factor, "you divided by vae.scaling_factor; encoding multiplies by it "
                                         "(decoding divides)."),
            (mixed.reshape(b, -1, t, *mixed.shape[-2:]) * vae.scaling_factor,
             "your frames are scrambled: clips.reshape(B*T, C, H, W) mixes channels and frames. Move the "
             "frame axis next to the batch first: clips.transpose(1, 2).reshape(B*T, C, H, W), and undo it "
             "the same way (reshape(B, T, c, h, w).transpose(1, 2))."),
            (mixed.reshape(b, t, -1, *mixed.shape[-2:]).transpose(1, 2) * vae.scaling_factor,
             "your frames are scrambled: clips.reshape(B*T, C, H, W) mixes channels and frames. Move the "
             "frame axis next to the batch first: clips.transpose(1, 2).reshape(B*T, C, H, W)."),
        ]
        for value, message in slips:
            expect(not _same(got, value), message)
        expect(_same(encode_clips(vae, clips), got, atol=1e-6),
               "encode_clips gives different latents on two calls: use the posterior mean mu (the first "
               "output of vae.encode), not a random sample.")
        expect_close(got, want, what="the scaled latents", atol=1e-4,
                     hint="frames = clips.transpose(1, 2).reshape(B*T, C, H, W); mu, _ = vae.encode(frames); "
                          "then reshape(B, T, c, h, w).transpose(1, 2) and multiply by vae.scaling_factor")


@exercise("09.decode_clips")
def check_decode_clips(decode_clips) -> None:
    """Scaled latents (B, c, T, h, w) -> clips (B, C, T, h·f, w·f) in [-1, 1]: the decoder's mean of z / s."""
    vae, clips = _setup(1)
    with torch.no_grad():
        latents = 3 * vae.encode_video(clips)                    # far from the data: some pixels leave [-1, 1]
        got = decode_clips(vae, latents)
        expect_shape(got, (2, 3, 5, 8, 12), "decode_clips(vae, latents of shape (2, 4, 5, 2, 3))")
        want = vae.decode_video(latents)
        if _same(got, want):
            return
        b, c, t, h, w = latents.shape
        s = vae.scaling_factor

        def dec(z, clamp=True):
            x = vae.decode_mean(z.transpose(1, 2).reshape(b * t, c, h, w))
            x = x.reshape(b, t, *x.shape[1:]).transpose(1, 2)
            return x.clamp(-1, 1) if clamp else x

        slips = [
            (dec(latents), "you decoded the scaled latents directly: divide by vae.scaling_factor first "
                           "(z / s is what the VAE's decoder was trained on)."),
            (dec(latents * s), "you multiplied by vae.scaling_factor; decoding divides by it (encoding multiplies)."),
            (dec(latents / s, clamp=False), "some pixels lie outside [-1, 1]: clamp the decoded clips to [-1, 1]."),
        ]
        for value, message in slips:
            expect(not _same(got, value), message)
        expect_close(got, want, what="the decoded clips", atol=1e-4,
                     hint="frames = (latents / vae.scaling_factor).transpose(1, 2).reshape(B*T, c, h, w); "
                          "x = vae.decode_mean(frames); reshape(B, T, C, H, W).transpose(1, 2); clamp(-1, 1)")
