"""Checks for lesson 09, latent video diffusion: a frame VAE's latents and a causal 3D VAE's pieces."""
from __future__ import annotations

from typing import Any

import torch

from ..vae.causal import CausalVideoVAE, chunk_lengths
from ..vae.causal import causal_pad as reference_causal_pad
from ..vae.models import FrameVAE
from . import ExerciseError, exercise, expect, expect_close, expect_shape

__all__ = ["check_encode_clips", "check_decode_clips", "check_causal_pad", "check_chunked_encode"]


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
             "your frames are scrambled: reshaping (B, C, T, H, W) straight to (B*T, C, H, W) mixes channels and "
             "frames. Move the frame axis next to the batch before folding it in, and undo it the same way."),
            (mixed.reshape(b, t, -1, *mixed.shape[-2:]).transpose(1, 2) * vae.scaling_factor,
             "your frames are scrambled: reshaping (B, C, T, H, W) straight to (B*T, C, H, W) mixes channels and "
             "frames. Move the frame axis next to the batch before folding it in."),
        ]
        for value, message in slips:
            expect(not _same(got, value), message)
        expect(_same(encode_clips(vae, clips), got, atol=1e-6),
               "encode_clips gives different latents on two calls: use the posterior mean mu (the first "
               "output of vae.encode), not a random sample.")
        expect_close(got, want, what="the scaled latents", atol=1e-4,
                     hint="encode every frame (frames folded into the batch) with vae.encode, keep the means, unfold "
                          "the frames back to (B, c, T, h, w) and scale by vae.scaling_factor.")


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
                     hint="undo the scaling, decode every frame's latent with vae.decode_mean (frames folded into "
                          "the batch), unfold the frames back to (B, C, T, H, W) and clamp to [-1, 1].")


# -- the causal 3D VAE ----------------------------------------------------------------------------------
def _numbered_clip(b: int, c: int, t: int, h: int, w: int, offset: float = 0.0) -> torch.Tensor:
    """A clip whose entries name their place: 1 + frame + 10·channel + 100·batch (+ a little per pixel), never 0."""
    idx = [torch.arange(n, dtype=torch.float32) for n in (b, c, t, h, w)]
    return (offset + 1 + idx[2].view(1, 1, -1, 1, 1) + 10 * idx[1].view(1, -1, 1, 1, 1)
            + 100 * idx[0].view(-1, 1, 1, 1, 1) + 0.1 * idx[3].view(1, 1, 1, -1, 1)
            + 0.01 * idx[4].view(1, 1, 1, 1, -1))


def _explain_padding(got: Any, x: torch.Tensor, front: torch.Tensor, frames: int, call: str, front_name: str) -> None:
    """Compare ``causal_pad``'s answer with ``[front, x]`` along time and say what is wrong, if anything."""
    b, c, t, h, w = x.shape
    n = front.shape[2]
    expect(isinstance(got, torch.Tensor), f"{call} should return a torch.Tensor, but returned {type(got).__name__}.")
    if got.ndim == 5 and tuple(got.shape[:2]) == (b, c) and tuple(got.shape[3:]) == (h, w):
        if got.shape[2] == t + n + frames and front_name == "the past":
            raise ExerciseError(f"{call} has {got.shape[2]} frames, {frames} too many: when a past is given it "
                                "takes the place of the copies of the first frame; put the past alone in front.")
        if got.shape[2] == t + 2 * n:
            raise ExerciseError(f"{call} has {got.shape[2]} frames, {n} too many: you padded on both sides. A causal "
                                f"convolution must not see the future, so all {n} padding frames go in front "
                                "of the clip and none behind it.")
    elif got.ndim == 5 and got.shape[2] == t:
        grown = [i for i in range(5) if got.shape[i] != x.shape[i]]
        expect(len(grown) != 1, f"{call} has shape {tuple(got.shape)}: you padded axis {grown[0]}, not time. "
                                "Time is the third axis (dim=2) of (B, C, T, H, W).")
    expect_shape(got, (b, c, t + n, h, w), f"{call} with x of shape {tuple(x.shape)}")
    want = torch.cat([front, x], dim=2)
    if _same(got, want, atol=1e-6):
        return
    got = got.detach().float()
    if _same(got[:, :, :t], x, atol=1e-6):
        raise ExerciseError(f"{call} puts x first and the padding behind it. Behind the clip are future frames; "
                            "a causal convolution pads in front only, so that output frame t sees input frames "
                            "up to t and never later ones.")
    if 0 < n // 2 < n and _same(got[:, :, n // 2:n // 2 + t], x, atol=1e-6):
        raise ExerciseError(f"{call} pads on both sides of x (as a 'same' convolution does). A causal convolution "
                            f"must not see the future: all {n} padding frames go in front, none behind.")
    expect(_same(got[:, :, n:], x, atol=1e-6),
           f"{call}: the last {t} frames should be x itself, unchanged and in order, with the padding in front.")
    padding = got[:, :, :n]
    if front_name == "the past":
        copies = x[:, :, :1].expand(-1, -1, n, -1, -1)
        for value, what in ((copies, "copies of the first frame"), (torch.zeros_like(front), "zeros")):
            expect(not _same(padding, value, atol=1e-6),
                   f"{call} pads with {what} although a past was given: a later chunk of a clip must see the "
                   "real frames before it, so put the past in front instead.")
        expect(not _same(padding, front.flip(2), atol=1e-6),
               f"{call} puts the past in front in reverse order; keep its frames in time order.")
    else:
        expect(not (padding == 0).all(),
               f"{call} pads with zeros. Pad with {front_name} instead: zero frames look like black frames that "
               "no real clip starts with, and with copies of the first frame an image looks like a clip that "
               "has always been still.")
        last = x[:, :, -1:].expand(-1, -1, n, -1, -1)
        expect(not _same(padding, last, atol=1e-6),
               f"{call} pads with copies of the last frame; a causal padding repeats the first frame "
               "(the only one the first output may see).")
    expect_close(got, want, what=f"{call}", atol=1e-6, hint=f"the frames in front should be {front_name}.")


