"""The ``segmentation`` pipeline: splits, manifests, parameters, wiring, a tiny end-to-end run."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
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
    SplitError,
)
from med_unlearning.params import ParameterError, validate_section
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.segmentation import SegmentationParams
from med_unlearning.pipelines.segmentation.nodes import make_training_manifests, split_subjects
from med_unlearning.pipelines.segmentation.pipeline import (
    MEDICALNET_WEIGHTS,
    MODELS,
    create_pipeline,
)
from med_unlearning.tasks.segmentation import SegmentationTask

METADATA = pd.DataFrame(
    {
        "subject_id": ["070", "1", "14", "148", "4", "5", "7", "9"],
        "has_segmentation": [True] * 7 + [False],
        "site": ["A", "A", "B", "B", "A", "B", "A", "A"],
        "shape_z": [48, 48, 48, 48, 48, 40, 48, 48],
    }
)


def _params(**split) -> SegmentationParams:
    return SegmentationParams.model_validate({"split": split})


def test_default_split_forgets_subject_070_and_trains_on_all_labelled_subjects() -> None:
    splits = split_subjects(METADATA, _params())
    roles = dict(zip(splits["subject_id"], splits["role"], strict=True))
    assert roles == {
        "070": FORGET_TRAIN, "1": RETAIN_TRAIN, "14": RETAIN_TRAIN, "148": RETAIN_TRAIN,
        "4": RETAIN_TRAIN, "5": RETAIN_TRAIN, "7": RETAIN_TRAIN, "9": UNUSED,
    }
    original, oracle, reference = make_training_manifests(splits)
    assert reference["model"] == "reference"
    assert reference["subject_ids"] == oracle["subject_ids"]  # the oracle's subjects
    assert original == {
        "model": "original", "subject_ids": ["070", "1", "14", "148", "4", "5", "7"],
        "forget_ids": ["070"],
    }
    assert oracle["model"] == "oracle" and "070" not in oracle["subject_ids"]
    assert len(oracle["subject_ids"]) == 6


def test_forget_by_column_or_query_and_optional_test_subjects() -> None:
    forget = {"by": "column", "column": "site", "values": ["B"]}
    by_site = split_subjects(METADATA, _params(forget=forget, test_subject_ids=["1", "14"]))
    by_site = by_site.set_index("subject_id")["role"]
    assert by_site["148"] == by_site["5"] == FORGET_TRAIN
    assert by_site["14"] == FORGET_TEST and by_site["1"] == RETAIN_TEST
    assert by_site["070"] == RETAIN_TRAIN
    by_query = split_subjects(METADATA, _params(forget={"by": "query", "query": "shape_z < 48"}))
    assert by_query.loc[by_query["role"] == FORGET_TRAIN, "subject_id"].tolist() == ["5"]


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ({"forget": {"ids": ["071"]}}, r"\['071'\].*valid subject ids: \['070', '1', '14'"),
        ({"forget": {"ids": ["9"]}}, r"\['9'\]"),  # exists but has no segm
        ({"test_subject_ids": ["2", "1"]}, r"test_subject_ids.*\['2'\].*valid subject ids"),
        ({"val_subject_ids": ["1", "3"]}, r"val_subject_ids.*\['3'\].*valid subject ids"),
        ({"forget": {"by": "column", "column": "site", "values": ["C"]}}, "no training subject"),
        ({"forget": {"by": "query", "query": "has_segmentation"}}, "every training subject"),
        ({"forget": {"by": "column", "column": "scanner", "values": ["x"]}}, "scanner"),
    ],
)
def test_bad_forget_requests_are_clear_errors(split: dict, message: str) -> None:
    with pytest.raises(SplitError, match=message):
        split_subjects(METADATA, _params(**split))


def test_validation_subjects_are_whole_subjects_held_out_of_every_model() -> None:
    splits = split_subjects(METADATA, _params(test_subject_ids=["1"], val_subject_ids=["14", "4"]))
    roles = splits.set_index("subject_id")["role"]
    assert roles.loc[["14", "4"]].tolist() == [RETAIN_VAL, RETAIN_VAL]
    assert roles["1"] == RETAIN_TEST
    for manifest in make_training_manifests(splits):
        assert not {"1", "14", "4"} & set(manifest["subject_ids"]), manifest["model"]
    forget_val = split_subjects(
        METADATA,
        _params(forget={"by": "column", "column": "site", "values": ["B"]}, val_subject_ids=["5"]),
    ).set_index("subject_id")["role"]
    assert forget_val["5"] == FORGET_VAL and forget_val["148"] == FORGET_TRAIN


def test_held_out_ids_absent_from_the_data_are_dropped_with_a_warning(caplog) -> None:
    """Real MRBrainS18 (7 subjects) with the sample's extra held-out ids: no error."""
    with caplog.at_level("WARNING"):
        splits = split_subjects(
            METADATA, _params(test_subject_ids=["2", "3"], val_subject_ids=["10"])
        )
    roles = splits.set_index("subject_id")["role"]
    assert set(roles) == {RETAIN_TRAIN, FORGET_TRAIN, UNUSED}
    messages = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any(
        "segmentation.split.test_subject_ids" in message and "'2', '3'" in message
        and "'148'" in message for message in messages
    ), messages
    assert any("segmentation.split.val_subject_ids" in message for message in messages)


