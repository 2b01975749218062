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
