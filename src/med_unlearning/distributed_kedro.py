"""The Kedro side of multi-GPU runs under ``torchrun``: one writer, one GPU per rank.

Every rank runs the same Kedro nodes. :class:`RankZeroCatalog` (the project's
``DATA_CATALOG_CLASS``) makes rank 0 the only writer, and :class:`DistributedSetupHooks` pins
each rank to its GPU before any node builds a model. Both are inert in a single process.
The training side is :mod:`med_unlearning.distributed`.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog

from med_unlearning.device import resolve_device
from med_unlearning.distributed import (
    distributed_context,
    init_distributed,
    is_main_process,
    rank_device,
)

__all__ = ["DistributedSetupHooks", "RankZeroCatalog"]

logger = logging.getLogger(__name__)


class RankZeroCatalog(DataCatalog):
    """A DataCatalog in which only rank 0 writes persisted datasets.

    Under ``torchrun`` every rank runs the same nodes; on ranks other than 0 a save to a
    persisted dataset keeps the data in this process's memory instead of writing it, and a
    later load of that dataset in the same run returns the kept copy. Inputs that exist
    before the run are read by every rank. In a single process it is a plain DataCatalog.

    Use it with ``DATA_CATALOG_CLASS = RankZeroCatalog`` in ``settings.py``. Kedro hooks
    cannot skip a save (``before_dataset_saved`` returns nothing), hence a catalog class.
    """

    def _rank_local(self) -> dict[str, Any] | None:
        """The kept data on a non-zero rank; ``None`` on rank 0 or in a single process."""
        if is_main_process(distributed_context("cpu")):
            return None
        return self.__dict__.setdefault("_rank_local_data", {})

    def save(self, ds_name: str, data: Any) -> None:
        """Write on rank 0; keep ``data`` in memory on the other ranks."""
        kept = self._rank_local()
        dataset = self.get(ds_name)
        if kept is None or dataset is None or getattr(dataset, "_EPHEMERAL", False):
            super().save(ds_name, data)
            return
        logger.debug("Rank-local save of %s (only rank 0 writes)", ds_name)
        kept[ds_name] = data

    def load(self, ds_name: str, version: str | None = None) -> Any:
        """The rank-local copy when this rank produced ``ds_name``, else the dataset."""
        kept = self._rank_local()
        if kept is not None and ds_name in kept:
            return kept[ds_name]
        return super().load(ds_name, version)

    def exists(self, ds_name: str) -> bool:
        """True as well for data this rank kept in memory."""
        kept = self._rank_local()
        if kept is not None and ds_name in kept:
            return True
        return super().exists(ds_name)

    def release(self, ds_name: str) -> None:
        """Drop the rank-local copy too."""
        kept = self._rank_local()
        if kept is not None:
            kept.pop(ds_name, None)
        super().release(ds_name)


class DistributedSetupHooks:
    """Join the process group and pin each rank to its GPU before any node runs.

    Without it the first :func:`~med_unlearning.training.train` call joins the group, but
    models and tensors built earlier on ``"cuda"`` would all sit on GPU 0.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Initialise ``torch.distributed`` when launched by ``torchrun``; else nothing."""
        ctx = distributed_context()
        init_distributed(ctx, rank_device(ctx, resolve_device("auto")))

