"""Real data at the studies' scale: files shaped like the real datasets run end to end.

The sample data is small and regular (square k-space, centred encoding limits, one matrix
size). Real multi-coil fastMRI brain/knee files have k-space ``[slices, coils >= 8, 640, W]``
with ``W`` varying from file to file (368, 372, 396 …), 2× readout oversampling, a
``320 × 320`` ``reconstruction_rss``, zero-padded phase-encoding columns and ISMRMRD
encoding limits whose centre is *not* ``W / 2``. These tests generate a few such files and
run the recon pipeline on them through the catalog (batch 1, centre-cropped outputs).
"""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from med_unlearning.data.sample_fastmri import centered_fft2, centered_ifft2, ismrmrd_header
from med_unlearning.datasets import OptionalTorchWeightsDataset
from med_unlearning.io.fastmri import FastMRIVolume, read_fastmri_volume, write_fastmri_volume
from med_unlearning.metrics.image_quality import volume_metrics
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.segmentation import SegmentationParams
from med_unlearning.tasks.segmentation import (
    SegmentationTask,
    SegmentationTrainingSettings,
    train_segmentation,
)
from med_unlearning.training import seed_everything

#: (file name, protocol, k-space width, acquired phase-encoding lines, encoding centre)
REAL_LIKE = [
    ("file_brain_AXT2_200_6002001", "AXT2", 396, 384, 196),
    ("file_brain_AXT2_201_2010002", "AXT2", 368, 356, 180),
    ("file_brain_AXT2_202_2020003", "AXT2", 372, 360, 182),
    ("file_brain_AXT2_203_2030004", "AXT2", 368, 356, 180),
    ("file1000001", "CORPD_FBK", 372, 360, 184),
    ("file1000002", "CORPD_FBK", 368, 356, 178),
]
READOUT = 640
RECON = 320
COILS = 8
SLICES = 2


def _with_encoding_limits(header: bytes, maximum: int, centre: int) -> bytes:
    """Set ``kspace_encoding_step_1``'s maximum and centre (fastMRI's are not W / 2)."""
    text = header.decode()
    pattern = (
        r"(<kspace_encoding_step_1>\s*<minimum>0</minimum>\s*<maximum>)\d+"
        r"(</maximum>\s*<center>)\d+"
    )
    text, count = re.subn(pattern, rf"\g<1>{maximum}\g<2>{centre}", text)
    assert count == 1, "header layout changed"
    return text.encode()


