"""Kedro project settings: config loading, hooks."""

from kedro.config import OmegaConfigLoader

from med_unlearning.hooks import ParameterValidationHooks

HOOKS = (ParameterValidationHooks(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An env file that overrides one key keeps that key's siblings (e.g. conf/gpu only sets
    # ``runtime.device``; the rest of ``runtime`` still comes from base).
    "merge_strategy": {"parameters": "soft", "catalog": "soft", "globals": "soft"},
}
