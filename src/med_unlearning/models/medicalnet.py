"""Load MedicalNet (Med3D) pre-trained weights from a local file into a :class:`Med3DResNet`.

MedicalNet publishes ``resnet_{10,18,34,50,…}.pth`` and ``resnet_*_23dataset.pth``: a
``torch.save`` of ``{'state_dict': {...}}`` whose keys carry the ``module.`` prefix of
``nn.DataParallel`` (``module.conv1.weight``, ``module.layer1.0.bn1.running_mean``…). This
module never downloads anything: the user points ``segmentation.model.pretrained_weights`` at
a file they obtained themselves.

Rules:

- the file is read with ``torch.load(..., map_location="cpu", weights_only=True)`` (it cannot
  run code);
- ``module.`` prefixes are stripped; the head (``conv_seg.*``) is never loaded: it stays
  freshly initialised, since its classes differ from the pre-training tasks';
- a single-channel ``conv1`` is adapted to a model with several input channels (modalities)
  by repeating the kernel over channels and dividing by their number, so a constant image
  stacked ``C`` times gives the same first activations as the original single-channel model;
- every other mismatch (missing or unexpected keys, shapes) is a :class:`WeightsMismatchError`
  that names the file and lists the keys. BatchNorm's ``num_batches_tracked`` counters (absent
  in files saved by old PyTorch) are not required.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "HEAD_PREFIX",
    "WeightsMismatchError",
    "load_medicalnet_weights",
    "read_medicalnet_state_dict",
]

logger = logging.getLogger(__name__)

#: Keys of the segmentation head, which are never taken from a pre-trained file.
HEAD_PREFIX = "conv_seg."
_DATA_PARALLEL_PREFIX = "module."
_OPTIONAL_SUFFIX = "num_batches_tracked"


class WeightsMismatchError(ValueError):
    """A weights file does not fit the network; the message names the file and the keys."""


def _shorten(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", … ({len(keys) - limit} more)" if len(keys) > limit else "")


def read_medicalnet_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a MedicalNet weights file and return its backbone tensors without prefixes.

    Accepts ``{'state_dict': {...}}`` (MedicalNet's format) or a bare state dict, with or
    without ``module.`` prefixes. Head keys (``conv_seg.*``) are dropped.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        WeightsMismatchError: when the file is not a readable state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"MedicalNet weights file {str(path)!r} does not exist "
            "(segmentation.model.pretrained_weights)."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a bad/unsafe pickle
        raise WeightsMismatchError(
            f"Cannot read {str(path)!r} as a MedicalNet weights file with weights_only=True: "
            f"{type(error).__name__}: {error}"
        ) from error
    state = payload.get("state_dict", payload) if isinstance(payload, Mapping) else None
    if not isinstance(state, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in state.values()
    ):
        found = _shorten([str(key) for key in payload]) if isinstance(payload, Mapping) else "-"
        raise WeightsMismatchError(
            f"{str(path)!r} is not a MedicalNet weights file: expected {{'state_dict': "
            f"{{name: tensor}}}} or a state dict of tensors, got {type(payload).__name__} "
            f"with keys [{found}]"
        )
    stripped = {
        (key[len(_DATA_PARALLEL_PREFIX):] if key.startswith(_DATA_PARALLEL_PREFIX) else key): value
        for key, value in state.items()
    }
    return {key: value for key, value in stripped.items() if not key.startswith(HEAD_PREFIX)}


def _adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Spread a 1-channel stem kernel over ``in_channels`` channels (repeat, then average)."""
    return weight.repeat(1, in_channels, 1, 1, 1) / in_channels


def load_medicalnet_weights(model: nn.Module, path: str | Path) -> list[str]:
    """Load a local MedicalNet weights file into ``model``'s encoder, leaving the head fresh.

    Args:
        model: a :class:`~med_unlearning.models.segmentation.Med3DResNet` (or any module with
            MedicalNet's key layout) built with the depth, shortcut type and ``base_width=64``
            of the file.
        path: the ``.pth`` file.

    Returns:
        The keys that were loaded.

    Raises:
        FileNotFoundError: when the file does not exist.
        WeightsMismatchError: listing the missing keys, the unexpected keys and the shape
            mismatches, and naming the file.
    """
    path = Path(path)
    source = read_medicalnet_state_dict(path)
    target = {
        key: value for key, value in model.state_dict().items() if not key.startswith(HEAD_PREFIX)
    }

    stem = source.get("conv1.weight")
    model_stem = target.get("conv1.weight")
    if (
        stem is not None
        and model_stem is not None
        and stem.ndim == 5
        and stem.shape[1] == 1
        and model_stem.shape[1] > 1
        and stem.shape[0] == model_stem.shape[0]
    ):
        logger.info(
            "Adapting %s conv1 from 1 to %d input channels (kernel repeated and averaged)",
            path.name,
            model_stem.shape[1],
        )
        source["conv1.weight"] = _adapt_first_conv(stem, model_stem.shape[1])

    missing = sorted(
        key for key in target if key not in source and not key.endswith(_OPTIONAL_SUFFIX)
    )
    unexpected = sorted(key for key in source if key not in target)
    wrong_shape = sorted(
        f"{key} (file {tuple(source[key].shape)}, model {tuple(target[key].shape)})"
        for key in source
        if key in target and source[key].shape != target[key].shape
    )
    if missing or unexpected or wrong_shape:
        problems = []
        if missing:
            problems.append(f"missing keys ({len(missing)}): {_shorten(missing)}")
        if unexpected:
            problems.append(f"unexpected keys ({len(unexpected)}): {_shorten(unexpected)}")
        if wrong_shape:
            problems.append(f"shape mismatches ({len(wrong_shape)}): {_shorten(wrong_shape)}")
        raise WeightsMismatchError(
            f"MedicalNet weights {str(path)!r} do not fit the model "
            f"({type(model).__name__}: {getattr(model, 'extra_repr', lambda: '')()}):\n  "
            + "\n  ".join(problems)
            + "\nCheck the depth (e.g. med3d_resnet50 for resnet_50.pth), the shortcut type "
            "(MedicalNet: A for ResNet-18/34, B otherwise) and base_width=64."
        )
    loadable = {key: value for key, value in source.items() if key in target}
    model.load_state_dict(loadable, strict=False)
    logger.info(
        "Loaded %d tensors from MedicalNet weights %s (head left fresh)", len(loadable), path
    )
    return sorted(loadable)
