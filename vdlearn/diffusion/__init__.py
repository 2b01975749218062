"""Denoising diffusion from first principles (lessons 05-09).

Three separate pieces, each readable on its own:

- :mod:`.schedules`: the noise schedule and every per-timestep constant (``make_schedule``);
- :mod:`.objectives`: noising in closed form, eps / x0 / v targets, the training loss;
- :mod:`.samplers`: DDPM, DDIM and DPM-Solver++(2M) as pure functions of ``model(x, t)``;
- :mod:`.guidance`: classifier-free guidance as a wrapper around a conditional model.

    schedule = make_schedule("cosine", 1000)
    loss = diffusion_loss(model, x0, schedule, prediction_type="eps")
    x = dpm_solver_pp_sample(model, torch.randn(16, 1, 28, 28), schedule, steps=20)
"""
from .guidance import classifier_free_guidance, drop_labels, guided_output
from .objectives import (PREDICTION_TYPES, check_model_output, check_prediction_type,
                         diffusion_loss, loss_weight, q_posterior, q_sample, training_target,
                         v_from_x0_eps, x0_eps_from_output)
from .samplers import (SAMPLERS, ddim_sample, ddpm_sample, denoise, dpm_solver_pp_sample,
                       dpm_solver_pp_sde_sample, sample, sampling_timesteps)
from .schedules import SCHEDULES, NoiseSchedule, cosine_schedule, linear_schedule, make_schedule

__all__ = [
    "NoiseSchedule", "linear_schedule", "cosine_schedule", "make_schedule", "SCHEDULES",
    "PREDICTION_TYPES", "q_sample", "q_posterior", "v_from_x0_eps", "x0_eps_from_output",
    "training_target", "loss_weight", "diffusion_loss", "check_model_output",
    "check_prediction_type",
    "sampling_timesteps", "denoise", "ddpm_sample", "ddim_sample", "dpm_solver_pp_sample",
    "dpm_solver_pp_sde_sample",
    "SAMPLERS", "sample",
    "drop_labels", "guided_output", "classifier_free_guidance",
]
