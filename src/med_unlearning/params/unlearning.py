"""``unlearning``: the forget request, data settings, sweeps and every strategy's parameters.

One block per task (``recon``, ``segmentation``). ``strategies`` maps a registered strategy
name to its parameters block, validated with *that strategy's* typed model (declared next to
the strategy, see :mod:`med_unlearning.unlearning`), so a newly registered strategy's block
is accepted without editing this file; a strategy without a block runs with its defaults.
Unknown strategy names (the error lists the valid ones), strategies that do not apply to the
task, and out-of-range values are errors at session start.

The grid's shape (which runs and sweep variants exist) is fixed in code
(:mod:`med_unlearning.unlearning.grid`); ``retain_fractions`` and ``horizons`` give the
numbers of its sweep variants and must name exactly the variants the code defines;
``seeds`` gives the seed offsets of the seed repeats (``seed1``, ``seed2``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator, model_validator

from med_unlearning.data.query import SafeQuery
from med_unlearning.ids import ItemId
from med_unlearning.params.base import StrictModel, register_section
from med_unlearning.task_names import TASKS
from med_unlearning.unlearning.engine import prepare_strategy
from med_unlearning.unlearning.grid import (
    DEFAULT_HORIZONS,
    DEFAULT_RETAIN_FRACTIONS,
    DEFAULT_SEED_OFFSETS,
    HORIZON_SWEEP,
    RETAIN_SWEEP,
    SEED_SWEEP,
    Sweep,
    UnlearningRunSpec,
    study_runs,
)
from med_unlearning.unlearning.registry import get_strategy
from med_unlearning.unlearning.requests import ForgetRequest, ForgetRequestError

__all__ = [
    "ForgetRequestParams",
    "ReconUnlearningData",
    "ReconUnlearningParams",
    "SegmentationUnlearningData",
    "SegmentationUnlearningParams",
    "TaskUnlearningParams",
    "UnlearningParams",
]


class ForgetRequestParams(StrictModel):
    """The forget request: exactly one of ``ids``, ``column`` + ``values``, ``query``.

    Examples: ``{column: anatomy, values: [knee]}`` (the reconstruction study),
    ``{column: role, values: [forget_train]}`` (the split's forget subjects),
    ``{ids: [file_brain_007]}`` (a GDPR erasure), ``{query: "num_slices > 40"}``.
    The ``role`` column comes from the task's splits table.

    Attributes:
        description: free text kept in the erasure record (e.g. a ticket number).
    """

    ids: list[ItemId] = Field(default_factory=list)
    column: str | None = None
    values: list[str | int | float | bool] = Field(default_factory=list)
    query: SafeQuery | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_selector(self) -> ForgetRequestParams:
        try:
            self.to_request()
        except ForgetRequestError as error:
            raise ValueError(str(error)) from None
        return self

    def to_request(self) -> ForgetRequest:
        """The domain :class:`~med_unlearning.unlearning.requests.ForgetRequest`."""
        return ForgetRequest.from_mapping(self.model_dump())


class ReconUnlearningData(StrictModel):
    """How reconstruction forget/retain slices are served (``null`` = ``recon.training``'s).

    Attributes:
        batch_size: slices per batch.
        cache_volumes: read the used volumes into memory once.
    """

    batch_size: int | None = Field(default=None, ge=1)
    cache_volumes: bool | None = None


class SegmentationUnlearningData(StrictModel):
    """How segmentation patches are sampled (``null`` = ``segmentation.training``'s).

    Attributes:
        batch_size: patches per batch.
        patch_size: patch size (x, y, z).
        samples_per_subject: patches drawn per subject per epoch.
        pos_fraction: fraction of patches centred on labelled voxels.
    """

    batch_size: int | None = Field(default=None, ge=1)
    patch_size: tuple[int, int, int] | None = None
    samples_per_subject: int | None = Field(default=None, ge=1)
    pos_fraction: float | None = Field(default=None, ge=0, le=1)


class TaskUnlearningParams(StrictModel):
    """The unlearning settings of one task.

    Attributes:
        request: what to forget.
        seed: seed of the retain subsets, loaders and strategies (``null`` = runtime.seed).
        group_column: metadata column whose groups move together when sampling the retain
            subset (e.g. ``patient_id``; ``null`` = by volume/subject).
        check_splits: require the original checkpoint's training manifest to equal the
            splits table's training items (retain_train + forget_train).
        default_retain_fraction: retain fraction of strategies whose parameters have no
            ``retain_fraction`` of their own.
        retain_fractions: retain fraction of each retain-sweep variant (``r1`` … ``r100``).
        horizons: epochs of each horizon variant (``short``, ``long``).
        seeds: seed offset of each seed-repeat variant (``seed1``, ``seed2``): run
            ``<strategy>_seed<k>`` uses the run seed + this (distinct, > 0).
        strategies: strategy name -> its parameters block.
    """

    task_name: ClassVar[str] = ""

    request: ForgetRequestParams
    seed: int | None = Field(default=None, ge=0)
    group_column: str | None = None
    check_splits: bool = True
    default_retain_fraction: float = Field(default=0.1, gt=0, le=1)
    retain_fractions: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_RETAIN_FRACTIONS)
    )
    horizons: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_HORIZONS))
    seeds: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_SEED_OFFSETS))
    strategies: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("retain_fractions")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        _same_variants(RETAIN_SWEEP, value, "retain_fractions")
        bad = {name: fraction for name, fraction in value.items() if not 0.0 < fraction <= 1.0}
        if bad:
            raise ValueError(f"retain fractions must be in (0, 1]; got {bad}")
        return value

    @field_validator("horizons")
    @classmethod
    def _horizons(cls, value: dict[str, int]) -> dict[str, int]:
        _same_variants(HORIZON_SWEEP, value, "horizons")
        bad = {name: epochs for name, epochs in value.items() if epochs < 1}
        if bad:
            raise ValueError(f"horizon epochs must be >= 1; got {bad}")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: dict[str, int]) -> dict[str, int]:
        _same_variants(SEED_SWEEP, value, "seeds")
        if any(offset < 1 for offset in value.values()) or len(set(value.values())) != len(value):
            raise ValueError(
                f"seed offsets must be distinct and >= 1 (0 is the main run's seed); got {value}"
            )
        return value

    @model_validator(mode="after")
    def _strategies(self) -> TaskUnlearningParams:
        problems = []
        for name, block in self.strategies.items():
            try:
                prepare_strategy(name, block, self.task_name)
            except ValueError as error:
                problems.append(str(error))
        if not problems:  # every sweep variant's override must be valid for its strategy
            for spec in study_runs(self.task_name):
                if spec.sweep is None:
                    continue
                try:
                    self.strategy_params(spec)
                except ValueError as error:
                    problems.append(f"sweep run {spec.run}: {error}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def raw_strategy_params(self, spec: UnlearningRunSpec) -> dict[str, Any]:
        """The run's raw parameters: the strategy's block plus the sweep variant's override.

        Retain-fraction variants of paired strategies run with ``pairing: forget``, so every
        fraction takes the same number of forget steps (only the retain side varies). Seed
        variants change the run's seed (:meth:`run_seed`), not a strategy parameter.
        """
        block = dict(self.strategies.get(spec.strategy) or {})
        if spec.sweep is None or spec.variant is None or spec.sweep.name == SEED_SWEEP.name:
            return block
        block[spec.sweep.parameter] = self.sweep_value(spec.sweep, spec.variant)
        if spec.sweep.name == RETAIN_SWEEP.name:
            model = get_strategy(spec.strategy).params_model
            if "pairing" in getattr(model, "model_fields", {}):
                block["pairing"] = "forget"
        return block

    def run_seed(self, spec: UnlearningRunSpec, runtime_seed: int) -> int:
        """The seed of a run: ``seed`` (else ``runtime_seed``), plus the offset of a seed
        repeat (``seeds[<variant>]``)."""
        seed = runtime_seed if self.seed is None else self.seed
        if spec.sweep is not None and spec.sweep.name == SEED_SWEEP.name:
            seed += self.seeds[str(spec.variant)]
        return seed

    def strategy_params(self, spec: UnlearningRunSpec) -> BaseModel:
        """The run's typed parameters (validated by the strategy's model)."""
        _, typed = prepare_strategy(spec.strategy, self.raw_strategy_params(spec), self.task_name)
        return typed

    def equals_main_run(self, spec: UnlearningRunSpec) -> bool:
        """Whether sweep run ``spec`` would repeat its strategy's main run exactly.

        True for a retain-sweep variant whose validated parameters (fraction, pairing, every
        other setting) equal the main run's; the seed is the same for both, so the retain
        subset and every step are too. With the sample's defaults ``nl_ft_r10`` is
        ``nl_ft``: it is not trained twice (the evaluation reports the main run's figures
        as that sweep point).
        """
        if spec.sweep is None or spec.sweep.name != RETAIN_SWEEP.name:
            return False
        main = type(spec)(task=spec.task, strategy=spec.strategy)
        return self.strategy_params(spec) == self.strategy_params(main)

    def equal_all_retain_run(self, spec: UnlearningRunSpec) -> str | None:
        """The strategy whose main run retain-sweep run ``spec`` would repeat exactly, if any.

        A strategy registered as ``all_retain_of=<spec's strategy>`` (``full_ft`` for
        ``ft``) runs that strategy on all retain data; when its validated parameters equal
        the sweep run's (so the fraction is 1 and every other setting matches; a retain-sweep
        run has its task's main seed), the two are one run: ``ft_r100`` is ``full_ft``.
        """
        twins = spec.all_retain_twins  # none outside the retain sweep
        own = self.strategy_params(spec).model_dump() if twins else None
        for other in twins:
            if other not in self.strategies:  # its settings unknown here: never assume them
                continue
            main = type(spec)(task=spec.task, strategy=other)
            if self.strategy_params(main).model_dump() == own:
                return other
        return None

    def retain_fraction(self, typed: BaseModel) -> float:
        """The retain fraction of a run: its parameters' own, else the task default."""
        own = getattr(typed, "retain_fraction", None)
        return float(own) if own is not None else self.default_retain_fraction

    def sweep_value(self, sweep: Sweep, variant: str) -> Any:
        """The number behind a sweep variant (a retain fraction, an epoch count)."""
        values = {
            RETAIN_SWEEP.name: self.retain_fractions,
            HORIZON_SWEEP.name: self.horizons,
            SEED_SWEEP.name: self.seeds,
        }[sweep.name]
        return values[variant]


def _same_variants(sweep: Sweep, values: dict[str, Any], key: str) -> None:
    if set(values) != set(sweep.variants):
        raise ValueError(
            f"{key} must name exactly the {sweep.name} variants the grid defines in code "
            f"{list(sweep.variants)} (med_unlearning.unlearning.grid); got {sorted(values)}"
        )


class ReconUnlearningParams(TaskUnlearningParams):
    """Reconstruction unlearning (default request: the knee volumes, as in the study)."""

    task_name: ClassVar[str] = "recon"

    request: ForgetRequestParams = Field(
        default_factory=lambda: ForgetRequestParams(column="anatomy", values=["knee"])
    )
    data: ReconUnlearningData = Field(default_factory=ReconUnlearningData)


class SegmentationUnlearningParams(TaskUnlearningParams):
    """Segmentation unlearning (default request: the split's forget subjects)."""

    task_name: ClassVar[str] = "segmentation"

    request: ForgetRequestParams = Field(
        default_factory=lambda: ForgetRequestParams(column="role", values=["forget_train"])
    )
    data: SegmentationUnlearningData = Field(default_factory=SegmentationUnlearningData)


@register_section("unlearning")
class UnlearningParams(StrictModel):
    """The ``unlearning`` section: one block per task."""

    recon: ReconUnlearningParams = Field(default_factory=ReconUnlearningParams)
    segmentation: SegmentationUnlearningParams = Field(default_factory=SegmentationUnlearningParams)

    def for_task(self, task: str) -> TaskUnlearningParams:
        """The block of ``task``."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected 'recon' or 'segmentation'")
        return getattr(self, task)
