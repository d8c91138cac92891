"""Benchmark data: the project's sample generators written to disk in the real formats.

fastMRI volumes come from :mod:`med_unlearning.data.sample_fastmri` (written with the io
layer's :func:`~med_unlearning.io.fastmri.write_fastmri_volume`); MRBrainS18 subjects from
``med_unlearning.data.sample_mrbrains`` when that generator exists, else from a small
labelled-ellipsoid phantom written with :func:`~med_unlearning.io.nifti.write_nifti`. The
files land where the catalog expects them: ``<data_root>/01_raw/fastmri`` and
``<data_root>/01_raw/mrbrains18``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FASTMRI_DIR",
    "MRBRAINS_DIR",
    "fastmri_sample_params",
    "mrbrains_sample_params",
    "write_fastmri_sample",
    "write_mrbrains_sample",
    "write_study_data",
]

logger = logging.getLogger(__name__)

#: Raw folders relative to the data root, as in ``conf/base/catalog.yml``.
FASTMRI_DIR = Path("01_raw") / "fastmri"
MRBRAINS_DIR = Path("01_raw") / "mrbrains18"

_MRBRAINS_MODALITY_FILES = ("pre/T1", "pre/reg_IR", "pre/FLAIR")


def fastmri_sample_params(
    brain: int, knee: int, slices: int, size: int | tuple[int, int], coils: int = 4, **extra: Any
) -> Any:
    """A :class:`~med_unlearning.params.sample_data.FastMRISampleParams` of the given sizes."""
    from med_unlearning.params.sample_data import FastMRISampleParams

    image_size = (size, size) if isinstance(size, int) else tuple(size)
    return FastMRISampleParams.model_validate(
        {
            "image_size": list(image_size),
            "num_coils": coils,
            "brain": {"num_volumes": brain, "num_slices": slices},
            "knee": {"num_volumes": knee, "num_slices": slices},
            **extra,
        }
    )


def mrbrains_sample_params(subjects: int, shape: tuple[int, int, int]) -> Any:
    """A :class:`~med_unlearning.params.sample_data.MRBrainSSampleParams` of the given sizes."""
    from med_unlearning.params.sample_data import MRBrainSSampleParams

    return MRBrainSSampleParams.model_validate({"num_subjects": subjects, "shape": list(shape)})


def write_fastmri_sample(folder: Path, params: Any, seed: int) -> list[Path]:
    """Write every sample volume of ``params`` as ``<folder>/<partition id>.h5``.

    Returns:
        The files written, sorted.
    """
    from med_unlearning.data.sample_fastmri import lazy_fastmri_sample
    from med_unlearning.io.fastmri import write_fastmri_volume

    paths = []
    for partition_id, generate in lazy_fastmri_sample(params, seed).items():
        path = folder / f"{partition_id}.h5"
        write_fastmri_volume(path, generate())
        paths.append(path)
    logger.info("Wrote %d sample fastMRI volumes to %s", len(paths), folder)
    return sorted(paths)


def write_mrbrains_sample(folder: Path, params: Any, seed: int) -> list[Path]:
    """Write MRBrainS18-layout subjects (``pre/T1``, ``pre/reg_IR``, ``pre/FLAIR``, ``segm``).

    Uses the project's generator (``sample_mrbrains.lazy_mrbrains_sample``) when it exists,
    else :func:`_phantom_subject`.

    Returns:
        The files written, sorted.
    """
    from med_unlearning.io.nifti import write_nifti

    generated = _project_mrbrains_sample(params, seed)
    paths = []
    if generated is not None:
        for partition_id, image in generated.items():
            path = folder / f"{partition_id}.nii.gz"
            write_nifti(path, image() if callable(image) else image)
            paths.append(path)
    else:
        logger.info("sample_mrbrains generator not available; writing labelled phantoms")
        for index, subject_id in enumerate(params.resolved_subject_ids()):
            for name, image in _phantom_subject(
                tuple(params.shape), params.spacing_mm, seed + index
            ).items():
                path = folder / subject_id / f"{name}.nii.gz"
                write_nifti(path, image)
                paths.append(path)
    logger.info("Wrote %d MRBrainS18-layout files to %s", len(paths), folder)
    return sorted(paths)


def _project_mrbrains_sample(params: Any, seed: int) -> Mapping[str, Any] | None:
    """``{partition id: image or loader}`` from the project's generator, or ``None``."""
    try:
        module = importlib.import_module("med_unlearning.data.sample_mrbrains")
    except ImportError:
        return None
    lazy = getattr(module, "lazy_mrbrains_sample", None)
    if lazy is None:
        return None
    return lazy(params, seed)


