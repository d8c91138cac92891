"""The segmentation task: loss, targets, parts, optimizer, prediction, training."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from med_unlearning.data.labels import IGNORE_INDEX, get_label_mapping
from med_unlearning.data.samples import SegmentationSample
from med_unlearning.data.seg_dataset import load_subjects
from med_unlearning.io.checkpoint import CheckpointMetadata, ModelCheckpoint
from med_unlearning.io.nifti import read_nifti, write_nifti
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.segmentation import SegmentationParams
from med_unlearning.tasks.base import Task
from med_unlearning.tasks.segmentation import (
    SegmentationTask,
    SegmentationTrainingSettings,
    prediction_image,
    train_segmentation,
)
from med_unlearning.training import seed_everything

SHAPE = (24, 24, 8)
AFFINE = np.array(
    [[-0.958, 0, 0, 100.0], [0, 0.958, 0, -80.0], [0, 0, 3.0, -20.0], [0, 0, 0, 1]], dtype=float
)
TINY = {
    "model": {"base_width": 4, "head_channels": 8, "no_max_pool": True},
    "training": {"patch_size": [16, 16, 8], "batch_size": 2},
    "inference": {"sw_batch_size": 2},
}


def make_task(**overrides) -> SegmentationTask:
    raw = {**TINY, **overrides}
    return SegmentationTask.from_params(
        SegmentationParams.model_validate(raw), RuntimeParams(device="cpu", progress=False)
    )


def phantom(subject: str, seed: int) -> dict[str, nib.Nifti1Image]:
    """A head of concentric tissues (labels 5, 1, 3, 6) with an ignored label-10 spot."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij"))
    radius = np.sqrt(grid[0] ** 2 + grid[1] ** 2 + (0.4 * grid[2]) ** 2)
    radius += rng.normal(0, 0.02, SHAPE)
    labels = np.zeros(SHAPE, np.uint8)
    for limit, label in ((0.9, 5), (0.75, 1), (0.55, 3), (0.2, 6)):
        labels[radius < limit] = label
    labels[(labels == 3) & (grid[0] > 0.3) & (grid[1] > 0.2)] = 10
    contrast = np.array([0, 60, 0, 100, 0, 25, 10, 0, 0, 0, 100], np.float32)
    image = contrast[labels] * rng.uniform(0.9, 1.1) + rng.normal(0, 3, SHAPE) * (radius < 1.0)
    image += 15.0 * ((radius >= 0.9) & (radius < 1.0))  # skull: non-zero background
    return {
        f"{subject}/pre/T1": nib.Nifti1Image(image.astype(np.float32), AFFINE),
        f"{subject}/segm": nib.Nifti1Image(labels, AFFINE),
    }


@pytest.fixture(scope="module")
def subjects() -> dict:
    partitions = {**phantom("1", 1), **phantom("4", 4), **phantom("070", 70)}
    return load_subjects(partitions, ["1", "4", "070"], ["T1"], get_label_mapping("evaluation_8"))


def _batch(seed: int = 0, classes: int = 9) -> SegmentationSample:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (2, 8, 8, 4), generator=generator)
    labels[0, :2] = IGNORE_INDEX
    image = torch.randn(2, 1, 8, 8, 4, generator=generator)
    return SegmentationSample(image=image, label=labels, ids=("a", "b"))


def test_from_params_derives_channels_classes_and_medicalnet_shortcut() -> None:
    task = make_task(data={"modalities": ["T1", "FLAIR"], "label_mapping": "tissues_3"})
    assert isinstance(task, Task)
    assert task.name == "segmentation" and task.architecture == "med3d_resnet10"
    assert task.architecture_params == {
        "in_channels": 2, "num_classes": 4, "shortcut_type": "B", "base_width": 4,
        "head_channels": 8, "no_max_pool": True,
    }
    assert make_task(model={**TINY["model"], "architecture": "med3d_resnet18"}).architecture_params[
        "shortcut_type"
    ] == "A"
    assert task.inference.roi_size == (16, 16, 8)  # defaults to the patch size
    assert "tissues_3" in repr(task)


