"""``tuning``: which strategies' settings are selected on validation data, over what space.

Schema of ``parameters_tuning.yml``. The ``tuning`` pipeline runs, per task and strategy, a
seeded Optuna search (``n_trials`` trials over ``space``) that minimises the declared
``objective`` computed on validation sets only (see :mod:`med_unlearning.tuning`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from med_unlearning.params.base import StrictModel, register_section
from med_unlearning.task_names import TASKS
from med_unlearning.tuning.space import SearchDimension

__all__ = ["CriterionParams", "StrategyTuningParams", "TaskTuningParams", "TuningParams"]

#: Sets a selection may read: validation sets and training items (never a test set). The
#: retain *training* items (``retain_train``; segmentation: ``retain``) are where a method's
#: damage to what the model memorised shows; validation items only show generalisation.
SELECTION_SETS = frozenset(
    {"retain_val", "forget_val", "forget_train", "val", "forget", "retain_train", "retain"}
)


class CriterionParams(StrictModel):
    """A metric on a selection set, e.g. ``{set: retain_val, metric: ssim}``."""

    set: str
    metric: str

    @field_validator("set")
    @classmethod
    def _not_a_test_set(cls, value: str) -> str:
        if value not in SELECTION_SETS:
            raise ValueError(
                f"selection may only read validation sets and training items "
                f"{sorted(SELECTION_SETS)}; got {value!r}"
            )
        return value


class AttackParams(StrictModel):
    """The loss attack of the ``oracle_free`` objective.

    Attributes:
        member_set: the forget training items (members of the original).
        nonmember_set: unseen items of the same kind (``forget_val``).
        metric: per-slice loss metric of the attack (``ssim`` -> 1 − SSIM).
        calibrate_by: model whose loss on the same slice is subtracted (difficulty
            calibration without retraining, e.g. ``zero_filled``); ``null`` = raw losses.
        auc_tolerance: AUC distance from 0.5 counted as one unit of the objective.
    """

    member_set: str = "forget_train"
    nonmember_set: str = "forget_val"
    metric: str = "ssim"
    calibrate_by: str | None = None
    auc_tolerance: float = Field(default=0.1, gt=0, le=0.5)

    @field_validator("member_set", "nonmember_set")
    @classmethod
    def _not_a_test_set(cls, value: str) -> str:
        return CriterionParams._not_a_test_set(value)  # type: ignore[operator]


class StrategyTuningParams(StrictModel):
    """One strategy's search: ``n_trials`` (``null`` = the task's) over ``space``."""

    n_trials: int | None = Field(default=None, ge=1)
    space: dict[str, SearchDimension]

    @field_validator("space")
    @classmethod
    def _non_empty(cls, value: dict[str, SearchDimension]) -> dict[str, SearchDimension]:
        if not value:
            raise ValueError("a tuned strategy needs at least one dimension in `space`")
        return value


class TaskTuningParams(StrictModel):
    """The searches of one task.

    Attributes:
        retain: retain criterion of both objectives.
        forget: forget criterion of the ``oracle`` objective.
        attack: the ``oracle_free`` objective's attack.
        n_trials: default trials per strategy.
        strategies: strategy -> its search (strategies not listed keep their conf values).
        only: search just these of ``strategies`` (``null`` = all), e.g.
            ``--params "tuning.tasks.recon.only=[nl_ft]"``.
    """

    retain: CriterionParams
    forget: CriterionParams
    attack: AttackParams = Field(default_factory=AttackParams)
    n_trials: int = Field(default=8, ge=1)
    strategies: dict[str, StrategyTuningParams] = Field(default_factory=dict)
    only: list[str] | None = None

    @model_validator(mode="after")
    def _only_names_searches(self) -> TaskTuningParams:
        unknown = sorted(set(self.only or ()) - set(self.strategies))
        if unknown:
            raise ValueError(
                f"only: {unknown} have no search in `strategies` (searches: "
                f"{sorted(self.strategies)})"
            )
        return self

    def searches(self) -> dict[str, StrategyTuningParams]:
        """The searches to run (``strategies`` restricted to ``only``), in conf order."""
        if self.only is None:
            return dict(self.strategies)
        return {name: search for name, search in self.strategies.items() if name in self.only}


@register_section("tuning")
class TuningParams(StrictModel):
    """The ``tuning`` section.

    Attributes:
        objective: ``oracle`` (distance to the retrained oracle on validation data) or
            ``oracle_free`` (retain quality kept, forget items look unseen to an attack).
        seed: seed of the samplers (``null`` = runtime.seed).
        use_selected: the unlearning pipeline applies the latest ``tuning.selected`` over
            the conf values when one exists.
        tasks: per task (``recon``, ``segmentation``), its searches.
    """

    objective: Literal["oracle", "oracle_free"] = "oracle"
    seed: int | None = Field(default=None, ge=0)
    use_selected: bool = True
    tasks: dict[str, TaskTuningParams] = Field(default_factory=dict)

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, value: dict[str, TaskTuningParams]) -> dict[str, TaskTuningParams]:
        unknown = sorted(set(value) - set(TASKS))
        if unknown:
            raise ValueError(f"unknown tasks {unknown}; expected recon and/or segmentation")
        return value

    @model_validator(mode="after")
    def _spaces_name_strategy_parameters(self) -> TuningParams:
        from med_unlearning.unlearning.engine import prepare_strategy

        problems = []
        for task, block in self.tasks.items():
            for strategy, search in block.strategies.items():
                try:
                    _, typed = prepare_strategy(strategy, {}, task)
                except ValueError as error:
                    problems.append(f"tasks.{task}.strategies.{strategy}: {error}")
                    continue
                unknown = sorted(set(search.space) - set(type(typed).model_fields))
                if unknown:
                    problems.append(
                        f"tasks.{task}.strategies.{strategy}.space: {unknown} are not "
                        f"parameters of {strategy!r} (its parameters: "
                        f"{sorted(type(typed).model_fields)})"
                    )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def for_task(self, task: str) -> TaskTuningParams | None:
        """The task's searches (``None`` when the task is not tuned)."""
        return self.tasks.get(task)

