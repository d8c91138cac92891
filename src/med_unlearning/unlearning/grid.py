"""The study grid: which unlearning runs exist, per task, as a module-level specification.

Kedro builds pipelines *before* it reads any configuration, so the grid's **shape** — which
runs exist and what they are called — is fixed here in code, while every **number** (a
strategy's parameters, the retain fraction of sweep variant ``r10``, the epochs of horizon
``long``) comes from ``parameters_unlearning.yml``:

- one main run per registered strategy that applies to the task (from
  :func:`~med_unlearning.unlearning.registry.available_strategies`, so a newly registered
  strategy joins the grid by itself), named after the strategy (``nl_ft``);
- :data:`RETAIN_SWEEP`: the reconstruction study's retain-subset sweep, FT / NL-FT /
  GA-ℓ1-FT at 1, 5, 10, 20, 50, 100 % of the retain data (runs ``ft_r1`` … ``ft_r100``;
  the fractions are ``unlearning.<task>.retain_fractions``);
- :data:`HORIZON_SWEEP`: the segmentation study's two epoch horizons for every strategy of
  the segmentation study (``noisy_label_short``, ``noisy_label_long``…; epochs from
  ``unlearning.<task>.horizons``; the study's 20 and 50 in ``conf/gpu``);
- :data:`SEED_SWEEP`: seed repeats of the main methods (:data:`SEED_REPEATED`), runs
  ``nl_ft_seed1``, ``nl_ft_seed2`` (methods ``nl_ft@seed1``… in the results), whose
  parameter is the run's seed: ``unlearning.<task>.seed`` (or ``runtime.seed``) plus
  ``unlearning.<task>.seeds[<variant>]``. With the main run they give three seeds per
  method. Which methods are repeated is part of the grid's shape, so it is set here.

The retain-fraction sweep keeps the forget-side budget fixed: its paired strategies run
with ``pairing: forget`` (an epoch is one pass over the forget batches at every fraction;
:meth:`~med_unlearning.params.unlearning.TaskUnlearningParams.raw_strategy_params`). FT has
no forget side: its epochs are passes over the retain subset, so its cost grows with the
fraction.

Each run is a Kedro namespace ``unlearning.<task>.<run>`` writing
``unlearning.<task>.<run>.checkpoint``, ``.history`` and ``.erasure_request``.
A strategy that combines other runs (its registration's ``combines``, see
:attr:`~med_unlearning.unlearning.registry.StrategySpec.combines`) gets their checkpoints.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from med_unlearning.unlearning.registry import available_strategies, get_strategy

__all__ = [
    "DEFAULT_HORIZONS",
    "DEFAULT_RETAIN_FRACTIONS",
    "DEFAULT_SEED_OFFSETS",
    "HORIZON_SWEEP",
    "RETAIN_SWEEP",
    "SEED_REPEATED",
    "SEED_SWEEP",
    "SWEEPS",
    "Sweep",
    "UnlearningRunSpec",
    "study_runs",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sweep:
    """Variants of some strategies' runs that differ in one parameter.

    Attributes:
        name: the sweep's name (``retain_fraction``, ``horizon``), also its parameters key
            (``retain_fractions``, ``horizons``) without the plural.
        parameter: the strategy parameter each variant overrides.
        variants: the variant names, in order (run names get ``_<variant>``).
        strategies: per task, the strategies swept by name.
        families: per task, the strategy families swept (every registered strategy of the
            family that applies to the task).
    """

    name: str
    parameter: str
    variants: tuple[str, ...]
    strategies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    families: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def swept_strategies(self, task: str) -> list[str]:
        """The registered strategies of ``task`` this sweep varies."""
        names = []
        for name in available_strategies(task):
            spec = get_strategy(name)
            if name in self.strategies.get(task, ()) or spec.family in self.families.get(task, ()):
                names.append(name)
        return names


#: The reconstruction study's retain-subset sweep (fractions in ``retain_fractions``).
RETAIN_SWEEP = Sweep(
    name="retain_fraction",
    parameter="retain_fraction",
    variants=("r1", "r5", "r10", "r20", "r50", "r100"),
    strategies=MappingProxyType({"recon": ("ft", "nl_ft", "ga_l1_ft")}),
)

#: The segmentation study's two epoch horizons (epochs in ``horizons``).
HORIZON_SWEEP = Sweep(
    name="horizon",
    parameter="epochs",
    variants=("short", "long"),
    families=MappingProxyType({"segmentation": ("segmentation_study",)}),
)

#: The main methods repeated over extra seeds, per task (sized for the CPU budget).
SEED_REPEATED = MappingProxyType(
    {"recon": ("nl_ft", "ga_l1_ft"), "segmentation": ("noisy_label",)}
)

#: Seed repeats of the main methods (seed offsets in ``seeds``).
SEED_SWEEP = Sweep(
    name="seed",
    parameter="seed",
    variants=("seed1", "seed2"),
    strategies=SEED_REPEATED,
)

SWEEPS = (RETAIN_SWEEP, HORIZON_SWEEP, SEED_SWEEP)

#: Fractions the variant names stand for (the defaults of ``retain_fractions``).
DEFAULT_RETAIN_FRACTIONS = MappingProxyType(
    {"r1": 0.01, "r5": 0.05, "r10": 0.10, "r20": 0.20, "r50": 0.50, "r100": 1.0}
)
#: The segmentation study's horizons (the defaults of ``horizons``).
DEFAULT_HORIZONS = MappingProxyType({"short": 20, "long": 50})
#: Seed offsets of the seed repeats (the defaults of ``seeds``), added to the run seed.
DEFAULT_SEED_OFFSETS = MappingProxyType({"seed1": 1, "seed2": 2})


@dataclass(frozen=True)
class UnlearningRunSpec:
    """One run of the grid.

    Attributes:
        task: ``recon`` or ``segmentation``.
        strategy: the registered strategy.
        sweep: the sweep the run belongs to (``None`` for a strategy's main run).
        variant: the sweep variant (``r10``, ``long``…).
        combines: runs of the same task whose checkpoints the strategy combines.
    """

    task: str
    strategy: str
    sweep: Sweep | None = None
    variant: str | None = None
    combines: tuple[str, ...] = ()

    @property
    def run(self) -> str:
        """The run's name: the strategy's, plus ``_<variant>`` for sweep variants."""
        return self.strategy if self.variant is None else f"{self.strategy}_{self.variant}"

    @property
    def all_retain_twins(self) -> tuple[str, ...]:
        """The strategies that are this run's strategy on all retain data (``full_ft`` for an
        ``ft`` retain-sweep run): the run is their main run when its settings equal theirs
        (``ft_r100`` = ``full_ft``), so it reads their parameter blocks too."""
        if self.sweep is None or self.sweep.name != RETAIN_SWEEP.name:
            return ()
        return tuple(
            name
            for name in available_strategies(self.task)
            if get_strategy(name).all_retain_of == self.strategy
        )

    @property
    def namespace(self) -> str:
        """``unlearning.<task>.<run>``."""
        return f"unlearning.{self.task}.{self.run}"

    def dataset(self, kind: str) -> str:
        """A dataset of this run, e.g. ``unlearning.recon.nl_ft.checkpoint``."""
        return f"{self.namespace}.{kind}"

    def __repr__(self) -> str:
        extra = f", combines={list(self.combines)}" if self.combines else ""
        return f"UnlearningRunSpec({self.namespace}{extra})"


def _combined(strategy: str) -> tuple[str, ...]:
    """The runs ``strategy`` combines (its registration's ``combines``; usually empty)."""
    return get_strategy(strategy).combined_runs()


def study_runs(task: str) -> list[UnlearningRunSpec]:
    """Every run of ``task``'s grid: main runs (one per applicable strategy), then sweeps.

    Strategies that combine other runs (model composition) come last; one whose combined
    runs do not all exist for ``task`` is left out with a warning.
    """
    strategies = available_strategies(task)
    plain = [UnlearningRunSpec(task, name) for name in strategies if not _combined(name)]
    for sweep in SWEEPS:
        for name in sweep.swept_strategies(task):
            if _combined(name):
                continue
            plain.extend(
                UnlearningRunSpec(task, name, sweep, variant) for variant in sweep.variants
            )
    known = {spec.run for spec in plain}
    combining = []
    for name in strategies:
        needed = _combined(name)
        if not needed:
            continue
        missing = [run for run in needed if run not in known]
        if missing:
            logger.warning(
                "unlearning.%s.%s left out: it combines runs %s that do not exist for %s",
                task,
                name,
                missing,
                task,
            )
            continue
        combining.append(UnlearningRunSpec(task, name, combines=tuple(needed)))
    return plain + combining
