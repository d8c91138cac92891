"""Seeded by-item splits and forget selectors."""

from __future__ import annotations

import pandas as pd
import pytest

from med_unlearning.data.splits import (
    FORGET_TEST,
    FORGET_TRAIN,
    FORGET_VAL,
    RETAIN_TEST,
    RETAIN_TRAIN,
    RETAIN_VAL,
    UNUSED,
    ForgetSelector,
    SplitCounts,
    SplitError,
    assign_roles,
    ids_with_roles,
    split_by_selector,
)


def _metadata(brains: int = 20, knees: int = 8) -> pd.DataFrame:
    rows = [
        {"volume_id": f"brain/b{index:02d}", "anatomy": "brain", "patient_id": f"p{index // 2}",
         "num_slices": 10 + index}
        for index in range(brains)
    ]
    rows += [
        {"volume_id": f"knee/k{index:02d}", "anatomy": "knee", "patient_id": f"q{index}",
         "num_slices": 30 + index}
        for index in range(knees)
    ]
    return pd.DataFrame(rows)


KNEE = ForgetSelector(column="anatomy", values=("knee",))
COUNTS = SplitCounts(retain_val=2, retain_test=3, forget_test=2)


def _split(metadata: pd.DataFrame | None = None, seed: int = 0, **kwargs) -> pd.DataFrame:
    return split_by_selector(
        _metadata() if metadata is None else metadata,
        kwargs.pop("selector", KNEE),
        kwargs.pop("counts", COUNTS),
        seed,
        id_column="volume_id",
        keep_columns=("anatomy",),
        **kwargs,
    )


def test_every_volume_gets_exactly_one_role_and_sides_are_disjoint() -> None:
    splits = _split()
    assert list(splits.columns) == ["volume_id", "anatomy", "role"]
    assert splits["volume_id"].is_unique and len(splits) == 28
    counts = splits.groupby("role").size().to_dict()
    assert counts == {RETAIN_TRAIN: 15, RETAIN_VAL: 2, RETAIN_TEST: 3, FORGET_TRAIN: 6, FORGET_TEST: 2}
    forget_roles = splits.loc[splits["anatomy"] == "knee", "role"]
    assert set(forget_roles) == {FORGET_TRAIN, FORGET_TEST}
    retain_roles = splits.loc[splits["anatomy"] == "brain", "role"]
    assert set(retain_roles) == {RETAIN_TRAIN, RETAIN_VAL, RETAIN_TEST}
    by_role = {role: set(ids_with_roles(splits, [role], "volume_id")) for role in counts}
    roles = list(by_role)
    for first in roles:
        for second in roles:
            if first != second:
                assert not by_role[first] & by_role[second]


def test_split_is_deterministic_and_depends_on_the_seed() -> None:
    assert _split(seed=3).equals(_split(seed=3))
    # Row order of the metadata does not matter, only ids and seed.
    shuffled = _metadata().sample(frac=1.0, random_state=1)
    assert _split(shuffled, seed=3).equals(_split(seed=3))
    assert not _split(seed=3)["role"].equals(_split(seed=4)["role"])


def test_changing_forget_counts_leaves_the_retain_side_unchanged() -> None:
    first = _split()
    second = _split(counts=SplitCounts(retain_val=2, retain_test=3, forget_test=4))
    brains = first["anatomy"] == "brain"
    assert first.loc[brains, "role"].equals(second.loc[brains, "role"])


def test_caps_leave_unused_volumes() -> None:
    counts = SplitCounts(retain_val=1, retain_test=1, forget_test=1, retain_train=5, forget_train=2)
    splits = _split(counts=counts)
    sizes = splits.groupby("role").size().to_dict()
    assert sizes[RETAIN_TRAIN] == 5 and sizes[FORGET_TRAIN] == 2
    assert sizes[UNUSED] == 28 - 5 - 2 - 3


def test_groups_stay_together() -> None:
    splits = _split(group_column="patient_id")
    merged = splits.merge(_metadata()[["volume_id", "patient_id"]], on="volume_id")
    assert (merged.groupby("patient_id")["role"].nunique() == 1).all()
    # Counts are in groups: 3 test patients of two volumes each.
    assert (splits["role"] == RETAIN_TEST).sum() == 6


def test_a_group_on_both_sides_is_an_overlap_error() -> None:
    metadata = _metadata()
    metadata.loc[metadata["volume_id"] == "knee/k00", "patient_id"] = "p0"
    with pytest.raises(SplitError, match="overlap.*p0"):
        _split(metadata, group_column="patient_id")