@exercise("09.causal_pad")
def check_causal_pad(causal_pad) -> None:
    """causal_pad(x, frames, past=None): [past, x] along time, or `frames` copies of frame 0 then x; nothing behind."""
    x = _numbered_clip(2, 2, 3, 2, 3)
    with torch.no_grad():
        for frames in (2, 3):
            _explain_padding(causal_pad(x.clone(), frames), x, x[:, :, :1].expand(-1, -1, frames, -1, -1), frames,
                             f"causal_pad(x, frames={frames})", "copies of the first frame of x")
        for past_frames in (2, 1):  # what a stride-1 and a stride-2 layer with a 3-frame kernel keep of a chunk
            past = _numbered_clip(2, 2, past_frames, 2, 3, offset=0.5)
            _explain_padding(causal_pad(x.clone(), 2, past.clone()), x, past, 2,
                             f"causal_pad(x, frames=2, past of {past_frames} frame{'s' * (past_frames > 1)})",
                             "the past")
        one = _numbered_clip(1, 3, 1, 2, 2)  # a single frame: an image is a one-frame video
        expect_close(causal_pad(one.clone(), 2), reference_causal_pad(one, 2), what="causal_pad(an image, 2)",
                     atol=1e-6, hint="a one-frame clip becomes three copies of that frame.")


def _chunk_setup() -> CausalVideoVAE:
    """A tiny random causal VAE (time stride 2, 8x8 frames -> 4x4 latents)."""
    torch.manual_seed(0)
    return CausalVideoVAE(3, latent_channels=2, width=8, spatial_down=2, temporal_down=2, image_size=8).eval()


class _Recorder:
    """While in a ``with`` block, record the calls of ``vae.encoder`` (frames, cache) and of ``vae.encode`` (frames)."""

    def __init__(self, vae: CausalVideoVAE):
        self.vae = vae
        self.encoder_calls: list[tuple[int, Any]] = []
        self.encode_calls: list[int] = []

    def _encoder_called(self, module: Any, args: tuple, kwargs: dict) -> None:
        x = args[0] if args else kwargs.get("x")
        cache = args[1] if len(args) > 1 else kwargs.get("cache")
        self.encoder_calls.append((x.shape[2] if isinstance(x, torch.Tensor) else -1, cache))

    def __enter__(self) -> "_Recorder":
        encode = self.vae.encode

        def recorded_encode(x: Any, *args: Any, **kwargs: Any) -> Any:
            self.encode_calls.append(x.shape[2] if isinstance(x, torch.Tensor) and x.ndim == 5 else -1)
            return encode(x, *args, **kwargs)

        self._hook = self.vae.encoder.register_forward_pre_hook(self._encoder_called, with_kwargs=True)
        self.vae.encode = recorded_encode  # an instance attribute in front of the method, removed on exit
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hook.remove()
        del self.vae.encode