def _phantom_subject(
    shape: tuple[int, int, int], spacing: tuple[float, float, float], seed: int
) -> dict[str, Any]:
    """One subject of nested ellipsoids carrying MRBrainS18 labels 1-8, with three contrasts.

    Only used while the project's MRBrainS18 generator does not exist: enough structure for
    the readers, the preprocessing and patch sampling to do their real work.
    """
    import nibabel as nib

    rng = np.random.default_rng(seed)
    axes = [np.linspace(-1.0, 1.0, size) for size in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    jitter = 1.0 + 0.05 * rng.standard_normal(3)

    def inside(cx: float, cy: float, cz: float, rx: float, ry: float, rz: float) -> np.ndarray:
        rx, ry, rz = rx * jitter[0], ry * jitter[1], rz * jitter[2]
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 <= 1.0

    label = np.zeros(shape, dtype=np.uint8)
    label[inside(0, 0, 0, 0.85, 0.9, 0.95)] = 5  # extracerebral CSF
    label[inside(0, 0, 0, 0.78, 0.83, 0.88)] = 1  # cortical grey matter
    label[inside(0, 0, 0.05, 0.62, 0.68, 0.7)] = 3  # white matter
    label[inside(-0.2, 0.1, 0.1, 0.12, 0.15, 0.2) | inside(0.2, 0.1, 0.1, 0.12, 0.15, 0.2)] = 2
    label[
        inside(-0.12, -0.05, 0.2, 0.08, 0.25, 0.25) | inside(0.12, -0.05, 0.2, 0.08, 0.25, 0.25)
    ] = 6
    label[inside(0, -0.55, -0.6, 0.4, 0.25, 0.3) & (label > 0)] = 7  # cerebellum
    label[inside(0, -0.25, -0.55, 0.1, 0.12, 0.4)] = 8  # brainstem
    for _ in range(3):
        centre = rng.uniform(-0.3, 0.3, 3)
        label[inside(*centre, 0.05, 0.05, 0.12) & (label == 3)] = 4  # lesions in white matter
    contrasts = {
        "pre/T1": [0.0, 0.45, 0.5, 0.7, 0.45, 0.12, 0.12, 0.6, 0.62],
        "pre/reg_IR": [0.0, 0.55, 0.6, 0.85, 0.3, 0.05, 0.05, 0.7, 0.75],
        "pre/FLAIR": [0.0, 0.6, 0.55, 0.45, 0.95, 0.06, 0.05, 0.55, 0.5],
    }
    affine = np.diag([*spacing, 1.0])
    images: dict[str, Any] = {}
    for name, table in contrasts.items():
        values = np.asarray(table, dtype=np.float32)[label]
        noisy = values + 0.02 * rng.standard_normal(shape).astype(np.float32) * (label > 0)
        images[name] = nib.Nifti1Image(np.clip(noisy, 0, None).astype(np.float32) * 1000.0, affine)
    images["segm"] = nib.Nifti1Image(label, affine)
    return images


def write_study_data(
    data_root: Path, fastmri: Any | None, mrbrains: Any | None, seed: int
) -> dict[str, int]:
    """Write the raw data of a study run under ``data_root`` (skipping a part given as ``None``).

    Returns:
        Files written per dataset: ``{"fastmri": n, "mrbrains18": m}``.
    """
    counts = {"fastmri": 0, "mrbrains18": 0}
    if fastmri is not None:
        counts["fastmri"] = len(write_fastmri_sample(data_root / FASTMRI_DIR, fastmri, seed))
    if mrbrains is not None:
        counts["mrbrains18"] = len(write_mrbrains_sample(data_root / MRBRAINS_DIR, mrbrains, seed))
    return counts
