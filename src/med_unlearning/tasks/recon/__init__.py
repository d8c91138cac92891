"""The reconstruction task (MRI, fastMRI volumes, VarNet / U-Net).

- :mod:`.task` — :class:`ReconTask` (the :class:`~med_unlearning.tasks.base.Task`) and
  :class:`ReconLoss`;
- :mod:`.data` — the slice datasets and loaders (:func:`slice_dataset`,
  :func:`recon_loader`);
- :mod:`.training` — :class:`ReconTrainingSettings`, :func:`fit_recon_model`;
- :mod:`.inference` — :func:`reconstruct_volumes`, :func:`evaluate_reconstructions`,
  :func:`model_from_checkpoint`, :func:`reconstruct_volume`.

Everything is re-exported here, so ``from med_unlearning.tasks.recon import …`` works.
"""

from med_unlearning.tasks.recon.data import (
    recon_loader,
    slice_dataset,
    undersampler_from_checkpoint,
)
from med_unlearning.tasks.recon.inference import (
    VolumeReconstruction,
    evaluate_reconstructions,
    model_from_checkpoint,
    reconstruct_volume,
    reconstruct_volumes,
)
from med_unlearning.tasks.recon.task import ReconLoss, ReconTask
from med_unlearning.tasks.recon.training import ReconTrainingSettings, fit_recon_model

__all__ = [
    "ReconLoss",
    "ReconTask",
    "ReconTrainingSettings",
    "VolumeReconstruction",
    "evaluate_reconstructions",
    "fit_recon_model",
    "model_from_checkpoint",
    "recon_loader",
    "reconstruct_volume",
    "reconstruct_volumes",
    "slice_dataset",
    "undersampler_from_checkpoint",
]
