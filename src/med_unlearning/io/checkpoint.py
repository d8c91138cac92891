"""Model checkpoints: weights plus a lineage record, stored as safetensors (never pickle).

A checkpoint file (use the ``.safetensors`` extension, e.g. ``varnet.safetensors``) holds
the model's tensors and, in the safetensors header's ``__metadata__`` (a str-to-str map):

- ``med_unlearning.checkpoint``: the :class:`CheckpointMetadata` as JSON;
- ``med_unlearning.content_hash``: the weights' :func:`state_dict_hash`, checked at load so
  a damaged file is caught.

Loading can never run code (safetensors holds raw tensors only). Writing goes to a
temporary file next to the target, ``.<name>.<host tag>-<pid>-<token>.tmp``, that is renamed
over the target when complete and removed if the write fails. A process killed mid-write
(``SIGKILL``, power loss) cannot remove it: :func:`stale_temporaries` finds such files of
one target whose writer is gone (same host, process no longer running), so the next save
can remove them. A file of another host's writer is never counted as stale (its process
cannot be checked), nor is any file not named like this.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import socket
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from med_unlearning.run_lock import process_alive
from med_unlearning.task_names import TASKS  # the tasks a checkpoint can belong to

__all__ = [
    "HASH_KEY",
    "METADATA_KEY",
    "TASKS",
    "CheckpointError",
    "CheckpointMetadata",
    "ModelCheckpoint",
    "checkpoint_from_bytes",
    "checkpoint_to_bytes",
    "default_library_versions",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "save_checkpoint",
    "stale_temporaries",
    "state_dict_hash",
    "temporary_path",
]

#: Key of the metadata JSON in the safetensors header's ``__metadata__``.
METADATA_KEY = "med_unlearning.checkpoint"
#: Key of the weights' content hash in the safetensors header's ``__metadata__``.
HASH_KEY = "med_unlearning.content_hash"

_LIBRARIES = ("torch", "monai", "numpy", "kedro", "med_unlearning")


class CheckpointError(ValueError):
    """A checkpoint file or record is unusable; the message names the file and the problem."""


def default_library_versions() -> dict[str, str]:
    """Versions of Python and of the installed libraries that shape a model's numbers."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _utc_now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class CheckpointMetadata:
    """Where a checkpoint's weights came from.

    Attributes:
        task: ``"recon"`` or ``"segmentation"``.
        architecture: model registry name, e.g. ``"varnet"``, ``"unet2d"``.
        architecture_params: keyword arguments that rebuild the architecture.
        data_manifest: ids of the volumes/subjects the weights were trained/unlearned on.
        parent_hash: content hash of the checkpoint this one started from.
        strategy: unlearning strategy name; ``None`` for trained models.
        strategy_params: the strategy's parameters.
        forget_ids: ids the strategy was asked to forget.
        wall_time_s: wall-clock seconds of the training/unlearning run.
        epochs: epochs run.
        seed: random seed of the run.
        created_at: UTC ISO timestamp of creation.
        library_versions: Python and library versions (see :func:`default_library_versions`).
        extra: anything else worth keeping (must be JSON-serialisable).
    """

    task: str
    architecture: str
    architecture_params: dict[str, Any]
    data_manifest: list[str]
    parent_hash: str | None = None
    strategy: str | None = None
    strategy_params: dict[str, Any] | None = None
    forget_ids: list[str] | None = None
    wall_time_s: float | None = None
    epochs: int | None = None
    seed: int | None = None
    created_at: str = field(default_factory=_utc_now)
    library_versions: dict[str, str] = field(default_factory=default_library_versions)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise CheckpointError(
                f"checkpoint metadata: task {self.task!r}; expected one of {TASKS}"
            )
        if not isinstance(self.architecture, str) or not self.architecture:
            raise CheckpointError("checkpoint metadata: architecture should be a non-empty name")
        for name in ("data_manifest", "forget_ids"):
            ids = getattr(self, name)
            if ids is None and name == "forget_ids":
                continue
            if isinstance(ids, (str, bytes)) or not all(isinstance(i, str) for i in ids):
                raise CheckpointError(f"checkpoint metadata: {name} should be a list of string ids")
            object.__setattr__(self, name, list(ids))
        self.to_json()

    def to_json(self) -> str:
        """The record as JSON (sorted keys).

        Raises:
            CheckpointError: a field holds something JSON cannot represent.
        """
        try:
            return json.dumps(dataclasses.asdict(self), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint metadata is not JSON-serialisable ({exc}); use plain numbers, "
                "strings, lists and dicts"
            ) from exc

    @classmethod
    def from_json(cls, text: str) -> CheckpointMetadata:
        """Rebuild a record written by :meth:`to_json`.

        Raises:
            CheckpointError: not JSON, not an object, unknown or missing fields.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"checkpoint metadata is not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise CheckpointError("checkpoint metadata should be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CheckpointError(f"checkpoint metadata has unknown fields {unknown}")
        required = {
            f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise CheckpointError(f"checkpoint metadata lacks required fields {missing}")
        return cls(**data)


def state_dict_hash(state_dict: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of the weights only: tensor names, dtypes, shapes and raw bytes.

    Identical weights give the same hash whatever the metadata, device or memory layout;
    changing any value, dtype, shape or name changes it.
    """
    hasher = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        raw = tensor.reshape(-1).view(torch.uint8).numpy()
        for part in (name, str(tensor.dtype), repr(tuple(tensor.shape)), str(raw.nbytes)):
            hasher.update(part.encode("utf-8"))
            hasher.update(b"\0")
        hasher.update(raw)
    return hasher.hexdigest()


