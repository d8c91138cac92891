"""The ``recon`` pipeline: wiring, nodes, and one tiny end-to-end run under conf/test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from med_unlearning.data.recon_dataset import read_reconstruction_h5
from med_unlearning.data.splits import (
    FORGET_TEST,
    FORGET_TRAIN,
    FORGET_VAL,
    RETAIN_TEST,
    RETAIN_TRAIN,
    RETAIN_VAL,
)
from med_unlearning.io.fastmri import write_fastmri_volume
from med_unlearning.metrics.image_quality import psnr
from med_unlearning.params.recon import ReconParams
from med_unlearning.pipelines.recon import create_pipeline
from med_unlearning.pipelines.recon.nodes import (
    ReconstructionH5Dataset,
    reconstruct_split_volumes,
    split_recon_volumes,
    train_recon_run,
)
from med_unlearning.tasks.recon import reconstruct_volume


def test_nodes_are_named_and_runs_share_one_template() -> None:
    pipeline = create_pipeline()
    names = sorted(node.name for node in pipeline.nodes)
    assert names == [
        "build_fastmri_metadata",
        "recon.oracle.reconstruct_volumes",
        "recon.oracle.train_model",
        "recon.original.reconstruct_volumes",
        "recon.original.train_model",
        "recon.reference.reconstruct_volumes",
        "recon.reference.train_model",
        "recon.split_volumes",
    ]
    outputs = set(pipeline.all_outputs())
    for run in ("original", "oracle", "reference"):
        assert {f"recon.{run}.checkpoint", f"recon.{run}.history", f"recon.{run}.reconstructions"} <= outputs
    assert "recon.splits" in outputs
    assert set(pipeline.inputs()) == {
        "fastmri_raw", "fastmri_user_metadata", "params:recon", "params:runtime"
    }
    original = pipeline.only_nodes_with_namespaces(["recon.original"])
    oracle = pipeline.only_nodes_with_namespaces(["recon.oracle"])
    assert [node.name.split(".")[-1] for node in original.nodes] == [
        node.name.split(".")[-1] for node in oracle.nodes
    ]


def _metadata() -> pd.DataFrame:
    ids = [f"brain/b{index}" for index in range(6)] + [f"knee/k{index}" for index in range(3)]
    return pd.DataFrame({"volume_id": ids, "anatomy": [i.split("/")[0] for i in ids]})


def test_split_node_accepts_typed_or_raw_parameters() -> None:
    raw = {"splits": {"retain_val": 1, "retain_test": 1, "forget_test": 1}}
    typed = split_recon_volumes(_metadata(), ReconParams.model_validate(raw), {"seed": 3})
    from_dict = split_recon_volumes(_metadata(), raw, {"seed": 3})
    assert typed.equals(from_dict)
    assert list(typed.columns) == ["volume_id", "anatomy", "role"]
    assert set(typed.loc[typed["anatomy"] == "knee", "role"]) == {FORGET_TRAIN, FORGET_TEST}


def test_unknown_run_and_disabled_reconstructions() -> None:
    splits = split_recon_volumes(_metadata(), {"splits": {"retain_val": 1, "retain_test": 1, "forget_test": 1}}, {})
    with pytest.raises(ValueError, match="no run 'student'"):
        train_recon_run("student", {}, splits, {}, {})
    assert reconstruct_split_volumes(None, {}, splits, {}, {}) == {}


def test_forget_val_volumes_are_neither_trained_nor_tested_nor_validated_on() -> None:
    raw = {"splits": {"retain_val": 1, "retain_test": 1, "forget_test": 1, "forget_val": 1}}
    splits = split_recon_volumes(_metadata(), raw, {"seed": 3})
    roles = splits.groupby("role").size().to_dict()
    assert roles[FORGET_VAL] == 1 and roles[FORGET_TEST] == 1 and roles[FORGET_TRAIN] == 1
    for run in ReconParams.model_validate(raw).runs.values():
        assert FORGET_VAL not in run.train_roles


def test_reference_run_is_the_oracle_recipe_with_another_seed() -> None:
    runs = ReconParams().runs
    assert runs["reference"].train_roles == runs["oracle"].train_roles == ["retain_train"]
    assert runs["reference"].seed_offset == 1 and runs["oracle"].seed_offset == 0
    explicit = ReconParams.model_validate(
        {"runs": {"original": {"train_roles": ["retain_train", "forget_train"]},
                  "oracle": {"train_roles": ["retain_train"]}}}
    )
    assert explicit.runs["reference"].seed_offset == 1  # filled in when a conf omits it
    with pytest.raises(ValueError, match="reference must train on"):
        ReconParams.model_validate(
            {"runs": {"original": {"train_roles": ["retain_train", "forget_train"]},
                      "oracle": {"train_roles": ["retain_train"]},
                      "reference": {"train_roles": ["retain_train", "forget_train"],
                                    "seed_offset": 1}}}
        )


def test_reconstruction_dataset_round_trips(tmp_path: Path) -> None:
    dataset = ReconstructionH5Dataset(filepath=str(tmp_path / "v.h5"))
    assert not dataset.exists()
    data = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8)
    dataset.save(data)
    np.testing.assert_array_equal(dataset.load(), data)


def _write_sample(raw: Path) -> None:
    """Tiny brain/knee sample volumes (the sample generator's, written into the raw folder)."""
    from med_unlearning.data.sample_fastmri import lazy_fastmri_sample
    from med_unlearning.params.sample_data import FastMRISampleParams

    params = FastMRISampleParams(
        image_size=(32, 32), num_coils=2,
        brain={"num_volumes": 5, "num_slices": 4}, knee={"num_volumes": 3, "num_slices": 4},
    )
    for partition, load in lazy_fastmri_sample(params, seed=0).items():
        write_fastmri_volume(raw / f"{partition}.h5", load())


def _has_sample_pipeline() -> bool:
    from med_unlearning.pipelines.sample_data import create_pipeline as sample_pipeline

    return bool(sample_pipeline().nodes)


@pytest.mark.e2e
def test_tiny_run_trains_both_models_and_beats_zero_filled(kedro_session, tmp_path: Path) -> None:
    from med_unlearning.pipelines.sample_data import create_pipeline as sample_pipeline

    node_names = [node.name for node in create_pipeline().nodes]
    if _has_sample_pipeline():
        node_names += [node.name for node in sample_pipeline().nodes]
    else:
        _write_sample(tmp_path / "01_raw" / "fastmri")
    write = {"recon": {"reconstructions": {"write": True, "roles": ["retain_test"]}}}
    with kedro_session(env="test", **write) as session:
        # Selected by node names: `pipeline_names=["recon"]` needs the project's registry to
        # accept Kedro's selective pipeline loading (reported to the lead).
        session.run(node_names=node_names)
        catalog = session.load_context().catalog
        splits = catalog.load("recon.splits")
        volumes = catalog.load("fastmri_raw")
        checkpoints = {
            run: catalog.load(f"recon.{run}.checkpoint") for run in ("original", "oracle", "reference")
        }
        histories = {run: catalog.load(f"recon.{run}.history") for run in ("original", "oracle")}
        params = ReconParams.model_validate(session.load_context().params["recon"])

    assert set(splits["role"]) >= {RETAIN_TRAIN, FORGET_TRAIN, RETAIN_VAL, RETAIN_TEST, FORGET_TEST}
    ids = {role: sorted(splits.loc[splits["role"] == role, "volume_id"]) for role in set(splits["role"])}
    original, oracle = checkpoints["original"].metadata, checkpoints["oracle"].metadata
    assert original.data_manifest == sorted(ids[RETAIN_TRAIN] + ids[FORGET_TRAIN])
    assert oracle.data_manifest == ids[RETAIN_TRAIN]
    reference = checkpoints["reference"].metadata
    assert reference.data_manifest == ids[RETAIN_TRAIN] and reference.seed == oracle.seed + 1
    assert checkpoints["reference"].content_hash != checkpoints["oracle"].content_hash
    # validation is retain-only: no forget-domain volume, forget_val included
    assert original.extra["val_ids"] == oracle.extra["val_ids"] == ids[RETAIN_VAL]
    assert original.epochs == oracle.epochs == params.training.epochs
    assert original.task == "recon" and original.architecture == params.model.architecture
    assert original.wall_time_s > 0 and original.seed is not None
    for history in histories.values():
        assert list(history["epoch"]) == list(range(1, params.training.epochs + 1))
        assert history[["train_loss", "val_loss", "val_psnr", "val_ssim", "lr"]].notna().all().all()
    files = [p for p in (tmp_path / "06_models" / "recon").rglob("*.safetensors") if p.is_file()]
    assert sorted(p.name for p in files) == [
        "oracle.safetensors", "original.safetensors", "reference.safetensors"
    ]

    # The original model beats the zero-filled reconstruction on its training volumes.
    model_psnr, zero_filled_psnr = [], []
    for volume_id in original.data_manifest:
        result = reconstruct_volume(checkpoints["original"], volumes[volume_id], volume_id=volume_id)
        model_psnr.append(psnr(result.target, result.output, result.max_value))
        zero_filled_psnr.append(psnr(result.target, result.zero_filled, result.max_value))
    assert np.mean(model_psnr) > np.mean(zero_filled_psnr)

    # Reconstructions in fastMRI's convention, for the asked roles only.
    written = sorted((tmp_path / "07_model_output" / "recon" / "original").rglob("*.h5"))
    assert [str(p.relative_to(p.parents[1]).with_suffix("")) for p in written] == ids[RETAIN_TEST]
    stored = read_reconstruction_h5(written[0])
    expected = reconstruct_volume(checkpoints["original"], volumes[ids[RETAIN_TEST][0]], volume_id=ids[RETAIN_TEST][0])
    np.testing.assert_allclose(stored, expected.output, rtol=1e-5, atol=1e-9)
