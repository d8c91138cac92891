"""FigureFolderDataset: PNG bytes written verbatim, figures rendered, anything else refused."""

from __future__ import annotations

import base64
import io

import pytest
from kedro.io.core import DatasetError
from matplotlib.figure import Figure

from med_unlearning.datasets.figure_folder_dataset import FigureFolderDataset
from med_unlearning.reporting.figures.canvas import PNG_SIGNATURE


def _png() -> bytes:
    figure = Figure(figsize=(1, 1))
    figure.add_subplot().plot([0, 1], [1, 0])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def test_png_bytes_are_written_as_they_are_and_figures_are_rendered(tmp_path) -> None:
    dataset = FigureFolderDataset(filepath=str(tmp_path / "figures"), save_args={"dpi": 50})
    image = _png()
    figure = Figure(figsize=(1, 1))
    figure.add_subplot().bar([0], [1])
    dataset.save({"rendered.png": image, "figure.png": figure})
    assert (tmp_path / "figures" / "rendered.png").read_bytes() == image
    assert (tmp_path / "figures" / "figure.png").read_bytes().startswith(PNG_SIGNATURE)
    assert base64.b64decode(dataset.preview("rendered")) == image  # what kedro-viz shows


def test_bytes_that_are_not_a_png_are_refused_with_the_file_named(tmp_path) -> None:
    dataset = FigureFolderDataset(filepath=str(tmp_path / "figures"))
    with pytest.raises(DatasetError, match=r"broken\.png: expected a matplotlib Figure or PNG"):
        dataset.save({"broken.png": b"GIF89a not a png"})
    assert not (tmp_path / "figures" / "broken.png").exists()