def test_test_and_validation_subjects_must_differ() -> None:
    with pytest.raises(ParameterError, match=r"segmentation\.split.*share subjects \['1'\]"):
        validate_section(
            "segmentation", {"split": {"test_subject_ids": ["1"], "val_subject_ids": ["1"]}}
        )


def test_parameters_are_validated_with_the_key_named() -> None:
    with pytest.raises(ParameterError, match=r"segmentation\.split\.forget"):
        validate_section("segmentation", {"split": {"forget": {"by": "column", "column": "site"}}})
    with pytest.raises(ParameterError, match=r"segmentation\.data\.modalities"):
        validate_section("segmentation", {"data": {"modalities": ["T1", "T1"]}})
    with pytest.raises(
        ParameterError, match=r"pretrained_weights moved.*medicalnet_weights.*globals\.yml"
    ):
        validate_section("segmentation", {"model": {"pretrained_weights": "/x.pth"}})
    # a leftover `null` is harmless and dropped
    typed = validate_section("segmentation", {"model": {"pretrained_weights": None}})
    assert "pretrained_weights" not in typed.model.model_dump()
    with pytest.raises(ParameterError, match=r"segmentation\.training\.patch_sise"):
        validate_section("segmentation", {"training": {"patch_sise": [8, 8, 8]}})


def test_conf_files_validate(project_path: Path) -> None:
    import yaml

    for env in ("base", "test", "gpu"):
        path = project_path / "conf" / env / "parameters_segmentation.yml"
        raw = yaml.safe_load(path.read_text())
        validate_section("segmentation", raw["segmentation"])


def test_one_training_pipeline_per_model_under_namespaces() -> None:
    pipeline = create_pipeline()
    names = {node.name for node in pipeline.nodes}
    shared = {
        "build_mrbrains_metadata", "segmentation.split_subjects", "segmentation.load_subjects"
    }
    assert shared <= names
    for model in MODELS:
        assert {f"segmentation.{model}.train", f"segmentation.{model}.predict"} <= names
        for suffix in ("checkpoint", "history", "predictions", "scores"):
            assert f"segmentation.{model}.{suffix}" in pipeline.all_outputs()
    assert set(MODELS) == {"original", "oracle", "reference"}
    assert pipeline.inputs() == {
        "mrbrains_raw", "mrbrains_user_metadata", "params:segmentation", "params:runtime",
        "segmentation.medicalnet_weights",
    }


def test_every_training_node_reads_the_medicalnet_weights_dataset() -> None:
    """The weights file is a catalog input of each training node (visible in kedro-viz),
    not a path read inside the node; no other node reads it."""
    nodes = {node.name: node for node in create_pipeline().nodes}
    readers = {name for name, node in nodes.items() if MEDICALNET_WEIGHTS in node.inputs}
    assert readers == {f"segmentation.{model}.train" for model in MODELS}
    for model in MODELS:  # passed as the node's 4th argument, ``medicalnet_weights``
        assert nodes[f"segmentation.{model}.train"].inputs[3] == MEDICALNET_WEIGHTS


def _write_phantoms(folder: Path, subject_ids: list[str]) -> None:
    """Tiny MRBrainS18-layout subjects for when the sample generator is not available."""
    shape, affine = (32, 32, 8), np.diag([0.958, 0.958, 3.0, 1.0])
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    for index, subject in enumerate(subject_ids):
        rng = np.random.default_rng(index)
        radius = np.sqrt(grid[0] ** 2 + grid[1] ** 2 + (0.4 * grid[2]) ** 2)
        radius += rng.normal(0, 0.02, shape)
        labels = np.zeros(shape, np.uint8)
        for limit, label in ((0.9, 5), (0.75, 1), (0.5, 3), (0.2, 6)):
            labels[radius < limit] = label
        image = np.array([5, 60, 0, 100, 0, 25, 10], np.float32)[labels] + rng.normal(0, 3, shape)
        (folder / subject / "pre").mkdir(parents=True)
        t1 = nib.Nifti1Image(np.abs(image).astype(np.float32), affine)
        nib.save(t1, folder / subject / "pre" / "T1.nii.gz")
        nib.save(nib.Nifti1Image(labels, affine), folder / subject / "segm.nii.gz")


