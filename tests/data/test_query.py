"""The query language: what it selects, and that nothing in a query parameter ever runs."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pandas as pd
import pytest

from med_unlearning.data.query import QueryError, evaluate_query, filter_frame, parse_query
from med_unlearning.data.splits import ForgetSelector, SplitCounts, SplitError, split_by_selector
from med_unlearning.params import ParameterError, validate_parameters
from med_unlearning.unlearning.requests import ForgetRequest, ForgetRequestError, resolve_request

METADATA = pd.DataFrame(
    {
        "volume_id": [f"v{index}" for index in range(8)],
        "anatomy": ["brain"] * 5 + ["knee"] * 3,
        "acquisition": ["AXT2", "AXT1", "AXT2", "AXFLAIR", "AXT2", "CORPD_FBK", "CORPDFS_FBK",
                        "CORPD_FBK"],
        "num_slices": [10, 20, 30, 40, 50, 35, 25, 15],
        "scanner_model": ["Skyra", "Aera", None, "Skyra", "Aera", "Skyra", "Aera", "Skyra"],
        "is_outlier": [False, False, False, False, True, False, False, True],
    }
)


def _ids(mask: pd.Series) -> list[str]:
    return METADATA.loc[mask.to_numpy(), "volume_id"].tolist()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("anatomy == 'knee'", ["v5", "v6", "v7"]),
        ('anatomy != "knee"', ["v0", "v1", "v2", "v3", "v4"]),
        ("num_slices > 30", ["v3", "v4", "v5"]),
        ("num_slices >= 30 and anatomy == 'brain'", ["v2", "v3", "v4"]),
        ("num_slices < 15 or num_slices > 45", ["v0", "v4"]),
        ("20 <= num_slices < 35", ["v1", "v2", "v6"]),
        ("acquisition in ['AXT2', 'CORPD_FBK', 'CORPDFS_FBK']",
         ["v0", "v2", "v4", "v5", "v6", "v7"]),
        ("acquisition not in ('AXT2',)", ["v1", "v3", "v5", "v6", "v7"]),
        ("not (anatomy == 'brain' or num_slices > 20)", ["v7"]),
        ("scanner_model == None", ["v2"]),
        ("scanner_model != 'Skyra'", ["v1", "v2", "v4", "v6"]),
        ("scanner_model == 'Aera'", ["v1", "v4", "v6"]),
        ("is_outlier", ["v4", "v7"]),
        ("not is_outlier and num_slices > -1.5e0 and num_slices < 12", ["v0"]),
        ("num_slices > 30.5", ["v3", "v4", "v5"]),
    ],
)
def test_language_selects_like_pandas_would(query: str, expected: list[str]) -> None:
    assert _ids(evaluate_query(query, METADATA)) == expected


def test_readme_examples_still_work() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    examples = re.findall(r'query: "([^"]+)"', readme) + re.findall(r'include: "([^"]+)"', readme)
    assert examples, "the README shows query examples"
    frame = METADATA.assign(shape_z=[40, 48, 48, 48, 40, 48, 48, 48])
    for example in examples:
        assert evaluate_query(example, frame).dtype == bool
    assert _ids(evaluate_query("acquisition in ['AXT2','CORPD_FBK','CORPDFS_FBK']", METADATA)) == [
        "v0", "v2", "v4", "v5", "v6", "v7"
    ]


@pytest.mark.parametrize(
    ("query", "part"),
    [
        ("anatomy.str.contains('kn')", "call"),
        ("anatomy.str == 1", "attribute"),
        ("len(anatomy) > 3", "call"),
        ("anatomy[0] == 'k'", "subscript"),
        ("(lambda: 1)() == 1", "call"),
        ("num_slices + 1 > 3", "arithmetic"),
        ("num_slices > 3 & anatomy == 'knee'", "'&'"),
        ("~is_outlier", "'~'"),
        ("[x for x in anatomy] == 1", "comprehension"),
        ("`anatomy` == 'knee'", "backtick"),
        ("@x == 1", "'@'"),
        ("__class__ == 1", "__class__"),
        ("anatomy in anatomy", "after 'in'"),
        ("anatomy is None", "IsNot|Is"),
        ("anatomy == {'a': 1}", "dict"),
        ("", "empty"),
        ("anatomy ==", "not a valid expression"),
    ],
)
def test_anything_else_is_refused_naming_the_parameter_and_part(query: str, part: str) -> None:
    with pytest.raises(QueryError, match=part) as caught:
        parse_query(query, "recon.splits.include")
    assert "recon.splits.include" in str(caught.value)


def test_unknown_column_and_bad_comparison_are_named() -> None:
    with pytest.raises(QueryError, match=r"unknown column\(s\) \['site'\].*anatomy"):
        evaluate_query("site == 'A'", METADATA, "recon.forget.query")
    with pytest.raises(QueryError, match="recon.forget.query.*cannot be compared"):
        evaluate_query("anatomy < 3", METADATA, "recon.forget.query")
    with pytest.raises(QueryError, match="not boolean"):
        evaluate_query("anatomy", METADATA)


def test_filter_frame_keeps_index_and_rows() -> None:
    kept = filter_frame(METADATA, "anatomy == 'knee'")
    assert kept.index.tolist() == [5, 6, 7]


# --- nothing in any query parameter runs -----------------------------------------------------


def _payloads(marker: Path) -> list[str]:
    return [
        f"@pd.io.common.os.system('touch {marker}') == 0",
        f"__import__('os').system('touch {marker}') == 0",
        f"@os.system('touch {marker}')",
        f"anatomy.__class__.__init__.__globals__['os'].system('touch {marker}') == 0",
        f"(lambda: __import__('os').system('touch {marker}'))() == 0",
        f"open('{marker}', 'w') == 1",
        f"`x` == 1 or @pd.io.common.os.system('touch {marker}') == 0",
    ]


def _parameter_trees(query: str) -> dict[str, dict]:
    return {
        "unlearning.recon.request.query": {"unlearning": {"recon": {"request": {"query": query}}}},
        "unlearning.segmentation.request.query": {
            "unlearning": {"segmentation": {"request": {"query": query}}}
        },
        "recon.forget.query": {"recon": {"forget": {"column": None, "values": [], "query": query}}},
        "recon.splits.include": {"recon": {"splits": {"include": query}}},
        "segmentation.split.forget.query": {
            "segmentation": {"split": {"forget": {"by": "query", "query": query}}}
        },
    }


@pytest.mark.parametrize("index", range(7))
def test_payloads_never_run_in_any_query_parameter(tmp_path: Path, index: int) -> None:
    marker = tmp_path / "pwned"
    query = _payloads(marker)[index]
    for name, tree in _parameter_trees(query).items():
        with pytest.raises(ParameterError) as caught:
            validate_parameters(tree)
        assert name in str(caught.value)
        assert not marker.exists(), name
    # The domain entry points refuse them too (a caller bypassing parameter validation).
    with pytest.raises(SplitError):
        ForgetSelector(query=query)
    with pytest.raises(ForgetRequestError):
        ForgetRequest(query=query)
    with pytest.raises(SplitError):
        split_by_selector(
            METADATA, ForgetSelector(column="anatomy", values=("knee",)),
            SplitCounts(retain_val=1, retain_test=1, forget_test=1), seed=0,
            id_column="volume_id", include=query,
        )
    with pytest.raises(QueryError):
        filter_frame(METADATA, query)
    assert not marker.exists()


def test_pandas_query_would_have_run_the_payload(tmp_path: Path) -> None:
    """The null case: the payload is live under DataFrame.query (what main used)."""
    marker = tmp_path / "pwned"
    with contextlib.suppress(Exception):  # pandas fails only after running the command
        METADATA.query(f"@pd.io.common.os.system('touch {marker}') == 0")
    assert marker.exists()


def test_valid_queries_pass_parameter_validation_and_splitting() -> None:
    validate_parameters(
        {
            "recon": {"splits": {"include": "acquisition in ['AXT2','CORPD_FBK','CORPDFS_FBK']"}},
            "unlearning": {"recon": {"request": {"query": "num_slices > 30"}}},
            "segmentation": {"split": {"forget": {"by": "query", "query": "shape_z > 40"}}},
        }
    )
    table = split_by_selector(
        METADATA, ForgetSelector(query="anatomy == 'knee'"),
        SplitCounts(retain_val=1, retain_test=1, forget_test=1), seed=0,
        id_column="volume_id", include="acquisition != 'AXFLAIR'",
    )
    assert table.set_index("volume_id").loc["v3", "role"] == "unused"
    resolved = resolve_request(
        ForgetRequest(query="num_slices > 30 and anatomy == 'knee'"), METADATA,
        METADATA["volume_id"].tolist(), id_column="volume_id",
    )
    assert resolved.forget_ids == ["v5"]
