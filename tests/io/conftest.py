"""Tiny fastMRI volumes and ISMRMRD headers for the I/O tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from med_unlearning.io.fastmri import FastMRIVolume

HEADER_TEMPLATE = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"
               xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
               xmlns:xs="http://www.w3.org/2001/XMLSchema"
               xsi:schemaLocation="http://www.ismrm.org/ISMRMRD ismrmrd.xsd">
  <studyInformation><studyTime>15:36:05</studyTime></studyInformation>
  <measurementInformation>
    <measurementID>45160_38718125_38718134_1158</measurementID>
    <patientPosition>HFS</patientPosition>
    <protocolName>AX FLAIR_FBB</protocolName>
  </measurementInformation>
  <acquisitionSystemInformation>
    <systemVendor>{vendor}</systemVendor>
    <systemModel>{model}</systemModel>
    <systemFieldStrength_T>{field}</systemFieldStrength_T>
    <relativeReceiverNoiseBandwidth>0.793</relativeReceiverNoiseBandwidth>
    <receiverChannels>{coils}</receiverChannels>
    <institutionName>NYU</institutionName>
  </acquisitionSystemInformation>
  <experimentalConditions>
    <H1resonanceFrequency_Hz>123252187</H1resonanceFrequency_Hz>
  </experimentalConditions>
  <encoding>
    <encodedSpace>
      <matrixSize><x>{enc_x}</x><y>{enc_y}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>440</x><y>220</y><z>5</z></fieldOfView_mm>
    </encodedSpace>
    <reconSpace>
      <matrixSize><x>{rec_x}</x><y>{rec_y}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>220</x><y>220</y><z>5</z></fieldOfView_mm>
    </reconSpace>
    <trajectory>cartesian</trajectory>
    <encodingLimits>
      <kspace_encoding_step_1>
        <minimum>0</minimum><maximum>{lim_max}</maximum><center>{lim_center}</center>
      </kspace_encoding_step_1>
      <kspace_encoding_step_2>
        <minimum>0</minimum><maximum>0</maximum><center>0</center>
      </kspace_encoding_step_2>
      <slice><minimum>0</minimum><maximum>15</maximum><center>0</center></slice>
    </encodingLimits>
    <parallelImaging>
      <accelerationFactor><kspace_encoding_step_1>1</kspace_encoding_step_1></accelerationFactor>
    </parallelImaging>
  </encoding>
  <sequenceParameters>
    <TR>9000</TR><TE>86</TE><TI>2500</TI><flipAngle_deg>150</flipAngle_deg>
  </sequenceParameters>
</ismrmrdHeader>
"""


def fastmri_header(
    vendor: str = "SIEMENS",
    model: str = "Skyra",
    field: float = 2.89362,
    coils: int = 4,
    encoded: tuple[int, int] = (32, 24),
    recon: tuple[int, int] = (16, 16),
) -> bytes:
    """A small ISMRMRD header laid out like fastMRI's."""
    return HEADER_TEMPLATE.format(
        vendor=vendor, model=model, field=field, coils=coils, enc_x=encoded[0],
        enc_y=encoded[1], rec_x=recon[0], rec_y=recon[1], lim_max=encoded[1] - 1,
        lim_center=encoded[1] // 2,
    ).encode("utf-8")


@pytest.fixture
def make_volume() -> Callable[..., FastMRIVolume]:
    """Factory for small random in-memory volumes (multi- or single-coil)."""

    def factory(
        multicoil: bool = True, slices: int = 3, coils: int = 4, seed: int = 0, **attrs: Any
    ) -> FastMRIVolume:
        rng = np.random.default_rng(seed)
        shape = (slices, coils, 32, 24) if multicoil else (slices, 32, 24)
        noise = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        kspace = noise.astype(np.complex64)
        recon = rng.random((slices, 16, 16), dtype=np.float32)
        base = {
            "acquisition": "AXFLAIR" if multicoil else "CORPD_FBK",
            "max": float(recon.max()),
            "norm": float(np.linalg.norm(recon)),
            "patient_id": f"patient-{seed}",
        }
        return FastMRIVolume(
            kspace=kspace,
            reconstruction=recon,
            ismrmrd_header=fastmri_header(coils=coils if multicoil else 1),
            attrs={**base, **attrs},
        )

    return factory


@pytest.fixture
def make_header() -> Callable[..., bytes]:
    """Factory for fastMRI-like ISMRMRD headers (see :func:`fastmri_header`)."""
    return fastmri_header
