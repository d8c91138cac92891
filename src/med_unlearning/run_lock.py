"""One ``kedro run`` per data root at a time: a lock file under the data root.

Two runs writing into one data tree at once would mix their outputs (a splits table from
one, checkpoints from the other). :class:`RunLock` creates ``<data_root>/.med_unlearning.lock``
atomically (``O_CREAT | O_EXCL``) holding the owner's host, pid and start time; a second run
finds it and stops with :class:`RunLockedError` naming the lock file and its owner. The lock
is removed when the run ends (also on error). A lock whose owner process is gone (a killed
run on this host) is stale: it is replaced, with a warning. A lock from another host cannot
be checked and is respected; delete the file by hand if that run is known to be over.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["LOCK_NAME", "RunLock", "RunLockedError", "process_alive"]

logger = logging.getLogger(__name__)

#: The lock file's name under the data root.
LOCK_NAME = ".med_unlearning.lock"


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
