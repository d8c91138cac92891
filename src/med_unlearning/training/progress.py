"""What the loop shows while it runs: a progress bar and one log line per epoch.

Only the main process shows either (the loop passes ``enabled``/``main_process``); the log
line names the run, the epoch, every history column that is a metric (not a counter or a
timing), the epoch's time and the ETA of the rest of the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from tqdm.auto import tqdm

__all__ = ["format_eta", "log_epoch", "progress_bar", "show_step"]

# the package's logger name, as before the loop was split into modules
logger = logging.getLogger(__package__)

#: History columns left out of the per-epoch log line (counters and timings).
_NOT_LOGGED = frozenset({"epoch", "steps", "items", "data_time_s", "epoch_time_s", "val_time_s"})


def format_eta(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss`` for a number of seconds (negative counts as zero)."""
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:d}:{secs:02d}"


def progress_bar(total: int | None, description: str, *, enabled: bool) -> tqdm:
    """A step-counting bar that leaves no line behind (``total=None``: unknown length)."""
    return tqdm(
        total=total,
        desc=description,
        unit="step",
        disable=not enabled,
        dynamic_ncols=True,
        leave=False,
    )


def show_step(
    bar: tqdm, *, step: int, epoch: int, epochs: int, loss: torch.Tensor, shown: bool
) -> None:
    """Advance the bar by one step; every 5th step (from the 1st) show the epoch and loss.

    The loss is read back from the device only when the bar is ``shown`` (a sync per
    5 steps, none when hidden).
    """
    bar.update(1)
    if shown and step % 5 == 1:
        bar.set_postfix(epoch=f"{epoch}/{epochs}", loss=f"{loss.item():.4g}")


def log_epoch(description: str, row: Mapping[str, float], *, epochs: int, eta_s: float) -> None:
    """Log one finished epoch: its metrics, its time and the ETA of the remaining epochs."""
    metrics = " ".join(f"{key} {value:.4g}" for key, value in row.items() if key not in _NOT_LOGGED)
    logger.info(
        "%s epoch %d/%d  %s  time %.1fs  ETA %s",
        description,
        row["epoch"],
        epochs,
        metrics,
        row["epoch_time_s"],
        format_eta(eta_s),
    )
