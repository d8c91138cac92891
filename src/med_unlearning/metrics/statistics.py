"""Intervals and verdicts: bootstrap confidence intervals over items, paired differences with
the oracle, pooled seed repeats, and the equivalence rule every verdict of the report uses.

Why: the per-volume spread of the study's metrics (± 2–4 dB PSNR) is as large as the effects
a report would like to claim, so a mean alone proves nothing. Every number the report prints
carries a 95 % percentile-bootstrap interval over *items* (volumes / subjects: the unit that
is sampled), and every comparison with the oracle is *paired* (method − oracle on the same
items), which removes the items' shared difficulty from the interval.

The verdict rule (:func:`equivalence`) is an interval-inclusion form of the two one-sided
tests (TOST, Schuirmann 1987): with tolerance ``t`` and the interval ``[low, high]`` of a
difference,

- ``equivalent`` when ``−t ≤ low`` and ``high ≤ t`` (both ends inside the band);
- ``above`` when ``low > t`` and ``below`` when ``high < −t`` (the whole interval outside,
  on one side: the difference is established and larger than the tolerance);
- ``inconclusive`` otherwise (the interval straddles an edge of the band or is wider than
  it: the data cannot tell), and ``inconclusive`` too when the interval is undefined (fewer
  than 2 items).

With a ``1 − α`` two-sided interval, "equivalent" is TOST at level ``α / 2`` per side (the
95 % default is conservative: TOST at 2.5 %).

Seed repeats (methods ``<strategy>@seed<k>``; the main run ``<strategy>`` is repeat 0) are
pooled by :func:`pool_seed_repeats`: the mean over seeds per item, then the bootstrap over
items as for any method; the per-seed rows are kept as ``<strategy>@seed<k>``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "EQUIVALENCE_RULE",
    "Interval",
    "bootstrap_ci",
    "bootstrap_cis",
    "bootstrap_statistic",
    "bootstrap_statistics",
    "equivalence",
    "format_interval",
    "is_seed_repeat",
    "matched_differences",
    "paired_differences",
    "pool_seed_repeats",
    "seed_repeat_base",
]

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000

#: The verdict rule in words (the report quotes it).
EQUIVALENCE_RULE = (
    "A difference d (method − oracle, paired on the same items) with its 95 % bootstrap "
    "interval [low, high] and a tolerance t is 'equivalent' when −t ≤ low and high ≤ t (two "
    "one-sided tests), 'above' when low > t, 'below' when high < −t, and 'inconclusive' "
    "otherwise (the interval straddles an edge of ±t or is wider than the band, or fewer than "
    "2 items give no interval)."
)

_SEED_SUFFIX = re.compile(r"^(?P<base>.+)@seed(?P<seed>\d+)$")


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval.

    Attributes:
        estimate: the statistic on the full sample (NaN when there is no data).
        low: lower end of the interval (NaN when undefined, e.g. one item).
        high: upper end.
        n: number of items (resampling units).
    """

    estimate: float
    low: float
    high: float
    n: int

    @property
    def defined(self) -> bool:
        """Whether both ends of the interval are finite."""
        return bool(np.isfinite([self.low, self.high]).all())


