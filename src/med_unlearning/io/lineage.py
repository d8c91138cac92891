"""Do an original and an oracle checkpoint belong together? Checked before they are used.

Each checkpoint dataset loads its own latest version, so after a partial rerun (only the
oracle retrained, or a run on other splits) an original and an oracle from different runs
would be paired silently and every "gap to the oracle" would be meaningless. The training
nodes record in each checkpoint's ``extra`` the content hash of the splits table it was
trained from (:func:`splits_table_hash`, key :data:`SPLITS_HASH_KEY`);
:func:`check_original_oracle` compares two checkpoints' metadata:

- the same task;
- the same splits table (content hash) and the same training seed;
- the oracle's data manifest (its training ids) equals the original's retain part (the
  original's training ids minus the forget ids), and optionally equals the given retain ids;
- optionally, both were trained from the splits table in use now.

A mismatch raises :class:`LineageMismatchError` naming both checkpoints' versions and how
to pin matching ones (``kedro run --load-versions``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from med_unlearning.io.checkpoint import CheckpointMetadata, ModelCheckpoint

__all__ = [
    "SPLITS_HASH_KEY",
    "CheckpointRef",
    "LineageMismatchError",
    "StaleCheckpointError",
    "check_parent_is_current",
    "check_original_oracle",
    "check_pair_with_split",
    "checkpoint_ref",
    "splits_table_hash",
]

#: Key of the splits table's content hash in a trained checkpoint's ``extra``.
SPLITS_HASH_KEY = "splits_hash"

_VERSION = re.compile(r"\.safetensors/([^/]+)/[^/]+\.safetensors$")


class LineageMismatchError(ValueError):
    """Two checkpoints that should come from one run do not; the message names both."""


class StaleCheckpointError(LineageMismatchError):
    """An unlearned checkpoint started from another original than the current one."""


def splits_table_hash(splits: pd.DataFrame, id_column: str, role_column: str = "role") -> str:
    """SHA-256 of a splits table's content: its (id, role) pairs, whatever the row order.

    Other columns (copied metadata such as ``anatomy``) and dtypes (a CSV round trip) do not
    change it; moving any item to another role does.

    Raises:
        KeyError: the table lacks the id or role column.
    """
    for column in (id_column, role_column):
        if column not in splits.columns:
            raise KeyError(
                f"splits table has no {column!r} column; columns: {list(splits.columns)}"
            )
    pairs = sorted(zip(splits[id_column].astype(str), splits[role_column].astype(str)))
    hasher = hashlib.sha256()
    for item, role in pairs:
        hasher.update(f"{item}\x1f{role}\n".encode())
    return hasher.hexdigest()


@dataclass(frozen=True)
class CheckpointRef:
    """A checkpoint's metadata with what names it in messages.

    Attributes:
        name: its catalog name, e.g. ``recon.original.checkpoint``.
        metadata: its lineage record.
        version: its Kedro version (the folder under ``<name>.safetensors/``), if known.
        content_hash: its weights' hash, if known.
    """

    name: str
    metadata: CheckpointMetadata
    version: str | None = None
    content_hash: str | None = None

    def describe(self) -> str:
        """E.g. ``recon.oracle.checkpoint version 2026-…Z (weights 1a2b3c4d5e6f, created …)``.
        """
        version = f" version {self.version}" if self.version else ""
        details = [f"weights {self.content_hash[:12]}"] if self.content_hash else []
        details.append(f"created {self.metadata.created_at}")
        return f"{self.name}{version} ({', '.join(details)})"


def checkpoint_ref(name: str, checkpoint: ModelCheckpoint) -> CheckpointRef:
    """A :class:`CheckpointRef` of a loaded checkpoint (version read from its source path)."""
    source = getattr(checkpoint, "source", None)
    match = _VERSION.search(str(source).replace("\\", "/")) if source else None
    return CheckpointRef(
        name=name,
        metadata=checkpoint.metadata,
        version=match.group(1) if match else None,
        content_hash=checkpoint.content_hash,
    )


def _head(ids: Iterable[str], limit: int = 5) -> str:
    ids = sorted(ids)
    more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return f"{ids[:limit]}{more}"


def check_original_oracle(
    original: CheckpointRef,
    oracle: CheckpointRef,
    *,
    forget_ids: Sequence[str] | None = None,
    retain_ids: Sequence[str] | None = None,
    splits_hash: str | None = None,
) -> None:
    """Refuse an original and an oracle that were not trained in one run on one split.

    Args:
        original: the original model's reference.
        oracle: the oracle's reference.
        forget_ids: the forget training ids of the split in use (``forget_train``); the
            oracle must have trained on the original's ids minus these.
        retain_ids: the retain training ids of the split in use (``retain_train``); the
            oracle must have trained on exactly these.
        splits_hash: :func:`splits_table_hash` of the split in use; a checkpoint that
            records another hash is refused.

    Raises:
        LineageMismatchError: listing every disagreement, naming both versions.
    """
    first, second = original.metadata, oracle.metadata
    problems: list[str] = []
    if first.task != second.task:
        problems.append(f"tasks differ ({first.task!r} vs {second.task!r})")
    hashes = (first.extra.get(SPLITS_HASH_KEY), second.extra.get(SPLITS_HASH_KEY))
    if None not in hashes and hashes[0] != hashes[1]:
        problems.append(
            f"they were trained from different splits tables (hash {hashes[0][:12]} vs "
            f"{hashes[1][:12]})"
        )
    elif splits_hash is not None:
        for ref, recorded in ((original, hashes[0]), (oracle, hashes[1])):
            if recorded is not None and recorded != splits_hash:
                problems.append(
                    f"{ref.name} was trained from another splits table (hash {recorded[:12]}) "
                    f"than the one in use ({splits_hash[:12]})"
                )
    if first.seed != second.seed:
        problems.append(f"training seeds differ ({first.seed} vs {second.seed})")
    original_ids, oracle_ids = set(first.data_manifest), set(second.data_manifest)
    if not oracle_ids < original_ids:
        outside = oracle_ids - original_ids
        problems.append(
            f"the oracle trained on ids the original never saw: {_head(outside)}"
            if outside
            else "the oracle trained on every id the original did (nothing was left out)"
        )
    if forget_ids is not None:
        expected = original_ids - set(map(str, forget_ids))
        if oracle_ids != expected:
            problems.append(
                "the oracle's training ids are not the original's minus the forget ids: "
                f"missing {_head(expected - oracle_ids)}, extra {_head(oracle_ids - expected)}"
            )
    if retain_ids is not None:
        wanted = set(map(str, retain_ids))
        if oracle_ids != wanted:
            problems.append(
                "the oracle's training ids are not the split's retain_train ids: "
                f"missing {_head(wanted - oracle_ids)}, extra {_head(oracle_ids - wanted)}"
            )
    if problems:
        raise LineageMismatchError(
            f"{original.describe()} and {oracle.describe()} do not belong together: "
            + "; ".join(problems)
            + ". Retrain both (kedro run --pipelines <task>) or pin a matching pair with "
            f"--load-versions {original.name}:<version>,{oracle.name}:<version> "
            "(versions are the folders under data/06_models/<task>/<model>.safetensors/)."
        )


def check_pair_with_split(
    task: str,
    original: ModelCheckpoint,
    oracle: ModelCheckpoint,
    splits: pd.DataFrame,
    id_column: str,
    *,
    check_roles: bool = True,
) -> dict[str, Any]:
    """:func:`check_original_oracle` for ``<task>.original/oracle.checkpoint`` and a split.

    Args:
        task: ``recon`` or ``segmentation`` (names the catalog entries in messages).
        original: the loaded original checkpoint.
        oracle: the loaded oracle checkpoint.
        splits: the splits table in use.
        id_column: its id column.
        check_roles: also require the oracle to have trained on exactly the split's
            ``retain_train`` items and the original's ids minus ``forget_train``.

    Returns:
        A record of what was checked (names, versions, hashes), for logs and reports.

    Raises:
        LineageMismatchError: see :func:`check_original_oracle`.
    """
    from med_unlearning.data.splits import FORGET_TRAIN, RETAIN_TRAIN, ids_with_roles

    first = checkpoint_ref(f"{task}.original.checkpoint", original)
    second = checkpoint_ref(f"{task}.oracle.checkpoint", oracle)
    current = splits_table_hash(splits, id_column)
    check_original_oracle(
        first,
        second,
        forget_ids=ids_with_roles(splits, [FORGET_TRAIN], id_column) if check_roles else None,
        retain_ids=ids_with_roles(splits, [RETAIN_TRAIN], id_column) if check_roles else None,
        splits_hash=current,
    )
    return {
        "task": task,
        "splits_hash": current,
        "original": {"version": first.version, "content_hash": first.content_hash},
        "oracle": {"version": second.version, "content_hash": second.content_hash},
    }


def check_parent_is_current(
    name: str, checkpoint: ModelCheckpoint, parent: CheckpointRef, rerun: str
) -> None:
    """Refuse an unlearned checkpoint whose parent is not the current original.

    After the original is retrained (``kedro run --pipelines recon``), the unlearned
    checkpoints of earlier runs still load as their latest versions; scoring them next to
    the new original and oracle would report gaps of models unlearned from another model.

    Args:
        name: the unlearned checkpoint's catalog name (``unlearning.recon.nl_ft.checkpoint``).
        checkpoint: the loaded unlearned checkpoint.
        parent: the current original (its content hash must be the recorded parent hash).
        rerun: the command that brings the run up to date (named in the message).

    Raises:
        StaleCheckpointError: the recorded parent hash is another one (or none is recorded).
    """
    recorded = checkpoint.metadata.parent_hash
    if recorded is not None and recorded == parent.content_hash:
        return
    ref = checkpoint_ref(name, checkpoint)
    started = f"weights {recorded[:12]}" if recorded else "no recorded parent"
    raise StaleCheckpointError(
        f"stale lineage: {ref.describe()} was unlearned from {parent.name} ({started}), but "
        f"the current {parent.describe()} is another model (retrained since?). Its scores "
        f"would compare a model of another original with this original and oracle. Bring "
        f"it up to date with `{rerun}` (or `kedro run --pipelines unlearning` for every "
        f"run), or evaluate the original it came from with `kedro run --load-versions`."
    )
