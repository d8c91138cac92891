"""Unlearning and evaluation refuse an original and an oracle from different runs (e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest

from med_unlearning.io.fastmri import write_fastmri_volume
from med_unlearning.io.lineage import LineageMismatchError, StaleCheckpointError
from med_unlearning.pipelines.evaluation import create_pipeline as evaluation_pipeline
from med_unlearning.pipelines.recon import create_pipeline as recon_pipeline
from med_unlearning.pipelines.unlearning import create_pipeline as unlearning_pipeline

FAST = {"recon": {"training": {"epochs": 1}}}


def _write_fastmri(raw: Path) -> None:
    from med_unlearning.data.sample_fastmri import lazy_fastmri_sample
    from med_unlearning.params.sample_data import FastMRISampleParams

    params = FastMRISampleParams(
        image_size=(32, 32),
        num_coils=2,
        brain={"num_volumes": 7, "num_slices": 2},
        knee={"num_volumes": 6, "num_slices": 2},
    )
    for partition, load in lazy_fastmri_sample(params, seed=0).items():
        write_fastmri_volume(raw / f"{partition}.h5", load())


def _versions(root: Path, model: str) -> list[str]:
    return sorted(p.name for p in (root / "06_models" / "recon" / f"{model}.safetensors").iterdir())


def _root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None and not isinstance(error, LineageMismatchError):
        error = error.__cause__
    return error


@pytest.mark.e2e
def test_mismatched_original_and_oracle_are_refused_and_pinning_fixes_it(
    kedro_session, tmp_path: Path
) -> None:
    _write_fastmri(tmp_path / "01_raw" / "fastmri")
    training = recon_pipeline()
    with kedro_session(env="test", **FAST) as session:
        session.run(node_names=[node.name for node in training.nodes])
    (first_oracle,) = _versions(tmp_path, "oracle")
    # Only the oracle is retrained, with another seed: the latest oracle no longer matches.
    oracle_nodes = training.only_nodes_with_namespaces(["recon.oracle"])
    with kedro_session(env="test", runtime={"seed": 1, "device": "cpu"}, **FAST) as session:
        session.run(node_names=[node.name for node in oracle_nodes.nodes])
    second_oracle = _versions(tmp_path, "oracle")[-1]
    assert second_oracle != first_oracle

    unlearn = unlearning_pipeline().only_nodes_with_namespaces(["unlearning.recon.ga_l1"])
    check = [
        node.name for node in evaluation_pipeline().nodes
        if node.name == "evaluation.recon.check_original_oracle_pair"
    ]
    assert check
    for names in ([node.name for node in unlearn.nodes], check):
        with kedro_session(env="test", **FAST) as session:
            with pytest.raises(Exception) as caught:
                session.run(node_names=names)
        error = _root_cause(caught.value)
        assert isinstance(error, LineageMismatchError), caught.value
        assert f"recon.oracle.checkpoint version {second_oracle}" in str(error)
        assert "recon.original.checkpoint version" in str(error)
        assert "training seeds differ (42 vs 1)" in str(error)  # conf/test seed 42
    # Pinning the matching oracle version (README: --load-versions) runs.
    pinned = {"recon.oracle.checkpoint": first_oracle}
    with kedro_session(env="test", **FAST) as session:
        session.run(node_names=check + [node.name for node in unlearn.nodes], load_versions=pinned)
    assert any((tmp_path / "06_models" / "unlearning" / "recon").rglob("*.safetensors"))


@pytest.mark.e2e
def test_an_unlearned_checkpoint_of_an_earlier_original_is_refused_as_stale(
    kedro_session, tmp_path: Path
) -> None:
    """`kedro run --pipelines recon` retrains the original after the unlearning ran: the
    evaluation refuses the run's checkpoint (it started from the previous original), naming
    the run and how to rerun it; after the rerun it scores."""
    _write_fastmri(tmp_path / "01_raw" / "fastmri")
    training = [node.name for node in recon_pipeline().nodes]
    run = unlearning_pipeline().only_nodes_with_namespaces(["unlearning.recon.ga_l1"])
    unlearn = [node.name for node in run.nodes]
    wanted = ("evaluation.recon.check_original_oracle_pair", "evaluation.recon.ga_l1.score")
    evaluate = [node.name for node in evaluation_pipeline().nodes if node.name in wanted]
    assert len(evaluate) == 2
    with kedro_session(env="test", **FAST) as session:
        session.run(node_names=training + unlearn)
    with kedro_session(env="test", **FAST) as session:  # the run is current: it scores
        session.run(node_names=evaluate)
    # the whole recon pipeline again, with another seed: a new original, oracle and reference
    with kedro_session(env="test", runtime={"seed": 1, "device": "cpu"}, **FAST) as session:
        session.run(node_names=training)
    with kedro_session(env="test", **FAST) as session:
        with pytest.raises(Exception) as caught:
            session.run(node_names=evaluate)
    error = _root_cause(caught.value)
    assert isinstance(error, StaleCheckpointError), caught.value
    message = str(error)
    assert "stale lineage: unlearning.recon.ga_l1.checkpoint version" in message
    assert f"recon.original.checkpoint version {_versions(tmp_path, 'original')[-1]}" in message
    assert "kedro run --pipelines unlearning --namespaces unlearning.recon.ga_l1" in message
    # rerunning the run from the current original brings it up to date
    with kedro_session(env="test", runtime={"seed": 1, "device": "cpu"}, **FAST) as session:
        session.run(node_names=unlearn)
    with kedro_session(env="test", runtime={"seed": 1, "device": "cpu"}, **FAST) as session:
        session.run(node_names=evaluate)
