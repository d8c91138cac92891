"""The 3D brain phantom: tissue classes, a subject's anatomy and its tissue map at any grid."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from med_unlearning.data.phantoms.fields import (
    RandomWaveField,
    ellipsoid_radius,
    rotation_matrix,
    to_canonical,
)


class BrainTissue(IntEnum):
    """Tissue classes of the brain phantom.

    Values 0-10 are the MRBrainS18 label legend; 11-14 are tissues the legend folds into
    background (0) or cerebellum (7) but that look different in an image.
    """

    BACKGROUND = 0
    CORTICAL_GM = 1
    BASAL_GANGLIA = 2
    WHITE_MATTER = 3
    WM_LESION = 4
    CSF = 5
    VENTRICLE = 6
    CEREBELLAR_GM = 7
    BRAINSTEM = 8
    INFARCTION = 9
    OTHER = 10
    CEREBELLAR_WM = 11
    SKULL = 12
    DIPLOE = 13
    SCALP = 14


@dataclass(frozen=True)
class Blob:
    """An ellipsoidal focal finding (lesion, infarct) in canonical brain coordinates."""

    centre: tuple[float, float, float]
    radii: tuple[float, float, float]

    def contains(self, canonical: np.ndarray) -> np.ndarray:
        """Boolean mask of the canonical points inside the blob."""
        return ellipsoid_radius(canonical, self.centre, self.radii) <= 1.0


@dataclass(frozen=True)
class BrainAnatomy:
    """One subject's brain: pose, smooth deformation, folding and focal findings.

    Canonical axes are (x, y, z) = (right, anterior, superior), in field-of-view units.

    Attributes:
        rotation: ``[3, 3]`` rotation of the head in the field of view.
        scale: per-axis head size factor.
        shift: head centre in the field of view.
        displacement: three smooth fields, the per-subject non-rigid deformation.
        deformation: amplitude of the deformation (field-of-view units).
        surface: low-frequency field that makes the skull outline irregular.
        folds: mid-frequency field that shapes gyri and sulci.
        folia: high-frequency field of cerebellar folia.
        atrophy: 0..1; widens sulci and ventricles.
        ventricle_size: relative size of the ventricles.
        lesions: white-matter lesions (label 4).
        infarcts: infarctions (label 9), may be empty.
        others: "other" findings (label 10), may be empty.
    """

    rotation: np.ndarray
    scale: np.ndarray
    shift: np.ndarray
    displacement: tuple[RandomWaveField, RandomWaveField, RandomWaveField]
    deformation: float
    surface: RandomWaveField
    folds: RandomWaveField
    folia: RandomWaveField
    atrophy: float
    ventricle_size: float
    lesions: tuple[Blob, ...]
    infarcts: tuple[Blob, ...] = ()
    others: tuple[Blob, ...] = ()

    def canonical(self, points: np.ndarray) -> np.ndarray:
        """Map field-of-view points ``[3, ...]`` to canonical, deformed brain coordinates."""
        canonical = to_canonical(points, self.rotation, self.scale, self.shift)
        if self.deformation > 0:
            offsets = np.stack([field(canonical) for field in self.displacement])
            canonical = canonical + self.deformation * offsets
        return canonical

    def __repr__(self) -> str:
        return (
            f"BrainAnatomy(scale={np.round(self.scale, 3).tolist()}, "
            f"shift={np.round(self.shift, 3).tolist()}, atrophy={self.atrophy:.2f}, "
            f"ventricle_size={self.ventricle_size:.2f}, lesions={len(self.lesions)}, "
            f"infarcts={len(self.infarcts)}, others={len(self.others)})"
        )


#: Canonical intracranial ellipsoid (centre, radii) in field-of-view units.
INTRACRANIAL_CENTRE = (0.0, 0.0, 0.0)
INTRACRANIAL_RADII = (0.66, 0.80, 0.80)
CEREBELLUM_CENTRE = (0.0, -0.38, -0.47)
_MEAN_CEREBRAL_RADIUS = 0.75
_CORTEX_THICKNESS = 0.035
CEREBELLUM_RADII = (0.44, 0.26, 0.19)


def draw_brain_anatomy(
    rng: np.random.Generator,
    *,
    deformation: float = 0.04,
    pose_jitter: float = 1.0,
    lesion_count: tuple[int, int] = (3, 8),
    infarct_probability: float = 0.0,
    other_probability: float = 0.0,
) -> BrainAnatomy:
    """Draw one subject's brain anatomy.

    Args:
        rng: the subject's own generator (see :func:`derive_rng`).
        deformation: amplitude of the smooth non-rigid deformation (field-of-view units).
        pose_jitter: scales the random rotation, shift and size changes (0 = canonical pose).
        lesion_count: inclusive range of the number of white-matter lesions.
        infarct_probability: chance that the subject has one infarction (label 9).
        other_probability: chance that the subject has one "other" finding (label 10).
    """
    angles = pose_jitter * np.deg2rad(rng.uniform([-5, -3, -8], [5, 3, 8]))
    scale = 1.0 + pose_jitter * rng.uniform(-0.06, 0.04, size=3)
    shift = pose_jitter * rng.uniform([-0.04, -0.04, -0.03], [0.04, 0.04, 0.03])
    displacement = tuple(RandomWaveField.draw(rng, 3, (0.3, 0.9), num_waves=8) for _ in range(3))
    atrophy = float(rng.uniform(0.0, 1.0))
    lesions = []
    for _ in range(int(rng.integers(lesion_count[0], lesion_count[1] + 1))):
        side = rng.choice([-1.0, 1.0])
        centre = (
            side * rng.uniform(0.21, 0.33),
            rng.uniform(-0.3, 0.3),
            rng.uniform(0.05, 0.35),
        )
        radii = tuple(rng.uniform([0.03, 0.03, 0.05], [0.06, 0.07, 0.1]))
        lesions.append(Blob(centre=centre, radii=radii))
    infarcts = []
    if rng.random() < infarct_probability:
        side = rng.choice([-1.0, 1.0])
        infarcts.append(
            Blob(
                centre=(
                    side * rng.uniform(0.35, 0.5),
                    rng.uniform(-0.4, 0.4),
                    rng.uniform(0.1, 0.4),
                ),
                radii=tuple(rng.uniform([0.06, 0.06, 0.08], [0.1, 0.12, 0.15])),
            )
        )
    others = []
    if rng.random() < other_probability:
        others.append(
            Blob(
                centre=(rng.uniform(-0.3, 0.3), rng.uniform(-0.4, 0.4), rng.uniform(-0.1, 0.4)),
                radii=tuple(rng.uniform([0.04, 0.04, 0.06], [0.07, 0.07, 0.1])),
            )
        )
    return BrainAnatomy(
        rotation=rotation_matrix(angles),
        scale=scale,
        shift=shift,
        displacement=displacement,  # type: ignore[arg-type]
        deformation=float(deformation),
        surface=RandomWaveField.draw(rng, 3, (0.5, 1.5), num_waves=12),
        folds=RandomWaveField.draw(rng, 3, (4.0, 6.0), num_waves=32),
        folia=RandomWaveField.draw(rng, 3, (9.0, 13.0), num_waves=16),
        atrophy=atrophy,
        ventricle_size=float(rng.uniform(0.85, 1.2)),
        lesions=tuple(lesions),
        infarcts=tuple(infarcts),
        others=tuple(others),
    )


def brain_tissue_map(anatomy: BrainAnatomy, points: np.ndarray) -> np.ndarray:
    """Evaluate the brain phantom: the :class:`BrainTissue` class at each point.

    Args:
        anatomy: the subject (see :func:`draw_brain_anatomy`).
        points: ``[3, ...]`` field-of-view coordinates ordered (x = right, y = anterior,
            z = superior), e.g. from :func:`fov_grid`.

    Returns:
        ``uint8`` tissue classes with shape ``points.shape[1:]``.
    """
    # Points far outside the head are background whatever the deformation: skip them.
    rigid = to_canonical(points, anatomy.rotation, anatomy.scale, anatomy.shift)
    near_head = ellipsoid_radius(rigid, INTRACRANIAL_CENTRE, INTRACRANIAL_RADII) < 1.17 + (
        4.0 * anatomy.deformation + 0.05
    ) / min(INTRACRANIAL_RADII)
    labels = np.full(points.shape[1:], BrainTissue.BACKGROUND, dtype=np.uint8)
    labels[near_head] = _brain_tissue_labels(anatomy, points[:, near_head])
    return labels


def _brain_tissue_labels(anatomy: BrainAnatomy, points: np.ndarray) -> np.ndarray:
    """:func:`brain_tissue_map` on a flat ``[3, N]`` set of points."""
    c = anatomy.canonical(points)
    x, y, z = c
    labels = np.full(c.shape[1:], BrainTissue.BACKGROUND, dtype=np.uint8)

    radius = ellipsoid_radius(c, INTRACRANIAL_CENTRE, INTRACRANIAL_RADII)
    radius = radius / (1.0 + 0.02 * anatomy.surface(c))
    labels[radius <= 1.17] = BrainTissue.SCALP
    labels[radius <= 1.08] = BrainTissue.SKULL
    labels[(radius > 1.025) & (radius <= 1.055)] = BrainTissue.DIPLOE
    intracranial = radius <= 1.0
    labels[intracranial] = BrainTissue.CSF

    # Cerebral cortex. Sulci are the zero sheets of a folding field evaluated on the
    # direction from the centre only, so they run radially inwards from the surface; the
    # cortex is a ribbon of grey matter along the surface and along both banks of each sulcus.
    atrophy = anatomy.atrophy
    depth = (1.0 - radius) * _MEAN_CEREBRAL_RADIUS
    # Only the outer shell can hold sulci: evaluate the folding there (saves most of the time).
    shell = intracranial & (depth < 0.25)
    offsets = c[:, shell] - np.asarray(INTRACRANIAL_CENTRE)[:, None]
    normal = offsets / (np.sqrt(np.sum(offsets**2, axis=0)) + 1e-9)
    fold, fold_gradient = anatomy.folds.value_and_gradient(normal * _MEAN_CEREBRAL_RADIUS)
    tangential = fold_gradient - np.sum(fold_gradient * normal, axis=0) * normal
    to_sulcus = np.full(labels.shape, np.inf)
    to_sulcus[shell] = np.abs(fold) / (np.sqrt(np.sum(tangential**2, axis=0)) + 1e-6)
    sulcal_depth = np.zeros(labels.shape)
    sulcal_depth[shell] = 0.13 + 0.05 * anatomy.surface(2.0 * c[:, shell]) + 0.02 * atrophy
    csf_rim = 0.012 + 0.012 * atrophy
    sulcus_half_width = 0.006 + 0.008 * atrophy
    cerebrum = intracranial & (depth > csf_rim)
    labels[cerebrum] = BrainTissue.WHITE_MATTER
    along_sulcus = (to_sulcus < sulcus_half_width + _CORTEX_THICKNESS) & (
        depth < sulcal_depth + _CORTEX_THICKNESS
    )
    labels[cerebrum & ((depth < csf_rim + _CORTEX_THICKNESS) | along_sulcus)] = (
        BrainTissue.CORTICAL_GM
    )
    labels[cerebrum & (to_sulcus < sulcus_half_width) & (depth < sulcal_depth)] = BrainTissue.CSF

    # Interhemispheric fissure down to the corpus callosum, lined by cortex.
    callosal = (np.abs(y) < 0.32) & (z < 0.22)
    fissure_width = 0.012 + 0.012 * atrophy
    medial_cortex = cerebrum & ~callosal & (np.abs(x) < fissure_width + _CORTEX_THICKNESS)
    labels[medial_cortex & (labels == BrainTissue.WHITE_MATTER)] = BrainTissue.CORTICAL_GM
    labels[intracranial & ~callosal & (np.abs(x) < fissure_width)] = BrainTissue.CSF

    # Deep grey nuclei (putamen, caudate, thalamus), then the ventricles.
    for side in (-1.0, 1.0):
        for centre, radii in (
            ((0.26, 0.05, -0.02), (0.06, 0.15, 0.14)),
            ((0.16, 0.17, 0.13), (0.055, 0.1, 0.12)),
            ((0.09, -0.1, 0.0), (0.08, 0.12, 0.12)),
        ):
            mirrored = (side * centre[0], centre[1], centre[2])
            inside = ellipsoid_radius(c, mirrored, radii) <= 1.0
            labels[inside & cerebrum] = BrainTissue.BASAL_GANGLIA
    size = anatomy.ventricle_size * (1.0 + 0.5 * atrophy)
    for side in (-1.0, 1.0):
        arch = 0.16 - 0.6 * (y - 0.02) ** 2
        lateral = (
            ((x - side * 0.1) / (0.05 * size)) ** 2
            + ((y - 0.02) / 0.36) ** 2
            + ((z - arch) / (0.07 * size)) ** 2
        ) <= 1.0
        labels[lateral & intracranial] = BrainTissue.VENTRICLE
    third = (np.abs(x) < 0.014 * size) & (y > -0.22) & (y < 0.08) & (z > -0.12) & (z < 0.08)
    labels[third & intracranial] = BrainTissue.VENTRICLE

    # Infratentorial: cerebellum (cortex with white-matter arbor vitae), then brainstem.
    cerebellar_radius = ellipsoid_radius(c, CEREBELLUM_CENTRE, CEREBELLUM_RADII)
    labels[intracranial & (cerebellar_radius <= 1.1)] = BrainTissue.CSF
    cerebellum = cerebellar_radius <= 1.0
    folia = np.zeros(labels.shape)
    folia[cerebellum] = np.sin(
        2.0 * np.pi * 7.0 * cerebellar_radius[cerebellum] + 1.5 * anatomy.folia(c[:, cerebellum])
    )
    cerebellar_depth = 1.0 - cerebellar_radius
    labels[cerebellum] = BrainTissue.CEREBELLAR_GM
    arbor = cerebellum & ((cerebellar_depth > 0.45) | ((folia > 0.55) & (cerebellar_depth > 0.12)))
    labels[arbor] = BrainTissue.CEREBELLAR_WM
    labels[cerebellum & (folia < -0.85) & (cerebellar_depth < 0.15)] = BrainTissue.CSF
    fourth = ellipsoid_radius(c, (0.0, -0.26, -0.4), (0.05 * size, 0.035, 0.05)) <= 1.0
    labels[fourth] = BrainTissue.VENTRICLE

    pons = 0.03 * np.exp(-(((z + 0.38) / 0.1) ** 2))
    stem_axis = -0.13 + 0.08 * (z + 0.1) + pons  # the stem leans forwards; the pons bulges
    stem_radius = np.sqrt((x / 0.1) ** 2 + ((y - stem_axis) / (0.1 + pons)) ** 2)
    brainstem = (stem_radius <= 1.0) & (z < -0.08)
    labels[brainstem] = BrainTissue.BRAINSTEM

    # Focal findings are painted over the tissue they occur in.
    white_matter = labels == BrainTissue.WHITE_MATTER
    for blob in anatomy.lesions:
        labels[white_matter & blob.contains(c)] = BrainTissue.WM_LESION
    parenchyma = np.isin(labels, [BrainTissue.CORTICAL_GM, BrainTissue.WHITE_MATTER])
    for blob in anatomy.infarcts:
        labels[parenchyma & blob.contains(c)] = BrainTissue.INFARCTION
    cerebral = np.isin(
        labels, [BrainTissue.CORTICAL_GM, BrainTissue.WHITE_MATTER, BrainTissue.BASAL_GANGLIA]
    )
    for blob in anatomy.others:
        labels[cerebral & blob.contains(c)] = BrainTissue.OTHER
    return labels
