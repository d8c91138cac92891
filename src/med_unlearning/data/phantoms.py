"""Synthetic anatomies for the built-in sample study: a 3D brain and a coronal knee.

The phantoms are continuous functions of position: an anatomy is drawn once per volume or
subject from a seeded generator (:func:`draw_brain_anatomy`, :func:`draw_knee_anatomy`) and
then evaluated at any grid (:func:`brain_tissue_map`, :func:`knee_tissue_slice`). The same
subject therefore has the same anatomy whatever the image size, and a finer grid only adds
detail. Positions are *field-of-view units*: every axis of the grid runs from -1 to 1, so the
head or knee fills the image whatever its shape; physical spacing is only a property of the
file that stores the result.

Tissue maps hold :class:`BrainTissue` / :class:`KneeTissue` classes. The acquisition
simulators (:mod:`med_unlearning.data.sample_fastmri`, :mod:`med_unlearning.data.sample_mrbrains`)
turn them into contrast-weighted images.

The two anatomies are built to differ the way the studies' brain and knee data differ: the
brain is round, layered and folded with soft isotropic texture; the knee is made of long
vertical bones, bright fatty marrow with fine trabecular texture, thin cartilage lines and
oriented muscle striations.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy import ndimage

__all__ = [
    "Blob",
    "BrainAnatomy",
    "BrainTissue",
    "KneeAnatomy",
    "KneeSlice",
    "KneeTissue",
    "RandomWaveField",
    "block_mean",
    "brain_tissue_map",
    "derive_rng",
    "draw_brain_anatomy",
    "draw_knee_anatomy",
    "fov_grid",
    "knee_tissue_slice",
    "rotation_matrix",
    "smooth_noise",
    "stable_digest",
]


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


class KneeTissue(IntEnum):
    """Tissue classes of the coronal knee phantom."""

    BACKGROUND = 0
    SKIN = 1
    FAT = 2
    MUSCLE = 3
    CORTICAL_BONE = 4
    MARROW = 5
    CARTILAGE = 6
    FLUID = 7
    LIGAMENT = 8


# --------------------------------------------------------------------------------------------
# Seeds and random fields
# --------------------------------------------------------------------------------------------

#: Points per block when evaluating wave fields (bounds memory at ``waves x _CHUNK``).
_CHUNK = 65536


def derive_rng(seed: int, *keys: str | int) -> np.random.Generator:
    """Return a generator seeded by ``seed`` and a path of keys (e.g. ``"brain", 3``).

    The keys are hashed, so each volume's randomness depends only on the global seed and the
    volume's own identity: adding or removing other volumes never changes it.
    """
    text = "/".join([str(int(seed)), *(str(key) for key in keys)])
    entropy = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "little")
    return np.random.default_rng(np.random.SeedSequence(entropy))


def stable_digest(*parts: str | int, length: int = 64) -> str:
    """Return a stable hexadecimal digest of ``parts`` (like fastMRI's hashed patient ids)."""
    text = "/".join(str(part) for part in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


@dataclass(frozen=True)
class RandomWaveField:
    """A smooth random field: a sum of plane waves with random directions and phases.

    ``f(x) = sqrt(2/K) * sum_k cos(2*pi*<w_k, x> + phi_k)`` has zero mean and unit variance,
    is defined everywhere (no grid), and its texture scale is set by the wave frequencies
    (cycles per field-of-view unit).

    Attributes:
        wave_vectors: ``[K, D]`` frequencies in cycles per unit.
        phases: ``[K]`` phases in radians.
    """

    wave_vectors: np.ndarray
    phases: np.ndarray

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        dims: int,
        frequency_range: tuple[float, float],
        num_waves: int = 24,
        orientation: float | None = None,
        orientation_spread: float = np.pi,
    ) -> RandomWaveField:
        """Draw a field.

        Args:
            rng: random generator.
            dims: number of spatial dimensions.
            frequency_range: min and max wave frequency, cycles per unit.
            num_waves: number of plane waves (more = closer to Gaussian).
            orientation: 2D only: mean wave-vector angle (radians, from the first axis).
                ``None`` draws isotropic directions.
            orientation_spread: 2D only: half-width of the uniform angle distribution.
        """
        frequencies = rng.uniform(*frequency_range, size=num_waves)
        if orientation is None:
            directions = rng.normal(size=(num_waves, dims))
            directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        else:
            if dims != 2:
                raise ValueError(f"orientation is only defined for 2D fields, got dims={dims}")
            angles = orientation + rng.uniform(-orientation_spread, orientation_spread, num_waves)
            directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        phases = rng.uniform(0.0, 2.0 * np.pi, size=num_waves)
        return cls(wave_vectors=directions * frequencies[:, None], phases=phases)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Evaluate the field at ``points`` of shape ``[D, ...]``; returns shape ``[...]``."""
        return self.value_and_gradient(points, gradient=False)[0]

    def value_and_gradient(
        self, points: np.ndarray, gradient: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Evaluate the field and (optionally) its spatial gradient ``[D, ...]`` at ``points``."""
        dims, grid_shape = points.shape[0], points.shape[1:]
        flat = points.reshape(dims, -1)
        value = np.empty(flat.shape[1])
        slope = np.empty_like(flat) if gradient else None
        weight = np.sqrt(2.0 / len(self.phases))
        for start in range(0, flat.shape[1], _CHUNK):
            chunk = slice(start, start + _CHUNK)
            argument = 2.0 * np.pi * (self.wave_vectors @ flat[:, chunk]) + self.phases[:, None]
            value[chunk] = weight * np.cos(argument).sum(axis=0)
            if slope is not None:
                slope[:, chunk] = -weight * 2.0 * np.pi * (self.wave_vectors.T @ np.sin(argument))
        value = value.reshape(grid_shape)
        return value, None if slope is None else slope.reshape(points.shape)

    def __repr__(self) -> str:
        norms = np.linalg.norm(self.wave_vectors, axis=1)
        return (
            f"RandomWaveField(dims={self.wave_vectors.shape[1]}, waves={len(self.phases)}, "
            f"frequency={norms.min():.2f}..{norms.max():.2f} cycles/unit)"
        )


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise on a pixel grid, rescaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=sigma, mode="wrap")
    return field / max(float(field.std()), 1e-12)


