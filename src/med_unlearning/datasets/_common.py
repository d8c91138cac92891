"""Helpers shared by the project's Kedro datasets: local paths and kedro-viz image previews."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
from kedro.io.core import DatasetError, get_protocol_and_path

try:  # the preview types kedro-viz recognises by name
    from kedro_datasets._typing import ImagePreview, JSONPreview
except ImportError:  # pragma: no cover - kedro-datasets always ships them today
    from typing import NewType

    ImagePreview = NewType("ImagePreview", str)  # type: ignore[misc]
    JSONPreview = NewType("JSONPreview", str)  # type: ignore[misc]

__all__ = ["ImagePreview", "JSONPreview", "local_path", "png_preview"]


def local_path(filepath: str | os.PathLike, dataset: str) -> Path:
    """The local path behind ``filepath`` (``file://`` accepted).

    Raises:
        DatasetError: ``filepath`` names a remote protocol (``s3://``, ...), which this
            dataset does not support because its reader needs a local file.
    """
    protocol, path = get_protocol_and_path(filepath)
    if protocol != "file":
        raise DatasetError(
            f"{dataset} reads and writes local files only; got '{filepath}' (protocol "
            f"'{protocol}'). Copy the data to a local folder first."
        )
    return Path(path)


def png_preview(image: np.ndarray) -> ImagePreview:
    """A 2D image as a base64 PNG string (grey levels scaled to the 1st-99th percentile)."""
    from matplotlib import image as mpl_image  # writes PNG without a GUI backend

    array = np.asarray(image, dtype=np.float64)
    finite = array[np.isfinite(array)]
    low, high = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    if high <= low:
        high = low + 1.0
    scaled = np.clip((np.nan_to_num(array, nan=low) - low) / (high - low), 0.0, 1.0)
    buffer = io.BytesIO()
    mpl_image.imsave(buffer, scaled, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    return ImagePreview(base64.b64encode(buffer.getvalue()).decode("ascii"))
