"""Kedro project settings: config loading, hooks, the catalog class."""

from kedro.config import OmegaConfigLoader

from med_unlearning.distributed_kedro import DistributedSetupHooks, RankZeroCatalog
from med_unlearning.hooks import ParameterValidationHooks

HOOKS = (ParameterValidationHooks(), DistributedSetupHooks())

# Under torchrun only rank 0 writes datasets; a plain DataCatalog in a single process.
DATA_CATALOG_CLASS = RankZeroCatalog

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An env file that overrides one key keeps that key's siblings (e.g. conf/gpu only sets
    # ``runtime.device``; the rest of ``runtime`` still comes from base).
    "merge_strategy": {"parameters": "soft", "catalog": "soft", "globals": "soft"},
}
