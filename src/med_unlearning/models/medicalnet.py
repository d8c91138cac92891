"""Load MedicalNet (Med3D) pre-trained weights into a :class:`Med3DResNet`.

MedicalNet publishes ``resnet_{10,18,34,50,…}.pth`` and ``resnet_*_23dataset.pth``: a
``torch.save`` of ``{'state_dict': {...}}`` whose keys carry the ``module.`` prefix of
``nn.DataParallel`` (``module.conv1.weight``, ``module.layer1.0.bn1.running_mean``…). This
module never reads files nor downloads anything: the catalog entry
``segmentation.medicalnet_weights`` (:class:`~med_unlearning.datasets.OptionalTorchWeightsDataset`,
``torch.load(..., map_location="cpu", weights_only=True)``, so the file cannot run code) loads
the file the user obtained themselves, and the training node hands the loaded object here.

Rules:

- ``{'state_dict': {...}}`` or a bare state dict, with or without ``module.`` prefixes; the
  head (``conv_seg.*``) is never loaded: it stays freshly initialised, since its classes
  differ from the pre-training tasks';
- a single-channel ``conv1`` is adapted to a model with several input channels (modalities)
  by repeating the kernel over channels and dividing by their number, so a constant image
  stacked ``C`` times gives the same first activations as the original single-channel model;
- weights of another base width (``conv1``'s output channels) are a
  :class:`WeightsMismatchError` saying which ``segmentation.model.base_width`` they need;
- every other mismatch (missing or unexpected keys, shapes) is a :class:`WeightsMismatchError`
  that names the source and lists the keys. BatchNorm's ``num_batches_tracked`` counters
  (absent in files saved by old PyTorch) are not required.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = [
    "HEAD_PREFIX",
    "WeightsMismatchError",
    "load_medicalnet_weights",
    "medicalnet_backbone",
    "weights_fingerprint",
]

logger = logging.getLogger(__name__)

#: Keys of the segmentation head, which are never taken from a pre-trained file.
HEAD_PREFIX = "conv_seg."
_DATA_PARALLEL_PREFIX = "module."
_OPTIONAL_SUFFIX = "num_batches_tracked"
_DEFAULT_SOURCE = "MedicalNet weights"


class WeightsMismatchError(ValueError):
    """Weights do not fit the network; the message names their source and the keys."""


def _shorten(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", … ({len(keys) - limit} more)" if len(keys) > limit else "")


def medicalnet_backbone(
    weights: Any, source: str = _DEFAULT_SOURCE
) -> dict[str, torch.Tensor]:
    """The backbone tensors of loaded MedicalNet weights, without prefixes.

    Args:
        weights: what ``torch.load`` returned: ``{'state_dict': {...}}`` (MedicalNet's format)
            or a bare state dict, with or without ``module.`` prefixes.
        source: where the weights come from (a file, a catalog entry), named in errors.

    Returns:
        ``{key: tensor}`` without ``module.`` prefixes and without head keys (``conv_seg.*``).

    Raises:
        WeightsMismatchError: ``weights`` is not a state dict of tensors.
    """
    state = weights.get("state_dict", weights) if isinstance(weights, Mapping) else None
    if not isinstance(state, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in state.values()
    ):
        found = _shorten([str(key) for key in weights]) if isinstance(weights, Mapping) else "-"
        raise WeightsMismatchError(
            f"{source} is not a MedicalNet weights file: expected {{'state_dict': "
            f"{{name: tensor}}}} or a state dict of tensors, got {type(weights).__name__} "
            f"with keys [{found}]"
        )
    stripped = {
        (key[len(_DATA_PARALLEL_PREFIX):] if key.startswith(_DATA_PARALLEL_PREFIX) else key): value
        for key, value in state.items()
    }
    return {key: value for key, value in stripped.items() if not key.startswith(HEAD_PREFIX)}


def weights_fingerprint(weights: Any) -> str | None:
    """``sha256:<hex>`` of the backbone tensors of ``weights`` (names, dtypes, shapes,
    values; prefixes and head ignored), for lineage; ``None`` for no weights."""
    if weights is None:
        return None
    digest = hashlib.sha256()
    for key, value in sorted(medicalnet_backbone(weights).items()):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return f"sha256:{digest.hexdigest()}"


def _adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Spread a 1-channel stem kernel over ``in_channels`` channels (repeat, then average)."""
    return weight.repeat(1, in_channels, 1, 1, 1) / in_channels


def load_medicalnet_weights(
    model: nn.Module, weights: Any, source: str = _DEFAULT_SOURCE
) -> list[str]:
    """Load MedicalNet weights into ``model``'s encoder, leaving the head fresh.

    Args:
        model: a :class:`~med_unlearning.models.segmentation.Med3DResNet` (or any module with
            MedicalNet's key layout) built with the depth, shortcut type and base width of
            the weights (``base_width=64`` for MedicalNet's published files).
        weights: the loaded file (``{'state_dict': {...}}`` or a bare state dict), e.g. the
            ``segmentation.medicalnet_weights`` catalog entry.
        source: where the weights come from (the file or catalog entry), named in errors
            and logs.

    Returns:
        The keys that were loaded.

    Raises:
        WeightsMismatchError: ``weights`` is not a state dict of tensors, or does not fit:
            listing the missing keys, the unexpected keys and the shape mismatches, and
            naming ``source``.
    """
    backbone = medicalnet_backbone(weights, source)
    target = {
        key: value for key, value in model.state_dict().items() if not key.startswith(HEAD_PREFIX)
    }

    stem = backbone.get("conv1.weight")
    model_stem = target.get("conv1.weight")
    if stem is not None and model_stem is not None and stem.shape[0] != model_stem.shape[0]:
        raise WeightsMismatchError(
            f"{source} have base width {stem.shape[0]} (conv1 output channels; MedicalNet's "
            f"published files: 64) but the model has {model_stem.shape[0]}: set "
            f"segmentation.model.base_width: {stem.shape[0]}"
        )
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
            source,
            model_stem.shape[1],
        )
        backbone["conv1.weight"] = _adapt_first_conv(stem, model_stem.shape[1])

    missing = sorted(
        key for key in target if key not in backbone and not key.endswith(_OPTIONAL_SUFFIX)
    )
    unexpected = sorted(key for key in backbone if key not in target)
    wrong_shape = sorted(
        f"{key} (weights {tuple(backbone[key].shape)}, model {tuple(target[key].shape)})"
        for key in backbone
        if key in target and backbone[key].shape != target[key].shape
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
            f"{source} do not fit the model "
            f"({type(model).__name__}: {getattr(model, 'extra_repr', lambda: '')()}):\n  "
            + "\n  ".join(problems)
            + "\nCheck the depth (e.g. med3d_resnet50 for resnet_50.pth), the shortcut type "
            "(MedicalNet: A for ResNet-18/34, B otherwise) and the base width (MedicalNet: 64)."
        )
    loadable = {key: value for key, value in backbone.items() if key in target}
    model.load_state_dict(loadable, strict=False)
    logger.info("Loaded %d tensors from %s (head left fresh)", len(loadable), source)
    return sorted(loadable)
