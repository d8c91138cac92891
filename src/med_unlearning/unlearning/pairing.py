"""Iterate forget and retain batches together, so one optimiser step sees both.

Strategies of the form ``L = w_r · L(retain) ± w_f · L(forget, target)`` (NL-FT, GA-ℓ1-FT,
NegGrad+, Max Loss, Noisy Label, Retain Label…) need a forget batch and a retain batch at
every step. :class:`PairedBatches` is a re-iterable "loader" of ``(forget, retain)`` tuples
that the shared training loop accepts as is (it moves nested tensors to the device and
names the items of both batches in error messages); the strategy's ``loss_fn`` unpacks the
tuple.

One pass (an epoch) is driven by the longer loader by default: the shorter one is restarted
whenever it runs out, so every forget *and* every retain batch is seen at least once per
epoch whatever the retain fraction. Order is reproducible: the loaders own their seeded
shuffling (:func:`med_unlearning.training.make_loader`), and each restart of a seeded
DataLoader continues the same seeded stream, so the same seed gives the same pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

__all__ = ["PairedBatches", "PairingError"]

#: Which loader sets the length of one pass.
Drive = Literal["longest", "forget", "retain"]


class PairingError(ValueError):
    """The loaders cannot be paired (one is empty, or has no length for ``longest``)."""


def _length(loader: Iterable[Any], name: str) -> int:
    try:
        length = len(loader)  # type: ignore[arg-type]
    except TypeError as error:
        raise PairingError(
            f"the {name} loader has no length; pass a DataLoader or a list"
        ) from error
    if length == 0:
        raise PairingError(f"the {name} loader is empty: nothing to pair")
    return length


class PairedBatches:
    """``(forget_batch, retain_batch)`` pairs; restarts the shorter loader as needed.

    Args:
        forget: the forget loader (re-iterable: a DataLoader or a list of batches).
        retain: the retain loader.
        drive: which loader sets the number of pairs per pass: ``longest`` (default),
            ``forget`` or ``retain``.

    Raises:
        PairingError: a loader is empty or has no length.
    """

    def __init__(
        self, forget: Iterable[Any], retain: Iterable[Any], drive: Drive = "longest"
    ) -> None:
        if drive not in ("longest", "forget", "retain"):
            raise PairingError(f"drive must be 'longest', 'forget' or 'retain', got {drive!r}")
        self.forget = forget
        self.retain = retain
        self.drive = drive
        self._forget_length = _length(forget, "forget")
        self._retain_length = _length(retain, "retain")

    def __len__(self) -> int:
        if self.drive == "forget":
            return self._forget_length
        if self.drive == "retain":
            return self._retain_length
        return max(self._forget_length, self._retain_length)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        forget = _Cycle(self.forget)
        retain = _Cycle(self.retain)
        for _ in range(len(self)):
            yield next(forget), next(retain)

    def __repr__(self) -> str:
        return (
            f"PairedBatches(forget={self._forget_length} batches, "
            f"retain={self._retain_length} batches, drive={self.drive!r}, pairs={len(self)})"
        )


class _Cycle:
    """Endless iteration over a re-iterable, restarting it (not caching it) when exhausted."""

    def __init__(self, loader: Iterable[Any]) -> None:
        self.loader = loader
        self._iterator = iter(loader)

    def __next__(self) -> Any:
        try:
            return next(self._iterator)
        except StopIteration:
            self._iterator = iter(self.loader)
            return next(self._iterator)
