"""The lesson 09 checks accept the right answers and explain typical wrong ones."""
import pytest
import torch

from vdlearn.checks import ExerciseError
from vdlearn.checks import lesson09 as checks


def encode(vae, clips, *, scale="multiply", fold="transpose", sample=False):
    b, c, t, h, w = clips.shape
    frames = clips.transpose(1, 2).reshape(b * t, c, h, w) if fold == "transpose" else clips.reshape(b * t, c, h, w)
    mu, logvar = vae.encode(frames)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
    z = z.reshape(b, t, *z.shape[1:]).transpose(1, 2)
    return {"multiply": z * vae.scaling_factor, "divide": z / vae.scaling_factor, "none": z}[scale]


def decode(vae, latents, *, scale="divide", clamp=True):
    b, c, t, h, w = latents.shape
    z = {"divide": latents / vae.scaling_factor, "multiply": latents * vae.scaling_factor, "none": latents}[scale]
    x = vae.decode_mean(z.transpose(1, 2).reshape(b * t, c, h, w))
    x = x.reshape(b, t, *x.shape[1:]).transpose(1, 2)
    return x.clamp(-1, 1) if clamp else x


def test_encode_clips_right_answer_passes(capsys):
    checks.check_encode_clips(encode)
    assert "✅ 09.encode_clips" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    (dict(scale="none"), "not scaled"),
    (dict(scale="divide"), "divided"),
    (dict(fold="reshape"), "scrambled"),
    (dict(sample=True), "posterior mean"),
])
def test_encode_clips_wrong_answers_are_explained(options, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_encode_clips(lambda vae, clips: encode(vae, clips, **options))


def test_encode_clips_wrong_shape():
    with pytest.raises(ExerciseError, match=r"shape \(2, 4, 5, 2, 3\)"):
        checks.check_encode_clips(lambda vae, clips: encode(vae, clips).transpose(1, 2))


def test_decode_clips_right_answer_passes(capsys):
    checks.check_decode_clips(decode)
    assert "✅ 09.decode_clips" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    (dict(scale="none"), "divide by vae.scaling_factor first"),
    (dict(scale="multiply"), "multiplied"),
    (dict(clamp=False), "clamp"),
])
def test_decode_clips_wrong_answers_are_explained(options, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_decode_clips(lambda vae, z: decode(vae, z, **options))


def test_decode_clips_wrong_shape():
    with pytest.raises(ExerciseError, match="shape"):
        checks.check_decode_clips(lambda vae, z: decode(vae, z)[:, :, :3])


# -- the causal 3D VAE: padding in front, chunked encoding with a feature cache ------------------------------
def pad(x, frames, past=None, *, where="front", fill="first", use_past=True):
    if past is not None and use_past:
        front = past
    else:
        source = {"first": x[:, :, :1], "last": x[:, :, -1:], "zeros": torch.zeros_like(x[:, :, :1])}[fill]
        front = source.expand(-1, -1, frames, -1, -1)
    if where == "behind":
        return torch.cat([x, front], dim=2)
    if where == "both":
        half = front.shape[2] // 2
        return torch.cat([front[:, :, :half], x, x[:, :, -1:].expand(-1, -1, front.shape[2] - half, -1, -1)], dim=2)
    return torch.cat([front, x], dim=2)


def test_causal_pad_right_answer_passes(capsys):
    checks.check_causal_pad(pad)
    assert "✅ 09.causal_pad" in capsys.readouterr().out


def test_the_reference_causal_pad_passes(capsys):
    from vdlearn.vae import causal_pad
    checks.check_causal_pad(causal_pad)
    assert "✅ 09.causal_pad" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    (dict(where="behind"), "padding behind"),                             # the future, not the past
    (dict(fill="zeros"), "zeros"),                                        # black frames instead of frame 0
    (dict(fill="last"), "copies of the last frame"),
    (dict(where="both"), "both sides"),                                   # a 'same' convolution's padding
    (dict(use_past=False), "although a past was given"),                  # the past ignored
])
def test_causal_pad_wrong_answers_are_explained(options, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_causal_pad(lambda x, frames, past=None: pad(x, frames, past, **options))


def test_causal_pad_other_mistakes_are_explained():
    with pytest.raises(ExerciseError, match=r"padded axis 4, not time.*dim=2"):  # along the width
        checks.check_causal_pad(lambda x, frames, past=None: torch.cat([x[..., :1].expand(-1, -1, -1, -1, frames), x], -1))
    with pytest.raises(ExerciseError, match="too many: when a past is given"):  # past and copies both
        checks.check_causal_pad(lambda x, frames, past=None: pad(x, frames) if past is None
                                else torch.cat([past, pad(x, frames)], dim=2))
    with pytest.raises(ExerciseError, match="reverse order"):
        checks.check_causal_pad(lambda x, frames, past=None: pad(x, frames) if past is None
                                else torch.cat([past.flip(2), x], dim=2))
    with pytest.raises(ExerciseError, match=r"shape \(2, 2, 5, 2, 3\)"):    # one copy, whatever frames says
        checks.check_causal_pad(lambda x, frames, past=None: pad(x, 1, past))
    with pytest.raises(ExerciseError, match=r"padded axis 1, not time"):   # along the channels
        checks.check_causal_pad(lambda x, frames, past=None: torch.cat([x[:, :1].expand(-1, frames, -1, -1, -1), x], 1))
    with pytest.raises(ExerciseError, match="pads with zeros although a past was given"):
        checks.check_causal_pad(lambda x, frames, past=None: pad(x, frames) if past is None
                                else torch.cat([torch.zeros_like(past), x], dim=2))


def encode_in_chunks(vae, video, chunk_frames, *, first_alone=True, cache="shared", sizes=None, out="mu"):
    if sizes is not None:
        chunks = video.split(sizes(video.shape[2], chunk_frames), dim=2)
    elif first_alone:
        chunks = [video[:, :, :1], *video[:, :, 1:].split(chunk_frames, dim=2)]
    else:
        chunks = video.split(chunk_frames, dim=2)
    shared = {}
    outputs = []
    for chunk in chunks:
        if cache == "shared":
            outputs.append(vae.encoder(chunk, shared))
        elif cache == "fresh":
            outputs.append(vae.encoder(chunk, {}))
        else:
            outputs.append(vae.encoder(chunk))
    h = torch.cat(outputs, dim=2)
    mu, logvar = h.chunk(2, dim=1)
    return {"mu": mu, "logvar": logvar, "both": h, "pair": (mu, logvar)}[out]


def test_chunked_encode_right_answer_passes(capsys):
    checks.check_chunked_encode(encode_in_chunks)
    assert "✅ 09.chunked_encode" in capsys.readouterr().out


def test_the_reference_chunked_encode_passes(capsys):
    from vdlearn.vae import encode_chunked
    checks.check_chunked_encode(lambda vae, video, n: encode_chunked(vae, video, n)[0])
    assert "✅ 09.chunked_encode" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    (dict(cache="none"), "without a feature cache"),                       # no cache at all
    (dict(cache="fresh"), "a new cache"),                                  # a cache not passed on
    (dict(first_alone=False), "starts with a chunk of 4 frames.*first frame must be encoded alone"),
    (dict(first_alone=False, cache="none"), "first frame must be encoded alone"),
    (dict(sizes=lambda t, n: [1] + [n - 1] * ((t - 1) // (n - 1)) + [(t - 1) % (n - 1)] * bool((t - 1) % (n - 1))),
     r"chunk of 3 frames.*multiple of the temporal stride s=2"),           # chunks not aligned to the stride
    (dict(sizes=lambda t, n: [1] + [2] * ((t - 1) // 2)), r"chunks of \[1, 2, 2"),   # not chunk_frames at a time
    (dict(out="both"), "mu and logvar stacked"),
    (dict(out="logvar"), "log-variances"),
    (dict(out="pair"), "only the means"),
])
def test_chunked_encode_wrong_answers_are_explained(options, message):
    with pytest.raises(ExerciseError, match=message):
        checks.check_chunked_encode(lambda vae, video, n: encode_in_chunks(vae, video, n, **options))


def test_chunked_encode_must_chunk():
    # the right numbers from one pass over the whole clip miss the exercise's point
    with pytest.raises(ExerciseError, match="whole clip in one call"):
        checks.check_chunked_encode(lambda vae, video, n: vae.encode(video)[0])
    with pytest.raises(ExerciseError, match="whole clip in one call"):
        checks.check_chunked_encode(lambda vae, video, n: vae.encoder(video, {}).chunk(2, dim=1)[0])


def test_chunked_encode_with_vae_encode_per_chunk_is_explained():
    def per_chunk(vae, video, n):  # vae.encode takes no cache, and pads each chunk as a clip of its own
        chunks = [video[:, :, :1], *video[:, :, 1:].split(n, dim=2)]
        return torch.cat([vae.encode(chunk)[0] for chunk in chunks], dim=2)

    with pytest.raises(ExerciseError, match="calls vae.encode on each chunk"):
        checks.check_chunked_encode(per_chunk)


def test_chunked_encode_check_leaves_the_vae_as_it_was():
    vae = checks._chunk_setup()
    with checks._Recorder(vae) as calls:
        vae.encode(torch.zeros(1, 3, 3, 8, 8))
    assert calls.encode_calls == [3] and [n for n, _ in calls.encoder_calls] == [3]
    assert "encode" not in vars(vae) and not vae.encoder._forward_pre_hooks
