"""Metadata sub-pipelines: named nodes, and a run against the project's real catalog entries."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from kedro.runner import SequentialRunner

from med_unlearning.io.fastmri import FastMRIVolume, write_fastmri_volume
from med_unlearning.io.nifti import write_nifti
from med_unlearning.pipelines.metadata import fastmri_metadata_pipeline, mrbrains_metadata_pipeline


def test_nodes_are_named_and_wired() -> None:
    (fastmri,) = fastmri_metadata_pipeline().nodes
    (mrbrains,) = mrbrains_metadata_pipeline().nodes

    assert fastmri.name == "build_fastmri_metadata"
    assert fastmri.inputs == ["fastmri_raw", "fastmri_user_metadata"]
    assert fastmri.outputs == ["fastmri_metadata"]
    assert mrbrains.name == "build_mrbrains_metadata"
    assert mrbrains.inputs == ["mrbrains_raw", "mrbrains_user_metadata"]
    assert mrbrains.outputs == ["mrbrains_metadata"]


def test_including_a_sub_pipeline_twice_keeps_one_node() -> None:
    fastmri = fastmri_metadata_pipeline()
    combined = fastmri + fastmri_metadata_pipeline() + mrbrains_metadata_pipeline()
    assert sorted(node.name for node in combined.nodes) == [
        "build_fastmri_metadata", "build_mrbrains_metadata",
    ]


def _write_raw_data(root: Path) -> None:
    header = b'<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"/>'
    for name, acquisition in (("brain_0", "AXT2"), ("knee_0", "CORPDFS_FBK")):
        volume = FastMRIVolume(
            np.ones((2, 2, 8, 6), np.complex64), np.ones((2, 4, 4), np.float32), header,
            {"acquisition": acquisition, "max": 1.0, "norm": 1.0, "patient_id": name},
        )
        write_fastmri_volume(root / "01_raw" / "fastmri" / f"{name}.h5", volume)
    image = nib.Nifti1Image(np.zeros((6, 5, 4), np.float32), np.diag([0.958, 0.958, 3.0, 1.0]))
    for name in ("pre/T1", "pre/reg_IR", "pre/FLAIR", "segm"):
        write_nifti(root / "01_raw" / "mrbrains18" / "070" / f"{name}.nii.gz", image)
    (root / "01_raw" / "fastmri_metadata.csv").write_text("volume_id,site\nknee_0,NYU\n")


def test_pipelines_run_on_the_project_catalog(kedro_session, tmp_path: Path) -> None:
    _write_raw_data(tmp_path)
    pipeline = fastmri_metadata_pipeline() + mrbrains_metadata_pipeline()

    with kedro_session() as session:
        catalog = session.load_context().catalog
        SequentialRunner().run(pipeline, catalog)

    fastmri = pd.read_csv(tmp_path / "02_intermediate" / "fastmri_metadata.csv")
    mrbrains = pd.read_csv(
        tmp_path / "02_intermediate" / "mrbrains18_metadata.csv", dtype={"subject_id": str}
    )
    assert list(fastmri["anatomy"]) == ["brain", "knee"]
    assert list(fastmri["site"].fillna("-")) == ["-", "NYU"]
    assert list(mrbrains["subject_id"]) == ["070"]
    assert mrbrains.loc[0, "modalities"] == "FLAIR;IR;T1"
