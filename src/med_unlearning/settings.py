"""Kedro project settings: config loading, hooks, the catalog class."""

from med_unlearning.config_loader import ProjectConfigLoader
from med_unlearning.distributed_kedro import DistributedSetupHooks, RankZeroCatalog
from med_unlearning.hooks import ParameterValidationHooks, RunLockHooks

# RunLockHooks: one `kedro run` per data root at a time (<data_root>/.med_unlearning.lock).
HOOKS = (ParameterValidationHooks(), DistributedSetupHooks(), RunLockHooks())

# Under torchrun only rank 0 writes datasets; a plain DataCatalog in a single process.
DATA_CATALOG_CLASS = RankZeroCatalog

# OmegaConfigLoader, except that overriding a forget selector with another way of selecting
# (e.g. ``request: {ids: [...]}`` over base's column/values) replaces it (params/overrides.py).
CONFIG_LOADER_CLASS = ProjectConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An env file that overrides one key keeps that key's siblings (e.g. conf/gpu only sets
    # ``runtime.device``; the rest of ``runtime`` still comes from base).
    "merge_strategy": {"parameters": "soft", "catalog": "soft", "globals": "soft"},
}
