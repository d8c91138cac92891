"""Sample segmentation subjects in the MRBrainS18 layout: T1, T1-IR, FLAIR and labels.

Each subject is a deformed brain phantom (:mod:`med_unlearning.data.phantoms`) with its own
pose, folding, ventricle size, atrophy and white-matter lesions. Its label map uses the
MRBrainS18 legend (:data:`MRBRAINS18_LABELS`); the three images follow the real relative
tissue intensities of each sequence, with per-subject intensity variation, a partial-volume
blur, a smooth multiplicative bias field per sequence and Rician noise. Images are float32,
labels uint8, and every volume carries an RAS affine with the MRBrainS18 voxel spacing.

Some subjects can be of a kind that real erasure requests name (``sample_data.mrbrains.
cohorts``): a heavy white-matter lesion load (label 4), a second scanner (another T1
contrast, stronger bias field, more noise, coarser resolution) or an anatomical outlier
(enlarged ventricles, atrophy, strong deformation). Each image's NIfTI ``descrip`` header
field names the subject's kind (``typical``, ``lesion_load``, ``second_scanner``,
``anatomical_outlier``); the metadata table reads it into its ``description`` column, so a
forget request can select a kind (``segmentation.split.forget: {by: column, column:
description, values: [second_scanner]}``).

A subject's randomness derives from the seed and its id only, so adding subjects never
changes existing ones.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

from med_unlearning.data.phantoms import (
    CEREBELLUM_CENTRE,
    Blob,
    BrainAnatomy,
    BrainTissue,
    RandomWaveField,
    brain_tissue_map,
    derive_rng,
    draw_brain_anatomy,
    fov_grid,
    smooth_noise,
)
from med_unlearning.params.sample_data import MRBrainSSampleParams, SecondScannerParams

__all__ = [
    "MODALITY_CONTRASTS",
    "MRBRAINS18_LABELS",
    "REQUIRED_LABELS",
    "SECOND_SCANNER_CONTRASTS",
    "SUBJECT_PARTS",
    "SampleSubjectPlan",
    "generate_mrbrains_subject",
    "lazy_mrbrains_sample",
    "mrbrains_affine",
    "plan_mrbrains_sample",
    "tissues_to_labels",
]

logger = logging.getLogger(__name__)

#: The MRBrainS18 label legend.
MRBRAINS18_LABELS: dict[int, str] = {
    0: "background",
    1: "cortical gray matter",
    2: "basal ganglia",
    3: "white matter",
    4: "white matter lesions",
    5: "cerebrospinal fluid in the extracerebral space",
    6: "ventricles",
    7: "cerebellum",
    8: "brain stem",
    9: "infarction",
    10: "other",
}

#: Labels every sample subject contains (9 and 10 occur only in some subjects).
REQUIRED_LABELS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)

#: Partition ids below a subject folder (without ``.nii.gz``), images first.
SUBJECT_PARTS: tuple[str, ...] = ("pre/T1", "pre/reg_IR", "pre/FLAIR", "segm")

# Tissue class -> MRBrainS18 label (skull, diploe and scalp are background; both cerebellar
# tissues are "cerebellum").
_TISSUE_TO_LABEL = np.zeros(len(BrainTissue), dtype=np.uint8)
_TISSUE_TO_LABEL[: BrainTissue.OTHER + 1] = np.arange(BrainTissue.OTHER + 1)
_TISSUE_TO_LABEL[BrainTissue.CEREBELLAR_WM] = 7

_T = BrainTissue
#: Mean intensity (arbitrary units, before per-subject variation) of each tissue per sequence:
#: T1 WM > GM > CSF; T1-IR has the strongest GM/WM contrast and nulls CSF; FLAIR has dark
#: CSF, GM brighter than WM and bright lesions.
MODALITY_CONTRASTS: dict[str, dict[int, float]] = {
    "pre/T1": {
        _T.CORTICAL_GM: 450, _T.BASAL_GANGLIA: 500, _T.WHITE_MATTER: 700, _T.WM_LESION: 480,
        _T.CSF: 150, _T.VENTRICLE: 140, _T.CEREBELLAR_GM: 450, _T.CEREBELLAR_WM: 680,
        _T.BRAINSTEM: 620, _T.INFARCTION: 200, _T.OTHER: 350, _T.SKULL: 60, _T.DIPLOE: 650,
        _T.SCALP: 800,
    },
    "pre/reg_IR": {
        _T.CORTICAL_GM: 300, _T.BASAL_GANGLIA: 380, _T.WHITE_MATTER: 800, _T.WM_LESION: 400,
        _T.CSF: 30, _T.VENTRICLE: 25, _T.CEREBELLAR_GM: 320, _T.CEREBELLAR_WM: 780,
        _T.BRAINSTEM: 700, _T.INFARCTION: 60, _T.OTHER: 250, _T.SKULL: 20, _T.DIPLOE: 400,
        _T.SCALP: 500,
    },
    "pre/FLAIR": {
        _T.CORTICAL_GM: 420, _T.BASAL_GANGLIA: 400, _T.WHITE_MATTER: 330, _T.WM_LESION: 750,
        _T.CSF: 40, _T.VENTRICLE: 35, _T.CEREBELLAR_GM: 400, _T.CEREBELLAR_WM: 330,
        _T.BRAINSTEM: 360, _T.INFARCTION: 120, _T.OTHER: 500, _T.SKULL: 30, _T.DIPLOE: 300,
        _T.SCALP: 350,
    },
}  # fmt: skip

#: The second scanner's contrasts (``cohorts.second_scanner``): a 1.5 T-like T1 with low
#: grey/white contrast and bright CSF, a T1-IR with a weaker inversion (CSF not nulled) and
#: a FLAIR with less lesion conspicuity. Only the ratios matter (volumes are z-scored).
SECOND_SCANNER_CONTRASTS: dict[str, dict[int, float]] = {
    "pre/T1": {
        _T.CORTICAL_GM: 560, _T.BASAL_GANGLIA: 590, _T.WHITE_MATTER: 640, _T.WM_LESION: 560,
        _T.CSF: 330, _T.VENTRICLE: 320, _T.CEREBELLAR_GM: 560, _T.CEREBELLAR_WM: 630,
        _T.BRAINSTEM: 610, _T.INFARCTION: 380, _T.OTHER: 450, _T.SKULL: 120, _T.DIPLOE: 560,
        _T.SCALP: 620,
    },
    "pre/reg_IR": {
        _T.CORTICAL_GM: 380, _T.BASAL_GANGLIA: 420, _T.WHITE_MATTER: 600, _T.WM_LESION: 420,
        _T.CSF: 150, _T.VENTRICLE: 140, _T.CEREBELLAR_GM: 390, _T.CEREBELLAR_WM: 590,
        _T.BRAINSTEM: 560, _T.INFARCTION: 180, _T.OTHER: 300, _T.SKULL: 60, _T.DIPLOE: 400,
        _T.SCALP: 450,
    },
    "pre/FLAIR": {
        _T.CORTICAL_GM: 430, _T.BASAL_GANGLIA: 410, _T.WHITE_MATTER: 380, _T.WM_LESION: 560,
        _T.CSF: 90, _T.VENTRICLE: 80, _T.CEREBELLAR_GM: 420, _T.CEREBELLAR_WM: 380,
        _T.BRAINSTEM: 390, _T.INFARCTION: 160, _T.OTHER: 480, _T.SKULL: 50, _T.DIPLOE: 300,
        _T.SCALP: 350,
    },
}  # fmt: skip

# Where to put a label that a very coarse grid missed (canonical coordinates) and which
# tissue to paint there; see _ensure_required_tissues.
_ANCHORS: dict[int, tuple[BrainTissue, tuple[float, float, float]]] = {
    1: (BrainTissue.CORTICAL_GM, (0.5, 0.3, 0.3)),
    2: (BrainTissue.BASAL_GANGLIA, (0.26, 0.05, -0.02)),
    3: (BrainTissue.WHITE_MATTER, (0.3, 0.0, 0.3)),
    5: (BrainTissue.CSF, (0.0, 0.0, 0.78)),
    6: (BrainTissue.VENTRICLE, (0.1, 0.02, 0.16)),
    7: (BrainTissue.CEREBELLAR_GM, CEREBELLUM_CENTRE),
    8: (BrainTissue.BRAINSTEM, (0.0, -0.13, -0.4)),
}


@dataclass(frozen=True)
class SampleSubjectPlan:
    """One sample subject.

    Attributes:
        subject_id: folder name.
        seed: the sample study's global seed.
        order: position in the sample (for progress messages).
        total: number of subjects.
    """

    subject_id: str
    seed: int
    order: int = 0
    total: int = 1

    def partition_id(self, part: str) -> str:
        """E.g. ``070/pre/T1`` for part ``pre/T1``."""
        return f"{self.subject_id}/{part}"


def plan_mrbrains_sample(params: MRBrainSSampleParams, seed: int) -> list[SampleSubjectPlan]:
    """The subjects to generate, in order."""
    ids = params.resolved_subject_ids()
    return [SampleSubjectPlan(subject, seed, order, len(ids)) for order, subject in enumerate(ids)]


def mrbrains_affine(shape: tuple[int, int, int], spacing_mm: tuple[float, float, float]):
    """RAS voxel-to-world affine with ``spacing_mm`` on the diagonal, centred on the volume."""
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = -(np.asarray(shape, dtype=np.float64) - 1.0) / 2.0 * spacing
    return affine


def tissues_to_labels(tissues: np.ndarray) -> np.ndarray:
    """Map :class:`BrainTissue` classes to MRBrainS18 labels (uint8)."""
    return _TISSUE_TO_LABEL[tissues]


def _ensure_required_tissues(
    tissues: np.ndarray, anatomy: BrainAnatomy, points: np.ndarray
) -> np.ndarray:
    """Make sure every required label has at least one voxel, even on a very coarse grid.

    A structure thinner than a voxel can fall between voxel centres (e.g. a lesion on a
    4-slice test volume). The voxel whose canonical position is closest to the structure's
    anchor is then given that tissue, so every subject holds labels 1-8.
    """
    labels = tissues_to_labels(tissues)
    missing = [label for label in REQUIRED_LABELS if not np.any(labels == label)]
    if not missing:
        return tissues
    canonical = anatomy.canonical(points)
    tissues = tissues.copy()
    anchors = dict(_ANCHORS)
    if anatomy.lesions:
        anchors[4] = (BrainTissue.WM_LESION, anatomy.lesions[0].centre)
    else:
        anchors[4] = (BrainTissue.WM_LESION, (0.25, 0.0, 0.2))
    taken = np.zeros(tissues.shape, dtype=bool)
    for label in missing:
        tissue, anchor = anchors[label]
        distance = sum((canonical[axis] - anchor[axis]) ** 2 for axis in range(3))
        distance = np.where(taken, np.inf, distance)
        voxel = np.unravel_index(int(np.argmin(distance)), distance.shape)
        tissues[voxel] = tissue
        taken[voxel] = True
        logger.debug("Label %d too small for the grid; painted at voxel %s", label, voxel)
    return tissues


def _bias_field(rng: np.random.Generator, points: np.ndarray, strength: float) -> np.ndarray:
    """Smooth multiplicative field ``exp(strength * f)``, ``f`` scaled to [-1, 1]."""
    field = RandomWaveField.draw(rng, 3, (0.15, 0.5), num_waves=6)(points)
    return np.exp(strength * field / max(float(np.abs(field).max()), 1e-12))


def _rician(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise (Rician statistics)."""
    real = image + sigma * rng.standard_normal(image.shape)
    imaginary = sigma * rng.standard_normal(image.shape)
    return np.sqrt(real**2 + imaginary**2)


