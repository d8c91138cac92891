"""``recon``: splits, undersampling, network, loss and training of the reconstruction models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from med_unlearning.data.query import SafeQuery, parse_query
from med_unlearning.data.splits import ROLES, ForgetSelector, SplitCounts
from med_unlearning.ids import ItemId
from med_unlearning.params.base import StrictModel, register_section

__all__ = [
    "ForgetSelectorParams",
    "LossParams",
    "MaskParams",
    "ReconModelParams",
    "ReconParams",
    "ReconRunParams",
    "ReconSplitParams",
    "ReconTrainingParams",
    "ReconstructionOutputParams",
    "SchedulerParams",
    "UNet2dParams",
    "VarNetParams",
]


class ForgetSelectorParams(StrictModel):
    """Which volumes form the forget set: ``column`` + ``values``, or ``query``, or ``ids``.

    Example: ``{column: anatomy, values: [knee]}`` (the study), ``{query: "num_slices > 30"}``,
    ``{ids: [file_brain_007]}``.
    """

    column: str | None = "anatomy"
    values: list[str | int | float | bool] = Field(default_factory=lambda: ["knee"])
    query: SafeQuery | None = None
    ids: list[ItemId] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_way(self) -> ForgetSelectorParams:
        self.to_selector()
        return self

    def to_selector(self) -> ForgetSelector:
        """The domain selector. A ``query`` or ``ids`` replaces the default column selector."""
        if self.query is not None or self.ids:
            return ForgetSelector(query=self.query, ids=tuple(self.ids))
        return ForgetSelector(column=self.column, values=tuple(self.values))


class ReconSplitParams(StrictModel):
    """Held-out volume counts and training caps (see :mod:`med_unlearning.data.splits`).

    Attributes:
        retain_val: retain volumes for validation (both models validate on them).
        retain_test: retain volumes held out for testing (the study's brain test, BTA).
        forget_test: forget volumes held out for testing (the study's knee test, KTA).
        forget_val: forget volumes held out for validation (never trained on, never
            tested on): what a selection of unlearning settings may look at.
        retain_train: cap on retain training volumes (null = all the rest).
        forget_train: cap on forget training volumes (null = all the rest).
        seed: the split's seed (null = ``runtime.seed``).
        group_column: keep the volumes of one group together (e.g. ``patient_id``).
        include: query (:mod:`med_unlearning.data.query`) choosing the volumes the study
            uses at all (null = all), e.g.
            ``"acquisition in ['AXT2', 'CORPD_FBK', 'CORPDFS_FBK']"`` for the study's T2
            brains and knees; the others get the role ``unused``.
    """

    retain_val: int = Field(default=2, ge=1)
    retain_test: int = Field(default=4, ge=1)
    forget_test: int = Field(default=4, ge=1)
    forget_val: int = Field(default=0, ge=0)
    retain_train: int | None = Field(default=None, ge=1)
    forget_train: int | None = Field(default=None, ge=1)
    seed: int | None = Field(default=None, ge=0)
    group_column: str | None = None
    include: str | None = None

    @field_validator("include")
    @classmethod
    def _safe_include(cls, value: str | None) -> str | None:
        """Refuse anything outside the query language at session start (nothing runs)."""
        if value is not None:
            parse_query(value, "include")
        return value

    def to_counts(self) -> SplitCounts:
        return SplitCounts(
            retain_val=self.retain_val,
            retain_test=self.retain_test,
            forget_test=self.forget_test,
            forget_val=self.forget_val,
            retain_train=self.retain_train,
            forget_train=self.forget_train,
        )


class MaskParams(StrictModel):
    """Cartesian undersampling (MONAI's masks); the study: equispaced, 8×, 4% centre."""

    kind: Literal["equispaced", "random"] = "equispaced"
    accelerations: list[float] = Field(default_factory=lambda: [8.0], min_length=1)
    center_fractions: list[float] = Field(default_factory=lambda: [0.04], min_length=1)

    @model_validator(mode="after")
    def _pairs(self) -> MaskParams:
        if len(self.accelerations) != len(self.center_fractions):
            raise ValueError(
                "accelerations and center_fractions must have the same length, got "
                f"{self.accelerations} and {self.center_fractions}"
            )
        for acceleration, fraction in zip(self.accelerations, self.center_fractions):
            if acceleration <= 1 or not 0 < fraction < 1 / acceleration:
                raise ValueError(
                    f"need acceleration > 1 and 0 < center_fraction < 1/acceleration, got "
                    f"{acceleration} and {fraction}"
                )
        return self


class VarNetParams(StrictModel):
    """E2E-VarNet sizes (the study: 12 cascades, 18 chans, sens 8 chans, 4/4 pools).

    ``identity_init`` starts training from the zero-filled reconstruction (each cascade's
    refinement is a correction whose last layer starts at 0); off = the study's network
    exactly (see :class:`med_unlearning.models.recon.ReconVarNet`).
    """

    num_cascades: int = Field(default=12, ge=1)
    chans: int = Field(default=18, ge=1)
    pools: Literal[4] = 4
    sens_chans: int = Field(default=8, ge=1)
    sens_pools: Literal[4] = 4
    identity_init: bool = False


class UNet2dParams(StrictModel):
    """Image-domain U-Net baseline sizes (fastMRI's baseline: 32 chans, 4 pools)."""

    chans: int = Field(default=32, ge=1)
    pools: Literal[4] = 4
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)


class ReconModelParams(StrictModel):
    """Which network to train, and the sizes of each.

    Attributes:
        architecture: ``varnet`` (the study) or ``unet2d`` (baseline on zero-filled images).
        varnet: sizes used when ``architecture`` is ``varnet``.
        unet2d: sizes used when ``architecture`` is ``unet2d``.
        encoder_cascades: VarNet cascades counted as "encoder" by unlearning strategies
            that treat encoder and decoder apart (null = half).
    """

    architecture: Literal["varnet", "unet2d"] = "varnet"
    varnet: VarNetParams = Field(default_factory=VarNetParams)
    unet2d: UNet2dParams = Field(default_factory=UNet2dParams)
    encoder_cascades: int | None = Field(default=None, ge=0)

    def architecture_params(self) -> dict[str, Any]:
        """The chosen architecture's factory arguments."""
        return getattr(self, self.architecture).model_dump()


class LossParams(StrictModel):
    """The study's J = (1 − SSIM)(data range = volume max) + l1_weight · L1, at raw scale."""

    l1_weight: float = Field(default=1e-5, ge=0.0)
    win_size: int = Field(default=7, ge=3)
    k1: float = Field(default=0.01, gt=0.0)
    k2: float = Field(default=0.03, gt=0.0)


class SchedulerParams(StrictModel):
    """ReduceLROnPlateau on a history column (``val_loss`` by default)."""

    metric: Literal["val_loss", "val_psnr", "val_ssim", "train_loss"] = "val_loss"
    factor: float = Field(default=0.1, gt=0.0, lt=1.0)
    patience: int = Field(default=10, ge=0)


class ReconTrainingParams(StrictModel):
    """Optimisation (the study: Adam lr 1e-3, clip 0.5, batch 1, 50 epochs).

    Attributes:
        epochs: passes over the training slices.
        batch_size: slices per step (above 1 needs volumes of one matrix size).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        grad_clip_norm: global gradient-norm clipping (null = none).
        max_steps_per_epoch: cut epochs short (null = all slices; for smoke runs).
        cache_volumes: keep the volumes in memory (fast for the sample data).
        scheduler: ReduceLROnPlateau settings.
    """

    epochs: int = Field(default=50, ge=1)
    batch_size: int = Field(default=1, ge=1)
    lr: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    grad_clip_norm: float | None = Field(default=0.5, gt=0.0)
    max_steps_per_epoch: int | None = Field(default=None, ge=1)
    cache_volumes: bool = False
    scheduler: SchedulerParams = Field(default_factory=SchedulerParams)


class ReconRunParams(StrictModel):
    """One training run (``original``, ``oracle``, ``reference``).

    Attributes:
        train_roles: the split roles it trains on.
        seed_offset: added to ``runtime.seed`` for this run's initialisation and data order
            (the ``reference`` model: the oracle's recipe with another seed).
    """

    train_roles: list[Literal["retain_train", "forget_train"]] = Field(min_length=1)
    seed_offset: int = Field(default=0, ge=0)


def _reference_run() -> ReconRunParams:
    return ReconRunParams(train_roles=["retain_train"], seed_offset=1)


def _default_runs() -> dict[str, ReconRunParams]:
    return {
        "original": ReconRunParams(train_roles=["retain_train", "forget_train"]),
        "oracle": ReconRunParams(train_roles=["retain_train"]),
        "reference": _reference_run(),
    }


class ReconstructionOutputParams(StrictModel):
    """Optional fastMRI-style reconstruction files (``reconstruction`` dataset per volume).

    Attributes:
        write: write them (off by default; evaluation computes its own).
        roles: which split roles to reconstruct.
        batch_size: slices per forward pass whenever volumes are reconstructed (these files,
            and every model's scoring); ``null`` = ``training.batch_size``. Inference keeps
            no activations for the backward pass, so it fits larger batches than training,
            and on a CPU a small network's forward pass is dominated by per-call overhead.
    """

    write: bool = False
    roles: list[str] = Field(default_factory=lambda: ["retain_test", "forget_test"])
    batch_size: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _known_roles(self) -> ReconstructionOutputParams:
        unknown = sorted(set(self.roles) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown split roles {unknown}; known: {list(ROLES)}")
        return self


@register_section("recon")
class ReconParams(StrictModel):
    """The ``recon`` section: everything the reconstruction pipeline needs."""

    forget: ForgetSelectorParams = Field(default_factory=ForgetSelectorParams)
    splits: ReconSplitParams = Field(default_factory=ReconSplitParams)
    mask: MaskParams = Field(default_factory=MaskParams)
    model: ReconModelParams = Field(default_factory=ReconModelParams)
    loss: LossParams = Field(default_factory=LossParams)
    training: ReconTrainingParams = Field(default_factory=ReconTrainingParams)
    runs: dict[str, ReconRunParams] = Field(default_factory=_default_runs)
    reconstructions: ReconstructionOutputParams = Field(
        default_factory=ReconstructionOutputParams
    )

    def inference_batch_size(self) -> int:
        """Slices per forward pass when reconstructing (``reconstructions.batch_size``)."""
        return self.reconstructions.batch_size or self.training.batch_size

    @model_validator(mode="after")
    def _required_runs(self) -> ReconParams:
        missing = sorted({"original", "oracle"} - set(self.runs))
        if missing:
            raise ValueError(f"recon.runs must define {missing} (the pipeline trains both)")
        if "reference" not in self.runs:  # the oracle's recipe, seed + 1
            self.runs["reference"] = _reference_run()
        reference = self.runs["reference"]
        if list(reference.train_roles) != ["retain_train"] or reference.seed_offset == 0:
            raise ValueError(
                "recon.runs.reference must train on [retain_train] only (it never sees a "
                "forget item: the membership attack's calibration model) with a seed_offset "
                f"> 0 (another seed than the oracle); got train_roles "
                f"{list(reference.train_roles)}, seed_offset {reference.seed_offset}"
            )
        if self.model.architecture == "varnet" and self.model.encoder_cascades is not None:
            if self.model.encoder_cascades > self.model.varnet.num_cascades:
                raise ValueError(
                    f"model.encoder_cascades ({self.model.encoder_cascades}) exceeds "
                    f"model.varnet.num_cascades ({self.model.varnet.num_cascades})"
                )
        return self
