"""Tiny in-memory volumes and images for the Kedro dataset tests."""

from __future__ import annotations

import base64
from collections.abc import Callable

import nibabel as nib
import numpy as np
import pytest

from med_unlearning.io.fastmri import FastMRIVolume

HEADER = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><acquisitionSystemInformation>'
    b"<systemVendor>SIEMENS</systemVendor><systemModel>Skyra</systemModel>"
    b"</acquisitionSystemInformation></ismrmrdHeader>"
)


@pytest.fixture
def make_volume() -> Callable[..., FastMRIVolume]:
    """Factory for small random volumes; ``multicoil=False`` gives single-coil k-space."""

    def factory(multicoil: bool = True, seed: int = 0, with_recon: bool = True) -> FastMRIVolume:
        rng = np.random.default_rng(seed)
        shape = (3, 2, 16, 12) if multicoil else (3, 16, 12)
        kspace = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
        recon = rng.random((3, 8, 8), dtype=np.float32) if with_recon else None
        attrs = {"acquisition": "AXT2", "norm": 1.5, "patient_id": f"p{seed}", "max": 1.0}
        return FastMRIVolume(kspace, recon, HEADER, attrs)

    return factory


@pytest.fixture
def make_image() -> Callable[..., nib.Nifti1Image]:
    """Factory for small random NIfTI images on a 0.958 x 0.958 x 3 mm grid."""

    def factory(shape: tuple[int, ...] = (10, 8, 6), seed: int = 0) -> nib.Nifti1Image:
        rng = np.random.default_rng(seed)
        affine = np.diag([0.958, 0.958, 3.0, 1.0])
        affine[:3, 3] = (1.0, -2.0, 3.0)
        return nib.Nifti1Image(rng.random(shape).astype(np.float32), affine)

    return factory


@pytest.fixture
def is_png() -> Callable[[str], bool]:
    """True when a kedro-viz image preview decodes to a PNG file."""
    return lambda preview: base64.b64decode(preview).startswith(b"\x89PNG\r\n\x1a\n")
