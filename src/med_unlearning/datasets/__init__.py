"""Kedro datasets for the project's on-disk formats (thin wrappers over :mod:`med_unlearning.io`).

- :class:`FastMRIVolumeDataset` — one fastMRI ``.h5`` volume, lazy.
- :class:`FigureFolderDataset` — matplotlib figures as PNGs in a folder (kedro-viz preview).
- :class:`NiftiDataset` — one NIfTI image, lazy.
- :class:`ModelCheckpointDataset` — a versioned safetensors checkpoint with lineage.
- :class:`WriteOnceFolderDataset` — a partitioned folder sample data may fill only when empty.
- :class:`OptionalCSVDataset` — a user CSV table that may be absent.
- :class:`OptionalJSONDataset` — a (versioned) JSON document that loads as ``{}`` while absent.
- :class:`OptionalTorchWeightsDataset` — a read-only ``torch.save`` weights file, ``None`` if unset.

Classes are imported on first use, so reading a fastMRI file does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "FastMRIVolumeDataset",
    "FigureFolderDataset",
    "ModelCheckpointDataset",
    "NiftiDataset",
    "OptionalCSVDataset",
    "OptionalJSONDataset",
    "OptionalTorchWeightsDataset",
    "WriteOnceFolderDataset",
]

_MODULES = {
    "FastMRIVolumeDataset": "fastmri_dataset",
    "FigureFolderDataset": "figure_folder_dataset",
    "ModelCheckpointDataset": "checkpoint_dataset",
    "NiftiDataset": "nifti_dataset",
    "OptionalCSVDataset": "optional_csv_dataset",
    "OptionalJSONDataset": "optional_json_dataset",
    "OptionalTorchWeightsDataset": "torch_weights_dataset",
    "WriteOnceFolderDataset": "write_once_folder_dataset",
}

if TYPE_CHECKING:
    from med_unlearning.datasets.checkpoint_dataset import ModelCheckpointDataset
    from med_unlearning.datasets.fastmri_dataset import FastMRIVolumeDataset
    from med_unlearning.datasets.figure_folder_dataset import FigureFolderDataset
    from med_unlearning.datasets.nifti_dataset import NiftiDataset
    from med_unlearning.datasets.optional_csv_dataset import OptionalCSVDataset
    from med_unlearning.datasets.optional_json_dataset import OptionalJSONDataset
    from med_unlearning.datasets.torch_weights_dataset import OptionalTorchWeightsDataset
    from med_unlearning.datasets.write_once_folder_dataset import WriteOnceFolderDataset


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        module = importlib.import_module(f"{__name__}.{_MODULES[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
