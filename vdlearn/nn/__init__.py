"""Network building blocks for diffusion models (lessons 05-07).

- :mod:`.embeddings`: sinusoidal timestep embedding;
- :mod:`.blocks`: the residual blocks (plain, and with scale-shift conditioning on the timestep),
  the one group-norm rule, down/upsampling;
- :mod:`.attention`: self-attention through ``F.scaled_dot_product_attention``;
- :mod:`.unet2d`: the image U-Net, and :func:`prepare_model` (channels_last, compile);
- :mod:`.mlp`: a small denoiser for 2-D points;
- :mod:`.video_dit`: the video diffusion transformer (space-time tubelet tokens, adaLN-Zero, RoPE).
"""
from .attention import SelfAttention, SpatialSelfAttention
from .blocks import Downsample, ResBlock, TimestepResBlock, Upsample, group_norm, zero_module
from .embeddings import TimestepEmbedding, timestep_embedding
from .mlp import DenoisingMLP
from .unet2d import UNet2D, count_parameters, prepare_model
from .video_dit import DiTBlock, VideoDiT

__all__ = [
    "timestep_embedding", "TimestepEmbedding",
    "group_norm", "zero_module", "ResBlock", "TimestepResBlock", "Downsample", "Upsample",
    "SelfAttention", "SpatialSelfAttention",
    "UNet2D", "prepare_model", "count_parameters",
    "DenoisingMLP",
    "VideoDiT", "DiTBlock",
]