def real_like_volume(
    seed: int, protocol: str, width: int, acquired: int, centre: int
) -> FastMRIVolume:
    """A multi-coil volume with real fastMRI geometry (smooth phantom, smooth coils)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(
        np.linspace(-1, 1, READOUT), np.linspace(-width / RECON, width / RECON, width),
        indexing="ij",
    )
    images = np.zeros((SLICES, READOUT, width), np.complex64)
    for index in range(SLICES):
        for _ in range(5):  # blobs inside the central 320 x 320 field of view
            cy, cx = rng.uniform(-0.3, 0.3, size=2)
            spread = rng.uniform(0.02, 0.1)
            images[index] += np.exp(-((rows - cy) ** 2 * 4 + (cols - cx) ** 2) / spread)
    angles = np.linspace(0, 2 * np.pi, COILS, endpoint=False)
    coils = np.stack([np.exp(-((rows - np.cos(a)) ** 2 + (cols - np.sin(a)) ** 2)) for a in angles])
    kspace = centered_fft2(1e-4 * images[:, None] * coils[None]).astype(np.complex64)
    # zero-padded phase-encoding columns: only [start, start + acquired) were measured
    start = width // 2 - centre
    kspace[..., :start] = 0
    kspace[..., start + acquired:] = 0
    coil_images = centered_ifft2(kspace)
    rss = np.sqrt((np.abs(coil_images) ** 2).sum(axis=1))
    top, left = (READOUT - RECON) // 2, (width - RECON) // 2
    reconstruction = rss[:, top:top + RECON, left:left + RECON].astype(np.float32)
    header = ismrmrd_header(
        protocol=protocol, scanner="Skyra", kspace_size=(READOUT, width),
        recon_size=(RECON, RECON), num_slices=SLICES, num_coils=COILS, fov_mm=220.0,
        slice_thickness_mm=5.0, measurement_id=f"real-like-{seed}",
    )
    attrs = {
        "acquisition": protocol, "max": float(reconstruction.max()),
        "norm": float(np.linalg.norm(reconstruction)), "patient_id": f"p{seed}",
    }
    return FastMRIVolume(
        kspace=kspace,
        reconstruction=reconstruction,
        ismrmrd_header=_with_encoding_limits(header, acquired - 1, centre),
        attrs=attrs,
    )


def write_real_like_fastmri(folder: Path) -> dict[str, FastMRIVolume]:
    volumes = {}
    for seed, (name, protocol, width, acquired, centre) in enumerate(REAL_LIKE):
        volume = real_like_volume(seed, protocol, width, acquired, centre)
        write_fastmri_volume(folder / f"{name}.h5", volume)
        volumes[name] = volume
    return volumes


def test_generated_files_have_the_real_geometry(tmp_path: Path) -> None:
    write_real_like_fastmri(tmp_path)
    widths = set()
    for name, _, width, acquired, centre in REAL_LIKE:
        volume = read_fastmri_volume(tmp_path / f"{name}.h5")
        assert volume.kspace.shape == (SLICES, COILS, READOUT, width)
        assert volume.reconstruction.shape == (SLICES, RECON, RECON)
        info = volume.header_info
        assert info.encoded_matrix[:2] == (READOUT, width)
        assert info.recon_matrix[:2] == (RECON, RECON)
        assert info.encoding_step_1.maximum == acquired - 1
        assert info.encoding_step_1.center == centre != width // 2
        widths.add(width)
    assert widths == {368, 372, 396}


def test_zero_padded_columns_are_never_sampled() -> None:
    """As fastMRI's VarNet transform: the mask is False outside the acquired columns."""
    from med_unlearning.data.masks import KspaceUndersampler
    from med_unlearning.data.recon_dataset import (
        FastMRISliceDataset,
        ReconSliceTransform,
        acquired_columns,
    )
    from med_unlearning.data.sample_fastmri import generate_fastmri_volume, plan_fastmri_sample
    from med_unlearning.params.sample_data import FastMRISampleParams

    name, protocol, width, acquired, centre = REAL_LIKE[0]
    volume = real_like_volume(0, protocol, width, acquired, centre)
    start, end = acquired_columns(volume)
    assert (start, end) == (width // 2 - centre, width // 2 - centre + acquired)
    undersampler = KspaceUndersampler(
        kind="equispaced", accelerations=[4], center_fractions=[0.08]
    )
    for seed_mode in ("per_volume", "random"):
        item = FastMRISliceDataset({name: volume}, ReconSliceTransform(undersampler, seed_mode))[0]
        columns = item.mask.reshape(-1)
        assert not columns[:start].any() and not columns[end:].any()
        assert columns[start:end].sum() > acquired / 8
        assert item.masked_kspace[..., :start, :].abs().sum() == 0
    # files without padding (the sample data, headerless files) keep every column
    params = FastMRISampleParams.model_validate({"image_size": [32, 32], "num_coils": 2})
    sample = generate_fastmri_volume(plan_fastmri_sample(params, 0)[0], params)
    assert acquired_columns(sample) == (0, sample.kspace.shape[-1])


@pytest.mark.e2e
def test_recon_pipeline_trains_reconstructs_and_scores_real_shaped_files(
    kedro_session, tmp_path: Path
) -> None:
    """One training step per model, validation, and a knee test reconstruction at 320 × 320
    (about a minute on a free CPU: a VarNet pass over 8 coils × 640 × 372 takes seconds)."""
    from med_unlearning.pipelines.recon import create_pipeline

    volumes = write_real_like_fastmri(tmp_path / "01_raw" / "fastmri")
    runtime = {
        "recon": {
            "splits": {"retain_val": 1, "retain_test": 1, "forget_val": 0, "forget_test": 1},
            "model": {"varnet": {"num_cascades": 1, "chans": 2, "sens_chans": 2}},
            "training": {
                "epochs": 1, "batch_size": 1, "max_steps_per_epoch": 1, "cache_volumes": False,
            },
            "reconstructions": {"write": True, "roles": ["forget_test"]},
        }
    }
    with kedro_session(env="test", **runtime) as session:
        session.run(node_names=[node.name for node in create_pipeline().nodes])
        catalog = session.load_context().catalog
        splits = catalog.load("recon.splits")
        histories = {run: catalog.load(f"recon.{run}.history") for run in ("original", "oracle")}
        written = catalog.load("recon.original.reconstructions")
    for history in histories.values():
        assert history["steps"].tolist() == [1]
        assert history[["train_loss", "val_loss", "val_psnr", "val_ssim"]].notna().all().all()
    tested = set(splits.loc[splits["role"] == "forget_test", "volume_id"])
    assert set(written) == tested and len(tested) == 1
    for volume_id, load in written.items():
        output = load()
        assert output.shape == (SLICES, RECON, RECON)
        target = volumes[volume_id].reconstruction
        scores = volume_metrics(target, output, float(target.max()))
        assert np.isfinite(list(scores.values())).all(), (volume_id, scores)


# ---- segmentation: MRBrainS18 grid, three modalities, MedicalNet ResNet-50 weights ----------

MRBRAINS_GRID = (240, 240, 48)
MRBRAINS_AFFINE = np.diag([0.958, 0.958, 3.0, 1.0])


def medicalnet_resnet50_keys() -> dict[str, tuple[int, ...]]:
    """The tensors of MedicalNet's published ``resnet_50*.pth`` (Med3D ResNet-50, shortcut
    B, bottleneck blocks [3, 4, 6, 3], one input channel), written out from the paper's
    architecture, not from this project's model."""
    shapes: dict[str, tuple[int, ...]] = {}

    def batch_norm(prefix: str, channels: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (channels,)

    shapes["conv1.weight"] = (64, 1, 7, 7, 7)
    batch_norm("bn1", 64)
    inplanes = 64
    for layer, (planes, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=1):
        for block in range(blocks):
            prefix = f"layer{layer}.{block}"
            shapes[f"{prefix}.conv1.weight"] = (planes, inplanes, 1, 1, 1)
            batch_norm(f"{prefix}.bn1", planes)
            shapes[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3, 3)
            batch_norm(f"{prefix}.bn2", planes)
            shapes[f"{prefix}.conv3.weight"] = (planes * 4, planes, 1, 1, 1)
            batch_norm(f"{prefix}.bn3", planes * 4)
            if block == 0:
                shapes[f"{prefix}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1, 1)
                batch_norm(f"{prefix}.downsample.1", planes * 4)
            inplanes = planes * 4
    return shapes


def write_medicalnet_standin(path: Path) -> dict[str, torch.Tensor]:
    """``{'state_dict': {'module.<key>': tensor}}`` as MedicalNet ships it (DataParallel
    prefixes, a pre-training head of another class count, no BatchNorm counters)."""
    generator = torch.Generator().manual_seed(50)
    state = {}
    for key, shape in medicalnet_resnet50_keys().items():
        if key.endswith("running_var"):
            value = torch.rand(shape, generator=generator) + 0.5
        else:
            value = 0.01 * torch.randn(shape, generator=generator)
        state[f"module.{key}"] = value
    state["module.conv_seg.0.weight"] = torch.randn(2048, 32, 2, 2, 2, generator=generator)
    state["module.conv_seg.4.weight"] = torch.randn(2, 32, 1, 1, 1, generator=generator)
    torch.save({"state_dict": state}, path)
    return state


def mrbrains_like_subject(subject: str, seed: int) -> dict[str, nib.Nifti1Image]:
    """One subject on the real 240 × 240 × 48 grid: pre/{reg_T1, reg_IR, FLAIR}, segm."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in MRBRAINS_GRID], indexing="ij"))
    radius = np.sqrt((grid[0] / 0.8) ** 2 + (grid[1] / 0.9) ** 2 + (grid[2] / 1.1) ** 2)
    labels = np.zeros(MRBRAINS_GRID, np.uint8)
    for limit, label in ((0.95, 5), (0.85, 1), (0.7, 3), (0.3, 6), (0.15, 2)):
        labels[radius < limit] = label
    images = {}
    for name, contrast in (("reg_T1", 1.0), ("reg_IR", -0.6), ("FLAIR", 0.4)):
        values = np.array([0, 60, 70, 100, 0, 25, 10, 0, 0, 0, 0], np.float32) * contrast + 120
        image = values[labels] * (radius < 1.0) + rng.normal(0, 3, MRBRAINS_GRID)
        images[f"{subject}/pre/{name}"] = nib.Nifti1Image(
            image.astype(np.float32), MRBRAINS_AFFINE
        )
    images[f"{subject}/segm"] = nib.Nifti1Image(labels, MRBRAINS_AFFINE)
    return images


@pytest.mark.e2e
def test_resnet50_with_medicalnet_weights_trains_one_step_at_the_study_patch(
    tmp_path: Path,
) -> None:
    """The study's network (ResNet-50, MedicalNet layout), patch 128 × 128 × 48, three
    modalities (the single-channel stem spread over them), batch 1: one SGD step on CPU."""
    weights = tmp_path / "resnet_50_23dataset.pth"
    published = write_medicalnet_standin(weights)
    params = SegmentationParams.model_validate(
        {
            "data": {"modalities": ["T1", "IR", "FLAIR"], "label_mapping": "evaluation_8"},
            "model": {
                "architecture": "med3d_resnet50", "base_width": 64, "head_channels": 32,
                "no_max_pool": False,
            },
            "training": {"patch_size": [128, 128, 48], "batch_size": 1, "loss": "ce"},
        }
    )
    task = SegmentationTask.from_params(params, RuntimeParams(device="cpu", progress=False))
    subjects = task.load_subjects(mrbrains_like_subject("070", 70), ["070"])
    seed_everything(0)
    model = task.build_model(OptionalTorchWeightsDataset(filepath=str(weights)).load())
    torch.testing.assert_close(
        model.layer4[2].conv3.weight, published["module.layer4.2.conv3.weight"]
    )
    stem = published["module.conv1.weight"].repeat(1, 3, 1, 1, 1) / 3
    torch.testing.assert_close(model.conv1.weight, stem)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    result = train_segmentation(
        task,
        model,
        list(subjects.values()),
        SegmentationTrainingSettings(
            epochs=1,
            batch_size=1,
            patch_size=(128, 128, 48),
            samples_per_subject=1,
            pos_fraction=1.0,
            learning_rate=1e-3,
            head_lr_multiplier=100.0,
            momentum=0.9,
            weight_decay=1e-3,
            progress=False,
        ),
    )
    assert result.history["steps"].tolist() == [1]
    assert np.isfinite(result.history["train_loss"]).all()
    after = model.state_dict()
    changed = [key for key, value in after.items() if not torch.equal(value, before[key])]
    assert any(key.startswith("conv_seg") for key in changed)
    assert any(key.startswith("layer4") for key in changed)
