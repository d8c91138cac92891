"""Benchmark 2 — data path: the project's readers vs raw h5py / nibabel on the same files,
and the training loop's loader wait vs compute time.

Reads (warm page cache; every file is read once before timing; sides alternate per round):

- fastMRI HDF5, volume scan: every slice of every volume (``kspace`` + ``reconstruction_rss``)
  through the catalog's ``PartitionedDataset`` of ``FastMRIVolumeDataset`` (lazy volumes)
  vs ``h5py.File`` opened once per file;
- fastMRI HDF5, shuffled slice access (a shuffled DataLoader's pattern): the torch
  ``FastMRISliceDataset`` (with a pass-through transform, so only its reading is timed) vs
  ``h5py.File`` opened per slice; the same dataset with the real undersampling transform is
  reported for information;
- NIfTI volumes: the catalog's ``PartitionedDataset`` of ``NiftiDataset`` +
  ``read_nifti_array`` vs ``np.asarray(nibabel.load(path).dataobj)``; and the segmentation
  subject loading (``load_subjects``: read + crop + z-score) for information.

Throughput ratio = raw time / project time (1 = as fast as raw). Sizes: the sample data's,
and in full mode also fastMRI-sized slices (16 coils, 640 x 320 k-space, random values) and
MRBrainS18-sized volumes (240 x 240 x 48).

Loader wait: the project's loop (:func:`med_unlearning.training.train`) records per epoch the
time spent waiting for the next batch (``data_time_s``) and the epoch time; their ratio shows
whether training is input-bound.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    BenchContext,
    BenchmarkResult,
    guarded,
    interleaved,
    median,
    paired_ratio,
)
from benchmarks.data import (
    fastmri_sample_params,
    mrbrains_sample_params,
    write_fastmri_sample,
    write_mrbrains_sample,
)

__all__ = ["NAME", "TITLE", "run"]

logger = logging.getLogger(__name__)

NAME = "data_path"
TITLE = "2. Data path: project readers vs raw h5py/nibabel, loader wait vs compute"
TARGET_RATIO = 0.9
#: Loader wait above this share of an epoch counts as input-bound.
INPUT_BOUND_SHARE = 0.2

_RSS = "reconstruction_rss"


class _PassThrough:
    """A slice transform that returns what it is given (times only the dataset's reading)."""

    def __call__(self, kspace: np.ndarray, target: np.ndarray | None, **_: Any) -> tuple[Any, Any]:
        return kspace, target


def _write_large_fastmri(
    folder: Path, volumes: int, slices: int, coils: int, shape: tuple[int, int]
) -> None:
    """fastMRI-sized files (random values: only their size matters for reading)."""
    from med_unlearning.io.fastmri import FastMRIVolume, write_fastmri_volume

    rng = np.random.default_rng(0)
    height, width = shape
    for index in range(volumes):
        kspace = (
            rng.standard_normal((slices, coils, height, width), dtype=np.float32)
            + 1j * rng.standard_normal((slices, coils, height, width), dtype=np.float32)
        ).astype(np.complex64)
        target = np.abs(rng.standard_normal((slices, height // 2, width), dtype=np.float32))
        volume = FastMRIVolume(
            kspace=kspace,
            reconstruction=target,
            ismrmrd_header=b"",
            attrs={
                "acquisition": "AXT2",
                "max": float(target.max()),
                "norm": 1.0,
                "patient_id": str(index),
            },
        )
        write_fastmri_volume(folder / f"large_{index:03d}.h5", volume)


def _write_large_nifti(folder: Path, subjects: int, shape: tuple[int, int, int]) -> None:
    from benchmarks.data import _phantom_subject
    from med_unlearning.io.nifti import write_nifti

    for index in range(subjects):
        for name, image in _phantom_subject(shape, (0.958, 0.958, 3.0), index).items():
            write_nifti(folder / f"s{index:02d}" / f"{name}.nii.gz", image)


def _h5_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.h5"))


def _fastmri_measures(folder: Path, seed: int) -> dict[str, dict[str, Callable[[], Any]]]:
    """Pairs of (project, raw) readers over the fastMRI files of ``folder``."""
    import h5py
    from kedro_datasets.partitions import PartitionedDataset

    from med_unlearning.data.recon_dataset import FastMRISliceDataset
    from med_unlearning.datasets import FastMRIVolumeDataset

    files = _h5_files(folder)

    def catalog_scan() -> None:
        partitions = PartitionedDataset(
            path=str(folder), dataset=FastMRIVolumeDataset, filename_suffix=".h5"
        ).load()
        for load in partitions.values():
            volume = load()
            for index in range(volume.num_slices):
                volume.kspace[index]
                volume.reconstruction[index]

    def raw_scan() -> None:
        for path in files:
            with h5py.File(path, "r") as h5_file:
                kspace, target = h5_file["kspace"], h5_file[_RSS]
                for index in range(kspace.shape[0]):
                    kspace[index]
                    target[index]

    partitions = PartitionedDataset(
        path=str(folder), dataset=FastMRIVolumeDataset, filename_suffix=".h5"
    ).load()
    volumes = {key: load() for key, load in partitions.items()}
    dataset = FastMRISliceDataset(volumes, _PassThrough())  # type: ignore[arg-type]
    order = list(range(len(dataset)))
    random.Random(seed).shuffle(order)
    path_of = {key: folder / f"{key}.h5" for key in volumes}
    raw_items = [(path_of[dataset.items[i][0]], dataset.items[i][1]) for i in order]

    def lazy_scan() -> None:
        for volume in volumes.values():
            for index in range(volume.num_slices):
                volume.kspace[index]
                volume.reconstruction[index]

    def dataset_shuffled() -> None:
        for position in order:
            dataset[position]

    def raw_shuffled() -> None:
        for path, index in raw_items:
            with h5py.File(path, "r") as h5_file:
                h5_file["kspace"][index]
                h5_file[_RSS][index]

    return {
        "scan": {"project": catalog_scan, "raw": raw_scan},
        "lazy_scan": {"project": lazy_scan, "raw": raw_scan},
        "shuffled": {"project": dataset_shuffled, "raw": raw_shuffled},
    }


def _nifti_measures(folder: Path) -> dict[str, Callable[[], Any]]:
    import nibabel as nib
    from kedro_datasets.partitions import PartitionedDataset

    from med_unlearning.datasets import NiftiDataset
    from med_unlearning.io.nifti import read_nifti_array

    files = sorted(folder.rglob("*.nii.gz"))

    def catalog_read() -> None:
        partitions = PartitionedDataset(
            path=str(folder), dataset=NiftiDataset, filename_suffix=".nii.gz"
        ).load()
        for load in partitions.values():
            read_nifti_array(load())

    def raw_read() -> None:
        for path in files:
            np.asarray(nib.load(path).dataobj)

    return {"project": catalog_read, "raw": raw_read}


def _timed(function: Callable[[], Any]) -> Callable[[], float]:
    import time

    def measure() -> float:
        start = time.perf_counter()
        function()
        return time.perf_counter() - start

    return measure


def _compare(
    result: BenchmarkResult,
    item: str,
    pair: dict[str, Callable[[], Any]],
    repeats: int,
    units: int,
    unit: str,
    *,
    held_to_target: bool = True,
) -> float:
    """Time ``pair`` (project, raw) alternately; add a row; return the throughput ratio."""
    for function in pair.values():
        function()  # warm the page cache and imports
    times = interleaved({name: _timed(function) for name, function in pair.items()}, repeats)
    ratio = paired_ratio(times["raw"], times["project"])
    project, raw = median(times["project"]), median(times["raw"])
    result.add_row(
        item,
        project_ms=1e3 * project,
        raw_ms=1e3 * raw,
        **{f"project_{unit}_per_s": units / project, f"raw_{unit}_per_s": units / raw},
        ratio=ratio,
        meets_target=bool(ratio >= TARGET_RATIO) if held_to_target else None,
    )
    return ratio


def _fastmri_rows(
    result: BenchmarkResult, folder: Path, label: str, repeats: int, seed: int
) -> list[float]:
    from med_unlearning.data.masks import KspaceUndersampler
    from med_unlearning.data.recon_dataset import FastMRISliceDataset, ReconSliceTransform
    from med_unlearning.io.fastmri import read_fastmri_volume

    volumes = {
        p.relative_to(folder).with_suffix("").as_posix(): read_fastmri_volume(p)
        for p in _h5_files(folder)
    }
    slices = sum(volume.num_slices for volume in volumes.values())
    shape = next(iter(volumes.values())).kspace.shape
    measures = _fastmri_measures(folder, seed)
    ratios = [
        _compare(
            result,
            f"HDF5 volume scan via catalog, {label} {list(shape[1:])}",
            measures["scan"],
            repeats,
            slices,
            "slices",
        ),
        _compare(
            result,
            f"HDF5 shuffled slices via torch Dataset, {label}",
            measures["shuffled"],
            repeats,
            slices,
            "slices",
        ),
    ]
    _compare(
        result,
        f"(info) HDF5 volume scan, volumes already opened (slice reads only), {label}",
        measures["lazy_scan"],
        repeats,
        slices,
        "slices",
        held_to_target=False,
    )
    transform = ReconSliceTransform(
        KspaceUndersampler("equispaced", [8], [0.04]), mask_seed="per_volume"
    )
    full = FastMRISliceDataset(volumes, transform)
    passthrough = FastMRISliceDataset(volumes, _PassThrough())  # type: ignore[arg-type]
    times = interleaved(
        {
            "transform": _timed(lambda: [full[i] for i in range(len(full))]),
            "read": _timed(lambda: [passthrough[i] for i in range(len(passthrough))]),
        },
        repeats,
    )
    result.add_row(
        f"(info) torch Dataset item with undersampling transform, {label}",
        project_ms=1e3 * median(times["transform"]),
        raw_ms=1e3 * median(times["read"]),
        project_slices_per_s=slices / median(times["transform"]),
        note="raw_ms = the same Dataset's reading alone; the rest is mask + FFT + RSS per item",
    )
    return ratios


def _nifti_rows(result: BenchmarkResult, folder: Path, label: str, repeats: int) -> float:
    import nibabel as nib

    from med_unlearning.data.labels import get_label_mapping
    from med_unlearning.data.seg_dataset import load_subjects
    from med_unlearning.datasets import NiftiDataset

    files = sorted(folder.rglob("*.nii.gz"))
    shape = nib.load(files[0]).shape
    ratio = _compare(
        result,
        f"NIfTI volume read via catalog, {label} {list(shape)}",
        _nifti_measures(folder),
        repeats,
        len(files),
        "volumes",
    )

    partitions = {
        path.relative_to(folder).as_posix()[: -len(".nii.gz")]: NiftiDataset(
            filepath=str(path)
        ).load
        for path in files
    }
    subject_ids = sorted({key.split("/")[0] for key in partitions})
    mapping = get_label_mapping("evaluation_8")
    modalities = ["T1", "IR", "FLAIR"]
    subject_files = [path for path in files if path.relative_to(folder).parts[0] in subject_ids]
    times = interleaved(
        {
            "project": _timed(lambda: load_subjects(partitions, subject_ids, modalities, mapping)),
            "raw": _timed(lambda: [np.asarray(nib.load(p).dataobj) for p in subject_files]),
        },
        repeats,
    )
    result.add_row(
        f"(info) segmentation subject load (read + crop + z-score), {label}",
        project_ms=1e3 * median(times["project"]),
        raw_ms=1e3 * median(times["raw"]),
        ratio=paired_ratio(times["raw"], times["project"]),
        note="preprocessing included, so not held to the read target",
    )
    return ratio


def _loader_wait_rows(
    result: BenchmarkResult, ctx: BenchContext, fastmri_folder: Path, nifti_folder: Path
) -> None:
    """Loader wait share of the project's loop, recon and segmentation."""
    with guarded(result, "loader wait vs compute: recon training loop"):
        _recon_wait(result, ctx, fastmri_folder)
    with guarded(result, "loader wait vs compute: segmentation training loop"):
        _segmentation_wait(result, ctx, nifti_folder)


def _wait_row(result: BenchmarkResult, item: str, history: Any, device: str) -> None:
    rows = history.iloc[1:] if len(history) > 1 else history
    wait = float(rows["data_time_s"].sum())
    total = float(rows["epoch_time_s"].sum())
    share = wait / total if total else float("nan")
    result.add_row(
        item,
        data_time_s=wait,
        epoch_time_s=total,
        wait_share=share,
        compute_share=1.0 - share,
        input_bound=bool(share > INPUT_BOUND_SHARE),
        note=f"device {device}; epochs after the first; wait = time blocked on the loader",
    )


def _recon_wait(result: BenchmarkResult, ctx: BenchContext, folder: Path) -> None:
    import torch

    from med_unlearning.data.masks import KspaceUndersampler
    from med_unlearning.device import resolve_device
    from med_unlearning.io.fastmri import read_fastmri_volume
    from med_unlearning.tasks.recon import ReconTask, slice_dataset
    from med_unlearning.training import LoopSettings, make_loader, seed_everything, train

    volumes = {
        p.relative_to(folder).with_suffix("").as_posix(): read_fastmri_volume(p)
        for p in _h5_files(folder)
    }
    seed_everything(ctx.seed)
    dataset = slice_dataset(
        volumes,
        None,
        KspaceUndersampler("equispaced", [8], [0.04]),
        mask_seed="random",
        uniform_shape=True,
        cache=True,
    )
    device = resolve_device("auto")
    architecture = ctx.size(
        {"num_cascades": 1, "chans": 2, "pools": 4, "sens_chans": 2, "sens_pools": 4},
        {"num_cascades": 4, "chans": 8, "pools": 4, "sens_chans": 4, "sens_pools": 4},
    )
    task = ReconTask("varnet", architecture)
    model = task.build_model()
    loader = make_loader(dataset, 4, shuffle=True, seed=ctx.seed, device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    epochs = 2
    outcome = train(
        model,
        loader,
        task.loss,
        optimizer,
        LoopSettings(
            epochs=epochs,
            device=device,
            grad_clip_norm=0.5,
            progress=False,
            description="bench.recon",
            max_steps_per_epoch=ctx.size(2, 8),
        ),
    )
    _wait_row(
        result,
        "loader wait vs compute: recon training loop "
        f"(VarNet {architecture['num_cascades']} cascades, batch 4, 0 workers)",
        outcome.history,
        device.type,
    )


def _segmentation_wait(result: BenchmarkResult, ctx: BenchContext, folder: Path) -> None:
    from med_unlearning.data.seg_dataset import load_subjects
    from med_unlearning.datasets import NiftiDataset
    from med_unlearning.device import resolve_device
    from med_unlearning.params.segmentation import SegmentationParams
    from med_unlearning.tasks.segmentation import (
        SegmentationTask,
        SegmentationTrainingSettings,
        train_segmentation,
    )
    from med_unlearning.training import seed_everything

    params = SegmentationParams.model_validate(
        {
            "model": {
                "architecture": "med3d_resnet10",
                "base_width": ctx.size(4, 16),
                "head_channels": ctx.size(8, 32),
            },
            "training": {
                "patch_size": ctx.size([16, 16, 8], [32, 32, 16]),
                "batch_size": 4,
                "samples_per_subject": ctx.size(2, 8),
            },
        }
    )
    task = SegmentationTask.from_params(params)
    partitions = {
        path.relative_to(folder).as_posix()[: -len(".nii.gz")]: NiftiDataset(
            filepath=str(path)
        ).load
        for path in sorted(folder.rglob("*.nii.gz"))
    }
    subject_ids = sorted({key.split("/")[0] for key in partitions})
    subjects = load_subjects(partitions, subject_ids, params.data.modalities, task.label_mapping)
    seed_everything(ctx.seed)
    model = task.build_model()
    training = params.training
    outcome = train_segmentation(
        task,
        model,
        list(subjects.values()),
        SegmentationTrainingSettings(
            epochs=2,
            batch_size=training.batch_size,
            patch_size=training.patch_size,
            samples_per_subject=training.samples_per_subject,
            pos_fraction=training.pos_fraction,
            learning_rate=1e-2,
            head_lr_multiplier=10.0,
            momentum=0.9,
            weight_decay=1e-3,
            seed=ctx.seed,
            progress=False,
            description="bench.segmentation",
        ),
    )
    device = resolve_device(task.device).type
    _wait_row(
        result,
        "loader wait vs compute: segmentation training loop "
        f"(ResNet-10 width {params.model.base_width}, batch 4, 0 workers)",
        outcome.history,
        device,
    )


def run(ctx: BenchContext) -> BenchmarkResult:
    """Compare the project's readers with raw h5py/nibabel; report the loop's loader wait."""
    repeats = ctx.size(2, 5)
    result = BenchmarkResult(
        name=NAME,
        title=TITLE,
        measures=(
            "Reading the same files through the project's Kedro datasets / torch Datasets and with "
            "raw h5py / nibabel (warm page cache, sides alternated per round, median of "
            "per-round ratios; ratio = raw time / project time). Rows marked (info) include "
            "preprocessing and are not held to the target. Loader wait = time the project's "
            "training loop spent "
            "blocked on the DataLoader, as a share of the epoch (history `data_time_s` / "
            "`epoch_time_s`)."
        ),
        target=(
            f"read throughput >= {TARGET_RATIO} of raw; "
            f"loader wait <= {INPUT_BOUND_SHARE:.0%} of the epoch"
        ),
        columns=["item", "project_ms", "raw_ms", "ratio", "meets_target"],
        settings={"repeats": repeats},
    )
    root = ctx.scratch("data_path")
    ratios: list[float] = []
    sample_fastmri = root / "fastmri_sample"
    sample_nifti = root / "mrbrains_sample"
    with guarded(result, "fastMRI sample files"):
        params = fastmri_sample_params(
            brain=ctx.size(2, 6), knee=ctx.size(1, 2), slices=ctx.size(4, 8), size=ctx.size(32, 64)
        )
        write_fastmri_sample(sample_fastmri, params, ctx.seed)
        ratios += _fastmri_rows(result, sample_fastmri, "sample data", repeats, ctx.seed)
    with guarded(result, "NIfTI sample files"):
        write_mrbrains_sample(
            sample_nifti,
            mrbrains_sample_params(ctx.size(2, 7), ctx.size((32, 32, 8), (64, 64, 16))),
            ctx.seed,
        )
        ratios.append(_nifti_rows(result, sample_nifti, "sample data", repeats))
    if not ctx.quick:
        with guarded(result, "fastMRI-sized HDF5 files"):
            large = root / "fastmri_large"
            _write_large_fastmri(large, volumes=2, slices=4, coils=16, shape=(640, 320))
            ratios += _fastmri_rows(result, large, "fastMRI size", repeats, ctx.seed)
        with guarded(result, "MRBrainS18-sized NIfTI files"):
            large_nifti = root / "mrbrains_large"
            _write_large_nifti(large_nifti, subjects=2, shape=(240, 240, 48))
            ratios.append(_nifti_rows(result, large_nifti, "MRBrainS18 size", repeats))
    _loader_wait_rows(result, ctx, sample_fastmri, sample_nifti)
    if ratios:
        worst = min(ratios)
        result.summary = {"worst_read_ratio": worst, "meets_target": bool(worst >= TARGET_RATIO)}
        waits = [row["wait_share"] for row in result.rows if "wait_share" in row]
        if waits:
            result.summary["max_loader_wait_share"] = max(waits)
    return result
