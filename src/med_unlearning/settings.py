"""Kedro project settings: config loading, hooks, the catalog class."""

from med_unlearning.config_loader import ProjectConfigLoader
from med_unlearning.distributed_kedro import DistributedSetupHooks, RankZeroCatalog
from med_unlearning.hooks import ParameterValidationHooks, RunLockHooks
from med_unlearning.tracking import MlflowTrackingHooks, mlflow_environment_defaults

# Before kedro loads kedro-mlflow (which imports mlflow): no MLflow telemetry, file store allowed.
mlflow_environment_defaults()

# RunLockHooks: one `kedro run` per data root at a time (<data_root>/.med_unlearning.lock).
# MlflowTrackingHooks: kedro-mlflow's run + one nested run per model (conf/<env>/mlflow.yml).
HOOKS = (
    ParameterValidationHooks(),
    DistributedSetupHooks(),
    RunLockHooks(),
    MlflowTrackingHooks(),
)

# kedro-mlflow's own hook registers itself when installed; MlflowTrackingHooks drives it
# instead, so that tracking can be switched off (then nothing is written).
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow", "kedro-mlflow")

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
    "merge_strategy": {
        "parameters": "soft",
        "catalog": "soft",
        "globals": "soft",
        "mlflow": "soft",
    },
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"]},
}
