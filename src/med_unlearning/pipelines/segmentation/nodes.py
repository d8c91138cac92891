"""Nodes of the ``segmentation`` pipeline: thin wrappers over the domain code.

- :func:`split_subjects` — the splits table (subject_id, role) from the metadata table and the
  forget request.
- :func:`make_training_manifests` — which subjects the original and the oracle train on.
- :func:`load_segmentation_subjects` — read and preprocess every split subject once.
- :func:`train_segmentation_model` — train one model (original or oracle), return its
  checkpoint (with lineage) and per-epoch history.
- :func:`predict_segmentation_subjects` — segment every subject with a checkpoint: NIfTI
  predictions on the input grid and a per-subject score table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import pandas as pd
import torch

from med_unlearning.data.seg_dataset import SubjectVolume
from med_unlearning.data.splits import (
    FORGET_TEST,
    FORGET_TRAIN,
    FORGET_VAL,
    RETAIN_TEST,
    RETAIN_TRAIN,
    RETAIN_VAL,
    ROLE_COLUMN,
    UNUSED,
    ForgetSelector,
    SplitError,
    ids_with_roles,
)
from med_unlearning.ids import AmbiguousIdError, match_item_ids
from med_unlearning.io.checkpoint import CheckpointMetadata, ModelCheckpoint
from med_unlearning.io.lineage import SPLITS_HASH_KEY, splits_table_hash
from med_unlearning.models.medicalnet import weights_fingerprint
from med_unlearning.params.base import typed_params
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.segmentation import SegmentationForgetParams, SegmentationParams
from med_unlearning.tasks.segmentation import (
    SegmentationTask,
    SegmentationTrainingSettings,
    prediction_image,
    train_segmentation,
)
from med_unlearning.training import ResumeSettings, resume_key, seed_everything

__all__ = [
    "ID_COLUMN",
    "forget_selector",
    "load_segmentation_subjects",
    "held_out_ids",
    "make_training_manifests",
    "predict_segmentation_subjects",
    "split_subjects",
    "train_segmentation_model",
]

logger = logging.getLogger(__name__)

ID_COLUMN = "subject_id"
#: The catalog entry of the MedicalNet weights, named in errors about them.
MEDICALNET_WEIGHTS_SOURCE = "MedicalNet weights (catalog entry segmentation.medicalnet_weights)"
#: Roles each model trains on. ``reference``: the oracle's recipe and subjects with another
#: seed (``runtime.seed + segmentation.training.reference_seed_offset``): the seed-noise floor
#: and the membership attack's calibration model; it never sees a forget subject.
TRAINING_ROLES = {
    "original": (RETAIN_TRAIN, FORGET_TRAIN),
    "oracle": (RETAIN_TRAIN,),
    "reference": (RETAIN_TRAIN,),
}



def forget_selector(params: SegmentationForgetParams) -> ForgetSelector:
    """The shared :class:`~med_unlearning.data.splits.ForgetSelector` for a forget request."""
    if params.by == "ids":
        return ForgetSelector(ids=tuple(params.ids))
    if params.by == "column":
        return ForgetSelector(column=params.column, values=tuple(params.values))
    return ForgetSelector(query=params.query)


def _matched_split_ids(split: Any, known: pd.Series) -> Any:
    """``split`` with its subject ids mapped to the metadata's (``70`` -> ``"070"``, see
    :func:`~med_unlearning.ids.match_item_ids`); unknown ids stay for the checks below."""
    try:
        forget = split.forget.model_copy(
            update={"ids": match_item_ids(split.forget.ids, known, "segmentation.split.forget.ids")}
        )
        test = match_item_ids(split.test_subject_ids, known, "segmentation.split.test_subject_ids")
        val = match_item_ids(split.val_subject_ids, known, "segmentation.split.val_subject_ids")
    except AmbiguousIdError as error:
        raise SplitError(str(error)) from None
    return split.model_copy(
        update={"forget": forget, "test_subject_ids": test, "val_subject_ids": val}
    )


def split_subjects(metadata: pd.DataFrame, params: SegmentationParams) -> pd.DataFrame:
    """Give every MRBrainS18 subject a role.

    Labelled subjects train every model (``retain_train``) or only the original
    (``forget_train``, selected by ``segmentation.split.forget``); whole subjects listed in
    ``segmentation.split.test_subject_ids`` train none (``retain_test`` / ``forget_test``),
    nor do those of ``val_subject_ids`` (``retain_val`` / ``forget_val``); subjects without
    ``segm`` are ``unused``. Held-out ids the data does not have are dropped with a warning
    when none of their key's ids exist (see
    :class:`~med_unlearning.params.segmentation.SegmentationSplitParams`).

    Returns:
        ``subject_id``, ``role``, ``has_segmentation`` — one row per subject, sorted by id.

    Raises:
        SplitError: an unknown forget subject id, a held-out key naming some existing and
            some unknown subjects (listing the valid ones), a forget subject without labels,
            or a forget set that is empty or leaves nothing to retain.
    """
    params = typed_params(SegmentationParams, params)
    if ID_COLUMN not in metadata.columns:
        raise SplitError(
            f"The MRBrainS18 metadata table has no {ID_COLUMN!r} column; columns: "
            f"{list(metadata.columns)}"
        )
    metadata = metadata.copy()
    metadata[ID_COLUMN] = metadata[ID_COLUMN].astype(str)
    if "has_segmentation" in metadata.columns:
        labelled = metadata["has_segmentation"].astype(bool)
    else:
        labelled = pd.Series(True, index=metadata.index)
    valid = sorted(metadata.loc[labelled, ID_COLUMN])
    split = _matched_split_ids(params.split, metadata[ID_COLUMN])
    held_out = {
        "segmentation.split.test_subject_ids": held_out_ids(
            "segmentation.split.test_subject_ids", split.test_subject_ids, valid
        ),
        "segmentation.split.val_subject_ids": held_out_ids(
            "segmentation.split.val_subject_ids", split.val_subject_ids, valid
        ),
    }
    if split.forget.by == "ids":
        unknown = [subject for subject in split.forget.ids if subject not in valid]
        if unknown:
            raise SplitError(
                f"segmentation.split.forget.ids: subjects {unknown} are not labelled MRBrainS18 "
                f"subjects of the data folder; valid subject ids: {valid}"
            )
    selector = forget_selector(split.forget)
    is_forget = selector.select(metadata, ID_COLUMN).to_numpy(dtype=bool)
    unlabeled_forget = sorted(metadata.loc[is_forget & ~labelled.to_numpy(), ID_COLUMN])
    if unlabeled_forget:
        raise SplitError(
            f"The forget request ({selector.describe()}) selects subjects without segm.nii.gz "
            f"{unlabeled_forget}; only labelled training subjects can be forgotten"
        )
    is_test = metadata[ID_COLUMN].isin(held_out["segmentation.split.test_subject_ids"]).to_numpy()
    is_val = metadata[ID_COLUMN].isin(held_out["segmentation.split.val_subject_ids"]).to_numpy()
    is_training = labelled.to_numpy() & ~is_test & ~is_val
    if not (is_forget & is_training).any():
        raise SplitError(
            f"The forget request ({selector.describe()}) selects no training subject; "
            f"training subjects: {sorted(metadata.loc[is_training, ID_COLUMN])}"
        )
    if not (~is_forget & is_training).any():
        raise SplitError(
            f"The forget request ({selector.describe()}) selects every training subject; "
            "the oracle would have nothing to train on"
        )
    roles = pd.Series(UNUSED, index=metadata.index)
    roles[is_training & ~is_forget] = RETAIN_TRAIN
    roles[is_training & is_forget] = FORGET_TRAIN
    roles[is_test & ~is_forget] = RETAIN_TEST
    roles[is_test & is_forget] = FORGET_TEST
    roles[is_val & ~is_forget] = RETAIN_VAL
    roles[is_val & is_forget] = FORGET_VAL
    table = pd.DataFrame(
        {ID_COLUMN: metadata[ID_COLUMN], ROLE_COLUMN: roles, "has_segmentation": labelled}
    )
    table = table.sort_values(ID_COLUMN, kind="stable").reset_index(drop=True)
    logger.info(
        "Segmentation splits (%s): %s",
        selector.describe(),
        table.groupby(ROLE_COLUMN)[ID_COLUMN].apply(list).to_dict(),
    )
    return table


def held_out_ids(key: str, ids: list[str], valid: list[str]) -> list[str]:
    """The ids of a held-out key (test/val subjects) that the data folder has.

    All-or-nothing: when *none* of ``ids`` exist (e.g. the sample data's extra subjects
    ``2``, ``3``… on the 7 real MRBrainS18 training subjects) they are dropped with a
    WARNING naming the key and the subjects found; when some exist and some do not, it is
    a typo and an error.

    Raises:
        SplitError: some but not all of ``ids`` are labelled subjects of the data.
    """
    unknown = [subject for subject in ids if subject not in valid]
    if not unknown:
        return list(ids)
    if len(unknown) < len(ids):
        raise SplitError(
            f"{key}: subjects {unknown} are not labelled MRBrainS18 subjects of the data "
            f"folder (the others of {list(ids)} are); valid subject ids: {valid}"
        )
    logger.warning(
        "%s: none of %s are labelled subjects of the data folder (found %s); holding out "
        "nothing for this key (the sample data's extra subjects are absent from real "
        "MRBrainS18: hold a real subject out with e.g. %s=[148])",
        key, list(ids), valid, key,
    )
    return []


def make_training_manifests(splits: pd.DataFrame) -> tuple[dict[str, Any], dict[str, Any]]:
    """What each model (original, oracle, reference) trains on: ``{"model", "subject_ids",
    "forget_ids"}``."""
    forget_ids = ids_with_roles(splits, [FORGET_TRAIN], ID_COLUMN)
    manifests = tuple(
        {
            "model": model,
            "subject_ids": ids_with_roles(splits, roles, ID_COLUMN),
            "forget_ids": forget_ids,
        }
        for model, roles in TRAINING_ROLES.items()
    )
    return manifests  # type: ignore[return-value]


def load_segmentation_subjects(
    partitions: Mapping[str, Callable[[], nib.Nifti1Image]],
    splits: pd.DataFrame,
    params: SegmentationParams,
) -> dict[str, SubjectVolume]:
    """Read and preprocess every labelled subject of the splits table (once for both models)."""
    params = typed_params(SegmentationParams, params)
    subject_ids = splits.loc[splits[ROLE_COLUMN] != UNUSED, ID_COLUMN].astype(str).tolist()
    return SegmentationTask.from_params(params).load_subjects(partitions, subject_ids)


def _resume_settings(
    model_name: str,
    train_ids: list[str],
    params: SegmentationParams,
    runtime: RuntimeParams,
    weights: str | None = None,
) -> ResumeSettings | None:
    """Where model ``model_name`` keeps its epoch checkpoints (``runtime.resume_dir``), keyed
    by everything that defines the run except its epoch count (so a run can be extended),
    the pre-trained ``weights`` fingerprint included."""
    if runtime.checkpoint_every == 0 and not runtime.resume:
        return None
    recipe = params.model_dump(mode="json", exclude={"training": {"epochs"}})
    key = resume_key(
        "segmentation", model_name, recipe, train_ids, runtime.seed, runtime.precision, weights
    )
    return ResumeSettings(
        path=Path(runtime.resume_dir) / "segmentation" / f"{model_name}.pt",
        every=runtime.checkpoint_every,
        resume=runtime.resume,
        key=key,
    )


def train_segmentation_model(
    subjects: Mapping[str, SubjectVolume],
    manifest: Mapping[str, Any],
    splits: pd.DataFrame,
    medicalnet_weights: Any | None,
    params: SegmentationParams,
    runtime: RuntimeParams,
) -> tuple[ModelCheckpoint, pd.DataFrame]:
    """Train one model on the manifest's subjects; return its checkpoint and history.

    ``medicalnet_weights`` (the ``segmentation.medicalnet_weights`` catalog entry: the
    loaded MedicalNet file, or ``None`` when none is configured) initialises the encoder;
    the checkpoint records a fingerprint of them (``pretrained_weights``). The history gets
    ``dice_<role>`` columns (mean Dice of the split's subjects of each role) every
    ``segmentation.training.validation_interval`` epochs (0 = never).
    """
    params, runtime = typed_params(SegmentationParams, params), typed_params(RuntimeParams, runtime)
    model_name = str(manifest["model"])
    train_ids = list(manifest["subject_ids"])
    training = params.training
    seed = runtime.seed + (training.reference_seed_offset if model_name == "reference" else 0)
    seed_everything(seed, runtime.deterministic)
    if runtime.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    task = SegmentationTask.from_params(params, runtime)
    model = task.build_model(medicalnet_weights, source=MEDICALNET_WEIGHTS_SOURCE)
    fingerprint = weights_fingerprint(medicalnet_weights)
    roles = dict(zip(splits[ID_COLUMN].astype(str), splits[ROLE_COLUMN], strict=True))
    validation = {
        role: [subjects[i] for i in ids_with_roles(splits, [role], ID_COLUMN)]
        for role in (RETAIN_TRAIN, FORGET_TRAIN, RETAIN_VAL, FORGET_VAL, RETAIN_TEST, FORGET_TEST)
        if ids_with_roles(splits, [role], ID_COLUMN)
    }
    settings = SegmentationTrainingSettings.from_params(
        params,
        runtime,
        description=f"segmentation.{model_name}",
        seed=seed,
        resume=_resume_settings(model_name, train_ids, params, runtime, fingerprint),
    )
    result = train_segmentation(
        task, model, [subjects[subject_id] for subject_id in train_ids], settings, validation
    )
    logger.info("segmentation.%s trained in %.1f s", model_name, result.wall_time_s)
    metadata = CheckpointMetadata(
        task=task.name,
        architecture=task.architecture,
        architecture_params=task.architecture_params,
        data_manifest=train_ids,
        wall_time_s=float(result.wall_time_s),
        epochs=int(result.epochs_run),
        seed=int(seed),
        extra={
            "model": model_name,
            SPLITS_HASH_KEY: splits_table_hash(splits, ID_COLUMN),
            "excluded_forget_ids": [i for i in manifest["forget_ids"] if i not in train_ids],
            "label_mapping": task.label_mapping.name,
            "class_names": list(task.class_names),
            "modalities": list(task.modalities),
            "data": params.data.model_dump(mode="json"),
            "pretrained_weights": fingerprint,
            "training": training.model_dump(mode="json"),
            "roles": {subject_id: roles[subject_id] for subject_id in train_ids},
        },
    )
    checkpoint = ModelCheckpoint(
        state_dict={key: value.detach().cpu() for key, value in model.state_dict().items()},
        metadata=metadata,
    )
    history = result.history.copy()
    history.insert(0, "model", model_name)
    return checkpoint, history


def predict_segmentation_subjects(
    checkpoint: ModelCheckpoint,
    subjects: Mapping[str, SubjectVolume],
    splits: pd.DataFrame,
    params: SegmentationParams,
    runtime: RuntimeParams,
) -> tuple[dict[str, nib.Nifti1Image], pd.DataFrame]:
    """Segment every subject with ``checkpoint``.

    Returns:
        ``{subject_id: NIfTI}`` predictions (class indices of the label mapping, uint8, on
        the subject's grid with its affine) and a score table: one row per subject with
        ``subject_id``, ``role``, ``trained_on``, ``dice_<class>``, ``mean_dice``, ``mae``.
    """
    params, runtime = typed_params(SegmentationParams, params), typed_params(RuntimeParams, runtime)
    task = SegmentationTask.from_params(params, runtime)
    model = task.load_checkpoint(checkpoint)
    roles = dict(zip(splits[ID_COLUMN].astype(str), splits[ROLE_COLUMN], strict=True))
    trained_on = set(checkpoint.metadata.data_manifest)
    predictions: dict[str, nib.Nifti1Image] = {}
    rows = []
    for subject_id, subject in subjects.items():
        probabilities = task.predict_probabilities(model, subject)
        labels = subject.uncrop(probabilities.argmax(0).astype("uint8"))
        predictions[subject_id] = prediction_image(labels, subject, task.label_mapping.name)
        if subject.label is not None:
            row = {
                ID_COLUMN: subject_id,
                ROLE_COLUMN: roles.get(subject_id, ""),
                "trained_on": subject_id in trained_on,
            }
            row.update(task.score_subject(model, subject, probabilities))
            rows.append(row)
    scores = pd.DataFrame(rows)
    model_name = checkpoint.metadata.extra.get("model", "model")
    if not scores.empty:
        summary = scores.groupby(ROLE_COLUMN)["mean_dice"].mean().round(4).to_dict()
        logger.info("segmentation.%s mean Dice by role: %s", model_name, summary)
    return predictions, scores