def generate_mrbrains_subject(
    plan: SampleSubjectPlan, params: MRBrainSSampleParams
) -> dict[str, nib.Nifti1Image]:
    """Simulate one subject.

    Returns:
        ``{"pre/T1", "pre/reg_IR", "pre/FLAIR": float32 image, "segm": uint8 labels}``, all
        ``params.shape`` with the same RAS affine (``params.spacing_mm`` on its diagonal).
    """
    anatomy_rng, texture_rng, noise_rng = (
        derive_rng(plan.seed, "mrbrains", plan.subject_id, stream)
        for stream in ("anatomy", "texture", "noise")
    )
    cohorts = params.cohorts
    cohort = cohorts.cohort_of(plan.subject_id)
    lesion_load = cohort == "lesion_load"
    anatomy = draw_brain_anatomy(
        anatomy_rng,
        deformation=params.deformation,
        lesion_count=(
            cohorts.lesion_load.lesions_per_subject if lesion_load else params.lesions_per_subject
        ),
        infarct_probability=params.rare_label_probability,
        other_probability=params.rare_label_probability,
    )
    anatomy = _cohort_anatomy(anatomy, cohort, params)
    points = fov_grid(params.shape)
    tissues = _ensure_required_tissues(brain_tissue_map(anatomy, points), anatomy, points)
    affine = mrbrains_affine(params.shape, params.spacing_mm)
    scanner: SecondScannerParams | None = (
        cohorts.second_scanner if cohort == "second_scanner" else None
    )
    contrasts = SECOND_SCANNER_CONTRASTS if scanner else MODALITY_CONTRASTS
    # Partial-volume blur of the scanner's point-spread function, ~half a voxel.
    blur = (
        (scanner.blur_voxels[0], scanner.blur_voxels[0], scanner.blur_voxels[1])
        if scanner
        else (0.5, 0.5, 0.35)
    )
    bias_strength = scanner.bias_field if scanner else params.bias_field
    noise_level = scanner.noise_level if scanner else params.noise_level

    volumes: dict[str, nib.Nifti1Image] = {}
    for part, contrast in contrasts.items():
        lookup = np.zeros(len(BrainTissue))
        gain = float(anatomy_rng.uniform(0.85, 1.15))
        for tissue, value in sorted(contrast.items()):
            jitter = float(np.exp(anatomy_rng.normal(0.0, params.intensity_jitter)))
            lookup[int(tissue)] = value * gain * jitter
        texture = 1.0 + 0.04 * smooth_noise(texture_rng, params.shape, sigma=1.0)
        image = ndimage.gaussian_filter(lookup[tissues] * texture, sigma=blur)
        image *= _bias_field(anatomy_rng, points, bias_strength)
        sigma = noise_level * lookup[BrainTissue.WHITE_MATTER]
        image = _rician(image, sigma, noise_rng) if sigma > 0 else image
        volumes[part] = _nifti(image.astype(np.float32), affine, cohort)
    volumes["segm"] = _nifti(tissues_to_labels(tissues), affine, cohort)
    logger.info(
        "Sample MRBrainS18 subject %d/%d: %s (%s voxels, %d lesions, %s)",
        plan.order + 1,
        plan.total,
        plan.subject_id,
        "x".join(str(size) for size in params.shape),
        len(anatomy.lesions),
        cohort,
    )
    return volumes


