"""The 3D brain segmentation task (MRBrainS18, Med3D ResNets).

- :mod:`.task` — :class:`SegmentationTask` (the :class:`~med_unlearning.tasks.base.Task`,
  patch loaders, whole-volume prediction and scores), :func:`prediction_image`;
- :mod:`.training` — :class:`SegmentationTrainingSettings`, :func:`train_segmentation`.

Everything is re-exported here, so ``from med_unlearning.tasks.segmentation import …``
works.
"""

from med_unlearning.tasks.segmentation.task import (
    MEDICALNET_SHORTCUTS,
    InferenceSettings,
    SegmentationTask,
    prediction_image,
)
from med_unlearning.tasks.segmentation.training import (
    SegmentationTrainingSettings,
    train_segmentation,
)

__all__ = [
    "MEDICALNET_SHORTCUTS",
    "InferenceSettings",
    "SegmentationTask",
    "SegmentationTrainingSettings",
    "prediction_image",
    "train_segmentation",
]