@dataclass(frozen=True, repr=False)
class ModelCheckpoint:
    """A model's weights with their :class:`CheckpointMetadata`.

    Attributes:
        state_dict: tensor name -> tensor (``model.state_dict()``).
        metadata: the lineage record.
        source: the file (or URL) it was loaded from, ``None`` when built in memory; it
            names the checkpoint's version in messages (not part of equality).
    """

    state_dict: dict[str, torch.Tensor]
    metadata: CheckpointMetadata
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        not_tensors = sorted(
            name for name, value in self.state_dict.items() if not isinstance(value, torch.Tensor)
        )
        if not_tensors:
            raise CheckpointError(
                f"checkpoint state_dict entries {not_tensors} are not tensors; only tensors "
                "can be stored"
            )
        if not isinstance(self.metadata, CheckpointMetadata):
            raise CheckpointError("checkpoint metadata should be a CheckpointMetadata")

    @functools.cached_property
    def content_hash(self) -> str:
        """:func:`state_dict_hash` of the weights (metadata excluded), computed once.

        Lineage asks for it a dozen times per run (parent, record, pair checks); a checkpoint's
        tensors are never modified in place (models load copies of them), so one hash holds.
        """
        return state_dict_hash(self.state_dict)

    @property
    def num_parameters(self) -> int:
        """Total number of tensor elements."""
        return sum(int(t.numel()) for t in self.state_dict.values())

    def __repr__(self) -> str:
        meta = self.metadata
        strategy = f", strategy={meta.strategy!r}" if meta.strategy else ""
        return (
            f"ModelCheckpoint(task={meta.task!r}, architecture={meta.architecture!r}{strategy}, "
            f"tensors={len(self.state_dict)}, elements={self.num_parameters}, "
            f"trained_on={len(meta.data_manifest)} ids, hash={self.content_hash[:12]})"
        )


def _storable_tensors(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share storage (tied weights, views): clone each one.
    return {name: t.detach().to("cpu").contiguous().clone() for name, t in state_dict.items()}


def checkpoint_to_bytes(checkpoint: ModelCheckpoint) -> bytes:
    """Serialise a checkpoint to safetensors bytes (metadata and hash in the header)."""
    tensors = _storable_tensors(checkpoint.state_dict)
    header = {
        METADATA_KEY: checkpoint.metadata.to_json(),
        HASH_KEY: state_dict_hash(tensors),
        "format": "pt",
    }
    return save_safetensors_bytes(tensors, metadata=header)


_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{12}\.tmp$")


def _host_tag() -> str:
    """This host's name as 8 hex digits (any host name fits in a file name)."""
    return hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]


