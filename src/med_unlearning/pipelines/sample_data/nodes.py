"""Nodes of the ``sample_data`` pipeline: plan the sample study's files, generate lazily.

Each node returns ``{partition id: zero-argument callable}``; the catalog's
``WriteOnceFolderDataset`` calls the callables only when it writes, i.e. only into an empty
raw folder. A folder holding real (or earlier) data is left alone and nothing is generated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import nibabel as nib

from med_unlearning.data.sample_fastmri import lazy_fastmri_sample
from med_unlearning.data.sample_mrbrains import lazy_mrbrains_sample
from med_unlearning.io.fastmri import FastMRIVolume
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.sample_data import FastMRISampleParams, MRBrainSSampleParams

__all__ = ["generate_fastmri_sample", "generate_mrbrains_sample", "sample_seed"]

logger = logging.getLogger(__name__)


def sample_seed(seed: int | None, runtime: RuntimeParams) -> int:
    """The sample data's seed: ``sample_data.seed``, or ``runtime.seed`` when it is null."""
    return runtime.seed if seed is None else int(seed)


def generate_fastmri_sample(
    params: FastMRISampleParams, seed: int | None, runtime: RuntimeParams
) -> dict[str, Callable[[], FastMRIVolume]]:
    """Plan the sample fastMRI volumes (``brain/<id>`` and ``knee/<id>``), generated lazily.

    Args:
        params: ``sample_data.fastmri``.
        seed: ``sample_data.seed`` (null = ``runtime.seed``).
        runtime: ``runtime``.

    Returns:
        ``{"brain/sample_brain_AXT2_000": callable, ...}`` for ``fastmri_raw``.
    """
    partitions = lazy_fastmri_sample(params, sample_seed(seed, runtime))
    logger.info(
        "Sample fastMRI data: %d brain + %d knee volumes of %dx%d, %d coils",
        params.brain.num_volumes,
        params.knee.num_volumes,
        *params.image_size,
        params.num_coils,
    )
    return partitions


def generate_mrbrains_sample(
    params: MRBrainSSampleParams, seed: int | None, runtime: RuntimeParams
) -> dict[str, Callable[[], nib.Nifti1Image]]:
    """Plan the sample MRBrainS18 subjects (``<id>/pre/T1`` ... ``<id>/segm``), lazily.

    Args:
        params: ``sample_data.mrbrains``.
        seed: ``sample_data.seed`` (null = ``runtime.seed``).
        runtime: ``runtime``.

    Returns:
        ``{"070/pre/T1": callable, ..., "070/segm": callable, ...}`` for
        ``mrbrains_raw``.
    """
    partitions = lazy_mrbrains_sample(params, sample_seed(seed, runtime))
    logger.info(
        "Sample MRBrainS18 data: subjects %s of %s voxels",
        params.resolved_subject_ids(),
        "x".join(str(size) for size in params.shape),
    )
    return partitions
