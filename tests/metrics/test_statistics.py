"""Bootstrap intervals, paired differences, pooled seeds and the equivalence rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from med_unlearning.metrics.statistics import (
    bootstrap_ci,
    bootstrap_cis,
    bootstrap_statistic,
    bootstrap_statistics,
    equivalence,
    format_interval,
    is_seed_repeat,
    matched_differences,
    paired_differences,
    pool_seed_repeats,
    seed_repeat_base,
)


def test_bootstrap_ci_covers_the_mean_and_is_seeded() -> None:
    values = np.random.default_rng(1).normal(10.0, 2.0, 40)
    first = bootstrap_ci(values, n_resamples=500, seed=3)
    again = bootstrap_ci(values, n_resamples=500, seed=3)
    assert first == again
    assert first.low < values.mean() < first.high
    assert first.estimate == pytest.approx(values.mean())
    assert first.n == 40
    # the interval of the mean is about 2 x 1.96 x sd / sqrt(n) wide
    assert first.high - first.low == pytest.approx(2 * 1.96 * values.std() / np.sqrt(40), rel=0.3)


def test_bootstrap_ci_narrows_with_more_items_and_confidence() -> None:
    rng = np.random.default_rng(0)
    small = bootstrap_ci(rng.normal(0, 1, 10), n_resamples=400)
    large = bootstrap_ci(rng.normal(0, 1, 400), n_resamples=400)
    assert large.high - large.low < small.high - small.low
    values = rng.normal(0, 1, 30)
    wide = bootstrap_ci(values, confidence=0.99, n_resamples=400)
    narrow = bootstrap_ci(values, confidence=0.5, n_resamples=400)
    assert wide.low < narrow.low and narrow.high < wide.high


def test_bootstrap_ci_degenerate_samples() -> None:
    single = bootstrap_ci([3.0])
    assert single.estimate == 3.0 and not single.defined and single.n == 1
    constant = bootstrap_ci([2.0, 2.0, 2.0])
    assert (constant.low, constant.high) == (2.0, 2.0)
    empty = bootstrap_ci([np.nan])
    assert empty.n == 0 and np.isnan(empty.estimate)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=1.5)


def test_bootstrap_statistic_resamples_two_samples_independently() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(3, 0.1, 20), rng.normal(4, 0.1, 35)
    interval = bootstrap_statistic(
        [a, b], lambda x, y, axis=-1: np.hypot(x.mean(axis), y.mean(axis)), n_resamples=300
    )
    assert interval.estimate == pytest.approx(np.hypot(a.mean(), b.mean()))
    assert interval.low < interval.estimate < interval.high


def _scipy_interval(samples: list[np.ndarray], statistic, seed: int) -> tuple[float, float]:
    """The interval of one direct ``scipy.stats.bootstrap`` call (what the batch must equal)."""
    from scipy import stats

    result = stats.bootstrap(
        tuple(samples), statistic, n_resamples=300, method="percentile", vectorized=True,
        paired=False, rng=np.random.default_rng(seed),
    )  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(values, axis=axis)


def test_bootstrap_cis_equal_one_scipy_call_per_sample() -> None:
    rng = np.random.default_rng(7)
    # sizes repeat (stacked into one call), differ, exceed one call's rows, and include the
    # degenerate cases (one item, constant, all non-finite) handled without resampling
    samples = [rng.normal(0, 1, size) for size in [5, 8, 5, 12, 8, 5] + [6] * 70]
    samples += [np.array([1.0]), np.array([2.0, 2.0, 2.0]), np.array([np.nan, np.inf])]
    samples.append(np.array([1.0, np.nan, 3.0, 4.0]))  # non-finite dropped before resampling
    intervals = bootstrap_cis(samples, n_resamples=300, seed=4)
    assert len(intervals) == len(samples)
    for sample, interval in zip(samples[:-4], intervals[:-4], strict=True):
        low, high = _scipy_interval([sample], _mean, seed=4)
        assert interval.estimate == pytest.approx(sample.mean(), rel=1e-12)
        assert (interval.low, interval.high) == pytest.approx((low, high), rel=1e-12, abs=1e-15)
        assert interval.n == len(sample)
    assert intervals[-4] == bootstrap_ci([1.0])
    assert (intervals[-3].low, intervals[-3].high) == (2.0, 2.0)
    assert intervals[-2].n == 0
    expected = _scipy_interval([np.array([1.0, 3.0, 4.0])], _mean, seed=4)
    assert (intervals[-1].low, intervals[-1].high) == pytest.approx(expected, rel=1e-12)
    assert intervals[-1].n == 3


def test_bootstrap_statistics_of_two_samples_equal_separate_calls() -> None:
    rng = np.random.default_rng(8)

    def hypot(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.hypot(x.mean(axis=axis), y.mean(axis=axis))

    sets = [[rng.normal(1, 1, 6), rng.normal(2, 1, 9)] for _ in range(3)]
    sets.append([rng.normal(1, 1, 7), rng.normal(2, 1, 9)])
    intervals = bootstrap_statistics(sets, hypot, n_resamples=300, seed=2)
    for samples, interval in zip(sets, intervals, strict=True):
        assert (interval.low, interval.high) == pytest.approx(
            _scipy_interval(samples, hypot, seed=2), rel=1e-12
        )
        alone = bootstrap_statistic(samples, hypot, n_resamples=300, seed=2)
        assert (interval.estimate, interval.n) == (alone.estimate, alone.n)
        # stacked rows may differ from a lone call in the last bit of numpy's reductions
        assert (interval.low, interval.high) == pytest.approx((alone.low, alone.high), rel=1e-12)


def test_matched_differences_follow_the_method_order_on_shared_items() -> None:
    method = pd.Series([1.0, 2.0, 3.0, np.nan], index=["c", "a", "b", "d"])
    oracle = pd.Series([10.0, 20.0, 30.0, 40.0], index=["a", "b", "d", "c"])
    assert matched_differences(method, oracle).tolist() == [1.0 - 40.0, 2.0 - 10.0, 3.0 - 20.0]
    same_index = pd.Series([0.5, 0.5, 0.5, 0.5], index=method.index)
    assert matched_differences(method, same_index).tolist() == [0.5, 1.5, 2.5]


@pytest.mark.parametrize(
    ("low", "high", "tolerance", "expected"),
    [
        (-0.5, 0.5, 1.0, "equivalent"),
        (-1.0, 1.0, 1.0, "equivalent"),
        (1.2, 2.0, 1.0, "above"),
        (-3.0, -1.1, 1.0, "below"),
        (0.5, 1.5, 1.0, "inconclusive"),     # straddles the upper edge
        (-2.0, 2.0, 1.0, "inconclusive"),    # wider than the band
        (np.nan, np.nan, 1.0, "inconclusive"),
    ],
)
def test_equivalence_rule(low: float, high: float, tolerance: float, expected: str) -> None:
    assert equivalence(low, high, tolerance) == expected


def test_equivalence_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="out of order"):
        equivalence(1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="tolerance"):
        equivalence(0.0, 1.0, -1.0)


def test_paired_differences_remove_shared_item_difficulty() -> None:
    rng = np.random.default_rng(5)
    difficulty = rng.normal(30, 4, 25)  # large spread across items
    items = [f"v{i}" for i in range(25)]
    oracle = pd.Series(difficulty, index=items)
    method = pd.Series(difficulty + 0.3 + rng.normal(0, 0.05, 25), index=items)
    paired, differences = paired_differences(method, oracle, n_resamples=500)
    assert len(differences) == 25
    assert paired.low > 0.2 and paired.high < 0.4
    # unpaired, the same shift is buried in the items' spread
    unpaired = bootstrap_ci(method.to_numpy(), n_resamples=500)
    assert unpaired.high - unpaired.low > 5 * (paired.high - paired.low)


def test_paired_differences_use_shared_items_only() -> None:
    interval, differences = paired_differences(
        pd.Series([1.0, 2.0, 3.0], index=["a", "b", "c"]), pd.Series([0.0, 1.0], index=["b", "d"])
    )
    assert differences.tolist() == [2.0]
    assert interval.n == 1 and not interval.defined


def test_seed_names() -> None:
    assert is_seed_repeat("nl_ft@seed2") and not is_seed_repeat("nl_ft@r10")
    assert seed_repeat_base("nl_ft@seed12") == "nl_ft"
    assert seed_repeat_base("ft@short") == "ft@short"


def test_pool_seed_repeats_means_per_item_and_keeps_each_seed() -> None:
    rows = []
    for method, values in {"nl_ft": [1.0, 3.0], "nl_ft@seed1": [3.0, 5.0], "ft": [7.0, 8.0],
                           "nl_ft@r10": [0.0, 0.0]}.items():  # fmt: skip
        for item, value in zip(["a", "b"], values, strict=True):
            rows.append({"task": "recon", "method": method, "set": "s", "item_id": item,
                         "metric": "psnr", "value": value, "higher_is_better": True})  # fmt: skip
    pooled = pool_seed_repeats(pd.DataFrame(rows))
    by = pooled.set_index(["method", "item_id"])
    assert by.loc[("nl_ft", "a"), "value"] == 2.0 and by.loc[("nl_ft", "b"), "value"] == 4.0
    assert by.loc[("nl_ft", "a"), "n_seeds"] == 2
    assert by.loc[("nl_ft@seed0", "a"), "value"] == 1.0
    assert by.loc[("nl_ft@seed1", "b"), "value"] == 5.0
    assert by.loc[("ft", "a"), "value"] == 7.0 and by.loc[("ft", "a"), "n_seeds"] == 1
    assert by.loc[("nl_ft@r10", "a"), "value"] == 0.0
    assert len(pooled) == 2 * 5


def test_format_interval() -> None:
    assert format_interval(0.5, 0.4, 0.6, 2) == "0.50 [0.40, 0.60]"
    assert format_interval(0.5, np.nan, np.nan, 2) == "0.50 (no CI)"
    assert format_interval(0.5, -0.1, 0.6, 1, signed=True) == "+0.5 [-0.1, +0.6]"
