"""Variational autoencoders (lessons 01, 02 and 09).

* :mod:`.objectives`: reparameterisation, the Gaussian KL, likelihoods, the ELBO, bits per dimension;
* :mod:`.gradients`: pathwise vs score-function gradient estimators;
* :mod:`.linear_gaussian`: a model whose evidence and posterior are exact;
* :mod:`.models`: ``MLPVAE``, ``ConvVAE``, ``FrameVAE``;
* :mod:`.fitting`: the training loss, held-out bounds, the latent scaling factor;
* :mod:`.video`: frames in, latent interpolations and walks out;
* :mod:`.causal`: ``CausalVideoVAE``, a causal 3D VAE that compresses time too (the first frame
  alone, chunked encoding with a feature cache); ``vae_loss``, ``evaluate_elbo`` and
  ``calibrate_scaling_factor`` give it whole clips.
"""
from .causal import CausalConv3d, CausalVideoVAE, causal_pad, decode_chunked, encode_chunked, inflate_frame_vae
from .fitting import calibrate_scaling_factor, evaluate_elbo, vae_loss
from .gradients import pathwise_gradient, score_function_gradient
from .linear_gaussian import LinearGaussian
from .models import VAE, ConvVAE, FrameVAE, MLPVAE, VAEOutput
from .objectives import (ELBOTerms, bernoulli_log_likelihood, bits_per_dim, elbo, gaussian_kl,
                         gaussian_log_likelihood, log_mean_exp, reparameterize)
from .video import (interpolate_latents, latent_interpolation_video, latent_traversal,
                    latent_walk_video, pixel_crossfade, reconstruct_video, slerp)

__all__ = [
    "reparameterize", "gaussian_kl", "gaussian_log_likelihood", "bernoulli_log_likelihood",
    "ELBOTerms", "elbo", "bits_per_dim", "log_mean_exp",
    "pathwise_gradient", "score_function_gradient",
    "LinearGaussian",
    "VAEOutput", "VAE", "MLPVAE", "ConvVAE", "FrameVAE", "vae_loss", "evaluate_elbo",
    "calibrate_scaling_factor",
    "slerp", "interpolate_latents", "pixel_crossfade", "latent_interpolation_video",
    "latent_traversal", "latent_walk_video", "reconstruct_video",
    "causal_pad", "CausalConv3d", "CausalVideoVAE", "encode_chunked", "decode_chunked", "inflate_frame_vae",
]
