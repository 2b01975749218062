"""Fitting a VAE to data: the loss ``fit`` trains on, bounds on a held-out set, latent scaling (lessons 01, 02, 09).

- :func:`vae_loss`: the negative ELBO of a batch, the ``loss_fn`` for :func:`vdlearn.train.fit`;
- :func:`evaluate_elbo`: the negative ELBO (and, with ``K``, the importance-weighted bound of
  Burda et al. 2016) of held-out data in nats and bits per dimension;
- :func:`calibrate_scaling_factor`: the factor that gives a VAE's latents unit variance.

All three take frame models (``MLPVAE``, ``ConvVAE``, ``FrameVAE``) and video models
(:class:`~vdlearn.vae.CausalVideoVAE`) alike. What "an example" is depends on the model: a model
that says ``takes_video = True`` sees each clip (B, C, T, H, W) whole, because it compresses time
too; any other model sees a batch of videos as the frames it holds, (B·T, C, H, W).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batches import make_batch
from .models import VAE
from .objectives import LOG_2PI, bits_per_dim, elbo, gaussian_log_likelihood, log_mean_exp, reparameterize

__all__ = ["vae_loss", "evaluate_elbo", "calibrate_scaling_factor"]


def _takes_video(model: nn.Module) -> bool:
    """Whether ``model`` encodes whole clips (B, C, T, H, W): its ``takes_video`` flag, looked up
    through a DistributedDataParallel wrapper (which keeps the model in ``.module``)."""
    return bool(getattr(getattr(model, "module", model), "takes_video", False))


def _examples(batch: Any, model: nn.Module) -> torch.Tensor:
    """The inputs of a batch for ``model``: the first item of (x, labels); videos (B, C, T, H, W)
    become frames (B·T, C, H, W) unless the model takes video."""
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"a batch must be a tensor or (tensor, labels); got {type(x).__name__}")
    if x.ndim == 5 and not _takes_video(model):
        x = x.transpose(1, 2).flatten(0, 1)
    return x


def _decode_like(model: VAE, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``model.decode(z)`` shaped like ``x``: a video model decodes as many frames as ``x`` has
    (it may pad a clip to :math:`1 + s k` frames before encoding)."""
    return model.decode(z, frames=x.shape[2]) if _takes_video(model) else model.decode(z)