@pytest.mark.parametrize(
    ("selector", "forgotten"),
    [
        (ForgetSelector(column="anatomy", values=("knee",)), 8),
        (ForgetSelector(query="num_slices >= 30"), 8),
        (ForgetSelector(query="anatomy == 'brain' and num_slices < 14"), 4),
        (ForgetSelector(ids=("brain/b00", "brain/b05", "knee/k01", "knee/k02")), 4),
    ],
)
def test_selectors(selector: ForgetSelector, forgotten: int) -> None:
    selected = selector.select(_metadata(), "volume_id")
    assert selected.sum() == forgotten
    counts = SplitCounts(retain_val=1, retain_test=1, forget_test=1)
    splits = _split(selector=selector, counts=counts)
    forget_ids = set(ids_with_roles(splits, [FORGET_TRAIN, FORGET_TEST], "volume_id"))
    assert forget_ids == set(_metadata().loc[selected.to_numpy(), "volume_id"])


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (ForgetSelector(column="anatomy", values=("heart",)), "matches no item"),
        (ForgetSelector(query="num_slices > 0"), "matches every item"),
        (ForgetSelector(column="organ", values=("knee",)), "column 'organ' is not in the metadata"),
        (ForgetSelector(ids=("knee/k99",)), r"not found in the metadata: \['knee/k99'\]"),
        (ForgetSelector(query="organ == 'knee'"), r"query .* unknown column\(s\) \['organ'\]"),
    ],
)
def test_bad_selections_are_clear_errors(selector: ForgetSelector, message: str) -> None:
    with pytest.raises(SplitError, match=message):
        _split(selector=selector)


def test_selector_query_is_checked_when_built() -> None:
    with pytest.raises(SplitError, match="forget selector query .* not a valid expression"):
        ForgetSelector(query="num_slices >>> 3")


def test_selector_needs_exactly_one_way() -> None:
    with pytest.raises(SplitError, match="exactly one"):
        ForgetSelector(column="anatomy", values=("knee",), query="num_slices > 3")
    with pytest.raises(SplitError, match="exactly one"):
        ForgetSelector()
    with pytest.raises(SplitError, match="non-empty 'values'"):
        ForgetSelector(column="anatomy")


def test_too_few_volumes_for_validation_or_test_is_a_clear_error() -> None:
    small = _metadata(brains=5, knees=2)
    with pytest.raises(SplitError, match="only 5 retain items; need retain_test"):
        _split(small, counts=SplitCounts(retain_val=2, retain_test=3, forget_test=1))
    with pytest.raises(SplitError, match="only 2 forget items"):
        _split(small, counts=SplitCounts(retain_val=1, retain_test=1, forget_test=2))
    with pytest.raises(SplitError, match="zero items left for validation"):
        SplitCounts(retain_val=0, retain_test=1, forget_test=1)


def test_duplicate_ids_are_an_error() -> None:
    metadata = pd.concat([_metadata(), _metadata().iloc[:1]], ignore_index=True)
    with pytest.raises(SplitError, match="more than once.*brain/b00"):
        _split(metadata)


def test_assign_roles_is_aligned_with_the_metadata() -> None:
    metadata = _metadata()
    roles = assign_roles(metadata, metadata["anatomy"] == "knee", COUNTS, seed=0, id_column="volume_id")
    assert roles.index.equals(metadata.index)
    assert set(roles[metadata["anatomy"] == "knee"]) <= {FORGET_TRAIN, FORGET_TEST}


def test_ids_with_roles_rejects_unknown_roles() -> None:
    with pytest.raises(SplitError, match="unknown split roles"):
        ids_with_roles(_split(), ["train"], "volume_id")


def test_include_query_leaves_other_items_unused() -> None:
    splits = _split(include="num_slices < 25 or anatomy == 'knee'")  # brains b15..b19 excluded
    unused = set(ids_with_roles(splits, [UNUSED], "volume_id"))
    assert unused == {f"brain/b{index}" for index in range(15, 20)}
    assert (splits["role"] == RETAIN_TRAIN).sum() == 10
    with pytest.raises(SplitError, match="keeps no item"):
        _split(include="num_slices > 1000")
    with pytest.raises(SplitError, match="include query .* not a valid expression"):
        _split(include="num_slices >>> 2")


def test_forget_val_is_carved_from_the_forget_side_without_moving_the_test_items() -> None:
    without = _split().set_index("volume_id")["role"]
    counts = SplitCounts(retain_val=2, retain_test=3, forget_test=2, forget_val=3)
    with_val = _split(counts=counts).set_index("volume_id")["role"]
    assert (with_val == FORGET_VAL).sum() == 3 and (with_val == FORGET_TRAIN).sum() == 3
    carved = set(with_val[with_val == FORGET_VAL].index)
    assert carved <= set(without[without == FORGET_TRAIN].index)
    assert with_val[without == FORGET_TEST].eq(FORGET_TEST).all()  # the test set is unchanged
    retain = without.str.startswith("retain")
    assert with_val[retain].equals(without[retain])
    too_many = SplitCounts(retain_val=2, retain_test=3, forget_test=2, forget_val=6)
    with pytest.raises(SplitError, match=r"forget_val \(6\)"):
        _split(counts=too_many)
    with pytest.raises(SplitError, match="forget_val must be >= 0"):
        SplitCounts(retain_val=1, retain_test=1, forget_test=1, forget_val=-1)
