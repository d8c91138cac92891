"""Ids given as numbers (``--params "...test_subject_ids=[148]"``) are ids everywhere."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import pytest
from omegaconf import OmegaConf
from pydantic import ValidationError

from med_unlearning.data.splits import ForgetSelector, SplitError
from med_unlearning.ids import AmbiguousIdError, match_item_ids
from med_unlearning.params.recon import ReconParams
from med_unlearning.params.sample_data import SampleDataParams
from med_unlearning.params.segmentation import SegmentationParams
from med_unlearning.params.unlearning import ForgetRequestParams
from med_unlearning.pipelines.segmentation.nodes import split_subjects
from med_unlearning.unlearning.requests import ForgetRequest, ForgetRequestError, resolve_request


def cli_params(*items: str) -> dict[str, Any]:
    """``--params`` values exactly as Kedro's CLI parses them (OmegaConf dot-list, YAML)."""
    return OmegaConf.to_container(OmegaConf.from_dotlist(list(items)))


def test_cli_yaml_turns_ids_into_ints_and_octal() -> None:
    """The trap itself: YAML reads [148] as an int and an unquoted 070 as octal 56."""
    parsed = cli_params("a=[148]", "b=[070]", "c=['070']")
    assert parsed == {"a": [148], "b": [56], "c": ["070"]}


def test_every_id_parameter_accepts_ints_as_strings() -> None:
    segmentation = SegmentationParams.model_validate(
        cli_params("split.test_subject_ids=[148]", "split.forget.ids=[1, '070']")
    )
    assert segmentation.split.test_subject_ids == ["148"]
    assert segmentation.split.forget.ids == ["1", "070"]
    recon = ReconParams.model_validate({"forget": {"ids": [7]}})
    assert recon.forget.ids == ["7"]
    assert recon.forget.to_selector().ids == ("7",)
    request = ForgetRequestParams.model_validate({"ids": [148]})
    assert request.ids == ["148"] and request.to_request().ids == ("148",)
    sample = SampleDataParams.model_validate({"mrbrains": {"subject_ids": [1, "070", 148]}})
    assert sample.mrbrains.subject_ids == ["1", "070", "148"]


@pytest.mark.parametrize("bad", [True, 1.5, None, [1]])
def test_non_integer_non_string_ids_are_still_rejected_naming_the_field(bad: Any) -> None:
    with pytest.raises(ValidationError, match="test_subject_ids"):
        SegmentationParams.model_validate({"split": {"test_subject_ids": [bad]}})


def test_match_by_numeric_value_only_when_unambiguous(caplog: pytest.LogCaptureFixture) -> None:
    known = ["1", "070", "148", "file_brain_007"]
    assert match_item_ids([148, "148", 70, "1", 1], known) == ["148", "148", "070", "1", "1"]
    assert match_item_ids(["0148"], known) == ["148"]  # a digit string matches by value too
    assert match_item_ids([7, "x"], known) == ["7", "x"]  # unknown: left for the caller
    assert match_item_ids(["070"], ["070", "70"]) == ["070"]  # exact match wins
    assert match_item_ids([70], ["070", "70"]) == ["70"]
    with pytest.raises(AmbiguousIdError, match=r"'70'.*\['0070', '070'\]"):
        match_item_ids([70], ["070", "0070"], "segmentation.split.test_subject_ids")
    with caplog.at_level(logging.WARNING, logger="med_unlearning.ids"):
        assert match_item_ids([56], known, "x.ids") == ["56"]
    assert "octal" in caplog.text and "'070'" in caplog.text


def test_domain_selectors_and_requests_match_numeric_ids() -> None:
    metadata = pd.DataFrame({"subject_id": ["1", "070", "148"], "site": ["a", "b", "b"]})
    mask = ForgetSelector(ids=("70",)).select(metadata, "subject_id")
    assert mask.tolist() == [False, True, False]
    with pytest.raises(SplitError, match="several ids"):
        ForgetSelector(ids=("70",)).select(
            pd.DataFrame({"subject_id": ["070", "0070"]}), "subject_id"
        )
    resolved = resolve_request(
        ForgetRequest(ids=("70",)), metadata, ["1", "070", "148"], id_column="subject_id"
    )
    assert resolved.forget_ids == ["070"] and resolved.retain_ids == ["1", "148"]
    with pytest.raises(ForgetRequestError, match="several ids"):
        resolve_request(
            ForgetRequest(ids=("70",)),
            pd.DataFrame({"subject_id": ["070", "0070", "1"]}),
            ["070", "0070", "1"],
            id_column="subject_id",
        )


def test_split_subjects_takes_numeric_subject_ids() -> None:
    metadata = pd.DataFrame({"subject_id": ["1", "4", "070", "148"], "has_segmentation": True})
    params = SegmentationParams.model_validate(
        cli_params("split.test_subject_ids=[148]", "split.forget.ids=[70]")
    )
    splits = split_subjects(metadata, params).set_index("subject_id")["role"]
    assert splits.to_dict() == {
        "070": "forget_train", "1": "retain_train", "148": "retain_test", "4": "retain_train"
    }


@pytest.mark.e2e
def test_kedro_session_with_cli_style_numeric_ids(kedro_session) -> None:
    """``kedro run --params "segmentation.split.test_subject_ids=[148]"`` passes validation
    and the split gives subject 148 the test role (the run used to stop with
    ``Input should be a valid string (got 148)``)."""
    runtime = cli_params(
        "segmentation.split.test_subject_ids=[148]", "segmentation.split.forget.ids=[70]"
    )
    with kedro_session(env="test", **runtime) as session:
        session.run(
            node_names=[
                "generate_mrbrains_sample",
                "build_mrbrains_metadata",
                "segmentation.split_subjects",
            ]
        )
        splits = session.load_context().catalog.load("segmentation.splits")
    roles = splits.astype({"subject_id": str}).set_index("subject_id")["role"].to_dict()
    assert roles["148"] == "retain_test" and roles["070"] == "forget_train"
