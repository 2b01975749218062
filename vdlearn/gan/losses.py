"""GAN losses on discriminator logits (lessons 03 and 04).

The discriminator outputs a logit :math:`l`; its probability that the input is real is
:math:`D = \\sigma(l)`. Written with :math:`\\log\\sigma(l) = -\\mathrm{softplus}(-l)` and
:math:`\\log(1-\\sigma(l)) = -\\mathrm{softplus}(l)`, every loss below is exact for any logit
(no ``log(0)``).

The value function of Goodfellow et al. (2014), eq. 1:

.. math:: V(D, G) = \\mathbb{E}_{x\\sim p_{\\rm data}}[\\log D(x)]
                    + \\mathbb{E}_{z\\sim p_z}[\\log(1 - D(G(z)))]

The discriminator maximises :math:`V`; the generator minimises it ("minimax", which saturates)
or, in practice, maximises :math:`\\log D(G(z))` instead ("nonsaturating"). The hinge loss
(Lim & Ye 2017; Miyato et al. 2018) is the third option. All losses are means over the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "LOSSES",
    "check_loss_name",
    "discriminator_loss",
    "generator_loss",
    "r1_penalty",
]

#: The loss names :func:`discriminator_loss` and :func:`generator_loss` understand.
LOSSES = ("minimax", "nonsaturating", "hinge")


def check_loss_name(kind: str) -> str:
    """Return ``kind`` if it names a loss in :data:`LOSSES`, else raise a ``ValueError``."""
    if kind not in LOSSES:
        raise ValueError(
            f"unknown GAN loss {kind!r}; expected one of {LOSSES}. 'minimax' is the original "
            "(saturating) game, 'nonsaturating' the -log D(G(z)) generator loss used in practice, "
            "'hinge' the hinge loss of SN-GAN."
        )
    return kind


def _logits(x: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} should be a tensor of discriminator logits, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{what} should be a float tensor of logits, got dtype {x.dtype}")
    return x.float()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       kind: str = "nonsaturating") -> torch.Tensor:
    """The discriminator's loss (to minimise) from its logits on real and generated data.

    ``minimax`` and ``nonsaturating`` share it: the binary cross-entropy, i.e. :math:`-V`:

    .. math:: L_D = \\mathbb{E}[\\mathrm{softplus}(-l_{\\rm real})]
                    + \\mathbb{E}[\\mathrm{softplus}(l_{\\rm fake})]

    ``hinge``: :math:`L_D = \\mathbb{E}[\\max(0, 1 - l_{\\rm real})] + \\mathbb{E}[\\max(0, 1 + l_{\\rm fake})]`.

    At the equilibrium :math:`D \\equiv 1/2` the cross-entropy is :math:`2\\log 2 \\approx 1.386`.
    """
    check_loss_name(kind)
    real, fake = _logits(real_logits, "real_logits"), _logits(fake_logits, "fake_logits")
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "nonsaturating") -> torch.Tensor:
    """The generator's loss (to minimise) from the discriminator's logits on generated data.

    - ``minimax`` (saturating): :math:`\\mathbb{E}[\\log(1 - D(G(z)))] = -\\mathbb{E}[\\mathrm{softplus}(l)]`;
      its gradient with respect to the logit is :math:`-D(G(z))`, which vanishes exactly when
      the discriminator wins (:math:`D(G(z)) \\to 0`).
    - ``nonsaturating``: :math:`-\\mathbb{E}[\\log D(G(z))] = \\mathbb{E}[\\mathrm{softplus}(-l)]`;
      gradient :math:`-(1 - D(G(z)))`, largest when the generator is worst.
    - ``hinge``: :math:`-\\mathbb{E}[l]`.
    """
    check_loss_name(kind)
    fake = _logits(fake_logits, "fake_logits")
    if kind == "minimax":
        return -F.softplus(fake).mean()
    if kind == "nonsaturating":
        return F.softplus(-fake).mean()
    return -fake.mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 gradient penalty (Mescheder et al. 2018, eq. 9) without its factor :math:`\\gamma/2`:

    .. math:: R_1 = \\mathbb{E}_{x\\sim p_{\\rm data}}\\, \\|\\nabla_x\\, l(x)\\|^2

    ``real`` must have ``requires_grad=True`` and ``real_logits`` must have been computed from
    it; the result keeps the graph so the penalty can be backpropagated into the discriminator.
    The training loss adds :math:`\\tfrac{\\gamma}{2} R_1`.
    """
    if not real.requires_grad:
        raise ValueError(
            "r1_penalty needs the gradient with respect to the real inputs: call "
            "real = real.detach().requires_grad_(True) before computing real_logits = D(real)"
        )
    if real_logits.grad_fn is None:
        raise ValueError("real_logits has no graph: compute it as D(real) after real.requires_grad_(True)")
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()
