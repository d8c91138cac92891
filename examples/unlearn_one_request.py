"""Unlearn one forget request with the library alone: no Kedro, no catalog, no conf.

    python examples/unlearn_one_request.py OUT [--checkpoint recon.safetensors --data FOLDER]

Without ``--checkpoint`` it first trains a tiny VarNet on generated sample volumes (seconds
on a CPU) and saves it as ``OUT/original.safetensors``. It forgets one training volume with
Noisy Label + fine-tuning (``nl_ft``), then writes ``OUT/unlearned.safetensors`` and
``OUT/erasure_record.json``, both atomically.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from med_unlearning.data.masks import KspaceUndersampler
from med_unlearning.data.sample_fastmri import lazy_fastmri_sample
from med_unlearning.io.checkpoint import (
    CheckpointMetadata,
    ModelCheckpoint,
    load_checkpoint,
    save_checkpoint,
    temporary_path,
)
from med_unlearning.io.fastmri import read_fastmri_volume
from med_unlearning.params.sample_data import FastMRISampleParams
from med_unlearning.tasks.recon import (
    ReconTask,
    ReconTrainingSettings,
    fit_recon_model,
    recon_loader,
    undersampler_from_checkpoint,
)
from med_unlearning.training import LoopSettings
from med_unlearning.unlearning.engine import run_unlearning
from med_unlearning.unlearning.planning import UnlearningPlan
from med_unlearning.unlearning.result import UnlearningSettings

MASK = {"kind": "equispaced", "accelerations": [4.0], "center_fractions": [0.08]}
TINY_VARNET = {"num_cascades": 1, "chans": 2, "sens_chans": 2}


def train_tiny(volumes: dict) -> ModelCheckpoint:
    """A one-epoch VarNet on every volume, with the lineage unlearning needs."""
    task, ids = ReconTask("varnet", TINY_VARNET), sorted(volumes)
    settings = ReconTrainingSettings(epochs=1, device="cpu", progress=False)
    mask = KspaceUndersampler(**MASK)
    model, result = fit_recon_model(task, volumes, ids, ids[:1], mask, settings)
    metadata = CheckpointMetadata(
        task=task.name, architecture=task.architecture, architecture_params=TINY_VARNET,
        data_manifest=ids, wall_time_s=result.wall_time_s, epochs=1, seed=settings.seed,
        extra={"mask": MASK},
    )
    return ModelCheckpoint({k: v.detach().cpu() for k, v in model.state_dict().items()}, metadata)


def main(out: Path, checkpoint_path: str | None, data: str | None) -> None:
    if data:  # fastMRI .h5 files, keyed like the checkpoint's manifest (relative path, no .h5)
        volumes = {p.relative_to(data).with_suffix("").as_posix(): read_fastmri_volume(p)
                   for p in sorted(Path(data).rglob("*.h5"))}
    else:
        sample = FastMRISampleParams.model_validate({"image_size": [32, 32], "num_coils": 2,
            "brain": {"num_volumes": 4, "num_slices": 2}, "knee": {"num_volumes": 0}})
        volumes = {key: make() for key, make in lazy_fastmri_sample(sample, seed=0).items()}
    if checkpoint_path:
        original = load_checkpoint(checkpoint_path)
    else:
        original = train_tiny(volumes)
        save_checkpoint(out / "original.safetensors", original)
    manifest = original.metadata.data_manifest
    plan = UnlearningPlan.from_ids(manifest[:1], manifest[1:])  # the request: forget one volume
    task, mask = ReconTask.from_checkpoint(original), undersampler_from_checkpoint(original)
    def loader(ids, seed):
        return recon_loader(volumes, ids, mask, training=True, seed=seed, device="cpu")
    settings = UnlearningSettings("nl_ft", {"epochs": 1}, seed=0,
                                  loop=LoopSettings(epochs=1, device="cpu", progress=False))
    result = run_unlearning(plan, settings, task, original,
                            loader(plan.forget_ids, 0), loader(plan.retain_ids, 1))
    save_checkpoint(out / "unlearned.safetensors", result.checkpoint)
    record_path = out / "erasure_record.json"
    temporary = temporary_path(record_path)
    temporary.write_text(json.dumps(result.record, indent=2))
    os.replace(temporary, record_path)
    print(f"forgot {plan.forget_ids}: {result.checkpoint!r} -> {record_path}")
    assert "kedro" not in sys.modules, "the library imported Kedro"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoint", help="a recon checkpoint (.safetensors) to unlearn")
    parser.add_argument("--data", help="folder of the checkpoint's fastMRI .h5 volumes")
    arguments = parser.parse_args()
    main(arguments.out, arguments.checkpoint, arguments.data)
