"""Machine unlearning, task-agnostic: the engine, the strategy registry and the strategies.

Layout — infrastructure here, methods in :mod:`med_unlearning.unlearning.strategies`:

- :mod:`~med_unlearning.unlearning.registry`: the contract (:class:`UnlearningRun`,
  :class:`StrategyResult`, :class:`StrategySpec`) and the one registry of strategies;
- :mod:`~med_unlearning.unlearning.engine`: runs one registered strategy on a copy of an
  original model;
- :mod:`~med_unlearning.unlearning.planning`: what one run forgets and retains (the plan),
  and which retain-sweep runs repeat another;
- :mod:`~med_unlearning.unlearning.result`: the run's settings, cost and typed result, and
  the checkpoint lineage and erasure-request record built from it;
- :mod:`~med_unlearning.unlearning.requests`: forget requests and retain subsets;
- :mod:`~med_unlearning.unlearning.grid`: which runs the study has;
- :mod:`~med_unlearning.unlearning.grid_run`: one grid run from the ``unlearning``
  parameters to its result (what the pipeline's node calls);
- :mod:`~med_unlearning.unlearning.pairing`: forget/retain batch pairing;
- :mod:`~med_unlearning.unlearning.common`: what every strategy is written with (typed base
  parameters, optimisers, the training loop, loss terms);
- :mod:`~med_unlearning.unlearning.strategies`: one file per method, with an index (method →
  study → file → function) in its docstring.

A strategy is one function ``strategy(run: UnlearningRun, params) -> StrategyResult`` plus one
:func:`register_strategy` entry (with its typed parameters model, and ``combines`` when it
combines finished runs) plus one parameters block. It receives a *working copy* of the
original model (never the original), a frozen copy of the original for targets/distillation,
the task object (loss, targets, encoder/decoder parts), forget and retain loaders, and its
typed parameters. The registry imports the built-in strategies lazily, at the first look-up
(:func:`load_strategies`); the infrastructure never imports them itself.
"""

from med_unlearning.unlearning.registry import (
    StrategyResult,
    StrategySpec,
    UnlearningRun,
    available_strategies,
    combinable_runs,
    get_strategy,
    load_strategies,
    register_strategy,
)

__all__ = [
    "StrategyResult",
    "StrategySpec",
    "UnlearningRun",
    "available_strategies",
    "combinable_runs",
    "get_strategy",
    "load_strategies",
    "register_strategy",
]
