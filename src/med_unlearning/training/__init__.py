"""The one training loop of the project, shared by every task and unlearning strategy.

A caller supplies a model, a loader, a ``loss_fn(model, batch) -> loss`` and an optimizer;
the loop handles the device, mixed precision on CUDA, gradient clipping, the scheduler,
progress (epoch, loss, ETA) on the terminal and in the log, per-epoch timing split into
waiting for data and computing, and a clear error when the loss stops being finite.

Batches are whatever the loader yields; tensors anywhere inside (typed samples, dicts, lists,
tuples) are moved to the device. A batch with ``ids`` (a typed sample's field, e.g.
``("vol_003:slice 4",)``, or a mapping's ``"ids"`` entry) is named by those ids in error
messages.

Launched by ``torchrun`` with several processes, the same loop trains with DDP (see
:func:`train` and :mod:`med_unlearning.distributed`); in a single process it is unchanged.

Layout (one concept per module; import from this package):

- :mod:`.loop`: :func:`train`, one step, one epoch, :class:`LoopSettings`,
  :class:`TrainingResult`;
- :mod:`.validation`: the per-epoch validation pass (timed, averaged over ranks);
- :mod:`.progress`: the progress bar and the per-epoch log line;
- :mod:`.resume`: epoch checkpoints (:class:`ResumeSettings`) and resuming from them;
- :mod:`.batches`: moving, naming and counting the items of a batch;
- :mod:`.loaders`: seeding (:func:`seed_everything`) and seeded DataLoaders.
"""

from __future__ import annotations

from med_unlearning.training.batches import describe_batch, move_to_device
from med_unlearning.training.loaders import make_loader, seed_everything
from med_unlearning.training.loop import LoopSettings, NonFiniteLossError, TrainingResult, train
from med_unlearning.training.resume import ResumeSettings, ResumeStateError, resume_key

__all__ = [
    "LoopSettings",
    "NonFiniteLossError",
    "ResumeSettings",
    "ResumeStateError",
    "resume_key",
    "TrainingResult",
    "describe_batch",
    "make_loader",
    "move_to_device",
    "seed_everything",
    "train",
]
