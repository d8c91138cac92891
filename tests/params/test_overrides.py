"""An override that switches a forget selector's way replaces base's selector (README example)."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import yaml
from kedro.framework.cli.utils import _split_params
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from med_unlearning.params import validate_parameters
from med_unlearning.params.overrides import drop_overridden_selectors
from med_unlearning.params.unlearning import UnlearningParams

KNEE = "knee/sample_knee_CORPD_FBK_001"
BASE = {
    "unlearning": {
        "recon": {"request": {"column": "anatomy", "values": ["knee"], "description": "d"},
                  "seed": 1},
        "segmentation": {"request": {"column": "role", "values": ["forget_train"]}},
    },
    "recon": {"forget": {"column": "anatomy", "values": ["knee"]}, "splits": {"retain_val": 2}},
}


def test_switching_way_replaces_the_block_and_keeping_it_merges_softly() -> None:
    ids = {"unlearning": {"recon": {"request": {"ids": [KNEE]}}}}
    lowered = drop_overridden_selectors(BASE, ids)
    assert lowered["unlearning"]["recon"]["request"] == {}
    assert lowered["unlearning"]["recon"]["seed"] == 1
    assert lowered["unlearning"]["segmentation"]["request"]["column"] == "role"
    values = {"unlearning": {"recon": {"request": {"values": ["brain"]}}}}
    kept = drop_overridden_selectors(BASE, values)
    assert kept["unlearning"]["recon"]["request"]["column"] == "anatomy"
    forget = drop_overridden_selectors(BASE, {"recon": {"forget": {"query": "num_slices > 3"}}})
    assert forget["recon"]["forget"] == {} and forget["recon"]["splits"] == {"retain_val": 2}
    assert BASE["unlearning"]["recon"]["request"]["column"] == "anatomy"  # input untouched
    assert drop_overridden_selectors(BASE, {"runtime": {"seed": 3}}) == BASE


def _request(session: KedroSession) -> dict:
    params = session.load_context().config_loader["parameters"]
    typed = validate_parameters(params)["unlearning"]
    assert isinstance(typed, UnlearningParams)
    return params["unlearning"]["recon"]["request"], typed.recon.request.to_request()


def _session(project_path: Path, tmp_path: Path, **kwargs) -> KedroSession:
    bootstrap_project(project_path)
    runtime = {"data_root": str(tmp_path / "data"), **kwargs.pop("runtime", {})}
    return KedroSession.create(project_path=project_path, env="test", runtime_params=runtime,
                               **kwargs)


def test_readme_params_form_through_a_kedro_session(project_path: Path, tmp_path: Path) -> None:
    command = click.Command("run", params=[click.Option(["--params"])])
    option = command.params[0]
    runtime = _split_params(
        click.Context(command), option, f"unlearning.recon.request={{ids: [{KNEE}]}}"
    )
    with _session(project_path, tmp_path, runtime=runtime) as session:
        raw, request = _request(session)
    assert raw == {"ids": [KNEE]}
    assert request.kind == "ids" and request.ids == (KNEE,)
    dotted = _split_params(click.Context(command), option, f"unlearning.recon.request.ids=[{KNEE}]")
    with _session(project_path, tmp_path, runtime=dotted) as session:
        assert _request(session)[1].ids == (KNEE,)


def test_readme_env_file_form_through_a_kedro_session(project_path: Path, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(project_path / "conf" / "base", conf / "base")
    shutil.copytree(project_path / "conf" / "test", conf / "test")
    unlearning_file = conf / "test" / "parameters_unlearning.yml"
    content = yaml.safe_load(unlearning_file.read_text())
    content["unlearning"]["recon"]["request"] = {"ids": [KNEE]}  # the README's example
    unlearning_file.write_text(yaml.safe_dump(content))
    with _session(project_path, tmp_path, conf_source=str(conf)) as session:
        raw, request = _request(session)
    assert raw == {"ids": [KNEE]}
    assert request.ids == (KNEE,)
    # and a query request from an env replaces base's column the same way
    content["unlearning"]["recon"]["request"] = {"query": "num_slices > 30"}
    unlearning_file.write_text(yaml.safe_dump(content))
    with _session(project_path, tmp_path, conf_source=str(conf)) as session:
        assert _request(session)[1].kind == "query"


def test_base_request_unchanged_without_override(project_path: Path, tmp_path: Path) -> None:
    with _session(project_path, tmp_path) as session:
        raw, request = _request(session)
    assert request.kind == "column" and request.values == ("knee",)
    assert raw["description"]


def test_a_segmentation_forget_override_without_by_switches_by_to_its_way() -> None:
    base = {"segmentation": {"split": {"forget": {
        "by": "column", "column": "description", "values": ["second_scanner"], "ids": ["070"],
        "query": None,
    }}}}  # fmt: skip
    ids = drop_overridden_selectors(base, {"segmentation": {"split": {"forget": {"ids": ["1"]}}}})
    assert ids["segmentation"]["split"]["forget"]["by"] == "ids"
    query = drop_overridden_selectors(base, {"segmentation": {"split": {"forget": {"query": "x"}}}})
    assert query["segmentation"]["split"]["forget"]["by"] == "query"
    explicit = {"segmentation": {"split": {"forget": {"by": "column", "values": ["a"]}}}}
    kept = drop_overridden_selectors(base, explicit)["segmentation"]["split"]["forget"]
    assert kept["by"] == "column"
    assert base["segmentation"]["split"]["forget"]["by"] == "column"  # the lower layer is copied