def temporary_path(path: str | os.PathLike) -> Path:
    """A fresh temporary file name for writing ``path``, naming this host and process."""
    path = Path(path)
    return path.with_name(f".{path.name}.{_host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")


def stale_temporaries(folder: str | os.PathLike, name: str) -> list[Path]:
    """Temporary files of :func:`save_checkpoint` for target ``name`` in ``folder`` whose
    writer is gone: written on this host by a process that no longer runs (sorted).

    A running writer's file, another host's file and any file not named by
    :func:`temporary_path` for ``name`` are never included.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = []
    for entry in folder.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match is None or match["name"] != name or not entry.is_file():
            continue
        if match["host"] == _host_tag() and not process_alive(int(match["pid"])):
            stale.append(entry)
    return sorted(stale)


def save_checkpoint(path: str | os.PathLike, checkpoint: ModelCheckpoint) -> None:
    """Write a checkpoint as a ``.safetensors`` file, atomically.

    The bytes go to a temporary file next to ``path`` (:func:`temporary_path`) that is
    renamed over it once complete, so an interrupted save leaves any previous file intact;
    a failed write removes its temporary file.
    """
    path = Path(path)
    payload = checkpoint_to_bytes(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        with open(temporary, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _checkpoint_from_parts(
    tensors: dict[str, torch.Tensor], header: Mapping[str, str] | None, source: str
) -> ModelCheckpoint:
    metadata = _metadata_from_header(header, source)
    stored_hash = (header or {}).get(HASH_KEY)
    if stored_hash is not None and stored_hash != state_dict_hash(tensors):
        raise CheckpointError(
            f"{source}: the weights do not match the content hash stored with them; the file "
            "is damaged"
        )
    return ModelCheckpoint(state_dict=tensors, metadata=metadata, source=source)


def _metadata_from_header(header: Mapping[str, str] | None, source: str) -> CheckpointMetadata:
    if not header or METADATA_KEY not in header:
        raise CheckpointError(
            f"{source}: safetensors file without a '{METADATA_KEY}' record; expected a "
            "checkpoint written by med_unlearning.io.checkpoint.save_checkpoint"
        )
    try:
        return CheckpointMetadata.from_json(header[METADATA_KEY])
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc


def load_checkpoint(path: str | os.PathLike) -> ModelCheckpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (safetensors; no code runs).

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointError: not a safetensors file, damaged, or lacking the metadata record.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as reader:
            header = reader.metadata()
            _metadata_from_header(header, str(path))
            tensors = {name: reader.get_tensor(name) for name in reader.keys()}
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors raises its own SafetensorError, OSError, ...
        raise CheckpointError(
            f"{path}: not a readable safetensors checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    return _checkpoint_from_parts(tensors, header, str(path))


def read_checkpoint_metadata(path: str | os.PathLike) -> CheckpointMetadata:
    """Read only a checkpoint's metadata record (no tensors are loaded)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as reader:
            header = reader.metadata()
    except Exception as exc:
        raise CheckpointError(
            f"{path}: not a readable safetensors checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    return _metadata_from_header(header, str(path))


def checkpoint_from_bytes(data: bytes, source: str = "<bytes>") -> ModelCheckpoint:
    """Rebuild a checkpoint from :func:`checkpoint_to_bytes` output (e.g. read from a URL)."""
    try:
        (header_size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + header_size]).get("__metadata__")
        tensors = load_safetensors_bytes(data)
    except Exception as exc:
        raise CheckpointError(
            f"{source}: not a readable safetensors checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    return _checkpoint_from_parts(tensors, header, source)
