"""The shipped models: load them, sample them, and train them again from their recipes.

- :mod:`.shipped`: the checkpoints in ``data/checkpoints`` (SHA-256 verified), :func:`load_pretrained`,
  :func:`save_pretrained` and :func:`sample`, one call that samples any shipped generator;
- :mod:`.recipes`: how each shipped model is trained (data, network, objective, steps, sampler);
- :mod:`.runs`: ``python -m vdlearn pretrain NAME``, resumable over many sittings, and a run's learning curve.
"""
from .shipped import (CONDITIONS, builder_class, checkpoint_dir, load_pretrained, load_state, manifest,
                      sample, save_pretrained, sha256, verify)
from .recipes import RECIPES, Recipe, get_recipe, recipe_table
from .runs import default_workdir, evaluate_run, finished_run, pretrain, read_curve, record_curve_point, run_model

__all__ = ["checkpoint_dir", "manifest", "sha256", "verify", "load_state", "builder_class", "load_pretrained",
           "save_pretrained", "CONDITIONS", "sample", "Recipe", "RECIPES", "get_recipe", "recipe_table",
           "default_workdir", "pretrain", "run_model", "finished_run", "evaluate_run",
           "record_curve_point", "read_curve"]