def fov_grid(shape: tuple[int, ...], supersample: int = 1) -> np.ndarray:
    """Pixel-centre coordinates in field-of-view units, shape ``[D, *shape*supersample]``.

    Axis ``i`` runs over ``(-1, 1)``; with ``supersample=s`` each pixel is split into
    ``s`` sub-pixels per axis (for anti-aliased rendering, undone with :func:`block_mean`).
    """
    axes = []
    for size in shape:
        count = size * supersample
        axes.append((np.arange(count) + 0.5) / count * 2.0 - 1.0)
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=0)


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Average non-overlapping ``factor``-sized blocks over every axis (area downsampling)."""
    if factor == 1:
        return image
    shape = []
    for size in image.shape:
        if size % factor:
            raise ValueError(f"axis of size {size} is not a multiple of {factor}")
        shape.extend([size // factor, factor])
    return image.reshape(shape).mean(axis=tuple(range(1, 2 * image.ndim, 2)))


def rotation_matrix(angles: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """Rotation matrix from angles (radians): one angle = 2D, three = 3D (about x, y, z)."""
    angles = np.asarray(angles, dtype=np.float64)
    if angles.size == 1:
        c, s = np.cos(angles.item()), np.sin(angles.item())
        return np.array([[c, -s], [s, c]])
    if angles.size != 3:
        raise ValueError(f"expected 1 or 3 angles, got {angles.size}")
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _to_canonical(
    points: np.ndarray, rotation: np.ndarray, scale: np.ndarray, shift: np.ndarray
) -> np.ndarray:
    """Map grid points ``[D, ...]`` into the anatomy's canonical frame (inverse pose)."""
    centred = points - shift.reshape((-1,) + (1,) * (points.ndim - 1))
    canonical = np.tensordot(rotation.T, centred, axes=(1, 0))
    return canonical / scale.reshape((-1,) + (1,) * (points.ndim - 1))


def _ellipsoid_radius(points: np.ndarray, centre: tuple[float, ...], radii: tuple[float, ...]):
    """Normalised ellipsoidal radius: < 1 inside the ellipsoid, 1 on its surface."""
    total = np.zeros(points.shape[1:])
    for axis, (c, r) in enumerate(zip(centre, radii, strict=True)):
        total += ((points[axis] - c) / r) ** 2
    return np.sqrt(total)


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


