"""The coronal knee phantom: tissue classes, a subject's anatomy and its slices at any grid."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy import ndimage

from med_unlearning.data.phantoms.fields import (
    RandomWaveField,
    rotation_matrix,
    smooth_noise,
    smoothstep,
    to_canonical,
)


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
    u, v = to_canonical(grid, rotation, np.array([anatomy.scale] * 2), shift)
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
    flare = smoothstep(j + 0.6, j + 0.2, v)
    condyle_width = anatomy.condyle_offset + 0.17
    femur_width = anatomy.shaft_width + (condyle_width - anatomy.shaft_width) * flare
    femur = (v > condyle_centre_v) & (np.abs(u) < femur_width * (0.75 + 0.25 * middle))
    for side, radius in zip((-1.0, 1.0), anatomy.condyle_radii, strict=True):
        centre_u = side * anatomy.condyle_offset
        radius = radius * (0.6 + 0.4 * middle)
        femur |= (u - centre_u) ** 2 + (v - (j + 0.01 + radius)) ** 2 <= radius**2
    notch_width = 0.07 * smoothstep(0.3, 0.5, position)
    notch = (np.abs(u) < notch_width) & (v < condyle_centre_v + 0.06)
    femur &= ~notch

    # Tibia: plateau with an eminence, metaphysis tapering into the shaft.
    eminence = 0.05 * np.exp(-((u / 0.045) ** 2)) * smoothstep(0.25, 0.45, position)
    plateau = j - 0.035 + 0.012 * np.cos(np.pi * u / 0.2) + eminence
    taper = smoothstep(j - 0.7, j - 0.3, v)
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
    meniscus = (
        (outer > 0)
        & (np.abs(v - joint_mid) < 0.05 * np.clip(outer / 0.14, 0, 1))
        & (np.abs(u) < anatomy.plateau_width + 0.01)
    )
    labels[meniscus] = KneeTissue.LIGAMENT
    collateral_line = np.abs(np.abs(u) - (anatomy.plateau_width + 0.04)) < 0.017
    collateral = collateral_line & (np.abs(v - j) < 0.25)
    labels[collateral & limb] = KneeTissue.LIGAMENT
    if notch_width > 0.01:
        slope = 0.5 if position < 0.7 else -0.5
        cruciate = (
            (np.abs(u - slope * (v - j - 0.08)) < 0.025)
            & (v > plateau)
            & (v < condyle_centre_v + 0.05)
        )
        labels[cruciate & (np.abs(u) < notch_width)] = KneeTissue.LIGAMENT

    # Bones last: marrow with a cortical rim and a dark physeal scar.
    texture = np.ones((rows, cols))
    trabeculae = smooth_noise(rng, (rows, cols), sigma=0.8)
    for bone in bones:
        depth = _distance_inside(bone, pixel)
        labels[bone] = KneeTissue.MARROW
        shaft_cortex = 0.015 + 0.03 * smoothstep(0.3, 0.6, np.abs(v - j))
        labels[bone & (depth < shaft_cortex)] = KneeTissue.CORTICAL_BONE
    for scar in (j + 0.3, j - 0.22):
        line = scar + 0.02 * np.sin(2 * np.pi * u / 0.4)
        scar_pixels = (labels == KneeTissue.MARROW) & (np.abs(v - line) < 0.008)
        labels[scar_pixels] = KneeTissue.CORTICAL_BONE
    texture = np.where(labels == KneeTissue.MARROW, 1.0 - 0.22 * np.tanh(1.5 * trabeculae), texture)
    fibres = anatomy.striations(np.stack([u, v]))
    texture = np.where(labels == KneeTissue.MUSCLE, 1.0 + 0.16 * np.tanh(fibres), texture)
    return KneeSlice(labels=labels, texture=texture)
