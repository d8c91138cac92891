"""The built-in unlearning strategies: one file per method, named after its registry name.

Importing this package registers every strategy below with
:func:`~med_unlearning.unlearning.registry.register_strategy`; the registry imports it
lazily, the first time a strategy is looked up
(:func:`~med_unlearning.unlearning.registry.load_strategies`).

Index — the strategy registered as ``<method>`` is the function ``<function>`` of
``strategies/<method>.py``; the rows are in registration order (:data:`STRATEGY_MODULES`),
which is the order in which composition and interpolation receive the runs they combine:

| method | study | file | function |
|---|---|---|---|
| ``ft`` | recon_study | ``ft.py`` | ``fine_tune`` |
| ``full_ft`` | recon_study | ``full_ft.py`` | ``full_fine_tune`` |
| ``ga_l1`` | recon_study | ``ga_l1.py`` | ``ga_l1`` |
| ``ga_l1_ft`` | recon_study | ``ga_l1_ft.py`` | ``ga_l1_ft`` |
| ``nl`` | recon_study | ``nl.py`` | ``nl`` |
| ``nl_ft`` | recon_study | ``nl_ft.py`` | ``nl_ft`` |
| ``neggrad_plus`` | baseline | ``neggrad_plus.py`` | ``neggrad_plus`` |
| ``max_loss`` | segmentation_study | ``max_loss.py`` | ``max_loss`` |
| ``noisy_label`` | segmentation_study | ``noisy_label.py`` | ``noisy_label`` |
| ``retain_label`` | segmentation_study | ``retain_label.py`` | ``retain_label`` |
| ``random_encoder`` | segmentation_study | ``random_encoder.py`` | ``random_encoder`` |
| ``fix_decoder`` | segmentation_study | ``fix_decoder.py`` | ``fix_decoder`` |
| ``boundary`` | bilevel_study | ``boundary.py`` | ``boundary`` |
| ``ssd`` | baseline | ``ssd.py`` | ``selective_synaptic_dampening`` |
| ``composition`` | bilevel_study | ``composition.py`` | ``composition`` |
| ``interpolation`` | bilevel_study | ``interpolation.py`` | ``interpolation`` |

Studies: ``recon_study`` — *Erase to Enhance* (MRI reconstruction); ``segmentation_study`` —
*To forget is to preserve* (brain segmentation); ``bilevel_study`` — bilevel boundary
unlearning and model composition; ``baseline`` — general baselines.

Files starting with ``_`` hold what a family shares, not a strategy:

- ``_noisy_targets.py`` — noisy forget targets (NL, NL-FT, Noisy Label);
- ``_features.py`` — feature statistics, noise and the encoder-only training loop (Random
  Encoder, Fix Decoder);
- ``_perturbation.py`` — the perturbed sign-gradient step (Boundary);
- ``_combining.py`` — run names, resolving and checking finished runs (composition,
  interpolation).

What every strategy shares (typed base parameters, optimisers, the training loop, loss terms)
is :mod:`med_unlearning.unlearning.common`; forget/retain batch pairing is
:mod:`med_unlearning.unlearning.pairing`.

**Add a strategy**: write ``strategies/<name>.py`` with a parameters model (subclass
:class:`~med_unlearning.unlearning.common.StrategyParams`) and one function
``fn(run, params) -> StrategyResult`` decorated with ``@register_strategy("<name>", ...)``;
add ``"<name>"`` to :data:`STRATEGY_MODULES` and a row above; add its parameters block to
``conf/base/parameters_unlearning.yml``. It joins the study grid by itself and, when it
combines no runs and applies to both tasks, composition and interpolation may combine its
run (:func:`~med_unlearning.unlearning.registry.combinable_runs`). A strategy that combines
finished runs declares them with ``combines=`` at registration.
"""

from __future__ import annotations

import importlib

__all__ = ["STRATEGY_MODULES"]

#: The strategy modules, imported (so registered) in this order; the order of the index.
STRATEGY_MODULES: tuple[str, ...] = (
    "ft",
    "full_ft",
    "ga_l1",
    "ga_l1_ft",
    "nl",
    "nl_ft",
    "neggrad_plus",
    "max_loss",
    "noisy_label",
    "retain_label",
    "random_encoder",
    "fix_decoder",
    "boundary",
    "ssd",
    "composition",
    "interpolation",
)



def _register_all() -> None:
    """Import every module of :data:`STRATEGY_MODULES`, in order (each registers itself)."""
    for module in STRATEGY_MODULES:
        importlib.import_module(f"{__name__}.{module}")


_register_all()