def _check_confidence(confidence: float, n_resamples: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")


def bootstrap_statistic(
    samples: Sequence[Any],
    statistic: Callable[..., Any],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Percentile-bootstrap interval of ``statistic`` over one or more independent samples.

    Each sample is resampled on its own (``scipy.stats.bootstrap``, ``paired=False``):
    e.g. the distance to the oracle combines paired differences on a retain set and on a
    forget set, whose items differ. The percentile method is used because BCa fails on
    the tiny, often tied samples of the study.

    Args:
        samples: 1-D arrays (non-finite values dropped).
        statistic: ``statistic(*samples, axis=-1)``, vectorised like numpy reductions.
        confidence: two-sided confidence level.
        n_resamples: bootstrap resamples.
        seed: seed of the resampling (same seed + data → same interval).

    Returns:
        The estimate on the full samples and the interval; the interval is NaN when a
        sample has fewer than 2 finite values, and collapses to the estimate when every
        sample is constant.
    """
    return bootstrap_statistics(
        [samples], statistic, confidence=confidence, n_resamples=n_resamples, seed=seed
    )[0]


#: Rows bootstrapped per ``scipy.stats.bootstrap`` call (bounds the resample array's memory).
_ROWS_PER_CALL = 64


def bootstrap_statistics(
    sample_sets: Sequence[Sequence[Any]],
    statistic: Callable[..., Any],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> list[Interval]:
    """:func:`bootstrap_statistic` of many sample sets at once, with the same intervals.

    Why: the study asks for thousands of small intervals, and one ``scipy.stats.bootstrap``
    call each spends most of its time on call overhead. Every interval resamples with a
    fresh generator seeded with ``seed``, so sample sets of equal sizes draw the same
    indices; they are stacked as rows of one vectorised call, which returns exactly what
    separate calls would.

    Args:
        sample_sets: per interval, the samples :func:`bootstrap_statistic` takes.
        statistic: ``statistic(*samples, axis=-1)``, vectorised like numpy reductions.
        confidence: two-sided confidence level.
        n_resamples: bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        One :class:`Interval` per sample set, in order.
    """
    _check_confidence(confidence, n_resamples)
    intervals: list[Interval | None] = [None] * len(sample_sets)
    by_sizes: dict[tuple[int, ...], list[tuple[int, float, list[np.ndarray]]]] = {}
    for position, samples in enumerate(sample_sets):
        arrays = [np.asarray(sample, dtype=float).ravel() for sample in samples]
        arrays = [array[np.isfinite(array)] for array in arrays]
        n = min((len(array) for array in arrays), default=0)
        if n == 0:
            intervals[position] = Interval(math.nan, math.nan, math.nan, 0)
            continue
        estimate = float(statistic(*arrays, axis=-1))
        if n < 2:
            intervals[position] = Interval(estimate, math.nan, math.nan, n)
        elif all(np.ptp(array) == 0 for array in arrays):
            intervals[position] = Interval(estimate, estimate, estimate, n)
        else:
            sizes = tuple(len(array) for array in arrays)
            by_sizes.setdefault(sizes, []).append((position, estimate, arrays))
    for sizes, members in by_sizes.items():
        for start in range(0, len(members), _ROWS_PER_CALL):
            chunk = members[start : start + _ROWS_PER_CALL]
            stacked = tuple(
                np.stack([arrays[sample] for _, _, arrays in chunk])
                for sample in range(len(sizes))
            )
            result = stats.bootstrap(
                stacked,
                statistic,
                n_resamples=n_resamples,
                confidence_level=confidence,
                method="percentile",
                vectorized=True,
                paired=False,
                axis=-1,
                rng=np.random.default_rng(seed),
            )
            lows = np.atleast_1d(result.confidence_interval.low)
            highs = np.atleast_1d(result.confidence_interval.high)
            for (position, estimate, _), low, high in zip(chunk, lows, highs, strict=True):
                intervals[position] = Interval(estimate, float(low), float(high), min(sizes))
    return [interval for interval in intervals if interval is not None]


def _mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(values, axis=axis)


def bootstrap_ci(
    values: Any,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Mean over items with its percentile-bootstrap interval (items resampled with
    replacement). Non-finite values are dropped; fewer than 2 items give a NaN interval.

    Raises:
        ValueError: ``confidence`` outside (0, 1) or ``n_resamples < 1``.
    """
    return bootstrap_statistic(
        [values], _mean, confidence=confidence, n_resamples=n_resamples, seed=seed
    )


def bootstrap_cis(
    values: Sequence[Any],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> list[Interval]:
    """:func:`bootstrap_ci` of many samples at once (same intervals, far fewer scipy calls;
    see :func:`bootstrap_statistics`)."""
    return bootstrap_statistics(
        [[sample] for sample in values], _mean, confidence=confidence,
        n_resamples=n_resamples, seed=seed,
    )  # fmt: skip


def equivalence(low: float, high: float, tolerance: float) -> str:
    """The verdict of a difference's interval against ``±tolerance`` (see the module doc).

    Returns:
        ``equivalent``, ``above``, ``below`` or ``inconclusive`` (also for an undefined
        interval or tolerance).

    Raises:
        ValueError: ``low > high`` or a negative tolerance.
    """
    if not np.isfinite([low, high, tolerance]).all():
        return "inconclusive"
    if low > high:
        raise ValueError(f"interval ends out of order: low {low} > high {high}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if -tolerance <= low and high <= tolerance:
        return "equivalent"
    if low > tolerance:
        return "above"
    if high < -tolerance:
        return "below"
    return "inconclusive"


def format_interval(estimate: float, low: float, high: float, decimals: int = 3,
                    signed: bool = False) -> str:  # fmt: skip
    """``0.912 [0.90, 0.93]``-style text (``n/a`` without an estimate; no brackets without
    an interval, with ``(no CI)``)."""
    if estimate is None or not np.isfinite(estimate):
        return "n/a"
    sign = "+" if signed else ""
    text = f"{estimate:{sign}.{decimals}f}"
    if low is None or high is None or not np.isfinite([low, high]).all():
        return f"{text} (no CI)"
    return f"{text} [{low:{sign}.{decimals}f}, {high:{sign}.{decimals}f}]"


def is_seed_repeat(method: str) -> bool:
    """Whether ``method`` names a seed repeat (``nl_ft@seed2``)."""
    return _SEED_SUFFIX.match(str(method)) is not None


def seed_repeat_base(method: str) -> str:
    """The method a seed repeat repeats (``nl_ft@seed2`` → ``nl_ft``; others unchanged)."""
    match = _SEED_SUFFIX.match(str(method))
    return match.group("base") if match else str(method)


def pool_seed_repeats(results: pd.DataFrame) -> pd.DataFrame:
    """Pool seed repeats: ``<m>`` becomes the mean over its seeds per item; per-seed rows kept.

    A method ``<m>`` with repeats ``<m>@seed<k>`` (k ≥ 1) is seed 0: its rows are copied to
    ``<m>@seed0`` and replaced by the per-item mean over all its seeds (items a seed lacks
    are averaged over the seeds that have them). A ``n_seeds`` column counts the seeds
    behind each row (1 for unrepeated methods). Methods without repeats are unchanged.

    Args:
        results: the tidy results table (``task, method, set, item_id, metric, value …``).

    Returns:
        A new table with the same columns plus ``n_seeds``.
    """
    table = results.copy()
    table["n_seeds"] = 1
    methods = table["method"].astype(str)
    repeats = methods[methods.map(is_seed_repeat)]
    if repeats.empty:
        return table
    keys = ["task", "set", "item_id", "metric"]
    base_of = methods.map(seed_repeat_base)
    pooled_parts, seed0_parts = [], []
    families = table.loc[repeats.index, ["task"]].assign(method=base_of[repeats.index])
    for task, base in families.drop_duplicates().itertuples(index=False):
        in_task = table["task"] == task
        main = table.loc[in_task & (methods == base)]
        if main.empty:
            continue
        family = table.loc[in_task & (base_of == base)]
        seed0_parts.append(main.assign(method=f"{base}@seed0"))
        grouped = family.groupby(keys, sort=False, dropna=False)
        pooled = grouped.agg(value=("value", "mean"), n_seeds=("value", "count")).reset_index()
        rest = main.drop(columns=["value", "n_seeds"]).drop_duplicates(keys)
        pooled_parts.append(rest.merge(pooled, on=keys, how="left"))
    if not pooled_parts:
        return table
    replaced = pd.concat(
        [part[["task", "method"]].drop_duplicates() for part in pooled_parts], ignore_index=True
    )
    drop = table.set_index(["task", "method"]).index.isin(
        replaced.set_index(["task", "method"]).index
    )
    pooled_table = pd.concat([table.loc[~drop], *seed0_parts, *pooled_parts], ignore_index=True)
    return pooled_table.loc[:, list(table.columns)].reset_index(drop=True)


def matched_differences(method_values: pd.Series, reference_values: pd.Series) -> np.ndarray:
    """``method − reference`` on the items both have (finite only), in the method's item order.

    Args:
        method_values: per-item values indexed by (unique) item id.
        reference_values: the reference's values, indexed the same way.
    """
    if method_values.index.equals(reference_values.index):
        method, reference = method_values, reference_values
    else:
        shared = method_values.index.intersection(reference_values.index, sort=False)
        method, reference = method_values.loc[shared], reference_values.loc[shared]
    differences = method.to_numpy(dtype=float) - reference.to_numpy(dtype=float)
    return differences[np.isfinite(differences)]


def paired_differences(
    method_values: pd.Series,
    reference_values: pd.Series,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[Interval, np.ndarray]:
    """Mean of ``method − reference`` over the items both have, with its bootstrap interval.

    Args:
        method_values: per-item values indexed by item id.
        reference_values: the reference's (the oracle's) values, indexed the same way.

    Returns:
        ``(interval, differences)``; the differences are per shared item (finite only).
    """
    differences = matched_differences(method_values, reference_values)
    interval = bootstrap_ci(
        differences, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    return interval, differences
