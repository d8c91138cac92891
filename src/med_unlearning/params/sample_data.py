"""``sample_data``: sizes and realism of the built-in sample study (no real data needed)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, PositiveFloat, field_validator, model_validator

from med_unlearning.data.phantoms import KNEE_SIZE
from med_unlearning.ids import ItemId
from med_unlearning.params.base import StrictModel, register_section

__all__ = [
    "BRAIN_PROTOCOLS",
    "KNEE_PROTOCOLS",
    "MRBRAINS18_TRAINING_IDS",
    "SCANNER_FIELD_STRENGTH_T",
    "BrainSampleParams",
    "FastMRISampleParams",
    "KneeSampleParams",
    "MRBRAINS_COHORTS",
    "AnatomicalOutlierParams",
    "LesionLoadParams",
    "MRBrainSCohortsParams",
    "MRBrainSSampleParams",
    "SecondScannerParams",
    "SampleDataParams",
]

BrainProtocol = Literal["AXT1", "AXT1PRE", "AXT1POST", "AXT2", "AXFLAIR"]
KneeProtocol = Literal["CORPD_FBK", "CORPDFS_FBK"]
Scanner = Literal["Skyra", "Prisma_fit", "Biograph_mMR", "TrioTim", "Aera", "Avanto"]

BRAIN_PROTOCOLS: tuple[str, ...] = ("AXT1", "AXT1PRE", "AXT1POST", "AXT2", "AXFLAIR")
KNEE_PROTOCOLS: tuple[str, ...] = ("CORPD_FBK", "CORPDFS_FBK")

#: Siemens systems found in fastMRI headers and their ``systemFieldStrength_T``.
SCANNER_FIELD_STRENGTH_T: dict[str, float] = {
    "Skyra": 2.89362,
    "Prisma_fit": 2.89362,
    "Biograph_mMR": 2.89362,
    "TrioTim": 2.89362,
    "Aera": 1.494,
    "Avanto": 1.494,
}

#: The seven labelled MRBrainS18 training subjects (folder names of the real data set).
MRBRAINS18_TRAINING_IDS: tuple[str, ...] = ("1", "4", "5", "7", "14", "070", "148")

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


class BrainSampleParams(StrictModel):
    """Brain volumes (the retain anatomy of the reconstruction study).

    Attributes:
        num_volumes: number of brain volumes.
        num_slices: axial slices per volume (spread from skull base to vertex).
        protocols: relative frequency of each acquisition protocol (``AXT2`` is the study's).
        scanners: scanner models, one drawn per volume (sets the field strength and SNR).
    """

    num_volumes: int = Field(default=26, ge=0)
    num_slices: int = Field(default=8, ge=1)
    protocols: dict[BrainProtocol, PositiveFloat] = Field(
        default_factory=lambda: {"AXT2": 0.7, "AXT1": 0.1, "AXFLAIR": 0.1, "AXT1POST": 0.1},
        min_length=1,
    )
    scanners: list[Scanner] = Field(default_factory=lambda: ["Skyra", "Prisma_fit"], min_length=1)


class KneeSampleParams(StrictModel):
    """Knee volumes (the forget anatomy of the reconstruction study).

    Attributes:
        num_volumes: number of knee volumes.
        num_slices: coronal slices per volume (anterior to posterior through the joint).
        protocols: relative frequency of each protocol (proton density, with/without fat sat).
        scanners: scanner models, one drawn per volume.
        size: knee size relative to the field of view; 0.8 leaves background at both sides,
            as a ~100 mm knee in fastMRI's 140 mm coronal field of view (1.0 fills ~80 %).
    """

    num_volumes: int = Field(default=4, ge=0)
    num_slices: int = Field(default=8, ge=1)
    size: float = Field(default=KNEE_SIZE, gt=0.2, le=1.2)
    protocols: dict[KneeProtocol, PositiveFloat] = Field(
        default_factory=lambda: {"CORPD_FBK": 0.5, "CORPDFS_FBK": 0.5}, min_length=1
    )
    scanners: list[Scanner] = Field(default_factory=lambda: ["Aera", "Skyra"], min_length=1)


class FastMRISampleParams(StrictModel):
    """Multi-coil fastMRI-format volumes of two anatomies.

    Attributes:
        image_size: reconstruction size ``[h, w]`` (``reconstruction_rss`` shape per slice).
        readout_oversampling: k-space has ``h * readout_oversampling`` rows (fastMRI stores
            2x oversampled readouts and crops the image to ``h``); 1 = k-space is ``[h, w]``.
        num_coils: receive coils.
        noise_level: k-space noise standard deviation relative to the volume's noise-free
            image maximum (at 3 T; 1.5 T scanners get ``sqrt(2.89/1.49)`` times more).
        image_max_range: range of the volumes' image maxima on the raw fastMRI scale
            (drawn log-uniformly per volume); fastMRI RSS images peak around 1e-4..1e-3.
        brain: brain volumes.
        knee: knee volumes.
    """

    image_size: tuple[int, int] = (64, 64)
    readout_oversampling: int = Field(default=1, ge=1, le=4)
    num_coils: int = Field(default=4, ge=1, le=64)
    noise_level: float = Field(default=0.02, ge=0.0, le=1.0)
    image_max_range: tuple[PositiveFloat, PositiveFloat] = (2.0e-4, 1.0e-3)
    brain: BrainSampleParams = Field(default_factory=BrainSampleParams)
    knee: KneeSampleParams = Field(default_factory=KneeSampleParams)

    @field_validator("image_size")
    @classmethod
    def _image_size_large_enough(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 16:
            raise ValueError(f"each side must be at least 16 pixels, got {list(value)}")
        return value

    @field_validator("image_max_range")
    @classmethod
    def _ordered_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] > value[1]:
            raise ValueError(f"expected [low, high] with low <= high, got {list(value)}")
        return value


#: The kinds of sample subject a forget request can name (the ``description`` metadata
#: column, written into each sample image's NIfTI ``descrip`` header field).
MRBRAINS_COHORTS: tuple[str, ...] = (
    "typical", "lesion_load", "second_scanner", "anatomical_outlier"
)


class LesionLoadParams(StrictModel):
    """Subjects with a white-matter lesion load far above the others' (a pathology request).

    Attributes:
        subject_ids: the subjects of this kind.
        lesions_per_subject: inclusive range of their lesion counts (label 4).
        lesion_scale: factor on the lesions' radii (1 = the typical size).
    """

    subject_ids: list[ItemId] = Field(default_factory=list)
    lesions_per_subject: tuple[int, int] = (20, 28)
    lesion_scale: float = Field(default=1.4, gt=0.0, le=3.0)


class SecondScannerParams(StrictModel):
    """Subjects acquired on another scanner / site (a device request).

    Their images use :data:`~med_unlearning.data.sample_mrbrains.SECOND_SCANNER_CONTRASTS`
    (a 1.5 T-like T1 with low grey/white contrast and bright CSF), a stronger bias field,
    more noise and a coarser point-spread function (lower resolution resampled onto the
    same grid, as scanners reconstruct). Anatomy is drawn as for every subject.

    Attributes:
        subject_ids: the subjects of this kind.
        noise_level: Rician noise relative to white matter (replaces the sample's).
        bias_field: bias-field amplitude (replaces the sample's).
        blur_voxels: partial-volume blur (Gaussian sigma, voxels) in-plane and through-plane;
            the first scanner's is 0.5 / 0.35.
    """

    subject_ids: list[ItemId] = Field(default_factory=list)
    noise_level: float = Field(default=0.05, ge=0.0, le=1.0)
    bias_field: float = Field(default=0.3, ge=0.0, lt=1.0)
    blur_voxels: tuple[float, float] = (1.0, 0.5)


class AnatomicalOutlierParams(StrictModel):
    """Subjects whose anatomy lies outside the others' range (an outlier request).

    Attributes:
        subject_ids: the subjects of this kind.
        ventricle_size: relative ventricle size (typical subjects: 0.85-1.2).
        atrophy: 0..1, widens sulci and ventricles (typical: uniform 0..1).
        deformation: amplitude of the smooth deformation (typical: the sample's 0.04).
    """

    subject_ids: list[ItemId] = Field(default_factory=list)
    ventricle_size: float = Field(default=2.0, gt=0.0, le=4.0)
    atrophy: float = Field(default=1.0, ge=0.0, le=1.0)
    deformation: float = Field(default=0.1, ge=0.0, le=0.3)


class MRBrainSCohortsParams(StrictModel):
    """Which sample subjects are of which kind; every other subject is ``typical``.

    Attributes:
        lesion_load: heavy white-matter lesion load.
        second_scanner: another scanner's contrast, bias, noise and resolution.
        anatomical_outlier: enlarged ventricles, atrophy, strong deformation.
    """

    lesion_load: LesionLoadParams = Field(default_factory=LesionLoadParams)
    second_scanner: SecondScannerParams = Field(default_factory=SecondScannerParams)
    anatomical_outlier: AnatomicalOutlierParams = Field(default_factory=AnatomicalOutlierParams)

    @model_validator(mode="after")
    def _disjoint(self) -> MRBrainSCohortsParams:
        seen: dict[str, str] = {}
        for kind in MRBRAINS_COHORTS[1:]:
            for subject in getattr(self, kind).subject_ids:
                if subject in seen:
                    raise ValueError(
                        f"subject {subject!r} is in both {seen[subject]} and {kind}; a "
                        "subject has one kind"
                    )
                seen[subject] = kind
        return self

    def cohort_of(self, subject_id: str) -> str:
        """The kind of ``subject_id`` (``typical`` when no kind lists it)."""
        for kind in MRBRAINS_COHORTS[1:]:
            if subject_id in getattr(self, kind).subject_ids:
                return kind
        return "typical"


class MRBrainSSampleParams(StrictModel):
    """MRBrainS18-layout subjects (T1, T1-IR, FLAIR and a label map) of brain phantoms.

    Attributes:
        num_subjects: number of subjects.
        subject_ids: folder names, used in order; when ``num_subjects`` is larger the extra
            subjects are named ``sample_<index>``. Default: the real MRBrainS18 training ids.
        shape: voxels per axis ``[x, y, z]`` (real data: 240 x 240 x 48). The head fills the
            field of view whatever the shape.
        spacing_mm: voxel spacing written into the affine (MRBrainS18: 0.958 x 0.958 x 3.0).
        noise_level: Rician noise standard deviation relative to each sequence's white-matter
            intensity.
        bias_field: amplitude of the smooth multiplicative bias field (0.15 = +-15 %).
        deformation: amplitude of the per-subject smooth deformation (field-of-view units).
        intensity_jitter: per-subject relative variation of each tissue's intensity.
        lesions_per_subject: inclusive range of white-matter lesion counts (label 4).
        rare_label_probability: chance that a subject has an infarction (9) and, separately,
            an "other" finding (10); these labels are masked out by the evaluation.
        cohorts: subjects of the kinds real erasure requests name (lesion load, second
            scanner, anatomical outlier); each must be one of the generated subjects.
    """

    num_subjects: int = Field(default=7, ge=1)
    subject_ids: list[ItemId] = Field(default_factory=lambda: list(MRBRAINS18_TRAINING_IDS))
    shape: tuple[int, int, int] = (64, 64, 16)
    spacing_mm: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = (0.958, 0.958, 3.0)
    noise_level: float = Field(default=0.03, ge=0.0, le=1.0)
    bias_field: float = Field(default=0.15, ge=0.0, lt=1.0)
    deformation: float = Field(default=0.04, ge=0.0, le=0.2)
    intensity_jitter: float = Field(default=0.05, ge=0.0, le=0.5)
    lesions_per_subject: tuple[int, int] = (3, 8)
    rare_label_probability: float = Field(default=0.3, ge=0.0, le=1.0)
    cohorts: MRBrainSCohortsParams = Field(default_factory=MRBrainSCohortsParams)

    @model_validator(mode="after")
    def _cohorts_generated(self) -> MRBrainSSampleParams:
        generated = set(self.resolved_subject_ids())
        for kind in MRBRAINS_COHORTS[1:]:
            unknown = [i for i in getattr(self.cohorts, kind).subject_ids if i not in generated]
            if unknown:
                raise ValueError(
                    f"cohorts.{kind}.subject_ids {unknown} are not generated subjects "
                    f"({sorted(generated)})"
                )
        return self

    @field_validator("subject_ids")
    @classmethod
    def _safe_unique_ids(cls, value: list[str]) -> list[str]:
        bad = [item for item in value if not _SAFE_ID.match(item)]
        if bad:
            raise ValueError(f"ids must be folder names of letters, digits, '_', '.', '-': {bad}")
        if len(set(value)) != len(value):
            raise ValueError(f"ids must be unique, got {value}")
        return value

    @field_validator("shape")
    @classmethod
    def _shape_large_enough(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(value[:2]) < 16 or value[2] < 4:
            raise ValueError(f"expected at least 16 x 16 x 4 voxels, got {list(value)}")
        return value

    @field_validator("lesions_per_subject")
    @classmethod
    def _ordered_counts(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1]:
            raise ValueError(f"expected [low, high] with 1 <= low <= high, got {list(value)}")
        return value

    def resolved_subject_ids(self) -> list[str]:
        """The ``num_subjects`` folder names, in order."""
        ids = list(self.subject_ids[: self.num_subjects])
        index = len(ids)
        while len(ids) < self.num_subjects:
            candidate = f"sample_{index:03d}"
            if candidate not in ids:
                ids.append(candidate)
            index += 1
        return ids


@register_section("sample_data")
class SampleDataParams(StrictModel):
    """The built-in sample study.

    Attributes:
        seed: seed of the sample data; ``null`` = ``runtime.seed``. Keep it fixed to vary
            training seeds over the same data.
        fastmri: multi-coil reconstruction volumes (brain = retain, knee = forget).
        mrbrains: segmentation subjects.
    """

    seed: int | None = Field(default=None, ge=0)
    fastmri: FastMRISampleParams = Field(default_factory=FastMRISampleParams)
    mrbrains: MRBrainSSampleParams = Field(default_factory=MRBrainSSampleParams)

    @model_validator(mode="after")
    def _some_volumes(self) -> SampleDataParams:
        if self.fastmri.brain.num_volumes + self.fastmri.knee.num_volumes == 0:
            raise ValueError("fastmri: brain.num_volumes + knee.num_volumes must be > 0")
        return self