@pytest.mark.e2e
def test_tiny_run_trains_both_models_and_writes_predictions(kedro_session, tmp_path: Path) -> None:
    from med_unlearning.pipelines.sample_data import create_pipeline as sample_pipeline

    node_names = [node.name for node in create_pipeline().nodes]
    generators = [n.name for n in sample_pipeline().nodes if "mrbrains_raw" in n.outputs]
    if generators:
        node_names += generators
    else:
        _write_phantoms(tmp_path / "01_raw" / "mrbrains18", ["1", "4", "070", "148"])
    with kedro_session(env="test") as session:
        # Selected by node names: `pipeline_names=["segmentation"]` needs the project's
        # registry to accept Kedro's selective pipeline loading (reported to the lead).
        session.run(node_names=node_names)
        context = session.load_context()
        catalog = context.catalog
        params = SegmentationParams.model_validate(context.params["segmentation"])
        raw = catalog.load("mrbrains_raw")
        splits = catalog.load("segmentation.splits")
        checkpoints = {model: catalog.load(f"segmentation.{model}.checkpoint") for model in MODELS}
        histories = {model: catalog.load(f"segmentation.{model}.history") for model in MODELS}
        scores = {model: catalog.load(f"segmentation.{model}.scores") for model in MODELS}
        predictions = catalog.load("segmentation.original.predictions")

    subjects = sorted(splits["subject_id"])
    training = sorted(splits.loc[splits["role"].isin([RETAIN_TRAIN, FORGET_TRAIN]), "subject_id"])
    forget = sorted(splits.loc[splits["role"] == FORGET_TRAIN, "subject_id"])
    assert "070" in forget  # conf/test forgets the second scanner (070 and 148 when trained)
    original, oracle = checkpoints["original"].metadata, checkpoints["oracle"].metadata
    reference = checkpoints["reference"].metadata
    assert original.data_manifest == training
    kept = [s for s in training if s not in forget]
    assert oracle.data_manifest == reference.data_manifest == kept
    assert reference.seed == oracle.seed + params.training.reference_seed_offset
    assert checkpoints["reference"].content_hash != checkpoints["oracle"].content_hash
    assert oracle.extra["excluded_forget_ids"] == forget
    assert original.extra["excluded_forget_ids"] == []
    assert original.task == "segmentation" and original.architecture == params.model.architecture
    assert original.epochs == params.training.epochs and original.wall_time_s > 0
    for history in histories.values():
        assert list(history["epoch"]) == list(range(1, params.training.epochs + 1))
        assert history["train_loss"].notna().all()
        validations = params.training.epochs // params.training.validation_interval
        assert history["dice_retain_train"].notna().sum() == validations

    # predictions: one NIfTI per subject, on the subject's own grid
    assert sorted(predictions) == subjects
    for subject in subjects:
        written = tmp_path / "07_model_output" / "segmentation" / "original" / f"{subject}.nii.gz"
        assert written.is_file()
        image, prediction = raw[f"{subject}/segm"](), predictions[subject]()
        np.testing.assert_allclose(prediction.affine, image.affine, atol=1e-5)
        assert prediction.shape == image.shape

    # Dice on the training subjects rises well above an untrained model's (chance)
    task = SegmentationTask.from_params(params, RuntimeParams(device="cpu"))
    untrained = task.evaluate(task.build_model(), task.load_subjects(raw, subjects))
    table = scores["original"].set_index("subject_id").loc[training]
    assert table["trained_on"].all() and set(table["role"]) == {RETAIN_TRAIN, FORGET_TRAIN}
    assert table["mean_dice"].min() > 0.3
    assert table["mean_dice"].mean() > untrained["mean_dice"].mean() + 0.2
    assert not scores["oracle"].set_index("subject_id").loc["070", "trained_on"]


def test_subjects_are_preprocessed_once_and_persisted_for_every_reader(
    kedro_session, project_path: Path
) -> None:
    """One node builds ``segmentation.subjects`` (a model-input file, not memory); training,
    prediction, every segmentation unlearning run, tuning and evaluation read that dataset
    and nothing else rebuilds subjects from the raw images."""
    from kedro.framework.startup import bootstrap_project
    from kedro.io import MemoryDataset

    from med_unlearning.pipeline_registry import register_pipelines
    from med_unlearning.pipelines.segmentation.nodes import load_segmentation_subjects

    bootstrap_project(project_path)
    pipelines = register_pipelines()
    nodes = {node.name: node for p in pipelines.values() for node in p.nodes}
    builders = sorted(
        name for name, node in nodes.items() if node.func is load_segmentation_subjects
    )
    assert builders == ["segmentation.load_subjects"]
    assert nodes["segmentation.load_subjects"].outputs == ["segmentation.subjects"]
    readers = {name for name, node in nodes.items() if "segmentation.subjects" in node.inputs}
    assert {"segmentation.original.train", "segmentation.oracle.predict", "tune_segmentation",
            "unlearning.segmentation.noisy_label.unlearn",
            "evaluation.segmentation.noisy_label.score"} <= readers  # fmt: skip
    raw_readers = {name for name, node in nodes.items() if "mrbrains_raw" in node.inputs}
    assert raw_readers == {"build_mrbrains_metadata", "segmentation.load_subjects"}
    with kedro_session() as session:
        catalog = session.load_context().catalog
        dataset = catalog.get("segmentation.subjects")
    assert not isinstance(dataset, MemoryDataset)
    assert "05_model_input" in str(dataset._describe()["filepath"])
    assert dataset.metadata["kedro-viz"]["layer"] == "model_input"
