"""Denoising diffusion from first principles (lessons 05-09).

Three separate pieces, each readable on its own:

- :mod:`.schedules`: the noise schedule and every per-timestep constant (``make_schedule``);
- :mod:`.objectives`: noising in closed form, eps / x0 / v targets, the training loss;
- :mod:`.samplers`: DDPM, DDIM and DPM-Solver++(2M) as pure functions of ``model(x, t)``;
- :mod:`.flow_matching`: the straight path of rectified flow, its velocity target and loss, SD3's time
  sampling and shift, exact conversions to and from eps / x0 / v, and Euler / Heun on the flow ODE;
- :mod:`.guidance`: classifier-free guidance as a wrapper around a conditional model.

    schedule = make_schedule("cosine", 1000)
    loss = diffusion_loss(model, x0, schedule, prediction_type="eps")
    x = dpm_solver_pp_sample(model, torch.randn(16, 1, 28, 28), schedule, steps=20)

    loss = flow_matching_loss(velocity_model, x0, time_distribution="logit_normal", shift=3.0)
    x = sample("flow-euler", velocity_model, torch.randn(16, 1, 28, 28), None, steps=20, shift=3.0)
    x = sample("ddim", velocity_model, torch.randn(16, 1, 28, 28), schedule, prediction_type="velocity")
"""
from .flow_matching import (TIME_DISTRIBUTIONS, diffusion_model_from_velocity, diffusion_to_flow,
                            flow_euler_sample, flow_heun_sample, flow_matching_loss, flow_path,
                            flow_sampling_times, flow_time, logit_normal_density, mixture_velocity,
                            output_from_velocity, sample_time, shift_time, size_shift, velocity_from_output,
                            velocity_target, x0_noise_from_velocity)
from .guidance import classifier_free_guidance, conditional_model, drop_labels, guided_output
from .objectives import (PREDICTION_TYPES, check_model_output, check_prediction_type,
                         diffusion_loss, loss_weight, q_posterior, q_sample, training_target,
                         v_from_x0_eps, x0_eps_from_output)
from .samplers import (FLOW_SAMPLERS, SAMPLERS, ddim_sample, ddpm_sample, denoise, dpm_solver_pp_sample,
                       dpm_solver_pp_sde_sample, sample, sampling_timesteps)
from .schedules import SCHEDULES, NoiseSchedule, cosine_schedule, linear_schedule, make_schedule

__all__ = [
    "NoiseSchedule", "linear_schedule", "cosine_schedule", "make_schedule", "SCHEDULES",
    "PREDICTION_TYPES", "q_sample", "q_posterior", "v_from_x0_eps", "x0_eps_from_output",
    "training_target", "loss_weight", "diffusion_loss", "check_model_output",
    "check_prediction_type",
    "sampling_timesteps", "denoise", "ddpm_sample", "ddim_sample", "dpm_solver_pp_sample",
    "dpm_solver_pp_sde_sample",
    "SAMPLERS", "FLOW_SAMPLERS", "sample",
    "TIME_DISTRIBUTIONS", "flow_path", "velocity_target", "x0_noise_from_velocity", "sample_time",
    "logit_normal_density", "shift_time", "size_shift", "flow_matching_loss", "mixture_velocity",
    "flow_time", "diffusion_to_flow", "velocity_from_output", "output_from_velocity",
    "diffusion_model_from_velocity", "flow_sampling_times", "flow_euler_sample", "flow_heun_sample",
    "drop_labels", "guided_output", "classifier_free_guidance", "conditional_model",
]