def test_cross_entropy_ignores_ignored_voxels_and_reduces_per_item() -> None:
    task = make_task()
    batch = _batch()
    logits = torch.randn(2, 9, 8, 8, 4)
    loss = task.criterion(logits, task.target(batch), batch)
    per_item = task.criterion(logits, task.target(batch), batch, reduction="none")
    assert per_item.shape == (2,)
    expected = [
        F.cross_entropy(logits[i : i + 1], batch.label[i : i + 1], ignore_index=IGNORE_INDEX)
        for i in range(2)
    ]
    torch.testing.assert_close(per_item, torch.stack(expected))
    torch.testing.assert_close(loss, per_item.mean())
    changed = logits.clone()
    changed[0, :, :2] = 100.0  # only ignored voxels change
    torch.testing.assert_close(task.criterion(changed, task.target(batch), batch), loss)


def test_soft_targets_match_hard_ones_when_one_hot_and_dice_ce_adds_a_term() -> None:
    task = make_task()
    batch = _batch(1)
    logits = torch.randn(2, 9, 8, 8, 4)
    hard = task.criterion(logits, task.target(batch), batch)
    one_hot = F.one_hot(batch.label.clamp(max=8), 9).movedim(-1, 1).float()
    torch.testing.assert_close(task.criterion(logits, one_hot, batch), hard)
    dice_ce = make_task(training={**TINY["training"], "loss": "dice_ce"})
    assert dice_ce.criterion(logits, task.target(batch), batch) > hard
    with pytest.raises(ValueError, match="target shape"):
        task.criterion(logits, torch.zeros(2, 8, 8, 5, dtype=torch.long), batch)