# --------------------------------------------------------------------------------------------
# Brain
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    """An ellipsoidal focal finding (lesion, infarct) in canonical brain coordinates."""

    centre: tuple[float, float, float]
    radii: tuple[float, float, float]

    def contains(self, canonical: np.ndarray) -> np.ndarray:
        """Boolean mask of the canonical points inside the blob."""
        return _ellipsoid_radius(canonical, self.centre, self.radii) <= 1.0


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
        canonical = _to_canonical(points, self.rotation, self.scale, self.shift)
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
                    side * rng.uniform(0.35, 0.5), rng.uniform(-0.4, 0.4), rng.uniform(0.1, 0.4)
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
    rigid = _to_canonical(points, anatomy.rotation, anatomy.scale, anatomy.shift)
    near_head = _ellipsoid_radius(rigid, INTRACRANIAL_CENTRE, INTRACRANIAL_RADII) < 1.17 + (
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

    radius = _ellipsoid_radius(c, INTRACRANIAL_CENTRE, INTRACRANIAL_RADII)
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
            inside = _ellipsoid_radius(c, mirrored, radii) <= 1.0
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
    cerebellar_radius = _ellipsoid_radius(c, CEREBELLUM_CENTRE, CEREBELLUM_RADII)
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
    fourth = _ellipsoid_radius(c, (0.0, -0.26, -0.4), (0.05 * size, 0.035, 0.05)) <= 1.0
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


# --------------------------------------------------------------------------------------------
# Knee (coronal)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KneeAnatomy:
    """One subject's knee, seen in coronal slices (anterior to posterior).

    Canonical axes are (u, v) = (lateral, superior) in field-of-view units; the joint line is
    near ``v = joint_line``.

    Attributes:
        rotation: in-plane tilt of the leg (radians).
        scale: size factor of the knee.
        shift: ``[2]`` position of the knee in the field of view.
        joint_line: vertical position of the joint space.
        condyle_radii: (medial, lateral) femoral condyle radii.
        condyle_offset: horizontal distance of each condyle centre from the midline.
        plateau_width: half-width of the tibial plateau.
        shaft_width: half-width of the femoral and tibial shafts.
        limb_width: half-width of the soft-tissue outline at the joint.
        fat_thickness: (medial, lateral) subcutaneous fat thickness.
        septa: intermuscular fat septa as (position, amplitude, wavelength, phase) rows.
        striations: oriented field for muscle fibre texture.
        outline: low-frequency field that makes the soft-tissue outline irregular.
    """

    rotation: float
    scale: float
    shift: np.ndarray
    joint_line: float
    condyle_radii: tuple[float, float]
    condyle_offset: float
    plateau_width: float
    shaft_width: float
    limb_width: float
    fat_thickness: tuple[float, float]
    septa: np.ndarray
    striations: RandomWaveField
    outline: RandomWaveField

    def __repr__(self) -> str:
        return (
            f"KneeAnatomy(rotation={np.rad2deg(self.rotation):.1f}deg, scale={self.scale:.3f}, "
            f"joint_line={self.joint_line:.3f}, "
            f"condyles={np.round(self.condyle_radii, 3).tolist()}, "
            f"septa={len(self.septa)})"
        )


@dataclass(frozen=True)
class KneeSlice:
    """A rendered knee slice: tissue classes plus a multiplicative texture.

    Attributes:
        labels: ``uint8`` :class:`KneeTissue` classes.
        texture: multiplicative intensity modulation (trabecular bone, muscle fibres).
    """

    labels: np.ndarray
    texture: np.ndarray


#: Default knee size relative to the field of view. fastMRI's coronal knee field of view is
#: 140 mm and an adult knee is about 90-110 mm wide, so the limb spans ~60-70 % of the image
#: width with background at both sides. A limb filling the whole width overlaps every
#: aliasing replica of an undersampled acquisition, which no reconstruction prior learnt on
#: other anatomy can resolve (the sample's brain-only oracle then fell below zero-filling).
KNEE_SIZE = 0.8


def draw_knee_anatomy(
    rng: np.random.Generator, *, pose_jitter: float = 1.0, size: float = KNEE_SIZE
) -> KneeAnatomy:
    """Draw one subject's knee anatomy (sizes, pose, soft tissue, muscle texture).

    Args:
        rng: the subject's own generator (see :func:`derive_rng`).
        pose_jitter: scales the random tilt, size change and shift (0 = canonical pose).
        size: knee size relative to the field of view (1 = the limb fills ~80 % of it).
    """
    septa = np.stack(
        [
            rng.choice([-1.0, 1.0], size=5) * rng.uniform(0.25, 0.62, size=5),
            rng.uniform(0.01, 0.04, size=5),
            rng.uniform(0.5, 1.5, size=5),
            rng.uniform(0.0, 2.0 * np.pi, size=5),
        ],
        axis=1,
    )
    return KneeAnatomy(
        rotation=float(pose_jitter * np.deg2rad(rng.uniform(-8.0, 8.0))),
        scale=float(size * (1.0 + pose_jitter * rng.uniform(-0.08, 0.06))),
        shift=pose_jitter * rng.uniform(-0.05, 0.05, size=2),
        joint_line=float(rng.uniform(-0.1, 0.05)),
        condyle_radii=(float(rng.uniform(0.19, 0.23)), float(rng.uniform(0.17, 0.21))),
        condyle_offset=float(rng.uniform(0.18, 0.22)),
        plateau_width=float(rng.uniform(0.4, 0.46)),
        shaft_width=float(rng.uniform(0.17, 0.22)),
        limb_width=float(rng.uniform(0.7, 0.82)),
        fat_thickness=(float(rng.uniform(0.08, 0.16)), float(rng.uniform(0.05, 0.1))),
        septa=septa,
        # Waves along u (horizontal wave vectors) = stripes along v: vertical muscle fibres.
        striations=RandomWaveField.draw(
            rng, 2, (9.0, 16.0), num_waves=24, orientation=0.0, orientation_spread=0.2
        ),
        outline=RandomWaveField.draw(rng, 2, (0.5, 1.5), num_waves=8),
    )


def _distance_inside(mask: np.ndarray, pixel: float) -> np.ndarray:
    """Distance (field-of-view units) from each pixel of ``mask`` to its outside."""
    return ndimage.distance_transform_edt(mask) * pixel


def knee_tissue_slice(
    anatomy: KneeAnatomy,
    position: float,
    points: np.ndarray,
    rng: np.random.Generator,
    slice_rotation: float = 0.0,
    slice_shift: tuple[float, float] = (0.0, 0.0),
) -> KneeSlice:
    """Render one coronal knee slice.

    Args:
        anatomy: the subject (see :func:`draw_knee_anatomy`).
        position: 0 (anterior) .. 1 (posterior) position of the slice through the knee;
            sets the condyle sizes, the intercondylar notch, the cruciates and the fibula.
        points: ``[2, H, W]`` field-of-view coordinates (row = inferior-superior flipped so
            that row 0 is superior, column = u) on a regular grid, e.g. from :func:`fov_grid`.
        rng: generator of the slice's trabecular texture (its draws depend on the grid size,
            so give it a generator of its own to keep the anatomy independent of the size).
        slice_rotation: extra in-plane rotation of this slice (radians), e.g. small motion.
        slice_shift: extra shift of this slice (field-of-view units).

    Returns:
        The slice's tissue classes and texture.
    """
    rows, cols = points.shape[1:]
    pixel = 2.0 / cols
    # points[0] runs top-to-bottom; canonical v points up.
    grid = np.stack([points[1], -points[0]])
    rotation = rotation_matrix(anatomy.rotation + slice_rotation)
    shift = anatomy.shift + np.asarray(slice_shift, dtype=np.float64)
    u, v = _to_canonical(grid, rotation, np.array([anatomy.scale] * 2), shift)
    labels = np.full((rows, cols), KneeTissue.BACKGROUND, dtype=np.uint8)

    middle = 1.0 - ((position - 0.5) / 0.75) ** 2  # bone cross-sections shrink at the ends
    j = anatomy.joint_line

    # Soft tissue: limb outline, skin, subcutaneous fat (thicker medially), muscle.
    bulge = 0.05 * np.exp(-(((v - j) / 0.35) ** 2))
    half_width = (anatomy.limb_width + bulge) * (1.0 + 0.03 * anatomy.outline(np.stack([u, v])))
    limb = np.abs(u) < half_width
    from_edge = half_width - np.abs(u)
    fat = np.where(u < 0, anatomy.fat_thickness[0], anatomy.fat_thickness[1])
    labels[limb] = KneeTissue.MUSCLE
    labels[limb & (from_edge < fat)] = KneeTissue.FAT
    labels[limb & (from_edge < 0.012)] = KneeTissue.SKIN
    for position_u, amplitude, wavelength, phase in anatomy.septa:
        line = position_u + amplitude * np.sin(2 * np.pi * v / wavelength + phase)
        labels[limb & (np.abs(u - line) < 0.011) & (from_edge > fat)] = KneeTissue.FAT
    periarticular = limb & (np.abs(v - j) < 0.16 * middle + 0.02) & (np.abs(u) < 0.52)
    labels[periarticular & (labels == KneeTissue.MUSCLE)] = KneeTissue.FAT

    # Femur: shaft flaring into two condyles, with an intercondylar notch posteriorly.
    condyle_centre_v = j + 0.2
    flare = _smoothstep(j + 0.6, j + 0.2, v)
    condyle_width = anatomy.condyle_offset + 0.17
    femur_width = anatomy.shaft_width + (condyle_width - anatomy.shaft_width) * flare
    femur = (v > condyle_centre_v) & (np.abs(u) < femur_width * (0.75 + 0.25 * middle))
    for side, radius in zip((-1.0, 1.0), anatomy.condyle_radii, strict=True):
        centre_u = side * anatomy.condyle_offset
        radius = radius * (0.6 + 0.4 * middle)
        femur |= (u - centre_u) ** 2 + (v - (j + 0.01 + radius)) ** 2 <= radius**2
    notch_width = 0.07 * _smoothstep(0.3, 0.5, position)
    notch = (np.abs(u) < notch_width) & (v < condyle_centre_v + 0.06)
    femur &= ~notch

    # Tibia: plateau with an eminence, metaphysis tapering into the shaft.
    eminence = 0.05 * np.exp(-((u / 0.045) ** 2)) * _smoothstep(0.25, 0.45, position)
    plateau = j - 0.035 + 0.012 * np.cos(np.pi * u / 0.2) + eminence
    taper = _smoothstep(j - 0.7, j - 0.3, v)
    plateau_width = anatomy.plateau_width * (0.8 + 0.2 * middle)
    tibia_width = anatomy.shaft_width + (plateau_width - anatomy.shaft_width) * taper
    tibia = (v < plateau) & (np.abs(u) < tibia_width)

    bones = [femur, tibia]
    if position > 0.55:
        head = ((u - 0.5) / 0.08) ** 2 + ((v - (j - 0.32)) / 0.1) ** 2 <= 1.0
        shaft = (np.abs(u - 0.5) < 0.045) & (v < j - 0.32)
        bones.append((head | shaft) & limb)

    # Cartilage on the articular surfaces, a thin fluid line where they meet.
    femur_distance = ndimage.distance_transform_edt(~femur) * pixel
    tibia_distance = ndimage.distance_transform_edt(~tibia) * pixel
    articular = (np.abs(v - j) < 0.12) & (np.abs(u) < anatomy.plateau_width - 0.02)
    femoral_cartilage = (femur_distance > 0) & (femur_distance < 0.032) & (v < condyle_centre_v)
    tibial_cartilage = (tibia_distance > 0) & (tibia_distance < 0.028)
    cartilage = articular & (femoral_cartilage | tibial_cartilage)
    labels[cartilage] = KneeTissue.CARTILAGE
    midway = np.abs(femur_distance - tibia_distance) < 0.008
    joint_space = articular & midway & (femur_distance < 0.05)
    labels[joint_space] = KneeTissue.FLUID

    # Menisci at the joint margins, collateral and cruciate ligaments.
    joint_mid = (j + 0.01 + plateau) / 2.0
    outer = np.abs(u) - (anatomy.plateau_width - 0.16)
    meniscus = (outer > 0) & (np.abs(v - joint_mid) < 0.05 * np.clip(outer / 0.14, 0, 1)) & (
        np.abs(u) < anatomy.plateau_width + 0.01
    )
    labels[meniscus] = KneeTissue.LIGAMENT
    collateral_line = np.abs(np.abs(u) - (anatomy.plateau_width + 0.04)) < 0.017
    collateral = collateral_line & (np.abs(v - j) < 0.25)
    labels[collateral & limb] = KneeTissue.LIGAMENT
    if notch_width > 0.01:
        slope = 0.5 if position < 0.7 else -0.5
        cruciate = (np.abs(u - slope * (v - j - 0.08)) < 0.025) & (v > plateau) & (
            v < condyle_centre_v + 0.05
        )
        labels[cruciate & (np.abs(u) < notch_width)] = KneeTissue.LIGAMENT

    # Bones last: marrow with a cortical rim and a dark physeal scar.
    texture = np.ones((rows, cols))
    trabeculae = smooth_noise(rng, (rows, cols), sigma=0.8)
    for bone in bones:
        depth = _distance_inside(bone, pixel)
        labels[bone] = KneeTissue.MARROW
        shaft_cortex = 0.015 + 0.03 * _smoothstep(0.3, 0.6, np.abs(v - j))
        labels[bone & (depth < shaft_cortex)] = KneeTissue.CORTICAL_BONE
    for scar in (j + 0.3, j - 0.22):
        line = scar + 0.02 * np.sin(2 * np.pi * u / 0.4)
        scar_pixels = (labels == KneeTissue.MARROW) & (np.abs(v - line) < 0.008)
        labels[scar_pixels] = KneeTissue.CORTICAL_BONE
    texture = np.where(labels == KneeTissue.MARROW, 1.0 - 0.22 * np.tanh(1.5 * trabeculae), texture)
    fibres = anatomy.striations(np.stack([u, v]))
    texture = np.where(labels == KneeTissue.MUSCLE, 1.0 + 0.16 * np.tanh(fibres), texture)
    return KneeSlice(labels=labels, texture=texture)