def _cohort_anatomy(
    anatomy: BrainAnatomy, cohort: str, params: MRBrainSSampleParams
) -> BrainAnatomy:
    """The subject's anatomy changed as its kind demands (lesion size, outlier shape)."""
    if cohort == "lesion_load":
        scale = params.cohorts.lesion_load.lesion_scale
        lesions = tuple(
            Blob(centre=blob.centre, radii=tuple(r * scale for r in blob.radii))  # type: ignore[arg-type]
            for blob in anatomy.lesions
        )
        return dataclasses.replace(anatomy, lesions=lesions)
    if cohort == "anatomical_outlier":
        outlier = params.cohorts.anatomical_outlier
        return dataclasses.replace(
            anatomy,
            ventricle_size=outlier.ventricle_size,
            atrophy=outlier.atrophy,
            deformation=outlier.deformation,
        )
    return anatomy


def _nifti(data: np.ndarray, affine: np.ndarray, description: str = "") -> nib.Nifti1Image:
    image = nib.Nifti1Image(data, affine)
    if description:
        image.header["descrip"] = description.encode("ascii")
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    return image


class _LazySubject:
    """Generates a subject on first request and hands out its parts one by one.

    The subject is computed once for its four files and forgotten when all four were taken.
    """

    def __init__(self, plan: SampleSubjectPlan, params: MRBrainSSampleParams) -> None:
        self.plan = plan
        self.params = params
        self._volumes: dict[str, nib.Nifti1Image] | None = None
        self._pending = set(SUBJECT_PARTS)

    def take(self, part: str) -> nib.Nifti1Image:
        if self._volumes is None:
            self._volumes = generate_mrbrains_subject(self.plan, self.params)
        volume = self._volumes[part]
        self._pending.discard(part)
        if not self._pending:
            self._volumes, self._pending = None, set(SUBJECT_PARTS)
        return volume

    def __repr__(self) -> str:
        return f"_LazySubject({self.plan.subject_id!r}, pending={sorted(self._pending)})"


def lazy_mrbrains_sample(
    params: MRBrainSSampleParams, seed: int
) -> dict[str, Callable[[], nib.Nifti1Image]]:
    """``{"<subject>/<part>": zero-argument callable}`` for every subject and part.

    Nothing is computed until a callable is called; each subject is generated once for its
    four files.
    """
    partitions: dict[str, Callable[[], nib.Nifti1Image]] = {}
    for plan in plan_mrbrains_sample(params, seed):
        subject = _LazySubject(plan, params)
        for part in SUBJECT_PARTS:
            partitions[plan.partition_id(part)] = functools.partial(subject.take, part)
    return partitions