def test_noisy_target_relabels_a_fraction_and_keeps_ignored_voxels() -> None:
    task = make_task()
    batch = _batch(2)
    labels = task.target(batch)
    assert torch.equal(task.noisy_target(batch, 0.0), labels)
    first = task.noisy_target(batch, 1.0, torch.Generator().manual_seed(3))
    again = task.noisy_target(batch, 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    ignored = labels == IGNORE_INDEX
    assert torch.equal(first[ignored], labels[ignored])
    changed = (first != labels)[~ignored].float().mean()
    assert 0.8 < changed < 0.95  # 8 of 9 random labels differ
    half = (task.noisy_target(batch, 0.5) != labels)[~ignored].float().mean()
    assert 0.3 < half < 0.6
    with pytest.raises(ValueError, match="fraction"):
        task.noisy_target(batch, 1.5)


def test_encode_decode_equals_forward_and_parts_cover_the_network() -> None:
    task = make_task()
    torch.manual_seed(0)
    model = task.build_model().eval()
    batch = _batch()
    features = task.encode(model, batch)
    assert len(features) == 1 and features[0].shape[1] == model.feature_channels
    torch.testing.assert_close(task.decode(model, features, batch), task.forward(model, batch))
    parts = task.parts(model)
    names = {id(p) for p in [*parts.encoder_parameters(), *parts.decoder_parameters()]}
    assert names == {id(p) for p in model.parameters()}
    assert [module for module in parts.decoder] == [model.conv_seg]
    replaced = task.with_inputs(batch, torch.zeros_like(batch.image))
    assert not task.inputs(replaced).any() and replaced.label is batch.label


def test_optimizer_gives_the_head_a_larger_learning_rate() -> None:
    task = make_task()
    model = task.build_model()
    optimizer = task.optimizer(model, 1e-3, head_lr_multiplier=100, momentum=0.9, weight_decay=1e-3)
    encoder, decoder = optimizer.param_groups
    assert encoder["lr"] == pytest.approx(1e-3) and decoder["lr"] == pytest.approx(0.1)
    assert decoder["params"] == list(model.conv_seg.parameters())
    assert encoder["momentum"] == 0.9 and encoder["weight_decay"] == 1e-3


def test_prediction_covers_the_full_grid_and_keeps_the_affine(subjects: dict, tmp_path) -> None:
    task = make_task()
    model = task.build_model()
    subject = subjects["070"]
    probabilities = task.predict_probabilities(model, subject)
    assert probabilities.shape == (9, *subject.image.shape[1:])
    np.testing.assert_allclose(probabilities.sum(0), 1.0, atol=1e-5)
    labels = task.predict_labels(model, subject)
    assert labels.shape == SHAPE and labels.dtype == np.uint8
    image = prediction_image(labels, subject, "evaluation_8")
    path = tmp_path / "070.nii.gz"
    write_nifti(path, image)
    back = read_nifti(path)
    np.testing.assert_allclose(back.affine, AFFINE, atol=1e-5)
    assert back.header.get_zooms()[:3] == pytest.approx((0.958, 0.958, 3.0))
    np.testing.assert_array_equal(np.asarray(back.dataobj), labels)
    assert back.get_data_dtype() == np.uint8
    with pytest.raises(ValueError, match="grid"):
        prediction_image(labels[:-1], subject, "evaluation_8")


def test_training_raises_dice_well_above_chance(subjects: dict) -> None:
    task = make_task()
    seed_everything(0)
    model = task.build_model()
    train_ids = ["1", "4"]
    before = task.evaluate(model, {i: subjects[i] for i in train_ids})
    result = train_segmentation(
        task,
        model,
        [subjects[i] for i in train_ids],
        SegmentationTrainingSettings(
            epochs=8,
            batch_size=2,
            patch_size=(16, 16, 8),
            samples_per_subject=4,
            pos_fraction=0.8,
            learning_rate=0.02,
            head_lr_multiplier=5,
            momentum=0.9,
            weight_decay=1e-3,
            progress=False,
            validation_interval=4,
        ),
        validation_subjects={"retain_train": [subjects["1"]]},
    )
    history = result.history
    assert list(history["epoch"]) == list(range(1, 9))
    validated = history["dice_retain_train"].notna().tolist()
    assert validated == [False] * 3 + [True] + [False] * 3 + [True]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    after = task.evaluate(model, subjects, roles={"1": "retain_train", "4": "retain_train"})
    assert set(after.columns) >= {"subject_id", "role", "dice_cortical_gm", "mean_dice", "mae"}
    trained = after[after.subject_id.isin(train_ids)]
    assert trained["mean_dice"].min() > 0.4 > 0.1 > before["mean_dice"].max()
    assert after.set_index("subject_id").loc["070", "role"] == ""


def test_checkpoints_round_trip_and_must_match_the_parameters(subjects: dict) -> None:
    task = make_task()
    torch.manual_seed(1)
    model = task.build_model()
    checkpoint = ModelCheckpoint(
        state_dict=model.state_dict(),
        metadata=CheckpointMetadata(
            task="segmentation", architecture=task.architecture,
            architecture_params=task.architecture_params, data_manifest=["1"],
        ),
    )
    restored = task.load_checkpoint(checkpoint)
    subject = subjects["1"]
    np.testing.assert_array_equal(
        task.predict_probabilities(restored, subject), task.predict_probabilities(model, subject)
    )
    other = make_task(data={"label_mapping": "tissues_3"})
    with pytest.raises(ValueError, match="num_classes"):
        other.load_checkpoint(checkpoint)


def test_build_model_loads_given_medicalnet_weights() -> None:
    task = make_task()
    file_model = task.build_model()
    state = {
        f"module.{key}": torch.randn_like(value.float())
        for key, value in file_model.state_dict().items()
    }
    model = task.build_model({"state_dict": state})
    torch.testing.assert_close(model.conv1.weight, state["module.conv1.weight"])
    assert not torch.equal(task.build_model().conv1.weight, state["module.conv1.weight"])


def test_training_is_deterministic_on_cpu(subjects: dict) -> None:
    task = make_task()
    states = []
    for _ in range(2):
        seed_everything(7)
        model = task.build_model()
        train_segmentation(
            task,
            model,
            [subjects["1"]],
            SegmentationTrainingSettings(
                epochs=1,
                batch_size=2,
                patch_size=(16, 16, 8),
                samples_per_subject=4,
                pos_fraction=0.8,
                learning_rate=0.01,
                head_lr_multiplier=10,
                momentum=0.9,
                weight_decay=1e-3,
                progress=False,
                seed=7,
            ),
        )
        states.append(model.state_dict())
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key


def test_the_criterion_refuses_a_dict_batch_whose_ignored_voxels_would_count() -> None:
    """A dict has no ``.label``: taking it silently would drop the ignore-index mask."""
    task = make_task()
    batch = _batch()
    logits = torch.randn(2, 9, 8, 8, 4)
    as_dict = {"image": batch.image, "label": batch.label, "ids": list(batch.ids)}
    with pytest.raises(TypeError, match="SegmentationSample"):
        task.criterion(logits, task.target(batch), as_dict)
