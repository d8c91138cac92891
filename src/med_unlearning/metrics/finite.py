"""Refuse non-finite numbers in evaluation instead of letting them vanish from the averages.

A NaN in a test volume's k-space makes that volume's PSNR/SSIM/NMSE NaN for every method;
averages that skip NaN would then be taken over fewer volumes without anyone noticing. The
scoring functions call :func:`require_finite` on every input, target and output array
they score, so such data stops the evaluation with the volume (or subject) and the slices
named.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NonFiniteError", "non_finite_slices", "require_finite"]


class NonFiniteError(ValueError):
    """An array scored in evaluation holds NaN or infinity; the message names item and slices."""


def non_finite_slices(array: np.ndarray, axis: int = 0) -> list[int]:
    """Indices along ``axis`` of the slices holding a NaN or an infinity."""
    values = np.asarray(array)
    if values.ndim == 0:
        return [] if np.isfinite(values) else [0]
    bad = ~np.isfinite(values)
    other = tuple(index for index in range(values.ndim) if index != axis % values.ndim)
    return [int(index) for index in np.flatnonzero(bad.any(axis=other) if other else bad)]


def require_finite(
    array: np.ndarray | float, *, what: str, item: str, axis: int = 0, unit: str = "slice"
) -> None:
    """Raise :class:`NonFiniteError` if ``array`` holds a NaN or an infinity.

    Args:
        array: the values (e.g. ``[slices, h, w]``) or a scalar.
        what: what they are, e.g. ``"the zero-filled input (from the k-space)"``.
        item: the volume or subject id.
        axis: the slice axis of ``array``.
        unit: the name of one index along ``axis`` in the message.
    """
    bad = non_finite_slices(np.asarray(array), axis)
    if bad:
        shown = bad[:10] + (["…"] if len(bad) > 10 else [])
        raise NonFiniteError(
            f"{item}: {what} holds NaN or infinite values at {unit}(s) {shown} "
            f"(of {np.asarray(array).shape[axis] if np.ndim(array) else 1}); evaluation "
            "refuses non-finite data, which would silently drop the item from the averages. "
            "Fix or remove the file, or exclude the item from the split."
        )
