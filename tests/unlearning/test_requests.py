"""Tests for med_unlearning.unlearning.requests."""

from __future__ import annotations

import pandas as pd
import pytest

from med_unlearning.unlearning.requests import (
    ForgetRequest,
    ForgetRequestError,
    ParentMismatchError,
    check_parent_manifest,
    resolve_request,
    sample_retain_subset,
    with_roles,
)


@pytest.fixture
def metadata() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "volume_id": ["b1", "b2", "b3", "b4", "k1", "k2", "k3"],
            "anatomy": ["brain"] * 4 + ["knee"] * 3,
            "scanner": ["Skyra", "Prisma", "Skyra", "Prisma", "Skyra", "Skyra", "Aera"],
            "num_slices": [10, 12, 30, 11, 20, 22, 40],
        }
    )


#: The original was trained on every volume but b4 and k3 (held-out test volumes).
MANIFEST = ["b1", "b2", "b3", "k1", "k2"]


def test_column_request_keeps_only_trained_items(metadata: pd.DataFrame) -> None:
    resolved = resolve_request(
        ForgetRequest(column="anatomy", values=("knee",)), metadata, MANIFEST, id_column="volume_id"
    )
    assert resolved.forget_ids == ["k1", "k2"]
    assert resolved.retain_ids == ["b1", "b2", "b3"]
    assert resolved.selected_not_trained == ["k3"]
    record = resolved.to_record()
    assert record["by"] == "column" and record["values"] == ["knee"]
    assert record["forget_ids"] == ["k1", "k2"] and record["n_retain_pool"] == 3


def test_id_request(metadata: pd.DataFrame) -> None:
    resolved = resolve_request(
        ForgetRequest(ids=("b2",)), metadata, MANIFEST, id_column="volume_id"
    )
    assert resolved.forget_ids == ["b2"]
    assert resolved.retain_ids == ["b1", "b3", "k1", "k2"]
    assert resolved.to_record()["ids"] == ["b2"]


def test_query_request(metadata: pd.DataFrame) -> None:
    resolved = resolve_request(
        ForgetRequest(query="num_slices >= 20 and scanner == 'Skyra'"),
        metadata,
        MANIFEST,
        id_column="volume_id",
    )
    assert resolved.forget_ids == ["b3", "k1", "k2"]
    assert resolved.to_record()["query"] == "num_slices >= 20 and scanner == 'Skyra'"


def test_from_mapping_ignores_empty_entries() -> None:
    request = ForgetRequest.from_mapping(
        {"ids": [], "column": "anatomy", "values": ["knee"], "query": None, "description": "T-1"}
    )
    assert request.kind == "column"
    assert request.to_record()["description"] == "T-1"


def test_unknown_ids_are_listed(metadata: pd.DataFrame) -> None:
    with pytest.raises(ForgetRequestError, match=r"not in the dataset: \['x9', 'y7'\]"):
        resolve_request(
            ForgetRequest(ids=("b1", "x9", "y7")), metadata, MANIFEST, id_column="volume_id"
        )


def test_empty_selection_is_an_error(metadata: pd.DataFrame) -> None:
    with pytest.raises(ForgetRequestError, match="selects no item"):
        resolve_request(
            ForgetRequest(column="anatomy", values=("hip",)),
            metadata,
            MANIFEST,
            id_column="volume_id",
        )
    with pytest.raises(ForgetRequestError, match="selects no item"):
        resolve_request(
            ForgetRequest(query="num_slices > 100"), metadata, MANIFEST, id_column="volume_id"
        )


def test_bad_column_or_query_is_an_error(metadata: pd.DataFrame) -> None:
    with pytest.raises(ForgetRequestError, match="'site' is not in the metadata"):
        resolve_request(
            ForgetRequest(column="site", values=("A",)), metadata, MANIFEST, id_column="volume_id"
        )
    with pytest.raises(ForgetRequestError, match="query"):
        resolve_request(
            ForgetRequest(query="nonexistent > 3"), metadata, MANIFEST, id_column="volume_id"
        )


def test_ids_never_trained_on_are_an_error(metadata: pd.DataFrame) -> None:
    with pytest.raises(ForgetRequestError, match=r"\['k3'\].*never trained on"):
        resolve_request(ForgetRequest(ids=("k2", "k3")), metadata, MANIFEST, id_column="volume_id")


