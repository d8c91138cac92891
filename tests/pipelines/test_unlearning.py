"""The ``unlearning`` pipeline: the grid's wiring, and one tiny end-to-end run per task."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from med_unlearning.data.splits import FORGET_TRAIN, RETAIN_TRAIN
from med_unlearning.io.checkpoint import load_checkpoint
from med_unlearning.io.fastmri import write_fastmri_volume
from med_unlearning.io.nifti import write_nifti
from med_unlearning.pipelines.unlearning import create_pipeline
from med_unlearning.pipelines.unlearning.nodes import make_unlearning_node
from med_unlearning.pipelines.unlearning.pipeline import TASK_INPUTS, run_pipeline
from med_unlearning.unlearning.grid import RETAIN_SWEEP, UnlearningRunSpec, study_runs
from med_unlearning.unlearning.registry import available_strategies


def test_one_named_node_per_run_with_its_three_outputs() -> None:
    pipeline = create_pipeline()
    expected = {spec.namespace for task in ("recon", "segmentation") for spec in study_runs(task)}
    assert {node.name for node in pipeline.nodes} == {
        f"{namespace}.unlearn" for namespace in expected
    }
    outputs = set(pipeline.all_outputs())
    for namespace in expected:
        assert {
            f"{namespace}.checkpoint",
            f"{namespace}.history",
            f"{namespace}.erasure_request",
        } <= outputs


def test_every_registered_strategy_runs_on_every_task_it_applies_to() -> None:
    pipeline = create_pipeline()
    for task in ("recon", "segmentation"):
        for strategy in available_strategies(task):
            assert pipeline.only_nodes_with_namespaces([f"unlearning.{task}.{strategy}"]).nodes


def test_a_namespace_selects_exactly_one_run() -> None:
    selected = create_pipeline().only_nodes_with_namespaces(["unlearning.recon.nl_ft"])
    assert [node.name for node in selected.nodes] == ["unlearning.recon.nl_ft.unlearn"]


def test_runs_read_only_persisted_inputs() -> None:
    pipeline = create_pipeline()
    combined = {
        f"unlearning.{t}.{run}.checkpoint"
        for t in ("recon", "segmentation")
        for spec in study_runs(t)
        for run in spec.combines
    }
    free = set(pipeline.inputs())
    for task, (raw, metadata, splits, section) in TASK_INPUTS.items():
        assert {
            raw,
            metadata,
            splits,
            section,
            f"{task}.original.checkpoint",
            f"{task}.oracle.checkpoint",
        } <= free
    free = {name for name in free if not name.startswith("params:unlearning.")}
    assert free - combined <= {name for inputs in TASK_INPUTS.values() for name in inputs} | {
        "recon.original.checkpoint",
        "recon.oracle.checkpoint",
        "segmentation.original.checkpoint",
        "segmentation.oracle.checkpoint",
        "params:runtime",
        "params:tuning.use_selected",
        "tuning.selected",  # persisted by the tuning pipeline ({} until a tuning run)
        "tuning.record",  # the recorded tuning run in docs/tuning/
    }


def test_combining_runs_take_the_checkpoints_of_the_runs_they_combine() -> None:
    spec = UnlearningRunSpec("recon", "ft", combines=("nl", "ga_l1"))
    (node,) = run_pipeline(spec).nodes
    assert [name for name in node.inputs if name.startswith("unlearning.")] == [
        "unlearning.recon.nl.checkpoint",
        "unlearning.recon.ga_l1.checkpoint",
    ]
    assert make_unlearning_node(spec).__name__ == "unlearn_recon_ft"


def test_sweep_runs_are_named_by_variant() -> None:
    names = {node.name for node in create_pipeline().nodes}
    for variant in RETAIN_SWEEP.variants:
        assert f"unlearning.recon.nl_ft_{variant}.unlearn" in names


# ------------------------------------------------------------------------------------------
# End to end under conf/test
# ------------------------------------------------------------------------------------------

#: Brain/knee fastMRI sample volumes and MRBrainS-like subjects, small enough for seconds.
SUBJECTS = ("1", "4", "5", "7", "14", "070")


def _write_fastmri(raw: Path) -> None:
    from med_unlearning.data.sample_fastmri import lazy_fastmri_sample
    from med_unlearning.params.sample_data import FastMRISampleParams

    params = FastMRISampleParams(
        image_size=(32, 32),
        num_coils=2,
        brain={"num_volumes": 7, "num_slices": 2},
        knee={"num_volumes": 6, "num_slices": 2},  # conf/test: 2 test, 2 val, 2 train
    )
    for partition, load in lazy_fastmri_sample(params, seed=0).items():
        write_fastmri_volume(raw / f"{partition}.h5", load())


def _write_mrbrains(raw: Path, shape: tuple[int, int, int] = (24, 24, 12)) -> None:
    rng = np.random.default_rng(0)
    affine = np.diag([0.958, 0.958, 3.0, 1.0])
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    for index, subject in enumerate(SUBJECTS):
        radius = np.sqrt(grid[0] ** 2 + grid[1] ** 2 + (1.2 * grid[2]) ** 2) * (1 + 0.05 * index)
        label = np.zeros(shape, np.uint8)
        for value, limit in ((5, 0.9), (1, 0.75), (3, 0.55), (6, 0.3)):
            label[radius < limit] = value
        image = (30.0 * label + rng.normal(0, 5, shape)).astype(np.float32) * (label > 0)
        for name in ("pre/T1", "pre/reg_IR", "pre/FLAIR"):
            write_nifti(raw / subject / f"{name}.nii.gz", nib.Nifti1Image(image, affine))
        write_nifti(raw / subject / "segm.nii.gz", nib.Nifti1Image(label, affine))


#: Per task: the training pipeline's module, raw writer, runs to unlearn, and fast overrides.
E2E = {
    "recon": (
        _write_fastmri,
        "fastmri",
        ("nl_ft", "ga_l1"),
        {"recon": {"training": {"epochs": 1}}},
    ),
    "segmentation": (
        _write_mrbrains,
        "mrbrains18",
        ("noisy_label", "max_loss"),
        # The phantoms carry no scanner description: forget subject "070" by id.
        {"segmentation": {"training": {"epochs": 1}, "split": {"forget": {"ids": ["070"]}}}},
    ),
}


@pytest.mark.e2e
@pytest.mark.parametrize("task", ["recon", "segmentation"])
def test_tiny_unlearning_run_per_task(kedro_session, tmp_path: Path, task: str) -> None:
    import importlib

    writer, raw_folder, runs, overrides = E2E[task]
    writer(tmp_path / "01_raw" / raw_folder)
    training = importlib.import_module(f"med_unlearning.pipelines.{task}").create_pipeline()
    unlearning = create_pipeline().only_nodes_with_namespaces(
        [f"unlearning.{task}.{run}" for run in runs]
    )
    with kedro_session(env="test", **overrides) as session:
        # Selected by node names: `pipeline_names=[...]` needs the project's registry to accept
        # Kedro's selective pipeline loading (reported to the lead).
        session.run(node_names=[node.name for node in training.nodes])
    original_file = next(
        p
        for p in (tmp_path / "06_models" / task / "original.safetensors").rglob("*.safetensors")
        if p.is_file()
    )
    original_bytes = original_file.read_bytes()
    with kedro_session(env="test", **overrides) as session:
        session.run(node_names=[node.name for node in unlearning.nodes])
        catalog = session.load_context().catalog
        splits = catalog.load(f"{task}.splits")
        original = catalog.load(f"{task}.original.checkpoint")
        oracle = catalog.load(f"{task}.oracle.checkpoint")
        results = {run: catalog.load(f"unlearning.{task}.{run}.checkpoint") for run in runs}
        histories = {run: catalog.load(f"unlearning.{task}.{run}.history") for run in runs}

    assert original_file.read_bytes() == original_bytes  # the original is never modified
    id_column = "volume_id" if task == "recon" else "subject_id"
    forget = sorted(splits.loc[splits["role"] == FORGET_TRAIN, id_column].astype(str))
    retain = set(splits.loc[splits["role"] == RETAIN_TRAIN, id_column].astype(str))
    for run, checkpoint in results.items():
        meta = checkpoint.metadata
        assert meta.parent_hash == original.content_hash != checkpoint.content_hash
        assert meta.forget_ids == forget and set(meta.data_manifest) <= retain
        assert meta.strategy == run and meta.wall_time_s > 0 and meta.epochs >= 1
        # versioned like the checkpoint: <run>.json/<version>/<run>.json
        (record_path,) = (tmp_path / "08_reporting" / "erasure_requests" / task).glob(
            f"{run}.json/*/{run}.json"
        )
        record = json.loads(record_path.read_text())
        assert record["parent"]["hash"] == original.content_hash
        assert record["unlearned"]["hash"] == checkpoint.content_hash
        assert record["reference"]["hash"] == oracle.content_hash
        assert record["cost"]["fraction_of_retraining"] > 0
        assert record["forget_ids"] == forget
        assert histories[run]["train_loss"].notna().all()
        files = list(
            (tmp_path / "06_models" / "unlearning" / task / f"{run}.safetensors").rglob(
                "*.safetensors"
            )
        )
        assert (
            load_checkpoint(next(p for p in files if p.is_file())).content_hash
            == checkpoint.content_hash
        )


def test_recon_task_comes_from_the_original_checkpoint() -> None:
    import torch

    from med_unlearning.io.checkpoint import CheckpointMetadata, ModelCheckpoint
    from med_unlearning.params.recon import ReconParams
    from med_unlearning.tasks.builders import recon_task_for

    original = ModelCheckpoint(
        {"w": torch.zeros(1)},
        CheckpointMetadata(
            task="recon",
            architecture="unet2d",
            architecture_params={"chans": 4},
            data_manifest=["a"],
            extra={
                "loss": {"l1_weight": 0.5, "win_size": 5, "k1": 0.01, "k2": 0.03},
                "encoder_cascades": 2,
            },
        ),
    )
    task = recon_task_for(original, ReconParams())
    assert (task.architecture, task.architecture_params) == ("unet2d", {"chans": 4})
    assert task.loss_settings.l1_weight == 0.5 and task.encoder_cascades == 2


def test_segmentation_task_takes_the_checkpoint_network_but_checks_labels() -> None:
    import torch

    from med_unlearning.io.checkpoint import CheckpointMetadata, ModelCheckpoint
    from med_unlearning.params.runtime import RuntimeParams
    from med_unlearning.params.segmentation import SegmentationParams
    from med_unlearning.tasks.builders import segmentation_task_for

    params = SegmentationParams()
    from_params = segmentation_task_for.__globals__["SegmentationTask"].from_params(params)

    def checkpoint(**extra: object) -> ModelCheckpoint:
        arch = {**from_params.architecture_params, "base_width": 4}
        meta = CheckpointMetadata(
            task="segmentation",
            architecture=from_params.architecture,
            architecture_params=arch,
            data_manifest=["1"],
            extra=dict(extra),
        )
        return ModelCheckpoint({"w": torch.zeros(1)}, meta)

    task = segmentation_task_for(checkpoint(), params, RuntimeParams(device="cpu"))
    assert task.architecture_params["base_width"] == 4
    with pytest.raises(ValueError, match="trained with .*tissues_3"):
        segmentation_task_for(checkpoint(label_mapping="tissues_3"), params, RuntimeParams())


def test_each_run_reads_its_own_strategy_block_not_the_whole_unlearning_section() -> None:
    """kedro-viz shows a run's parameters as their own inputs: the strategy's block, the
    task-level settings and, for sweep runs only, the sweep's settings."""
    pipeline = create_pipeline()
    readers: dict[str, set[str]] = {}
    for node in pipeline.nodes:
        assert "params:unlearning" not in node.inputs
        assert not {f"params:unlearning.{task}" for task in TASK_INPUTS} & set(node.inputs)
        for name in node.inputs:
            readers.setdefault(name, set()).add(node.name)
    for task in TASK_INPUTS:
        for spec in study_runs(task):
            (node,) = pipeline.only_nodes_with_namespaces([spec.namespace]).nodes
            own = f"params:unlearning.{task}.strategies.{spec.strategy}"
            assert own in node.inputs
            keys = ("retain_fractions", "horizons", "seeds")
            sweeps = {f"params:unlearning.{task}.{key}" for key in keys}
            expected = {f"params:unlearning.{task}.{spec.sweep.name}s"} if spec.sweep else set()
            assert sweeps & set(node.inputs) == expected
    # a strategy's block reaches exactly its own runs (main run, sweep variants, seed repeats)
    nl_ft = readers["params:unlearning.recon.strategies.nl_ft"]
    assert nl_ft == {
        f"{spec.namespace}.unlearn" for spec in study_runs("recon") if spec.strategy == "nl_ft"
    }
