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

from med_unlearning.data.phantoms.brain import (
    CEREBELLUM_CENTRE,
    Blob,
    BrainAnatomy,
    BrainTissue,
    brain_tissue_map,
    draw_brain_anatomy,
)
from med_unlearning.data.phantoms.fields import (
    RandomWaveField,
    block_mean,
    derive_rng,
    fov_grid,
    rotation_matrix,
    smooth_noise,
    stable_digest,
)
from med_unlearning.data.phantoms.knee import (
    KNEE_SIZE,
    KneeAnatomy,
    KneeSlice,
    KneeTissue,
    draw_knee_anatomy,
    knee_tissue_slice,
)

__all__ = [
    "CEREBELLUM_CENTRE",
    "Blob",
    "BrainAnatomy",
    "BrainTissue",
    "KNEE_SIZE",
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
