"""The 3D brain segmentation task (MRBrainS18, Med3D ResNet; docs/studies.md §2).

(Over 500 lines for one reason: it is one class, the whole Task protocol for segmentation
plus its patch data and whole-volume prediction, which share the task's settings.)

:class:`SegmentationTask` implements :class:`~med_unlearning.tasks.base.Task` for patches of
MRBrainS18 subjects, plus what the segmentation pipeline needs around it: MedicalNet's SGD
recipe (head learning rate ×100), patch loaders, whole-volume sliding-window prediction and
per-subject scores. Training is in :mod:`.training` (:func:`train_segmentation`).

Batches are collated :class:`~med_unlearning.data.samples.SegmentationSample` s: ``image``
float ``[B, C, x, y, z]`` (z-scored modalities), ``label`` int64 ``[B, x, y, z]`` (class
indices, :data:`~med_unlearning.data.labels.IGNORE_INDEX` where ignored), ``ids`` (subject
ids).

Targets: :meth:`SegmentationTask.target` returns the class-index volume ``[B, x, y, z]``
(not logits-shaped); :meth:`SegmentationTask.criterion` also accepts *soft* targets shaped
like the logits ``[B, K, x, y, z]`` (class probabilities, e.g. a frozen model's softmax for
"Retain Label"-style strategies). Voxels whose batch label is ignored never count.

Encoder/decoder split (for "Fix Decoder" / "Random Encoder"): the encoder is the Med3D
backbone (``conv1``, ``bn1``, ``layer1``–``layer4``), the decoder is the ``conv_seg`` head;
:meth:`SegmentationTask.encode` returns ``(layer4 features,)`` at 1/8 of the input size.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import nibabel as nib
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from monai.losses import MaskedDiceLoss
from torch import nn
from torch.utils.data import DataLoader

from med_unlearning.data.labels import IGNORE_INDEX, LabelMapping, get_label_mapping
from med_unlearning.data.seg_dataset import PatchDataset, SubjectVolume, load_subjects
from med_unlearning.device import autocast_dtype, full_precision, resolve_device
from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.metrics.segmentation import segmentation_scores
from med_unlearning.models import build_model
from med_unlearning.models.medicalnet import load_medicalnet_weights
from med_unlearning.tasks.base import Batch, Features, ModelParts, soft_target
from med_unlearning.training import make_loader

__all__ = [
    "InferenceSettings",
    "SegmentationTask",
    "prediction_image",
]

logger = logging.getLogger(__name__)

#: MedicalNet's shortcut type per depth (the one its published weights need).
MEDICALNET_SHORTCUTS = {
    "med3d_resnet10": "B",
    "med3d_resnet18": "A",
    "med3d_resnet34": "A",
    "med3d_resnet50": "B",
}


@dataclass(frozen=True)
class InferenceSettings:
    """Sliding-window inference settings (see :class:`SegmentationInferenceParams`)."""

    roi_size: tuple[int, int, int]
    overlap: float = 0.25
    sw_batch_size: int = 4
    mode: Literal["gaussian", "constant"] = "gaussian"


class SegmentationTask:
    """Segmentation of brain tissues in 3D MR patches with a Med3D ResNet.

    Args:
        architecture: registry name (``med3d_resnet10`` … ``med3d_resnet50``).
        architecture_params: the factory's keyword arguments (stored in checkpoints).
        label_mapping: raw labels -> classes; sets the number of classes.
        modalities: input channels in order (stored for lineage and checks).
        loss: ``ce`` (cross-entropy) or ``dice_ce`` (cross-entropy + MONAI masked Dice).
        dice_weight: weight of the Dice term in ``dice_ce``.
        inference: sliding-window settings for whole volumes.
        device: where prediction runs (``auto``/``cpu``/``cuda``).
        precision: ``fp32``/``bf16``/``fp16`` (autocast on CUDA only).
        crop_margin: preprocessing, see :func:`~med_unlearning.data.seg_dataset.load_subject`.
        crop_threshold: preprocessing, see :func:`~med_unlearning.data.seg_dataset.load_subject`.
    """

    name = "segmentation"

    def __init__(
        self,
        *,
        architecture: str,
        architecture_params: Mapping[str, Any],
        label_mapping: LabelMapping,
        modalities: Sequence[str],
        loss: Literal["ce", "dice_ce"] = "ce",
        dice_weight: float = 1.0,
        inference: InferenceSettings,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        crop_margin: int = 4,
        crop_threshold: float = 0.1,
    ) -> None:
        if loss not in ("ce", "dice_ce"):
            raise ValueError(f"loss must be 'ce' or 'dice_ce', got {loss!r}")
        self.architecture = architecture
        self.architecture_params = dict(architecture_params)
        self.label_mapping = label_mapping
        self.modalities = tuple(modalities)
        self.loss_name = loss
        self.dice_weight = float(dice_weight)
        self.inference = inference
        self.device = device
        self.precision = precision
        self.crop_margin = crop_margin
        self.crop_threshold = crop_threshold
        self._dice = MaskedDiceLoss(include_background=False, softmax=True, reduction="none")

    @classmethod
    def from_params(cls, params: Any, runtime: Any | None = None) -> SegmentationTask:
        """Build the task from the typed ``segmentation`` (and ``runtime``) sections.

        Args:
            params: a :class:`~med_unlearning.params.segmentation.SegmentationParams`.
            runtime: a :class:`~med_unlearning.params.runtime.RuntimeParams` (device,
                precision); ``None`` = CPU/CUDA auto, fp32.
        """
        mapping = get_label_mapping(params.data.label_mapping)
        model = params.model
        architecture_params = {
            "in_channels": len(params.data.modalities),
            "num_classes": mapping.num_classes,
            "shortcut_type": model.shortcut_type or MEDICALNET_SHORTCUTS[model.architecture],
            "base_width": model.base_width,
            "head_channels": model.head_channels,
            "no_max_pool": model.no_max_pool,
        }
        inference = params.inference
        roi_size = tuple(inference.roi_size or params.training.patch_size)
        return cls(
            architecture=model.architecture,
            architecture_params=architecture_params,
            label_mapping=mapping,
            modalities=params.data.modalities,
            loss=params.training.loss,
            dice_weight=params.training.dice_weight,
            inference=InferenceSettings(
                roi_size=roi_size,  # type: ignore[arg-type]
                overlap=inference.overlap,
                sw_batch_size=inference.sw_batch_size,
                mode=inference.mode,
            ),
            device=runtime.device if runtime is not None else "auto",
            precision=runtime.precision if runtime is not None else "fp32",
            crop_margin=params.data.crop_margin,
            crop_threshold=params.data.crop_threshold,
        )

    # ---- Task protocol -------------------------------------------------------------------

    @property
    def num_classes(self) -> int:
        """Output classes, background included."""
        return self.label_mapping.num_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names; index 0 is the background."""
        return self.label_mapping.class_names

    def build_model(
        self, pretrained: Any | None = None, source: str = "MedicalNet weights"
    ) -> nn.Module:
        """A fresh network; its encoder takes ``pretrained`` when given.

        Args:
            pretrained: loaded MedicalNet weights (``{'state_dict': …}`` or a state dict,
                e.g. the ``segmentation.medicalnet_weights`` catalog entry); ``None`` =
                random initialisation. The head stays fresh.
            source: where ``pretrained`` comes from, named in errors.

        Raises:
            WeightsMismatchError: the weights do not fit the network (base width, depth,
                shortcut type), listing the keys.
        """
        model = build_model(self.architecture, self.architecture_params)
        if pretrained is not None:
            load_medicalnet_weights(model, pretrained, source)
        return model

    def load_checkpoint(self, checkpoint: ModelCheckpoint) -> nn.Module:
        """Rebuild the network stored in ``checkpoint`` (no pretrained file is read).

        Raises:
            ValueError: the checkpoint belongs to another task, or its architecture or
                parameters differ from this task's (e.g. another label mapping or modality
                list), naming both.
        """
        meta = checkpoint.metadata
        if meta.task != self.name:
            raise ValueError(f"Checkpoint of task {meta.task!r} given to the {self.name!r} task")
        same_params = dict(meta.architecture_params) == self.architecture_params
        if meta.architecture != self.architecture or not same_params:
            raise ValueError(
                f"Checkpoint holds {meta.architecture} {meta.architecture_params} but the "
                f"segmentation parameters describe {self.architecture} {self.architecture_params}; "
                "use the parameters the checkpoint was trained with"
            )
        model = build_model(meta.architecture, meta.architecture_params)
        model.load_state_dict(checkpoint.state_dict)
        return model

    def inputs(self, batch: Batch) -> torch.Tensor:
        """The z-scored image ``[B, C, x, y, z]``."""
        return batch.image

    def with_inputs(self, batch: Batch, inputs: torch.Tensor) -> Batch:
        """A shallow copy of ``batch`` with ``image`` replaced."""
        return batch._replace(image=inputs)

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Class logits ``[B, K, x, y, z]`` at the input size."""
        return model(self.inputs(batch))

    def target(self, batch: Batch) -> torch.Tensor:
        """Class indices ``[B, x, y, z]`` (``IGNORE_INDEX`` where ignored)."""
        return batch.label

    def data_range(self, batch: Batch) -> None:
        """``None``: class-index targets have no intensity range (noise is not relative)."""
        return None

    def output_as_target(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Logits as a soft target: class probabilities ``[B, K, x, y, z]`` (float32)."""
        return soft_target(output)

    def valid_mask(self, batch: Batch) -> torch.Tensor:
        """``[B, x, y, z]`` bool: the voxels that count (label not ignored)."""
        return batch.label != IGNORE_INDEX

    @full_precision
    def criterion(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        batch: Batch,
        reduction: Literal["mean", "none"] = "mean",
    ) -> torch.Tensor:
        """Cross-entropy (+ masked Dice for ``dice_ce``) of logits against any target.

        Args:
            output: logits ``[B, K, x, y, z]``.
            target: class indices ``[B, x, y, z]`` (``IGNORE_INDEX`` allowed) or class
                probabilities ``[B, K, x, y, z]``.
            batch: the batch (its ignored voxels are excluded for soft targets too).
            reduction: ``mean`` (scalar over the batch) or ``none`` (``[B]``).

        Computed in float32 with autocast off (:func:`~med_unlearning.device.full_precision`).
        """
        if isinstance(batch, Mapping):  # a dict has no .label: its ignored voxels would count
            raise TypeError(
                "segmentation batches are SegmentationSample (med_unlearning.data.samples), "
                f"not a dict with keys {sorted(batch)}"
            )
        if getattr(batch, "label", None) is not None:
            valid = self.valid_mask(batch)
        else:
            valid = torch.ones_like(output[:, 0], dtype=torch.bool)
        soft = target.is_floating_point() and target.shape == output.shape
        if soft:
            per_voxel = -(target.float() * F.log_softmax(output.float(), dim=1)).sum(dim=1)
        else:
            if target.shape != output.shape[:1] + output.shape[2:]:
                raise ValueError(
                    f"target shape {tuple(target.shape)} fits neither class indices "
                    f"{tuple(output.shape[:1] + output.shape[2:])} nor probabilities "
                    f"{tuple(output.shape)}"
                )
            valid = valid & (target != IGNORE_INDEX)
            per_voxel = F.cross_entropy(
                output.float(), target.long(), ignore_index=IGNORE_INDEX, reduction="none"
            )
        weights = valid.float()
        counts = weights.flatten(1).sum(1).clamp_min(1.0)
        per_item = (per_voxel * weights).flatten(1).sum(1) / counts
        if self.loss_name == "dice_ce" and self.dice_weight > 0:
            per_item = per_item + self.dice_weight * self._dice_term(output, target, valid, soft)
        return per_item.mean() if reduction == "mean" else per_item

    def _dice_term(
        self, output: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, soft: bool
    ) -> torch.Tensor:
        if soft:
            one_hot = target
        else:
            indices = torch.where(valid, target.long(), torch.zeros_like(target.long()))
            one_hot = F.one_hot(indices, self.num_classes).movedim(-1, 1).to(output.dtype)
        dice = self._dice(output.float(), one_hot.float(), mask=valid[:, None].float())
        return dice.flatten(1).mean(1)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The training objective: :meth:`criterion` of the logits against the labels."""
        return self.criterion(self.forward(model, batch), self.target(batch), batch)

    def noisy_target(
        self, batch: Batch, scale: float, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The batch's labels with a fraction ``scale`` (0–1) of voxels set to random classes.

        ``scale = 1`` gives fully random labels (the "Noisy Label" strategy); ignored voxels
        stay ignored. Random numbers come from ``generator`` (on the labels' device) or
        torch's global generator.
        """
        if not 0.0 <= scale <= 1.0:
            raise ValueError(
                f"noisy_target scale is the fraction of relabelled voxels, in [0, 1]; got {scale}"
            )
        labels = self.target(batch).long()
        device = labels.device
        flip = torch.rand(labels.shape, generator=generator, device=device) < scale
        random = torch.randint(
            0, self.num_classes, labels.shape, generator=generator, device=device
        )
        noisy = torch.where(flip, random, labels)
        return torch.where(labels == IGNORE_INDEX, labels, noisy)

    def parts(self, model: nn.Module) -> ModelParts:
        """Encoder = Med3D backbone (conv1 … layer4); decoder = the ``conv_seg`` head."""
        return ModelParts(encoder=model.encoder_modules(), decoder=model.decoder_modules())

    def encode(self, model: nn.Module, batch: Batch) -> Features:
        """``(layer4 features,)``, ``[B, F, x/8, y/8, z/8]``."""
        return (model.encode(self.inputs(batch)),)

    def decode(self, model: nn.Module, features: Features, batch: Batch) -> torch.Tensor:
        """Head logits from :meth:`encode`'s features, at the size :meth:`forward` gives."""
        size = tuple(self.inputs(batch).shape[2:]) if model.upsample_logits else None
        return model.decode(features[0], size)

    # ---- Optimisation ----------------------------------------------------------------------

    def optimizer(
        self,
        model: nn.Module,
        learning_rate: float,
        head_lr_multiplier: float = 100.0,
        momentum: float = 0.9,
        weight_decay: float = 1e-3,
    ) -> torch.optim.SGD:
        """MedicalNet's SGD: backbone at ``learning_rate``, head ×``head_lr_multiplier``."""
        parts = self.parts(model)
        return torch.optim.SGD(
            [
                {"params": parts.encoder_parameters(), "lr": learning_rate, "name": "encoder"},
                {
                    "params": parts.decoder_parameters(),
                    "lr": learning_rate * head_lr_multiplier,
                    "name": "decoder",
                },
            ],
            lr=learning_rate,
            momentum=momentum,
            weight_decay=weight_decay,
        )

    def patch_dataset(
        self,
        subjects: Sequence[SubjectVolume],
        patch_size: Sequence[int],
        samples_per_subject: int,
        pos_fraction: float = 0.8,
    ) -> PatchDataset:
        """Random training patches of ``subjects`` (see :class:`PatchDataset`)."""
        self._check_subjects(subjects)
        return PatchDataset(subjects, patch_size, samples_per_subject, pos_fraction)

    def patch_loader(
        self,
        subjects: Sequence[SubjectVolume],
        patch_size: Sequence[int],
        samples_per_subject: int,
        pos_fraction: float,
        *,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        device: str | torch.device = "auto",
    ) -> DataLoader:
        """A shuffled (``seed``) loader of :meth:`patch_dataset` patches: the one way training
        and unlearning serve segmentation data.

        A last batch of a single patch is dropped: BatchNorm cannot train on it.
        """
        dataset = self.patch_dataset(subjects, patch_size, samples_per_subject, pos_fraction)
        return make_loader(
            dataset,
            batch_size,
            shuffle=True,
            seed=seed,
            num_workers=num_workers,
            pin_memory=pin_memory,
            device=device,
            drop_last=len(dataset) > batch_size and len(dataset) % batch_size == 1,
        )

    def load_subjects(
        self,
        partitions: Mapping[str, Any],
        subject_ids: Sequence[str],
        *,
        require_label: bool = True,
    ) -> dict[str, SubjectVolume]:
        """Read and preprocess subjects exactly as this task's models were trained on them.

        Args:
            partitions: the ``mrbrains_raw`` partitions (``"070/pre/T1"`` -> loader).
            subject_ids: the subjects to load.
            require_label: raise for a subject without ``segm`` (``False`` for inference).
        """
        return load_subjects(
            partitions,
            subject_ids,
            self.modalities,
            self.label_mapping,
            crop_margin=self.crop_margin,
            crop_threshold=self.crop_threshold,
            require_label=require_label,
        )

    def _check_subjects(self, subjects: Sequence[SubjectVolume]) -> None:
        for subject in subjects:
            if subject.modalities != self.modalities:
                raise ValueError(
                    f"Subject {subject.subject_id!r} was loaded with modalities "
                    f"{list(subject.modalities)} but the task expects {list(self.modalities)}"
                )

    # ---- Whole volumes ---------------------------------------------------------------------

    @torch.no_grad()
    def predict_probabilities(self, model: nn.Module, subject: SubjectVolume) -> np.ndarray:
        """Softmax class probabilities ``[K, x, y, z]`` on the subject's crop (sliding window).

        The model is put in eval mode (and left in it).
        """
        self._check_subjects([subject])
        device = resolve_device(self.device)
        model.to(device).eval()
        amp = autocast_dtype(self.precision, device)
        image = torch.from_numpy(subject.image)[None].to(device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            logits = sliding_window_inference(
                image,
                roi_size=self.inference.roi_size,
                sw_batch_size=self.inference.sw_batch_size,
                predictor=model,
                overlap=self.inference.overlap,
                mode=self.inference.mode,
            )
        logits = torch.as_tensor(logits).float()
        return torch.softmax(logits[0], dim=0).cpu().numpy()

    def predict_labels(self, model: nn.Module, subject: SubjectVolume) -> np.ndarray:
        """Predicted classes (uint8) on the subject's full original grid."""
        probabilities = self.predict_probabilities(model, subject)
        return subject.uncrop(probabilities.argmax(0).astype(np.uint8))

    def score_subject(
        self, model: nn.Module, subject: SubjectVolume, probabilities: np.ndarray | None = None
    ) -> dict[str, float]:
        """Dice per class, mean Dice and MAE of one labelled subject (on its crop box,
        which holds every labelled voxel, so this equals the full-grid score)."""
        if subject.label is None:
            raise ValueError(f"Subject {subject.subject_id!r} has no label to score against")
        if probabilities is None:
            probabilities = self.predict_probabilities(model, subject)
        return segmentation_scores(probabilities, subject.label, self.class_names)

    def evaluate(
        self,
        model: nn.Module,
        subjects: Mapping[str, SubjectVolume],
        roles: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        """One row per labelled subject: ``subject_id``, ``role``, ``dice_<class>``,
        ``mean_dice``, ``mae``."""
        rows = []
        for subject_id, subject in subjects.items():
            if subject.label is None:
                continue
            row: dict[str, Any] = {"subject_id": subject_id}
            if roles is not None:
                row["role"] = roles.get(subject_id, "")
            row.update(self.score_subject(model, subject))
            rows.append(row)
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return (
            f"SegmentationTask(architecture={self.architecture!r}, "
            f"params={self.architecture_params}, mapping={self.label_mapping.name!r}, "
            f"modalities={list(self.modalities)}, loss={self.loss_name!r})"
        )


def prediction_image(
    labels: np.ndarray, subject: SubjectVolume, mapping_name: str
) -> nib.Nifti1Image:
    """A NIfTI label image on the subject's grid: its affine and header, uint8 classes.

    The header is the subject's first modality's, with the data type set to uint8, scaling
    removed and ``descrip`` naming the label mapping, so viewers (ITK-SNAP, 3D Slicer)
    overlay prediction and image exactly.
    """
    if labels.shape != subject.full_shape:
        raise ValueError(
            f"Prediction shape {labels.shape} differs from subject {subject.subject_id!r}'s grid "
            f"{subject.full_shape}"
        )
    header = subject.header.copy()
    header.set_data_dtype(np.uint8)
    header.set_slope_inter(1.0, 0.0)
    header["descrip"] = f"med_unlearning segmentation ({mapping_name})"[:79].encode()
    image = nib.Nifti1Image(labels.astype(np.uint8), subject.affine, header=header)
    image.set_qform(subject.affine, code=int(subject.header["qform_code"]) or 1)
    image.set_sform(subject.affine, code=int(subject.header["sform_code"]) or 1)
    return image
