"""The project's config loader: Kedro's OmegaConfigLoader plus the selector-override rule.

Soft merging keeps base's ``column``/``values`` next to an env's or ``--params``' ``ids``
in a forget request; :func:`med_unlearning.params.overrides.drop_overridden_selectors`
makes an override that switches the way of selecting replace the block instead. Applied
to ``parameters`` only, at both merges Kedro does: runtime ``--params`` over each
environment's files, and the run env over base.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import DictConfig, OmegaConf

from med_unlearning.params.overrides import drop_overridden_selectors

__all__ = ["ProjectConfigLoader"]


class ProjectConfigLoader(OmegaConfigLoader):
    """OmegaConfigLoader whose parameter overrides replace selector blocks (see module)."""

    def _merge_and_resolve(self, key: str, config_per_file: dict[Path, DictConfig]) -> Any:
        if key == "parameters" and self.runtime_params:
            config_per_file = {
                path: OmegaConf.create(
                    drop_overridden_selectors(
                        OmegaConf.to_container(config, resolve=False), self.runtime_params
                    )
                )
                for path, config in config_per_file.items()
            }
        return super()._merge_and_resolve(key, config_per_file)

    def _merge_configs(
        self, config: dict[str, Any], env_config: dict[str, Any], key: str, env_path: str
    ) -> Any:
        if key == "parameters":
            config = drop_overridden_selectors(config, env_config)
        return super()._merge_configs(config, env_config, key, env_path)
