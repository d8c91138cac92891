"""``segmentation``: data, forget request, network, recipe and inference of the 3D brain study."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from med_unlearning.data.query import SafeQuery
from med_unlearning.ids import ItemId
from med_unlearning.params.base import StrictModel, register_section

__all__ = [
    "SegmentationDataParams",
    "SegmentationForgetParams",
    "SegmentationInferenceParams",
    "SegmentationModelParams",
    "SegmentationOptimizerParams",
    "SegmentationParams",
    "SegmentationSplitParams",
    "SegmentationTrainingParams",
]

Modality = Literal["T1", "IR", "FLAIR"]
Size3D = tuple[PositiveInt, PositiveInt, PositiveInt]


class SegmentationDataParams(StrictModel):
    """Which images and labels a model sees.

    Attributes:
        modalities: input channels, in order: ``T1`` (``pre/reg_T1`` or ``pre/T1``), ``IR``
            (``pre/reg_IR``), ``FLAIR`` (``pre/FLAIR``).
        label_mapping: ``evaluation_8`` (labels 1–8; 9, 10 ignored), ``tissues_3`` (GM = 1+2,
            WM = 3+4, CSF = 5+6; 7–10 ignored) or ``binary`` (brain 1–8 vs background).
        crop_margin: voxels kept around the foreground box.
        crop_threshold: foreground = voxels where some modality exceeds this fraction of its
            99th percentile (MR background is noise, not zero), or labelled voxels.
    """

    modalities: list[Modality] = Field(default_factory=lambda: ["T1"], min_length=1)
    label_mapping: Literal["evaluation_8", "tissues_3", "binary"] = "evaluation_8"
    crop_margin: int = Field(default=4, ge=0)
    crop_threshold: float = Field(default=0.1, ge=0.0, lt=1.0)

    @field_validator("modalities")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"modalities must not repeat, got {value}")
        return value


class SegmentationForgetParams(StrictModel):
    """The forget request: which training subjects the unlearning must remove.

    Attributes:
        by: how subjects are selected: ``ids`` (an erasure request naming subjects),
            ``column`` (subjects whose metadata ``column`` is in ``values``, e.g. a site or
            scanner given in the user's metadata CSV) or ``query`` (a query over the metadata
            table in the language of :mod:`med_unlearning.data.query`).
        ids: subject ids (``by: ids``). Default ``["070"]``: one subject, like a single
            patient's erasure request (070 is also the subject MedicalNet ships as its toy
            example).
        column: metadata column (``by: column``).
        values: accepted values of ``column``.
        query: a query (``by: query``), e.g. ``"shape_z > 40"``.
    """

    by: Literal["ids", "column", "query"] = "ids"
    ids: list[ItemId] = Field(default_factory=lambda: ["070"])
    column: str | None = None
    values: list[str | int | float | bool] = Field(default_factory=list)
    query: SafeQuery | None = None

    @model_validator(mode="after")
    def _complete(self) -> SegmentationForgetParams:
        if self.by == "ids" and not self.ids:
            raise ValueError("forget.by is 'ids' but forget.ids is empty")
        if self.by == "column" and (not self.column or not self.values):
            raise ValueError(
                "forget.by is 'column': set forget.column and a non-empty forget.values"
            )
        if self.by == "query" and not self.query:
            raise ValueError("forget.by is 'query' but forget.query is empty")
        return self


class SegmentationSplitParams(StrictModel):
    """How labelled subjects are divided.

    The study trains on every labelled subject and measures forgetting on the forget
    subjects themselves (they are training data), so by default there is no held-out
    subject. ``test_subject_ids`` optionally holds subjects out of both models' training
    (role ``retain_test``, or ``forget_test`` if the forget request selects them) to see how
    the models do on unseen brains.

    ``val_subject_ids`` holds further *whole subjects* out of every model's training (role
    ``retain_val``; ``forget_val`` if the forget request selects them), scored as set ``val``:
    the data a selection of settings may use, so nothing is ever chosen on ``test``.

    Ids of ``test_subject_ids`` / ``val_subject_ids`` that the data folder does not have are
    dropped with a WARNING naming the key and the subjects found, provided *none* of the
    key's ids exist (the sample data's extra subjects on the 7 real MRBrainS18 training
    subjects); a key with some ids present and others absent is an error (a typo).

    Attributes:
        forget: the forget request.
        test_subject_ids: whole subjects used by no model for training: the ``test`` set.
        val_subject_ids: whole subjects used by no model for training: the ``val`` set.
    """

    forget: SegmentationForgetParams = Field(default_factory=SegmentationForgetParams)
    test_subject_ids: list[ItemId] = Field(default_factory=list)
    val_subject_ids: list[ItemId] = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> SegmentationSplitParams:
        both = sorted(set(self.test_subject_ids) & set(self.val_subject_ids))
        if both:
            raise ValueError(
                f"test_subject_ids and val_subject_ids share subjects {both}; a held-out "
                "subject is either test or validation"
            )
        return self


class SegmentationModelParams(StrictModel):
    """The network.

    Attributes:
        architecture: a Med3D ResNet of :mod:`med_unlearning.models.segmentation`
            (``med3d_resnet50`` is the study's network).
        base_width: stem/layer1 channels (64 = MedicalNet; smaller for CPU runs).
        head_channels: channels inside the ``conv_seg`` head (32 = MedicalNet).
        shortcut_type: ``A`` or ``B``; ``null`` = MedicalNet's choice for that depth (A for
            ResNet-18/34, B otherwise), which its weights need.
        no_max_pool: skip the stem's max-pooling: logits at 1/2 instead of 1/4 of the input
            resolution (more detail, ~8× the compute). Off in the study's network.

    MedicalNet weights are not a parameter: they are the catalog entry
    ``segmentation.medicalnet_weights``, whose file is set by the ``medicalnet_weights``
    globals key (``conf/<env>/globals.yml``) or ``kedro run --params
    medicalnet_weights=/path/resnet_50_23dataset.pth``. The former key
    ``pretrained_weights`` is refused with that hint (``null`` is ignored).
    """

    architecture: Literal[
        "med3d_resnet10", "med3d_resnet18", "med3d_resnet34", "med3d_resnet50"
    ] = "med3d_resnet10"
    base_width: PositiveInt = 64
    head_channels: PositiveInt = 32
    shortcut_type: Literal["A", "B"] | None = None
    no_max_pool: bool = False

    @model_validator(mode="before")
    @classmethod
    def _moved_pretrained_weights(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "pretrained_weights" in data:
            if data["pretrained_weights"] is not None:
                raise ValueError(
                    "segmentation.model.pretrained_weights moved to the catalog: set the "
                    "file with `medicalnet_weights: /path/resnet_50_23dataset.pth` in "
                    "conf/<env>/globals.yml, or `kedro run --params "
                    "medicalnet_weights=/path/resnet_50_23dataset.pth` (catalog entry "
                    "segmentation.medicalnet_weights)"
                )
            data = {key: value for key, value in data.items() if key != "pretrained_weights"}
        return data


class SegmentationOptimizerParams(StrictModel):
    """SGD as in MedicalNet: the head learns ``head_lr_multiplier`` times faster.

    Attributes:
        learning_rate: backbone (encoder) learning rate.
        head_lr_multiplier: the ``conv_seg`` head's learning rate / the backbone's.
        momentum: SGD momentum.
        weight_decay: L2 penalty.
        lr_decay_gamma: ``ExponentialLR`` factor per epoch (MedicalNet: 0.99; 1 = constant).
    """

    learning_rate: PositiveFloat = 1e-3
    head_lr_multiplier: PositiveFloat = 100.0
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=1e-3, ge=0.0)
    lr_decay_gamma: float = Field(default=1.0, gt=0.0, le=1.0)


class SegmentationTrainingParams(StrictModel):
    """Patch-based training of the original and oracle models.

    Attributes:
        epochs: passes; each yields ``samples_per_subject`` patches per training subject.
        batch_size: patches per step.
        patch_size: patch size in voxels (x, y, z); multiples of 8 keep the network's
            output exactly at 1/4 of the patch before upsampling.
        samples_per_subject: patches per subject per epoch.
        pos_fraction: share of patches centred on a labelled voxel (the rest on background
            inside the head).
        loss: ``ce`` (cross-entropy, MedicalNet) or ``dice_ce`` (cross-entropy + MONAI Dice).
        dice_weight: weight of the Dice term in ``dice_ce``.
        optimizer: the SGD recipe.
        grad_clip_norm: clip the gradient norm (``null`` = no clipping).
        validation_interval: compute Dice on the training subjects every this many epochs
            (whole volumes, sliding window); 0 = never (the history then has losses only).
        reference_seed_offset: the ``reference`` model (the oracle's recipe and subjects)
            is seeded with ``runtime.seed`` + this.
    """

    epochs: PositiveInt = 20
    batch_size: PositiveInt = 2
    patch_size: Size3D = (64, 64, 16)
    samples_per_subject: PositiveInt = 4
    pos_fraction: float = Field(default=0.8, ge=0.0, le=1.0)
    loss: Literal["ce", "dice_ce"] = "ce"
    dice_weight: float = Field(default=1.0, ge=0.0)
    optimizer: SegmentationOptimizerParams = Field(default_factory=SegmentationOptimizerParams)
    grad_clip_norm: PositiveFloat | None = None
    validation_interval: int = Field(default=0, ge=0)
    reference_seed_offset: PositiveInt = 1


class SegmentationInferenceParams(StrictModel):
    """Whole-volume prediction with MONAI's sliding-window inference.

    Attributes:
        roi_size: window size; ``null`` = the training patch size.
        overlap: overlap of neighbouring windows (0 ≤ overlap < 1).
        sw_batch_size: windows per forward pass.
        mode: ``gaussian`` (weights centre voxels more) or ``constant`` blending.
    """

    roi_size: Size3D | None = None
    overlap: float = Field(default=0.25, ge=0.0, lt=1.0)
    sw_batch_size: PositiveInt = 4
    mode: Literal["gaussian", "constant"] = "gaussian"


@register_section("segmentation")
class SegmentationParams(StrictModel):
    """The whole ``segmentation`` section (see ``conf/base/parameters_segmentation.yml``)."""

    data: SegmentationDataParams = Field(default_factory=SegmentationDataParams)
    split: SegmentationSplitParams = Field(default_factory=SegmentationSplitParams)
    model: SegmentationModelParams = Field(default_factory=SegmentationModelParams)
    training: SegmentationTrainingParams = Field(default_factory=SegmentationTrainingParams)
    inference: SegmentationInferenceParams = Field(default_factory=SegmentationInferenceParams)