def vae_loss(model: nn.Module, batch: Any, *, beta: float = 1.0,
             binarize: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The ``loss_fn`` for :func:`vdlearn.train.fit`: :math:`\\operatorname{mean}[-\\log p(x|z) + \\beta\\,\\mathrm{KL}]`.

    ``batch`` is images (B, C, H, W), videos (B, C, T, H, W) or (either, labels). Videos are whole
    examples for a model with ``takes_video = True`` (a :class:`~vdlearn.vae.CausalVideoVAE`) and
    frames for any other (a FrameVAE). ``model`` may be ``fit``'s DistributedDataParallel wrapper.
    ``binarize=True`` draws binary pixels :math:`x\\sim\\mathrm{Bernoulli}((x+1)/2)` afresh each time
    (dynamic binarisation), so a Bernoulli decoder's ELBO bounds a true log-probability.
    Logs ``neg_elbo``, ``recon``, ``kl`` (nats per example: per frame or per clip).
    """
    vae = getattr(model, "module", model)  # the VAE itself; the forward pass goes through ``model``
    x = _examples(batch, vae)
    target = vae.targets(x)
    if binarize:
        if vae.likelihood != "bernoulli":
            raise ValueError("binarize=True needs a Bernoulli likelihood; this model is "
                             f"{vae.likelihood!r}")
        target = torch.bernoulli(target)
        x = target * 2 - 1
    out = model(x)
    terms = elbo(target, out.decoder_out, out.mu, out.logvar, likelihood=vae.likelihood,
                 obs_logvar=vae.obs_logvar_value(), beta=beta)
    return terms.loss, terms.metrics()


@torch.no_grad()
def evaluate_elbo(model: VAE, data: Any, *, batch_size: int = 256, binarize_seed: int | None = None,
                  num_samples: int = 1, importance_samples: int = 0,
                  max_examples: int | None = None) -> dict[str, float]:
    """The negative ELBO of ``data`` (a Dataset or tensor), averaged per example (nats) and per dimension.

    An example is an item of ``data``: an image, or a whole clip (for a frame model, the sum over the
    clip's frames, so that both kinds of model report nats and bits per dimension of the same clips).

    ``binarize_seed`` binarises each pixel once with that seed (a fixed binarised test set).
    ``num_samples`` averages the one-sample ELBO over several :math:`z`.
    ``importance_samples`` K > 0 also reports the importance-weighted bound (IWAE, Burda et al. 2016)

    .. math:: -\\log p(x) \\le -\\log\\frac1K\\sum_k \\frac{p(x|z_k)p(z_k)}{q(z_k|x)} \\le -\\mathcal L(x)

    as ``neg_log_likelihood_iw``: a tighter estimate of :math:`-\\log p(x)`.
    Returns ``neg_elbo`` and ``bits_per_dim`` (and ``recon``, ``kl``, ``num_examples``).
    """

    model.eval()
    device = next(model.parameters()).device
    n = len(data) if max_examples is None else min(len(data), max_examples)
    if n < 1:
        raise ValueError("evaluate_elbo needs at least one example; the data (or max_examples) is empty")
    g = torch.Generator().manual_seed(binarize_seed) if binarize_seed is not None else None
    sums = {"neg_elbo": 0.0, "recon": 0.0, "kl": 0.0, "neg_log_likelihood_iw": 0.0}
    num_dims = 0
    for start in range(0, n, batch_size):
        count = min(start + batch_size, n) - start
        x = _examples(make_batch(data, torch.arange(start, start + count)), model).to(device)
        target = model.targets(x)
        if g is not None:
            target = torch.bernoulli(target.cpu(), generator=g).to(device)
            x = target * 2 - 1
        for _ in range(num_samples):
            terms = model.elbo_terms(x, target=target)
            sums["neg_elbo"] += -terms.elbo.sum().item() / num_samples
            sums["recon"] += -terms.log_likelihood.sum().item() / num_samples
            sums["kl"] += terms.kl.sum().item() / num_samples
        num_dims = terms.num_dims * (len(x) // count)  # the dimensions of one item (all its frames)
        if importance_samples:
            sums["neg_log_likelihood_iw"] += -_iw_bound(model, x, target, importance_samples).sum().item()
    out = {k: v / n for k, v in sums.items()}
    if not importance_samples:
        out.pop("neg_log_likelihood_iw")
    out["bits_per_dim"] = float(bits_per_dim(out["neg_elbo"], num_dims))
    out["num_examples"] = n
    return out


def _iw_bound(model: VAE, x: torch.Tensor, target: torch.Tensor, K: int) -> torch.Tensor:
    """:math:`\\log\\frac1K\\sum_k p(x|z_k)p(z_k)/q(z_k|x)` per example (the IWAE bound)."""
    mu, logvar = model.encode(x)
    log_w = []
    for _ in range(K):
        z = reparameterize(mu, logvar)
        if model.likelihood == "bernoulli":
            logits = _decode_like(model, z, x)
            ll = -F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)
        else:
            ll = gaussian_log_likelihood(target, _decode_like(model, z, x), model.obs_logvar_value())
        log_pz = -0.5 * (LOG_2PI + z.pow(2)).flatten(1).sum(1)
        log_qz = -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).flatten(1).sum(1)
        log_w.append(ll + log_pz - log_qz)
    return log_mean_exp(torch.stack(log_w), dim=0)


@torch.no_grad()
def calibrate_scaling_factor(vae: VAE, data: Any, *, num_examples: int = 512,
                             batch_size: int = 128) -> float:
    """Set ``vae.scaling_factor`` to :math:`1/\\operatorname{std}(\\mu)` over the posterior means of
    ``data`` (frames, videos or a Dataset of them) and return it (lesson 09).

    Diffusion models add noise of unit variance; latents scaled to unit variance keep the noise
    schedule's signal-to-noise ratios as designed. ``num_examples`` and ``batch_size`` count items
    of ``data`` (clips, for videos); a video model encodes each clip whole, a FrameVAE its frames.
    """

    vae.eval()
    device = next(vae.parameters()).device
    n = min(len(data), num_examples)
    if n == 0:
        raise ValueError("calibrate_scaling_factor needs at least one example; the data is empty")
    latents = []
    for start in range(0, n, batch_size):
        x = _examples(make_batch(data, torch.arange(start, min(start + batch_size, n))), vae).to(device)
        latents.append(vae.encode(x)[0].float().cpu().flatten())
    std = torch.cat(latents).std().item()
    vae.scaling_factor.fill_(1.0 / std)
    return 1.0 / std
