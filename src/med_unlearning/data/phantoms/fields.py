"""Seeds, random fields and grids shared by the sample phantoms (brain and knee).

Positions are field-of-view units (every axis of a grid runs from -1 to 1); randomness derives
from a seed and string keys, so an item's anatomy does not depend on which others exist.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

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


def to_canonical(
    points: np.ndarray, rotation: np.ndarray, scale: np.ndarray, shift: np.ndarray
) -> np.ndarray:
    """Map grid points ``[D, ...]`` into the anatomy's canonical frame (inverse pose)."""
    centred = points - shift.reshape((-1,) + (1,) * (points.ndim - 1))
    canonical = np.tensordot(rotation.T, centred, axes=(1, 0))
    return canonical / scale.reshape((-1,) + (1,) * (points.ndim - 1))


def ellipsoid_radius(points: np.ndarray, centre: tuple[float, ...], radii: tuple[float, ...]):
    """Normalised ellipsoidal radius: < 1 inside the ellipsoid, 1 on its surface."""
    total = np.zeros(points.shape[1:])
    for axis, (c, r) in enumerate(zip(centre, radii, strict=True)):
        total += ((points[axis] - c) / r) ** 2
    return np.sqrt(total)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
