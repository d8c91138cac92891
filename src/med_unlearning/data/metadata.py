"""Metadata tables built from the raw files themselves (headers only, no voxels).

One row per fastMRI volume (:func:`build_fastmri_metadata`) and one per MRBrainS18 subject
(:func:`build_mrbrains_metadata`), with attributes a forget request can select on (anatomy,
patient, scanner, modalities, ...). An optional user table adds columns by id
(:func:`join_user_metadata`).

The builders take Kedro-style partition mappings (partition id -> callable returning the
loaded object), so they work with ``PartitionedDataset`` and in plain Python alike.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nibabel as nib
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from med_unlearning.io.fastmri import FastMRIFormatError, FastMRIVolume
from med_unlearning.io.nifti import NiftiFormatError, check_same_grid

__all__ = [
    "BRAIN_ACQUISITIONS",
    "FASTMRI_COLUMNS",
    "KNEE_ACQUISITIONS",
    "MRBRAINS_COLUMNS",
    "MRBRAINS_MODALITY_FILES",
    "MRBrainsSubjectFiles",
    "MetadataError",
    "anatomy_from_acquisition",
    "build_fastmri_metadata",
    "build_mrbrains_metadata",
    "group_mrbrains_partitions",
    "join_user_metadata",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: fastMRI knee protocols (coronal proton density, with and without fat suppression).
KNEE_ACQUISITIONS = frozenset({"CORPD_FBK", "CORPDFS_FBK"})
#: fastMRI brain protocols (axial T1, T1 pre/post contrast, T2, FLAIR).
BRAIN_ACQUISITIONS = frozenset({"AXT1", "AXT1PRE", "AXT1POST", "AXT2", "AXFLAIR"})

#: MRBrainS18 modalities and the ``pre/`` file names that provide them, preferred first
#: (``reg_*`` files lie on the FLAIR grid of the labels).
MRBRAINS_MODALITY_FILES: dict[str, tuple[str, ...]] = {
    "T1": ("reg_T1", "T1"),
    "IR": ("reg_IR", "IR"),
    "FLAIR": ("FLAIR",),
}
_GRID_REFERENCE_ORDER = ("FLAIR", "T1", "IR")

FASTMRI_COLUMNS = (
    "volume_id", "file_name", "anatomy", "acquisition", "patient_id", "scanner_model",
    "scanner_vendor", "field_strength", "num_slices", "num_coils", "kspace_height",
    "kspace_width", "recon_height", "recon_width", "has_max", "max",
)
MRBRAINS_COLUMNS = (
    "subject_id", "modalities", "has_T1", "has_IR", "has_FLAIR", "has_segmentation",
    "shape_x", "shape_y", "shape_z", "spacing_x", "spacing_y", "spacing_z", "description",
)


class MetadataError(ValueError):
    """A metadata table (usually the user's CSV) cannot be used; the message says why."""


def anatomy_from_acquisition(acquisition: str | bytes) -> str:
    """The anatomy a fastMRI protocol name images.

    ``"knee"`` for the knee protocols (:data:`KNEE_ACQUISITIONS`) and any name containing
    ``KNEE``; ``"brain"`` for the brain protocols (:data:`BRAIN_ACQUISITIONS`), any other
    axial protocol (name starting with ``AX``, as all fastMRI brain protocols do) and any
    name containing ``BRAIN``; ``"unknown"`` otherwise. Case and surrounding spaces are
    ignored.
    """
    name = _as_text(acquisition).strip().upper()
    if name in KNEE_ACQUISITIONS or "KNEE" in name:
        return "knee"
    if name in BRAIN_ACQUISITIONS or name.startswith("AX") or "BRAIN" in name:
        return "brain"
    return "unknown"


def build_fastmri_metadata(
    volumes: Mapping[str, Callable[[], FastMRIVolume]], user_table: pd.DataFrame | None
) -> pd.DataFrame:
    """One row per fastMRI volume, from headers and attributes only, plus user columns.

    Args:
        volumes: partition id (the file's path relative to the raw folder, without ``.h5``)
            -> callable returning the lazily opened volume.
        user_table: optional user columns keyed by ``volume_id`` (see
            :func:`join_user_metadata`); empty for none.

    Returns:
        A table sorted by ``volume_id`` with the columns :data:`FASTMRI_COLUMNS` (then the
        user's): ``num_coils`` is 1 for single-coil data; ``recon_height``/``recon_width``
        are missing (<NA>) without a reconstruction; ``max`` is NaN when the file has no
        ``max`` attribute (``has_max`` False).

    Raises:
        FastMRIFormatError: a file cannot be read or breaks the schema (named).
        MetadataError: the user table cannot be joined.
    """
    rows = []
    for volume_id in tqdm(sorted(volumes), desc="fastMRI metadata", unit="volume", disable=None):
        volume = _load_partition(volumes[volume_id], volume_id, FastMRIFormatError)
        rows.append(_fastmri_row(volume_id, volume))
    logger.info("Read the headers of %d fastMRI volumes", len(rows))
    table = pd.DataFrame(rows, columns=list(FASTMRI_COLUMNS)).astype(
        {
            "volume_id": str, "num_slices": "int64", "num_coils": "int64",
            "kspace_height": "int64", "kspace_width": "int64", "recon_height": "Int64",
            "recon_width": "Int64", "has_max": bool, "max": "float64", "field_strength": "float64",
        }
    )
    return join_user_metadata(table, user_table, "volume_id")


def _fastmri_row(volume_id: str, volume: FastMRIVolume) -> dict[str, Any]:
    info = volume.header_info
    acquisition = _as_text(volume.attrs.get("acquisition", ""))
    has_max = "max" in volume.attrs
    recon_shape = volume.reconstruction.shape if volume.reconstruction is not None else None
    return {
        "volume_id": volume_id,
        "file_name": volume.source.name if volume.source is not None else f"{volume_id}.h5",
        "anatomy": anatomy_from_acquisition(acquisition),
        "acquisition": acquisition,
        "patient_id": _as_text(volume.attrs.get("patient_id", "")),
        "scanner_model": info.system_model or "",
        "scanner_vendor": info.system_vendor or "",
        "field_strength": info.field_strength_t if info.field_strength_t is not None else math.nan,
        "num_slices": volume.num_slices,
        "num_coils": volume.num_coils,
        "kspace_height": int(volume.kspace.shape[-2]),
        "kspace_width": int(volume.kspace.shape[-1]),
        "recon_height": int(recon_shape[-2]) if recon_shape is not None else pd.NA,
        "recon_width": int(recon_shape[-1]) if recon_shape is not None else pd.NA,
        "has_max": has_max,
        "max": _as_float(volume.attrs["max"], volume, "max") if has_max else math.nan,
    }


@dataclass
class MRBrainsSubjectFiles:
    """The partitions of one MRBrainS18 subject folder.

    Attributes:
        subject_id: the subject folder's path relative to the raw folder (e.g. ``"070"``).
        modalities: modality (``T1``, ``IR``, ``FLAIR``) -> partition id of the file used
            for it (``reg_*`` preferred, see :data:`MRBRAINS_MODALITY_FILES`).
        segmentation: partition id of ``segm``, or ``None``.
        ignored: partition ids of the subject's other files (``orig/...``, unused ``pre/``
            files).
    """

    subject_id: str
    modalities: dict[str, str] = field(default_factory=dict)
    segmentation: str | None = None
    ignored: list[str] = field(default_factory=list)


def group_mrbrains_partitions(partition_ids: Iterable[str]) -> dict[str, MRBrainsSubjectFiles]:
    """Group MRBrainS18 partition ids by subject.

    Recognised ids are ``<subject>/pre/<name>`` (``T1``/``reg_T1``, ``reg_IR``/``IR``,
    ``FLAIR``) and ``<subject>/segm``; ``<subject>`` may itself contain folders. Files under
    ``orig/`` and other ``pre/`` files are listed in ``ignored``; ids outside this layout
    are skipped with a log message.

    Returns:
        Subject id -> its files, sorted by subject id.
    """
    candidates: dict[str, dict[str, str]] = {}
    subjects: dict[str, MRBrainsSubjectFiles] = {}
    outside_layout = []
    file_to_modality = {
        name: modality for modality, names in MRBRAINS_MODALITY_FILES.items() for name in names
    }
    for partition_id in sorted(partition_ids):
        parts = partition_id.split("/")
        if len(parts) >= 2 and parts[-1] == "segm":
            subject_id = "/".join(parts[:-1])
            subject = subjects.setdefault(subject_id, MRBrainsSubjectFiles(subject_id))
            subject.segmentation = partition_id
        elif len(parts) >= 3 and parts[-2] == "pre":
            subject_id = "/".join(parts[:-2])
            subject = subjects.setdefault(subject_id, MRBrainsSubjectFiles(subject_id))
            if parts[-1] in file_to_modality:
                candidates.setdefault(subject_id, {})[parts[-1]] = partition_id
            else:
                subject.ignored.append(partition_id)
        elif len(parts) >= 3 and parts[-2] == "orig":
            subject_id = "/".join(parts[:-2])
            subjects.setdefault(subject_id, MRBrainsSubjectFiles(subject_id)).ignored.append(
                partition_id
            )
        else:
            outside_layout.append(partition_id)
    if outside_layout:
        logger.warning(
            "Ignoring %d file(s) outside the MRBrainS18 layout <subject>/pre/<modality> and "
            "<subject>/segm: %s", len(outside_layout), outside_layout[:10],
        )
    for subject_id, files in candidates.items():
        subject = subjects[subject_id]
        for modality, names in MRBRAINS_MODALITY_FILES.items():
            present = [name for name in names if name in files]
            if present:
                subject.modalities[modality] = files[present[0]]
                subject.ignored.extend(files[name] for name in present[1:])
    return dict(sorted(subjects.items()))


def build_mrbrains_metadata(
    images: Mapping[str, Callable[[], nib.Nifti1Image]], user_table: pd.DataFrame | None
) -> pd.DataFrame:
    """One row per MRBrainS18 subject, from NIfTI headers only, plus user columns.

    A subject missing a modality or its segmentation is not an error here: the ``has_*``
    columns show it and the segmentation pipeline decides.

    Args:
        images: partition id (e.g. ``"070/pre/T1"``, ``"070/segm"``) -> callable returning
            the lazily opened image.
        user_table: optional user columns keyed by ``subject_id``; empty for none.

    Returns:
        A table sorted by ``subject_id`` with the columns :data:`MRBRAINS_COLUMNS` (then the
        user's): ``modalities`` is the sorted, ``;``-joined list of modalities present;
        shape and spacing (mm, from the header zooms) are those of the subject's grid.

    Raises:
        NiftiFormatError: a file cannot be read; :class:`~med_unlearning.io.nifti.NiftiGridError`
            when a subject's images/segmentation do not share one voxel grid (both named).
        MetadataError: the user table cannot be joined.
    """
    rows = []
    subjects = group_mrbrains_partitions(images)
    progress = tqdm(subjects.items(), desc="MRBrainS18 metadata", unit="subject", disable=None)
    for subject_id, files in progress:
        row = _mrbrains_row(subject_id, files, images)
        if row is not None:
            rows.append(row)
    logger.info("Read the headers of %d MRBrainS18 subjects", len(rows))
    table = pd.DataFrame(rows, columns=list(MRBRAINS_COLUMNS)).astype(
        {
            "subject_id": str, "has_T1": bool, "has_IR": bool, "has_FLAIR": bool,
            "has_segmentation": bool, "shape_x": "int64", "shape_y": "int64", "shape_z": "int64",
            "spacing_x": "float64", "spacing_y": "float64", "spacing_z": "float64",
            "description": str,
        }
    )
    return join_user_metadata(table, user_table, "subject_id")


def _mrbrains_row(
    subject_id: str,
    files: MRBrainsSubjectFiles,
    images: Mapping[str, Callable[[], nib.Nifti1Image]],
) -> dict[str, Any] | None:
    opened = {
        modality: _load_partition(images[pid], pid, NiftiFormatError)
        for modality, pid in files.modalities.items()
    }
    if files.segmentation is not None:
        opened["segm"] = _load_partition(
            images[files.segmentation], files.segmentation, NiftiFormatError
        )
    if not opened:
        logger.warning("Subject %s has no pre/ modality and no segm file; skipped", subject_id)
        return None
    partition_of = {**files.modalities, "segm": files.segmentation}
    reference = next(name for name in (*_GRID_REFERENCE_ORDER, "segm") if name in opened)
    reference_image = opened[reference]
    reference_name = _image_name(reference_image, partition_of[reference])
    for name, image in opened.items():
        if name != reference:
            check_same_grid(
                reference_image, image, reference_name, _image_name(image, partition_of[name])
            )
    shape = tuple(int(n) for n in reference_image.shape[:3])
    spacing = tuple(round(float(z), 6) for z in reference_image.header.get_zooms()[:3])
    present = set(files.modalities)
    return {
        "subject_id": subject_id,
        "modalities": ";".join(sorted(present)),
        "has_T1": "T1" in present,
        "has_IR": "IR" in present,
        "has_FLAIR": "FLAIR" in present,
        "has_segmentation": files.segmentation is not None,
        "shape_x": shape[0], "shape_y": shape[1], "shape_z": shape[2],
        "spacing_x": spacing[0], "spacing_y": spacing[1], "spacing_z": spacing[2],
        "description": _header_description(reference_image),
    }


def _header_description(image: nib.Nifti1Image) -> str:
    """The NIfTI ``descrip`` header field as text (``""`` when unset or unreadable)."""
    try:
        raw = image.header["descrip"]
    except (KeyError, TypeError):
        return ""
    value = raw.item() if hasattr(raw, "item") else raw
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return str(value).strip("\x00 ").strip()


def join_user_metadata(
    table: pd.DataFrame, user_table: pd.DataFrame | None, id_column: str
) -> pd.DataFrame:
    """Left-join the user's extra columns onto a built metadata table by id.

    Ids are compared as strings (surrounding spaces ignored). The user table's file, when
    known, is taken from ``user_table.attrs["source"]`` and named in errors.

    Args:
        table: the built table, with ``id_column``.
        user_table: the user's table; ``None`` or empty leaves ``table`` unchanged.
        id_column: ``"volume_id"`` or ``"subject_id"``.

    Raises:
        MetadataError: the user table lacks ``id_column``, has empty or duplicate ids, has
            ids that match no row of ``table`` (listed, up to 10), or has columns that
            clash with the built ones.
    """
    if user_table is None or user_table.empty:
        return table
    source = user_table.attrs.get("source", "the user metadata table")
    if id_column not in user_table.columns:
        raise MetadataError(
            f"{source}: missing id column '{id_column}' (columns: {list(user_table.columns)}); "
            f"expected one row per id with a '{id_column}' column"
        )
    user = user_table.copy()
    blank = user[id_column].isna() | (user[id_column].astype(str).str.strip() == "")
    if blank.any():
        raise MetadataError(
            f"{source}: empty '{id_column}' in rows {list(user.index[blank][:10])}; every row "
            "needs an id"
        )
    user[id_column] = user[id_column].astype(str).str.strip()
    duplicated = sorted(set(user.loc[user[id_column].duplicated(), id_column]))
    if duplicated:
        raise MetadataError(f"{source}: duplicate ids in '{id_column}': {duplicated[:10]}")
    clashes = sorted((set(user.columns) - {id_column}) & set(table.columns))
    if clashes:
        raise MetadataError(
            f"{source}: columns {clashes} clash with columns built from the files; rename them"
        )
    known = set(table[id_column].astype(str))
    unmatched = [i for i in user[id_column] if i not in known]
    if len(unmatched) == len(user):
        raise MetadataError(
            f"{source}: none of its {len(user)} ids in '{id_column}' match the data (first: "
            f"{unmatched[:10]}; the data's ids look like {sorted(known)[:5]})"
        )
    if unmatched:
        raise MetadataError(
            f"{source}: {len(unmatched)} id(s) in '{id_column}' match no file in the data: "
            f"{unmatched[:10]}"
        )
    joined = table.merge(user, on=id_column, how="left", validate="one_to_one")
    logger.info("Joined %d user column(s) from %s", len(user.columns) - 1, source)
    return joined


def _load_partition(load: Callable[[], T], partition_id: str, error_type: type[ValueError]) -> T:
    """Call a partition loader; any failure becomes ``error_type`` naming the partition.

    Kedro wraps loading errors in ``DatasetError``; the project's own format error inside
    it is what the user needs to see.
    """
    try:
        return load()
    except error_type:
        raise
    except Exception as exc:
        inner = exc.__cause__ if isinstance(exc.__cause__, error_type) else exc
        raise error_type(f"partition '{partition_id}': {inner}") from exc


def _image_name(image: nib.Nifti1Image, partition_id: str | None) -> str:
    return str(image.get_filename() or partition_id)


def _as_text(value: Any) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def _as_float(value: Any, volume: FastMRIVolume, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise FastMRIFormatError(
            f"{volume.name}: attribute '{name}' should be a number, got {value!r}"
        ) from exc
