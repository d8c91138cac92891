"""Figures: axes layout, saving to PNG, and a note instead of a crash when data is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from med_unlearning.metrics.results_table import summarize
from med_unlearning.reporting.figures import (
    epoch_horizon_bars,
    figure_to_png,
    middle_slice,
    reconstruction_examples,
    retain_fraction_curves,
    segmentation_overlays,
    tradeoff_scatter,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _saves_png(figure: Figure, path: Path) -> None:
    figure.savefig(path, dpi=40)
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def _texts(figure: Figure) -> str:
    return " ".join(text.get_text() for axis in figure.axes for text in axis.texts)


def test_middle_slice_takes_the_centre_along_the_axis() -> None:
    volume = np.arange(5 * 3 * 4).reshape(5, 3, 4)
    np.testing.assert_array_equal(middle_slice(volume, 0), volume[2])
    np.testing.assert_array_equal(middle_slice(volume, -1), volume[:, :, 2])
    np.testing.assert_array_equal(middle_slice(volume[0]), volume[0])
    with pytest.raises(ValueError, match="2-D slice or a 3-D volume"):
        middle_slice(np.zeros(3))


def test_figure_to_png_returns_png_bytes() -> None:
    figure = Figure()
    figure.add_subplot(1, 1, 1).plot([0, 1])
    assert figure_to_png(figure, dpi=30).startswith(PNG_SIGNATURE)


def test_reconstruction_examples_grid(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    models = ["zero_filled", "original", "oracle", "nl_ft"]
    targets = {"forget": rng.random((3, 16, 16)), "retain": rng.random((16, 12))}
    reconstructions = {
        case: {model: target + rng.normal(0, 0.05, target.shape) for model in models}
        for case, target in targets.items()
    }
    figure = reconstruction_examples(reconstructions, targets, error_scale=4)
    rows, columns = 1 + len(models), 2 * len(targets)
    assert len(figure.axes) == rows * columns + len(targets)  # + one colour bar per case
    error_axis = figure.axes[columns * 2 + 1]  # row "original", forget error column
    shown = error_axis.images[0].get_array()
    expected = np.abs(middle_slice(reconstructions["forget"]["original"]) - targets["forget"][1])
    np.testing.assert_allclose(shown, 4 * expected)
    _saves_png(figure, tmp_path / "recon.png")


def test_reconstruction_examples_with_a_missing_model_and_shape_mismatch(tmp_path: Path) -> None:
    target = np.ones((8, 8))
    figure = reconstruction_examples(
        {"forget": {"original": target, "oracle": np.ones((4, 4))}, "retain": {"original": target}},
        {"forget": target, "retain": target},
    )
    assert len(figure.axes) == 3 * 4 + 2
    assert "not available" in _texts(figure)
    assert "≠ target" in _texts(figure)
    _saves_png(figure, tmp_path / "partial.png")


def test_reconstruction_examples_without_data_is_a_note() -> None:
    figure = reconstruction_examples({}, {})
    assert len(figure.axes) == 1
    assert "no reconstructions" in _texts(figure)


def test_segmentation_overlays_grid(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    cases = ("forget", "retain")
    images = {case: rng.random((12, 12, 5)) for case in cases}
    truths = {case: rng.integers(0, 9, (12, 12, 5)) for case in cases}
    predictions = {case: {"original": truths[case], "noisy_label": np.zeros((12, 12, 5))}
                   for case in cases}  # fmt: skip
    figure = segmentation_overlays(images, predictions, truths, label_names={1: "cortical_gm"})
    assert len(figure.axes) == (1 + 2) * len(cases)
    assert figure.legends and "1 cortical_gm" in [t.get_text() for t in figure.legends[0].texts]
    _saves_png(figure, tmp_path / "overlay.png")


def test_segmentation_overlays_without_data_is_a_note() -> None:
    figure = segmentation_overlays({}, {}, {})
    assert len(figure.axes) == 1 and "no segmentations" in _texts(figure)


def _row(task: str, method: str, set_name: str, metric: str, value: float, item: int,
         **extra: float) -> dict:  # fmt: skip
    return {"task": task, "method": method, "set": set_name, "item_id": f"i{item}",
            "metric": metric, "value": value, "higher_is_better": True, **extra}  # fmt: skip


@pytest.fixture
def summary() -> pd.DataFrame:
    rows = []
    for item in range(3):
        for method, retain, forget in (("original", 0.95, 0.92), ("oracle", 0.96, 0.80),
                                       ("nl_ft", 0.94, 0.81)):  # fmt: skip
            rows.append(_row("recon", method, "retain_test", "ssim", retain + 0.01 * item, item))
            rows.append(_row("recon", method, "forget_train", "ssim", forget + 0.01 * item, item))
        for base in ("ft", "nl_ft"):
            for fraction in (0.01, 0.1, 1.0):
                method = f"{base}@{fraction:.0%}"
                for set_name in ("retain_test", "forget_train"):
                    rows.append(_row("recon", method, set_name, "ssim", 0.8 + 0.1 * fraction,
                                     item, retain_fraction=fraction))  # fmt: skip
        for strategy in ("noisy_label", "max_loss", "fix_decoder"):
            for epochs in (20, 50):
                method = f"{strategy}@e{epochs}"
                for set_name in ("retain", "forget"):
                    rows.append(_row("segmentation", method, set_name, "dice_mean",
                                     0.5 - epochs / 200, item, epochs=epochs))  # fmt: skip
    return summarize(pd.DataFrame(rows))


def test_tradeoff_scatter_one_panel_per_task(summary: pd.DataFrame, tmp_path: Path) -> None:
    pairs = {"recon": (("retain_test", "ssim"), ("forget_train", "ssim")),
             "segmentation": (("retain", "dice_mean"), ("forget", "dice_mean"))}  # fmt: skip
    figure = tradeoff_scatter(summary, pairs)
    assert len(figure.axes) == 2
    recon_axis = figure.axes[0]
    labels = {collection.get_label() for collection in recon_axis.collections}
    assert {"original", "oracle", "nl_ft"} <= labels
    assert not any("@" in label for label in labels)  # sweep points have their own figure
    oracle = next(c for c in recon_axis.collections if c.get_label() == "oracle")
    expected = summary.query("method == 'oracle' and task == 'recon'").set_index("set")["mean"]
    np.testing.assert_allclose(
        oracle.get_offsets()[0], [expected["forget_train"], expected["retain_test"]]
    )
    # segmentation has no original/oracle here, but its strategies are still plotted
    assert len(figure.axes[1].collections) > 0
    _saves_png(figure, tmp_path / "tradeoff.png")


def test_tradeoff_scatter_readable_at_a_glance(summary: pd.DataFrame, tmp_path: Path) -> None:
    pairs = {"recon": (("retain_test", "ssim"), ("forget_train", "ssim"))}
    extra = summary.loc[summary["method"] == "nl_ft"].assign(method="nl_ft@seed1")
    hidden = summary.loc[summary["method"] == "nl_ft"].assign(method="reference")
    crowded = pd.concat([summary, extra, hidden], ignore_index=True)
    for name in ("a", "b", "c", "d"):  # four methods on top of each other
        crowded = pd.concat([crowded, summary.loc[summary["method"] == "nl_ft"].assign(
            method=name)], ignore_index=True)  # fmt: skip
    figure = tradeoff_scatter(crowded, pairs, include_sweeps=True, hidden=["reference"])
    axis = figure.axes[0]
    labels = {collection.get_label() for collection in axis.collections
              if not collection.get_label().startswith("_")}  # fmt: skip
    assert {"original", "oracle", "nl_ft", "a", "d"} <= labels
    assert "reference" not in labels and "nl_ft@seed1" not in labels
    # nl_ft's sweep variants are a line named in the legend (ft has no main run here: points)
    lines = {line.get_label(): line for line in axis.get_lines()}
    assert "nl_ft sweep (3)" in lines and "ft@1%" in labels
    # every main method is named once, and no two names overlap
    names = [text for text in axis.texts if text.get_text() in labels]
    assert sorted(t.get_text() for t in names) == sorted(labels)
    positions = sorted(text.get_position()[1] for text in names)
    assert min(np.diff(positions)) >= min(0.075, 1.0 / len(names)) - 1e-9
    # error bars are the 95 % intervals
    oracle_rows = summary.query("method == 'oracle' and set == 'retain_test'").iloc[0]
    segments = [c for c in axis.collections if c.get_label() != "oracle"
                and hasattr(c, "get_segments") and len(c.get_segments()) == 1]
    spans = {round(float(seg.get_segments()[0][1][1] - seg.get_segments()[0][0][1]), 6)
             for seg in segments if seg.get_segments()[0][0][0] == seg.get_segments()[0][1][0]}
    assert round(oracle_rows["ci_high"] - oracle_rows["ci_low"], 6) in spans
    _saves_png(figure, tmp_path / "tradeoff_sweeps.png")


def test_tradeoff_scatter_notes_a_task_without_data(summary: pd.DataFrame) -> None:
    pairs = {"recon": (("retain_test", "psnr"), ("forget_train", "psnr"))}
    figure = tradeoff_scatter(summary, pairs)
    assert len(figure.axes) == 1 and "no recon results" in _texts(figure)


def test_retain_fraction_curves(summary: pd.DataFrame, tmp_path: Path) -> None:
    refs = [("retain_test", "ssim"), ("forget_train", "ssim")]
    figure = retain_fraction_curves(summary, "recon", refs, methods=["ft", "nl_ft"])
    assert len(figure.axes) == len(refs)
    axis = figure.axes[0]
    assert axis.get_xscale() == "log"
    curves = {container.get_label(): container.lines[0] for container in axis.containers}
    assert set(curves) == {"ft", "nl_ft"}
    np.testing.assert_allclose(curves["ft"].get_xdata(), [1.0, 10.0, 100.0])
    np.testing.assert_allclose(curves["ft"].get_ydata(), [0.8 + 0.1 * f for f in (0.01, 0.1, 1)])
    _saves_png(figure, tmp_path / "sweep.png")


def test_retain_fraction_curves_without_sweeps_is_a_note(summary: pd.DataFrame) -> None:
    figure = retain_fraction_curves(summary, "segmentation", [("retain", "dice_mean")])
    assert len(figure.axes) == 1 and "retain fraction" in _texts(figure)


def test_epoch_horizon_bars(summary: pd.DataFrame, tmp_path: Path) -> None:
    refs = [("forget", "dice_mean"), ("retain", "dice_mean")]
    figure = epoch_horizon_bars(summary, "segmentation", refs,
                                method_order=["noisy_label", "max_loss"])  # fmt: skip
    assert len(figure.axes) == len(refs)
    axis = figure.axes[0]
    strategies, horizons = 3, 2
    assert len(axis.patches) == strategies * horizons
    heights = sorted({round(patch.get_height(), 6) for patch in axis.patches})
    assert heights == sorted({round(0.5 - epochs / 200, 6) for epochs in (20, 50)})
    assert [tick.get_text() for tick in axis.get_xticklabels()] == [
        "noisy_label", "max_loss", "fix_decoder"
    ]
    _saves_png(figure, tmp_path / "epochs.png")


def test_epoch_horizon_bars_without_epochs_is_a_note(summary: pd.DataFrame) -> None:
    figure = epoch_horizon_bars(summary, "recon", [("retain_test", "ssim")])
    assert len(figure.axes) == 1 and "epoch horizon" in _texts(figure)


def test_epoch_horizon_bars_show_the_bootstrap_intervals(summary: pd.DataFrame) -> None:
    """Error bars are each bar's 95 % interval (asymmetric), not ± std."""
    from med_unlearning.reporting.figures.summary_plots import _interval_bars

    selected = pd.DataFrame({"mean": [0.5, 0.4], "std": [0.1, 0.1],
                             "ci_low": [0.45, np.nan], "ci_high": [0.6, np.nan]})  # fmt: skip
    np.testing.assert_allclose(_interval_bars(selected), [[0.05, 0.1], [0.1, 0.1]])
    figure = epoch_horizon_bars(summary, "segmentation", [("forget", "dice_mean")])
    assert figure.axes[0].containers  # the bars carry their error bars
