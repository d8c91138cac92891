"""One ``kedro run`` per data root at a time: a lock file under the data root.

Two runs writing into one data tree at once would mix their outputs (a splits table from
one, checkpoints from the other). :class:`RunLock` creates ``<data_root>/.med_unlearning.lock``
atomically (``O_CREAT | O_EXCL``) holding the owner's host, pid and start time; a second run
finds it and stops with :class:`RunLockedError` naming the lock file and its owner. The lock
is removed when the run ends (also on error).

Stale locks. A lock whose owner ran on this host and whose process is gone (a killed run)
is stale: it is replaced, with a warning. So is a lock file that holds no readable record
and is older than :data:`UNREADABLE_GRACE_S` (a run killed between creating the file and
writing its record; a live owner writes it within microseconds).

What it protects, and what not:

- Runs on one host (one process namespace): fully — a second run is refused while the first
  lives, and a dead run's lock is replaced.
- Runs on two hosts sharing the data root over a network mount: a lock written by another
  host is always respected, never taken as stale (its process cannot be checked from here),
  so the second host's run is refused. A run that *crashed* on the other host leaves a lock
  this host cannot judge: delete the file by hand once that run is known to be over. This
  relies on the mount creating files atomically with ``O_EXCL`` (local disks and NFSv3+ do;
  some FUSE and object-store mounts do not, and then two hosts can both take the lock).
- Containers that share a data root and report the *same* host name while having separate
  process namespaces look like one host: a live run in another container may be taken for
  a dead one and its lock replaced. Give such containers distinct host names (Docker's
  default) or separate data roots.
- Only local paths are locked; ``data_root`` must be a directory of this machine's
  filesystem (a mounted network share counts), not an fsspec URL.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["LOCK_NAME", "UNREADABLE_GRACE_S", "RunLock", "RunLockedError", "process_alive"]

logger = logging.getLogger(__name__)

#: The lock file's name under the data root.
LOCK_NAME = ".med_unlearning.lock"
#: Seconds after which a lock file without a readable record counts as stale.
UNREADABLE_GRACE_S = 60.0


class RunLockedError(RuntimeError):
    """Another run holds the data root's lock; the message names the file and its owner."""


def process_alive(pid: Any) -> bool:
    """Whether process ``pid`` exists on this host."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """The lock of one data root (see the module docstring).

    Args:
        data_root: the run's data root (created if missing).
        description: what holds the lock, recorded in the file (e.g. the pipelines).
    """

    def __init__(self, data_root: str | os.PathLike, description: str = "") -> None:
        self.path = Path(data_root) / LOCK_NAME
        self.description = description
        self._held = False

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._held

    def _owner(self) -> dict[str, Any]:
        try:
            owner = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return owner if isinstance(owner, dict) else {}

    def _unreadable_and_old(self, owner: dict[str, Any]) -> bool:
        """A lock file without a readable owner record, untouched for a while."""
        if owner.get("pid") is not None or owner.get("host") is not None:
            return False
        try:
            age = time.time() - self.path.stat().st_mtime
        except OSError:
            return False
        return age > UNREADABLE_GRACE_S

    def acquire(self) -> None:
        """Take the lock, replacing a stale one.

        Raises:
            RunLockedError: a live run holds it (or one on another host).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(),
            "description": self.description,
        }
        for _ in range(2):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                same_host = owner.get("host") == socket.gethostname()
                if same_host and not process_alive(owner.get("pid")):
                    logger.warning(
                        "Removing stale run lock %s (process %s is gone): %s",
                        self.path, owner.get("pid"), owner,
                    )
                    self.path.unlink(missing_ok=True)
                    continue
                if self._unreadable_and_old(owner):
                    logger.warning(
                        "Removing stale run lock %s: it holds no readable owner record and is "
                        "older than %.0fs (a run killed while taking the lock)",
                        self.path, UNREADABLE_GRACE_S,
                    )
                    self.path.unlink(missing_ok=True)
                    continue
                raise RunLockedError(
                    f"another run is using this data root: lock file {self.path} is held by "
                    f"process {owner.get('pid')} on {owner.get('host')} (started "
                    f"{owner.get('started_at')}, {owner.get('description') or 'no description'})."
                    " Wait for it to finish, use another data_root (--params data_root=...), or "
                    "delete the lock file if that run is known to be over."
                ) from None
            with os.fdopen(descriptor, "w") as stream:
                json.dump(record, stream, indent=2)
            self._held = True
            return
        raise RunLockedError(f"could not take the run lock {self.path} (it keeps reappearing)")

    def release(self) -> None:
        """Remove the lock file if this object holds it (idempotent)."""
        if not self._held:
            return
        owner = self._owner()
        if owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)
        self._held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
