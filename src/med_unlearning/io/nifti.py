"""NIfTI images (nibabel): lazy reading, atomic writing, grid checks, clear errors.

Reading is lazy: :func:`read_nifti` parses the header only (shape, affine and zooms are
available at once); voxels are read when the caller asks for them, preferably through
:func:`read_nifti_array`, which turns a damaged file into a :class:`NiftiFormatError` that
names it. Writing keeps the image's affine and header and is atomic (temporary file, then
rename).
"""

from __future__ import annotations

import gzip
import os
import uuid
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.arrayproxy import ArrayProxy
from nibabel.filebasedimages import ImageFileError

__all__ = [
    "AFFINE_TOLERANCE",
    "NiftiFormatError",
    "NiftiGridError",
    "check_same_grid",
    "middle_axial_slice",
    "read_nifti",
    "read_nifti_array",
    "write_nifti",
]

#: Largest absolute difference between two affines still counted as the same voxel grid.
AFFINE_TOLERANCE = 1e-3

_READ_ERRORS = (ImageFileError, OSError, EOFError, zlib.error, ValueError, KeyError)


class NiftiFormatError(ValueError):
    """A file is not a readable NIfTI image; the message names the file."""


class NiftiGridError(NiftiFormatError):
    """Two images that must share a voxel grid (an image and its label) do not."""


def read_nifti(path: str | os.PathLike, **load_args: Any) -> nib.Nifti1Image:
    """Open a NIfTI-1/NIfTI-2 file lazily (header only; voxels stay on disk).

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.
        **load_args: passed to ``nibabel.load`` (e.g. ``mmap``).

    Returns:
        A ``nibabel.Nifti1Image`` (or its subclass ``Nifti2Image``) backed by an array proxy.

    Raises:
        FileNotFoundError: the file does not exist.
        NiftiFormatError: the file is not a NIfTI image, or its header is damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NIfTI file not found: {path}")
    try:
        image = nib.load(path, **load_args)
    except _READ_ERRORS as exc:
        raise NiftiFormatError(
            f"{path}: not a readable NIfTI image (damaged, truncated or another format); "
            f"expected a NIfTI-1/NIfTI-2 .nii or .nii.gz file ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(image, nib.Nifti1Image):
        raise NiftiFormatError(
            f"{path}: read as {type(image).__name__}; expected a single-file NIfTI-1/NIfTI-2 image"
        )
    shape = image.shape
    if len(shape) < 3 or min(shape) < 1:
        raise NiftiFormatError(
            f"{path}: header gives shape {shape}; expected a 3D (or higher) image with "
            "non-empty axes"
        )
    proxy = image.dataobj
    if isinstance(proxy, ArrayProxy) and not path.name.lower().endswith(".gz"):
        # An uncompressed file's size shows truncation at once; a .nii.gz's only shows when
        # its voxels are decompressed (see read_nifti_array).
        expected = int(proxy.offset) + int(np.prod(proxy.shape)) * np.dtype(proxy.dtype).itemsize
        actual = path.stat().st_size
        if actual < expected:
            raise NiftiFormatError(
                f"{path}: truncated; the header promises {expected} bytes, the file has {actual}"
            )
    return image


def read_nifti_array(image: nib.Nifti1Image, dtype: Any = None) -> np.ndarray:
    """Read an image's voxels, naming the file if they cannot be read.

    Args:
        image: an image from :func:`read_nifti` (or one built in memory).
        dtype: optional dtype to convert to.

    Raises:
        NiftiFormatError: the voxel data is truncated or corrupt.
    """
    try:
        data = np.asarray(image.dataobj)
    except _READ_ERRORS as exc:
        raise NiftiFormatError(
            f"{image.get_filename() or '<in-memory image>'}: voxel data cannot be read "
            f"(truncated or damaged file; {type(exc).__name__}: {exc})"
        ) from exc
    return data if dtype is None else data.astype(dtype, copy=False)


def write_nifti(path: str | os.PathLike, image: nib.Nifti1Image, compresslevel: int = 1) -> None:
    """Write a NIfTI-1/NIfTI-2 image atomically, keeping its affine and header.

    The whole file is serialised in memory first (gzip-compressed when ``path`` ends in
    ``.gz``, with a zero timestamp so identical images give identical bytes), written under
    a temporary name that no ``.nii``/``.nii.gz`` listing picks up, then renamed over
    ``path``. A failed write leaves any previous file intact.

    Args:
        path: target ``.nii`` or ``.nii.gz`` file; missing parent folders are created.
        image: the image to write.
        compresslevel: gzip level for ``.nii.gz`` (1 = fast, as nibabel's default).

    Raises:
        TypeError: ``image`` is not a ``nibabel.Nifti1Image``/``Nifti2Image``.
        NiftiFormatError: ``path`` does not end in ``.nii`` or ``.nii.gz``.
    """
    path = Path(path)
    if not isinstance(image, nib.Nifti1Image):
        raise TypeError(
            f"{path}: can only write nibabel.Nifti1Image/Nifti2Image, got {type(image).__name__}"
        )
    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        raise NiftiFormatError(f"{path}: a NIfTI file name must end in .nii or .nii.gz")
    payload = image.to_bytes()
    if name.endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=compresslevel, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(temporary, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def check_same_grid(
    image: nib.Nifti1Image,
    label: nib.Nifti1Image,
    image_name: str,
    label_name: str,
    atol: float = AFFINE_TOLERANCE,
) -> None:
    """Check that a label lies on its image's voxel grid (headers only, no voxels read).

    Compares the spatial shape (first three axes) and the affine (absolute tolerance
    ``atol``, 1e-3 by default).

    Raises:
        NiftiGridError: naming both files, their shapes or affines, and what was expected.
    """
    image_shape, label_shape = tuple(image.shape[:3]), tuple(label.shape[:3])
    if image_shape != label_shape:
        raise NiftiGridError(
            f"{label_name} has shape {label_shape} but {image_name} has shape {image_shape}; "
            "expected both on the same voxel grid"
        )
    if not np.allclose(image.affine, label.affine, rtol=0.0, atol=atol):
        difference = float(np.max(np.abs(np.asarray(image.affine) - np.asarray(label.affine))))
        raise NiftiGridError(
            f"{label_name} and {image_name} have different affines (largest difference "
            f"{difference:.4g} > {atol}); expected both on the same voxel grid\n"
            f"{image_name}:\n{np.array2string(np.asarray(image.affine), precision=4)}\n"
            f"{label_name}:\n{np.array2string(np.asarray(label.affine), precision=4)}"
        )


def middle_axial_slice(image: nib.Nifti1Image) -> np.ndarray:
    """The middle slice along the third axis (the first volume of a 4D image), as float32."""
    middle = image.shape[2] // 2
    index = (slice(None), slice(None), middle) + (0,) * (len(image.shape) - 3)
    try:
        return np.asarray(image.dataobj[index], dtype=np.float32)
    except _READ_ERRORS as exc:
        raise NiftiFormatError(
            f"{image.get_filename() or '<in-memory image>'}: voxel data cannot be read "
            f"({type(exc).__name__}: {exc})"
        ) from exc