def test_selection_of_untrained_items_only_is_an_error(metadata: pd.DataFrame) -> None:
    with pytest.raises(ForgetRequestError, match="none of which"):
        resolve_request(
            ForgetRequest(column="scanner", values=("Aera",)),
            metadata,
            MANIFEST,
            id_column="volume_id",
        )


def test_forgetting_everything_is_an_error(metadata: pd.DataFrame) -> None:
    with pytest.raises(ForgetRequestError, match="nothing would be left to retain"):
        resolve_request(
            ForgetRequest(query="num_slices > 0"), metadata, MANIFEST, id_column="volume_id"
        )


def test_request_needs_exactly_one_selector() -> None:
    with pytest.raises(ForgetRequestError, match="exactly one"):
        ForgetRequest()
    with pytest.raises(ForgetRequestError, match="exactly one"):
        ForgetRequest(ids=("a",), query="x > 1")


def test_parent_trained_on_other_data_is_an_error(metadata: pd.DataFrame) -> None:
    with pytest.raises(ParentMismatchError, match=r"\['z1'\]\).*other data"):
        resolve_request(
            ForgetRequest(ids=("b1",)),
            metadata,
            ["b1", "b2", "z1"],
            id_column="volume_id",
            parent="recon.original.checkpoint",
        )


def test_check_parent_manifest_against_the_splits(metadata: pd.DataFrame) -> None:
    check_parent_manifest(
        MANIFEST, metadata["volume_id"], expected_manifest=list(reversed(MANIFEST))
    )
    with pytest.raises(
        ParentMismatchError,
        match=r"not trained on \['k2'\]; trained on items outside the training roles \['b4'\]",
    ):
        check_parent_manifest(
            ["b1", "b2", "b3", "k1", "b4"], metadata["volume_id"], expected_manifest=MANIFEST
        )
    with pytest.raises(ParentMismatchError, match="empty data_manifest"):
        check_parent_manifest([], metadata["volume_id"])


def test_with_roles_joins_the_split_roles(metadata: pd.DataFrame) -> None:
    splits = pd.DataFrame({"volume_id": ["b1", "k1"], "role": ["retain_train", "forget_train"]})
    table = with_roles(metadata, splits, "volume_id")
    assert table.set_index("volume_id").loc["k1", "role"] == "forget_train"
    assert pd.isna(table.set_index("volume_id").loc["b2", "role"])
    resolved = resolve_request(
        ForgetRequest(column="role", values=("forget_train",)),
        table,
        MANIFEST,
        id_column="volume_id",
    )
    assert resolved.forget_ids == ["k1"]
    assert "role" not in metadata.columns


def test_retain_subset_is_seeded_nested_and_at_least_one() -> None:
    pool = [f"v{index:02d}" for index in range(40)]
    small = sample_retain_subset(pool, 0.1, seed=3)
    large = sample_retain_subset(pool, 0.5, seed=3)
    assert len(small) == 4 and len(large) == 20
    assert set(small) <= set(large)
    assert small == sample_retain_subset(list(reversed(pool)), 0.1, seed=3)
    assert small != sample_retain_subset(pool, 0.1, seed=4)
    assert (
        sample_retain_subset(pool, 0.01, seed=3)
        and len(sample_retain_subset(pool, 0.01, seed=3)) == 1
    )
    assert sample_retain_subset(pool, 1.0, seed=3) == pool


def test_retain_subset_moves_groups_together() -> None:
    pool = ["a1", "a2", "b1", "b2", "c1", "c2"]
    groups = {item: item[0] for item in pool}
    subset = sample_retain_subset(pool, 0.34, seed=0, groups=groups)
    assert len(subset) == 2 and subset[0][0] == subset[1][0]


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan")])
def test_retain_fraction_out_of_range_is_an_error(fraction: float) -> None:
    with pytest.raises(ForgetRequestError, match=r"retain fraction must be in \(0, 1\]"):
        sample_retain_subset(["a"], fraction, seed=0)


def test_empty_retain_pool_is_an_error() -> None:
    with pytest.raises(ForgetRequestError, match="retain pool is empty"):
        sample_retain_subset([], 0.5, seed=0)
