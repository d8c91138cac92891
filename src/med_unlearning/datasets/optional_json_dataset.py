"""``OptionalJSONDataset``: a (versioned) JSON document that loads as ``{}`` while absent."""

from __future__ import annotations

from typing import Any

from kedro_datasets.json import JSONDataset

__all__ = ["OptionalJSONDataset"]


class OptionalJSONDataset(JSONDataset):
    """kedro-datasets' ``JSONDataset`` whose load gives ``{}`` when no file (version) exists.

    For outputs of an optional pipeline that other pipelines use *when present*, e.g. the
    settings the ``tuning`` pipeline selected: the unlearning pipeline reads them as an
    ordinary catalog input (visible in kedro-viz) and runs on its conf values until a
    tuning run has written a version.

    .. code-block:: yaml

        tuning.selected:
          type: med_unlearning.datasets.OptionalJSONDataset
          filepath: data/05_model_input/tuning/selected.json
          versioned: true
    """

    def load(self) -> Any:
        if not self.exists():
            return {}
        return super().load()
