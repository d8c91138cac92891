"""``FigureFolderDataset``: figures saved as PNGs in a folder, previewed in kedro-viz."""

from __future__ import annotations

import base64

from kedro.io.core import DatasetError, get_filepath_str
from kedro_datasets.matplotlib import MatplotlibDataset
from matplotlib.figure import Figure

from med_unlearning.datasets._common import ImagePreview
from med_unlearning.reporting.figures.canvas import is_png

__all__ = ["FigureFolderDataset"]


class FigureFolderDataset(MatplotlibDataset):
    """``matplotlib.MatplotlibDataset`` whose kedro-viz preview works on a folder of figures.

    Saving a ``{name.png: Figure}`` dict writes one PNG per figure under ``filepath`` (as
    ``MatplotlibDataset`` does); a value that is already PNG bytes is written as it is, so a
    node that rendered its figures once (for a report too) does not render them again. Its
    own ``preview`` would fail, because it opens the folder as one file. This preview shows
    one PNG of the folder: the one named in ``preview_args`` (``name``, with or without
    ``.png``), else the first in sorted order. A ``filepath`` that
    is one file previews as that file.

    .. code-block:: yaml

        evaluation.figures:
          type: med_unlearning.datasets.FigureFolderDataset
          filepath: data/08_reporting/figures
          save_args: {format: png}
          metadata:
            kedro-viz:
              preview_args: {name: recon_examples}
    """

    def _save_to_fs(self, full_key_path: str, plot: Figure | bytes) -> None:
        """Write one figure: PNG bytes verbatim, a matplotlib figure with ``save_args``."""
        if not isinstance(plot, bytes | bytearray):
            super()._save_to_fs(full_key_path=full_key_path, plot=plot)
            return
        if not is_png(plot):
            raise DatasetError(
                f"{type(self).__name__}: {full_key_path}: expected a matplotlib Figure or PNG "
                f"bytes, got {len(plot)} bytes that are not a PNG"
            )
        with self._fs.open(full_key_path, **self._fs_open_args_save) as stream:
            stream.write(bytes(plot))

    def figure_files(self) -> list[str]:
        """The PNG files under ``filepath`` (recursively), sorted; ``[filepath]`` for a file."""
        path = get_filepath_str(self._get_load_path(), self._protocol)
        self._fs.invalidate_cache(path)
        if self._fs.isfile(path):
            return [path]
        if not self._fs.isdir(path):
            return []
        return sorted(str(item) for item in self._fs.find(path) if str(item).endswith(".png"))

    def preview(self, name: str | None = None) -> ImagePreview:
        """One figure as a base64 PNG for kedro-viz.

        Args:
            name: the figure's file name (``recon_examples`` or ``recon_examples.png``);
                default (or no such file) the first PNG.

        Raises:
            DatasetError: no PNG has been saved yet.
        """
        files = self.figure_files()
        if not files:
            raise DatasetError(f"{type(self).__name__}: no PNG figure under {self._filepath}")
        chosen = files[0]
        if name:
            wanted = name if name.endswith(".png") else f"{name}.png"
            chosen = next((path for path in files if path.rsplit("/", 1)[-1] == wanted), chosen)
        with self._fs.open(chosen, mode="rb") as stream:
            return ImagePreview(base64.b64encode(stream.read()).decode("ascii"))
