"""Tests of the ``sample_data`` pipeline: wiring, conf, and an end-to-end run under conf/test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from med_unlearning.data.sample_fastmri import generate_fastmri_volume, plan_fastmri_sample
from med_unlearning.data.sample_mrbrains import (
    SUBJECT_PARTS,
    generate_mrbrains_subject,
    plan_mrbrains_sample,
)
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.sample_data import FastMRISampleParams, SampleDataParams
from med_unlearning.pipelines.sample_data import create_pipeline
from med_unlearning.pipelines.sample_data.nodes import generate_fastmri_sample, sample_seed

PROJECT = Path(__file__).resolve().parents[2]


def _conf(env: str, name: str) -> dict:
    path = PROJECT / "conf" / env / name
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def _merge(left: dict, right: dict) -> dict:
    """Soft merge, as the project's config loader does for env overrides."""
    merged = dict(left)
    for key, value in right.items():
        nested = isinstance(value, dict) and isinstance(left.get(key), dict)
        merged[key] = _merge(left[key], value) if nested else value
    return merged


def test_pipeline_has_two_named_generators_writing_the_sample_views() -> None:
    nodes = {node.name: node for node in create_pipeline().nodes}
    assert set(nodes) == {"generate_fastmri_sample", "generate_mrbrains_sample"}
    assert nodes["generate_fastmri_sample"].outputs == ["fastmri_raw"]
    assert nodes["generate_mrbrains_sample"].outputs == ["mrbrains_raw"]
    assert nodes["generate_fastmri_sample"].inputs[0] == "params:sample_data.fastmri"
    assert nodes["generate_mrbrains_sample"].inputs[0] == "params:sample_data.mrbrains"


def test_seed_defaults_to_the_runtime_seed() -> None:
    runtime = RuntimeParams(seed=9)
    assert sample_seed(None, runtime) == 9
    assert sample_seed(3, runtime) == 3
    params = FastMRISampleParams(brain={"num_volumes": 1}, knee={"num_volumes": 1})
    assert sorted(generate_fastmri_sample(params, None, runtime)) == sorted(
        plan.partition_id for plan in plan_fastmri_sample(params, 9)
    )


@pytest.mark.parametrize("env", ["base", "test", "gpu"])
def test_conf_files_validate_against_the_schema(env: str) -> None:
    base = _conf("base", "parameters_sample_data.yml")["sample_data"]
    override = _conf(env, "parameters_sample_data.yml").get("sample_data", {})
    SampleDataParams.model_validate(_merge(base, override))


@pytest.mark.parametrize("env", ["base", "gpu"])
def test_counts_fit_the_recon_splits_at_the_study_ratio(env: str) -> None:
    """Training slices brain : knee must be about 10 : 1 once recon holds out its sets
    (forget_val included), with >= 8 volumes in the forget-train and test sets."""
    sample = SampleDataParams.model_validate(
        _merge(
            _conf("base", "parameters_sample_data.yml")["sample_data"],
            _conf(env, "parameters_sample_data.yml").get("sample_data", {}),
        )
    )
    splits = _merge(
        _conf("base", "parameters_recon.yml")["recon"]["splits"],
        _conf(env, "parameters_recon.yml").get("recon", {}).get("splits", {}),
    )
    brain, knee = sample.fastmri.brain, sample.fastmri.knee
    brain_train = brain.num_volumes - splits["retain_val"] - splits["retain_test"]
    knee_train = knee.num_volumes - splits["forget_test"] - splits.get("forget_val", 0)
    assert brain_train > 0 and knee_train > 0
    ratio = (brain_train * brain.num_slices) / (knee_train * knee.num_slices)
    assert 8 <= ratio <= 12
    # sized for statistics: every held-out set and the forget-train set have several volumes
    assert min(knee_train, splits["forget_test"], splits["retain_test"]) >= 8
    assert min(splits["forget_val"], splits["retain_val"]) >= 2


def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(path.relative_to(root)): (path.stat().st_mtime_ns, path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _run_sample_pipeline(kedro_session) -> tuple[dict, dict, dict]:
    with kedro_session(env="test") as session:
        session.run(pipeline_names=["sample_data"])
        context = session.load_context()
        volumes = context.catalog.load("fastmri_raw")
        images = context.catalog.load("mrbrains_raw")
        return volumes, images, context.params


@pytest.mark.e2e
def test_run_writes_real_formats_readable_by_the_project_readers(
    kedro_session, tmp_path: Path
) -> None:
    volumes, images, params = _run_sample_pipeline(kedro_session)
    settings = SampleDataParams.model_validate(params["sample_data"])
    seed = sample_seed(settings.seed, RuntimeParams.model_validate(params["runtime"]))

    raw = tmp_path / "01_raw"
    plans = plan_fastmri_sample(settings.fastmri, seed)
    assert sorted(volumes) == sorted(plan.partition_id for plan in plans)
    assert {path.parent.name for path in (raw / "fastmri").rglob("*.h5")} == {"brain", "knee"}
    for plan in plans:
        volume = volumes[plan.partition_id]()
        expected = generate_fastmri_volume(plan, settings.fastmri)
        assert volume.source is not None and volume.source.suffix == ".h5"
        np.testing.assert_array_equal(np.asarray(volume.kspace), expected.kspace)
        np.testing.assert_array_equal(np.asarray(volume.reconstruction), expected.reconstruction)
        assert volume.attrs["acquisition"] == plan.protocol
        assert volume.attrs["max"] == pytest.approx(expected.attrs["max"])
        assert volume.attrs["patient_id"] == expected.attrs["patient_id"]

    subjects = plan_mrbrains_sample(settings.mrbrains, seed)
    expected_ids = [plan.partition_id(part) for plan in subjects for part in SUBJECT_PARTS]
    assert sorted(images) == sorted(expected_ids)
    for plan in subjects[:2]:
        expected = generate_mrbrains_subject(plan, settings.mrbrains)
        for part in SUBJECT_PARTS:
            image = images[plan.partition_id(part)]()
            assert (raw / "mrbrains18" / plan.subject_id / f"{part}.nii.gz").is_file()
            np.testing.assert_allclose(image.affine, expected[part].affine)
            np.testing.assert_array_equal(
                np.asarray(image.dataobj), np.asarray(expected[part].dataobj)
            )
            assert image.get_data_dtype() == expected[part].get_data_dtype()


@pytest.mark.e2e
def test_second_run_leaves_existing_files_untouched(kedro_session, tmp_path: Path) -> None:
    _run_sample_pipeline(kedro_session)
    before = _snapshot(tmp_path / "01_raw")
    assert any(name.endswith(".h5") for name in before)
    assert any(name.endswith(".nii.gz") for name in before)
    _run_sample_pipeline(kedro_session)
    assert _snapshot(tmp_path / "01_raw") == before


@pytest.mark.e2e
def test_a_folder_holding_other_data_is_left_alone(kedro_session, tmp_path: Path) -> None:
    foreign = tmp_path / "01_raw" / "fastmri" / "multicoil_train" / "file_brain_AXT2_200_0.h5"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"user data")
    with kedro_session(env="test") as session:
        session.run(pipeline_names=["sample_data"])
    files = [path for path in (tmp_path / "01_raw" / "fastmri").rglob("*") if path.is_file()]
    assert files == [foreign]
    assert foreign.read_bytes() == b"user data"
    assert any((tmp_path / "01_raw" / "mrbrains18").rglob("segm.nii.gz"))

