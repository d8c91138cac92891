"""``evaluation``: how unlearning runs are judged against the oracle and how they are shown.

The section names, per task, which (set, metric) pairs stand for "retain" and "forget" (they
drive the verdicts, the distance to the oracle, the headline figures and the plots), which
per-item metrics feed the membership-inference attack, the tolerances of the verdicts, and
the figure settings.
"""

from __future__ import annotations

from typing import Literal

import matplotlib
from pydantic import Field, field_validator, model_validator

from med_unlearning.params.base import StrictModel, register_section
from med_unlearning.task_names import TASKS

__all__ = [
    "AttackFeatureParams",
    "EvaluationParams",
    "FigureParams",
    "MembershipParams",
    "MetricRef",
    "StatisticsParams",
    "TaskEvaluationParams",
    "ValidationCriteria",
    "VerdictParams",
]

#: A task name of :data:`med_unlearning.task_names.TASKS`.
TaskName = Literal[TASKS]  # type: ignore[valid-type]


class MetricRef(StrictModel):
    """One summary number of a task: a metric on a set (e.g. SSIM on ``retain_test``).

    Attributes:
        set: the ``set`` value of the tidy results table (recon: ``retain_test``,
            ``forget_test``, ``forget_train``; segmentation: ``retain``, ``forget``).
        metric: the ``metric`` value (``psnr``, ``ssim``, ``nmse``, ``dice_mean``, ``mae`` …).
    """

    set: str = Field(min_length=1)
    metric: str = Field(min_length=1)

    def as_tuple(self) -> tuple[str, str]:
        """``(set, metric)``, the plain form the comparison functions take."""
        return (self.set, self.metric)


class AttackFeatureParams(StrictModel):
    """Which per-item results feed the membership-inference attack of a task.

    Attributes:
        member_set: items the model was trained on and must forget (the forget training set).
        nonmember_set: unseen items of the same kind (e.g. forget-anatomy test volumes,
            held-out subjects of the forget request's scanner).
        nonmember_fallback: the set the attack uses when ``nonmember_set`` has no items
            (e.g. a segmentation request by subject ids, whose kind has no held-out
            subjects); its non-members are of another kind than the members, so the report
            says so and the null check is what guards the verdicts. ``null``: no attack then.
        granularity: the attack's items: ``slice`` (every 2-D slice of the sets' volumes /
            every axial slice of their subjects, features from the per-slice table) or
            ``volume`` (one item per volume / subject, features from the tidy results).
            With only a few volumes per set (the sample study: 2 vs 2 knees, 1 forget subject)
            a per-volume attack has too few items to mean anything; slices give dozens, at
            the cost of correlated items (the attack partly learns volume identity).
        metrics: per-volume metrics turned into loss features (``1 − SSIM``, NMSE,
            ``1 − Dice`` …), used with ``granularity: volume``.
        slice_metrics: per-slice metrics (recon ``ssim`` / ``nmse`` / ``psnr``;
            segmentation ``cross_entropy`` / ``soft_dice_loss`` / ``mae``), used with
            ``granularity: slice``; ``null`` = the same names as ``metrics``.
    """

    member_set: str = Field(min_length=1)
    nonmember_set: str = Field(min_length=1)
    nonmember_fallback: str | None = None
    granularity: Literal["slice", "volume"] = "slice"
    metrics: list[str] = Field(min_length=1)
    slice_metrics: list[str] | None = Field(default=None, min_length=1)

    def feature_metrics(self) -> list[str]:
        """The metrics of the configured granularity."""
        if self.granularity == "slice" and self.slice_metrics is not None:
            return list(self.slice_metrics)
        return list(self.metrics)


class ValidationCriteria(StrictModel):
    """Criteria on *validation* sets, the only data a recommendation may be selected on.

    Attributes:
        retain: metrics on retain validation data (e.g. recon ``retain_val`` SSIM).
        forget: metrics on forget validation data (e.g. recon ``forget_val`` SSIM); pairs
            with ``retain`` one to one for the validation distance to the oracle.
    """

    retain: list[MetricRef] = Field(min_length=1)
    forget: list[MetricRef] = Field(min_length=1)

    @model_validator(mode="after")
    def _pairs_match(self) -> ValidationCriteria:
        if len(self.retain) != len(self.forget):
            raise ValueError(
                f"validation retain has {len(self.retain)} entries and forget "
                f"{len(self.forget)}; they pair up one to one"
            )
        return self