def _explain_chunks(calls: _Recorder, num_frames: int, chunk_frames: int, s: int) -> None:
    """Say what is wrong with how the clip was cut and the cache passed, if anything."""
    call = f"encode_in_chunks(vae, video of {num_frames} frames, chunk_frames={chunk_frames})"
    lengths = [n for n, _ in calls.encoder_calls]
    expect(not (calls.encode_calls == [num_frames] or (len(lengths) == 1 and lengths[0] >= num_frames)),
           f"{call} encoded the whole clip in one call, not chunk by chunk: the point is that memory only "
           f"has to hold one chunk. Cut the clip along time (dim=2) and call vae.encoder once per chunk.")
    expect(len(calls.encode_calls) == 0,
           f"{call} calls vae.encode on each chunk. vae.encode treats its input as a whole clip: it takes no "
           "feature cache, so every chunk is padded with copies of its own first frame instead of the frames "
           "before it. Call the encoder network, vae.encoder, and give it the cache.")
    expect(len(lengths) > 0, f"{call} never called vae.encoder: run the encoder network on each chunk yourself.")
    expect(lengths[0] == 1,
           f"{call} starts with a chunk of {lengths[0]} frames. The first frame must be encoded alone: latent "
           f"frame 0 summarises frame 0 only, and after it each latent frame covers {s} new frames, so the "
           f"first chunk ends where the first window of the stride-{s} layers ends.")
    for i, n in enumerate(lengths[1:], start=1):
        expect(n % s == 0,
               f"{call} has a chunk of {n} frames (chunk {i}, counting the first frame's as 0). After the first "
               f"frame every chunk must hold a multiple of the temporal stride s={s}, so that it ends where a "
               f"latent frame ends; otherwise a window of a strided layer would straddle two chunks.")
    caches = [cache for _, cache in calls.encoder_calls]
    expect(all(cache is not None for cache in caches),
           f"{call} calls vae.encoder without a feature cache, so every chunk is padded with copies of its own "
           "first frame instead of the frames before it. Pass one cache dict as the encoder's second argument.")
    expect(all(cache is caches[0] for cache in caches),
           f"{call} gives each chunk a new cache, so nothing is passed on: each chunk is padded with copies of "
           "its own first frame instead of the frames before it. Make one dict before the first chunk and pass "
           "that same dict to every call.")


@exercise("09.chunked_encode")
def check_chunked_encode(encode_in_chunks) -> None:
    """encode_in_chunks(vae, video, chunk_frames): frame 0 alone, then chunk_frames at a time, one cache -> mu."""
    vae = _chunk_setup()
    s, c = vae.temporal_down, vae.latent_channels
    g = torch.Generator().manual_seed(0)
    for num_frames, chunk_frames in ((13, 4), (11, 4)):  # chunks [1, 4, 4, 4], then [1, 4, 4, 2]
        video = torch.rand(2, 3, num_frames, 8, 8, generator=g) * 2 - 1
        call = f"encode_in_chunks(vae, video of {num_frames} frames, chunk_frames={chunk_frames})"
        with _Recorder(vae) as calls, torch.no_grad():
            try:
                got = encode_in_chunks(vae, video.clone(), chunk_frames)
            except ValueError:  # a misaligned chunk, found by the causal convolutions themselves
                _explain_chunks(calls, num_frames, chunk_frames, s)
                raise
        _explain_chunks(calls, num_frames, chunk_frames, s)
        with torch.no_grad():
            mu, logvar = vae.encode(video)
        if isinstance(got, (tuple, list)):
            raise ExerciseError(f"{call} returned a {type(got).__name__}; return only the means mu, one tensor.")
        if isinstance(got, torch.Tensor) and got.ndim == 5 and got.shape[1] == 2 * c:
            raise ExerciseError(f"{call} returned {2 * c} channels: the encoder's output holds mu and logvar "
                                f"stacked along the channels (dim=1); return the means, the first {c}.")
        expect_shape(got, tuple(mu.shape), call)
        expect(not _same(got, logvar, atol=1e-5),
               f"{call} returned the log-variances (the second half of the encoder's channels); return the means.")
        want_lengths = chunk_lengths(num_frames, chunk_frames)
        lengths = [n for n, _ in calls.encoder_calls]
        expect(lengths == want_lengths,
               f"{call} cut the clip into chunks of {lengths} frames; the exercise asks for frame 0 alone, then "
               f"chunk_frames={chunk_frames} frames at a time (the last chunk holds what is left), which makes "
               f"{len(want_lengths)} chunks.")
        expect_close(got, mu, what=f"the latents of {call}", atol=1e-5,
                     hint="they should equal the means of vae.encode(video): put the chunks' outputs back "
                          "together along time, in order.")
