"""Training: the one loop every lesson uses, and the steps it runs.

- :mod:`.loop`: :func:`training_loop`: batches, checkpoints with exact resume, EMA, history, progress;
- :mod:`.fit`: :func:`fit`, one model on one loss (AdamW, warm-up, clipping, bf16 on CUDA);
- :mod:`.gan`: :func:`train_gan`, a generator and a discriminator taking turns;
- :mod:`.ema`: the bias-corrected exponential moving average of weights;
- :mod:`.checkpoint`: atomic saves, safe loads, random-number state;
- :mod:`.distributed`: DistributedDataParallel under ``torchrun``;
- :mod:`.profile`: what one training step costs in time and memory.
"""
from . import distributed
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state, state_digest
from .ema import ema_update, make_ema
from .fit import TrainResult, fit
from .gan import GANResult, train_gan
from .loop import LoopResult, data_identity, to_device, training_loop
from .profile import train_step_cost

__all__ = [
    "fit", "TrainResult",
    "train_gan", "GANResult",
    "training_loop", "LoopResult", "to_device", "data_identity",
    "ema_update", "make_ema",
    "save_checkpoint", "load_checkpoint", "state_digest", "rng_state", "set_rng_state",
    "distributed",
    "train_step_cost",
]