class TaskEvaluationParams(StrictModel):
    """What "retain" and "forget" mean for one task.

    ``retain[i]`` and ``forget[i]`` form the i-th distance to the oracle
    ``sqrt((R − R*)² + (F − F*)²)``; the first pair also gives the headline figures
    (relative to the original), the trade-off scatter and the sweep plots. Every entry of
    both lists is a verdict criterion (``kept`` / ``forgot``).

    Attributes:
        retain: metrics on retain data (a method should keep these near the oracle's).
        forget: metrics on forget data (a method should bring these down to the oracle's).
        attack: the membership-inference features.
        validation: the same kind of criteria on validation sets (model selection for the
            report's recommendation); ``null`` = no recommendation.
        null_methods: models that never saw the attack's members (the attack on them must
            sit at chance, else the task's privacy verdicts read "uninformative").
    """

    retain: list[MetricRef] = Field(min_length=1)
    forget: list[MetricRef] = Field(min_length=1)
    attack: AttackFeatureParams
    validation: ValidationCriteria | None = None
    null_methods: list[str] = Field(default_factory=lambda: ["oracle"])

    @model_validator(mode="after")
    def _pairs_match(self) -> TaskEvaluationParams:
        if len(self.retain) != len(self.forget):
            raise ValueError(
                f"retain has {len(self.retain)} entries and forget {len(self.forget)}; they pair "
                "up one to one (retain[i] with forget[i]) for the distance to the oracle"
            )
        return self


def _default_tasks() -> dict[str, TaskEvaluationParams]:
    return {
        "recon": TaskEvaluationParams(
            retain=[
                MetricRef(set="retain_test", metric="ssim"),
                MetricRef(set="retain_test", metric="psnr"),
            ],
            forget=[
                MetricRef(set="forget_train", metric="ssim"),
                MetricRef(set="forget_train", metric="psnr"),
            ],
            attack=AttackFeatureParams(
                member_set="forget_train",
                nonmember_set="forget_test",
                metrics=["ssim", "nmse"],
                slice_metrics=["ssim", "nmse"],
            ),
            validation=ValidationCriteria(
                retain=[
                    MetricRef(set="retain_val", metric="ssim"),
                    MetricRef(set="retain_val", metric="psnr"),
                ],
                forget=[
                    MetricRef(set="forget_val", metric="ssim"),
                    MetricRef(set="forget_val", metric="psnr"),
                ],
            ),
            null_methods=["oracle", "zero_filled"],
        ),
        "segmentation": TaskEvaluationParams(
            retain=[MetricRef(set="retain", metric="dice_mean")],
            forget=[MetricRef(set="forget", metric="dice_mean")],
            attack=AttackFeatureParams(
                member_set="forget",
                nonmember_set="forget_test",
                nonmember_fallback="test",
                metrics=["dice_mean", "mae"],
                slice_metrics=["cross_entropy", "soft_dice_loss"],
            ),
            validation=ValidationCriteria(
                retain=[MetricRef(set="val", metric="dice_mean")],
                forget=[MetricRef(set="forget", metric="dice_mean")],
            ),
            null_methods=["oracle"],
        ),
    }


class MembershipParams(StrictModel):
    """Settings of the loss-based membership-inference attack.

    Attributes:
        n_splits: stratified folds grouped by volume / subject per repeat (reduced to the
            number of groups of the smaller class when fewer).
        n_repeats: repeats, each with a fresh fold shuffle; out-of-fold scores are averaged
            over repeats.
        seed: seed of the folds and of the bootstrap (the same for every method, so that
            methods differ only by their features).
        reference_method: the retain-only model whose loss on the same item / slice is
            subtracted from each feature (difficulty calibration); when absent from the
            results, the attack runs uncalibrated and says so.
        fpr: the low false-positive rate at which the true-positive rate is reported.
        n_resamples: bootstrap resamples of the AUC / TPR intervals (over volumes / subjects).
        scorer: ``threshold`` (member score = minus the standardised calibrated loss; nothing
            fitted, so no fold leakage or cross-validation bias) or ``logistic`` (a logistic
            regression scored out of fold, folds grouped by volume / subject).
    """

    n_splits: int = Field(default=5, ge=2)
    n_repeats: int = Field(default=1, ge=1)
    seed: int = Field(default=42, ge=0)
    reference_method: str = Field(default="reference", min_length=1)
    fpr: float = Field(default=0.1, gt=0, lt=1)
    n_resamples: int = Field(default=1000, ge=10)
    scorer: Literal["threshold", "logistic"] = "threshold"


class StatisticsParams(StrictModel):
    """Confidence intervals of every reported number.

    Attributes:
        confidence: two-sided confidence level of the percentile-bootstrap intervals
            (verdicts: "equivalent" = both ends within ±tolerance, i.e. TOST at
            ``(1 − confidence) / 2`` per side).
        n_resamples: bootstrap resamples (over items: volumes / subjects).
        seed: seed of the resampling.
    """

    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    n_resamples: int = Field(default=2000, ge=10)
    seed: int = Field(default=0, ge=0)


class VerdictParams(StrictModel):
    """Tolerances of the per-method verdicts.

    Attributes:
        tolerances: absolute tolerance per metric name (PSNR in dB, SSIM/Dice unitless…).
            A ``dice_<label>`` metric without its own entry uses ``dice_mean``'s.
        relative_tolerance: fallback for metrics without an absolute tolerance, as a
            fraction of the oracle's value.
        privacy_tolerance: equivalence band of the calibrated attack AUC minus the oracle's
            (the difference's interval inside ±band: "private").
        max_cost_ratio: largest wall time / retraining wall time still called "cheap".
    """

    tolerances: dict[str, float] = Field(
        default_factory=lambda: {
            "psnr": 1.5,
            "ssim": 0.01,
            "nmse": 0.005,
            "dice_mean": 0.05,
            "mae": 0.01,
        }
    )
    relative_tolerance: float = Field(default=0.05, ge=0)
    privacy_tolerance: float = Field(default=0.1, ge=0, le=0.5)
    max_cost_ratio: float = Field(default=0.5, gt=0)

    @field_validator("tolerances")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        negative = {name: tol for name, tol in value.items() if tol < 0}
        if negative:
            raise ValueError(f"tolerances must be >= 0, got {negative}")
        return value


class FigureParams(StrictModel):
    """Figure settings.

    Attributes:
        dpi: resolution of the PNG files and of the images embedded in the HTML report.
        panel_inches: size of one image panel.
        error_scale: factor ``k`` of the ``|error| × k`` maps (shown on the image's scale).
        image_cmap: colour map of images.
        error_cmap: colour map of error maps.
        overlay_alpha: opacity of label colours over the image in segmentation overlays.
        retain_fraction_methods: strategies (base names, before any ``@`` suffix) drawn in
            the retain-fraction curve; empty = every strategy with a ``retain_fraction``.
        epoch_methods: strategies drawn in the epoch-horizon bars; empty = every strategy
            with ``epochs``.
    """

    dpi: int = Field(default=120, ge=30, le=600)
    panel_inches: float = Field(default=2.2, gt=0.5, le=10)
    error_scale: float = Field(default=5.0, gt=0)
    image_cmap: str = "gray"
    error_cmap: str = "inferno"
    overlay_alpha: float = Field(default=0.5, ge=0, le=1)
    retain_fraction_methods: list[str] = Field(default_factory=lambda: ["ft", "nl_ft", "ga_l1_ft"])
    epoch_methods: list[str] = Field(default_factory=list)

    @field_validator("image_cmap", "error_cmap")
    @classmethod
    def _known_cmap(cls, value: str) -> str:
        if value not in matplotlib.colormaps:
            raise ValueError(f"unknown matplotlib colour map {value!r}")
        return value


@register_section("evaluation")
class EvaluationParams(StrictModel):
    """The ``evaluation`` section.

    Attributes:
        original_method: the ``method`` value of the original model in the results.
        oracle_method: the ``method`` value of the retrained oracle (the exact reference).
        method_order: display order of strategies (base names); unknown ones follow,
            sorted by name.
        tasks: per task, the retain/forget metrics and the attack features.
        membership: attack settings.
        statistics: confidence intervals.
        verdicts: verdict tolerances.
        figures: figure settings.
        tuning_record: per method, how its settings were selected (e.g. "Optuna TPE, 20
            trials, objective oracle distance, sets retain_val+forget_val"); methods not
            listed read "conf defaults (not tuned)".
        baseline_methods: models that are neither unlearning runs nor references for the
            verdicts (never recommended): no-training baselines and the attack's calibrator.
    """

    original_method: str = "original"
    oracle_method: str = "oracle"
    method_order: list[str] = Field(
        default_factory=lambda: [
            "ft",
            "full_ft",
            "ga_l1",
            "nl",
            "ga_l1_ft",
            "nl_ft",
            "noisy_label",
            "max_loss",
            "retain_label",
            "random_encoder",
            "fix_decoder",
            "boundary",
            "composition",
            "interpolation",
            "neggrad_plus",
            "ssd",
        ]
    )
    tasks: dict[TaskName, TaskEvaluationParams] = Field(default_factory=_default_tasks)
    membership: MembershipParams = Field(default_factory=MembershipParams)
    statistics: StatisticsParams = Field(default_factory=StatisticsParams)
    verdicts: VerdictParams = Field(default_factory=VerdictParams)
    figures: FigureParams = Field(default_factory=FigureParams)
    tuning_record: dict[str, str] = Field(default_factory=dict)
    baseline_methods: list[str] = Field(default_factory=lambda: ["zero_filled", "reference"])

    @model_validator(mode="after")
    def _distinct_references(self) -> EvaluationParams:
        if self.original_method == self.oracle_method:
            raise ValueError(
                f"original_method and oracle_method are both {self.oracle_method!r}; "
                "they must name different models"
            )
        return self
