"""The layout promises of metrics/, reporting/ and the evaluation pipeline (issue 15):
files of one job and a readable size, a library that runs without Kedro, and the old public
import paths of the packages that were split."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "med_unlearning"
SLICE = [SRC / "metrics", SRC / "reporting", SRC / "pipelines" / "evaluation"]
MAX_LINES = 500


def _sources() -> list[Path]:
    return sorted(path for folder in SLICE for path in folder.rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_source_file_is_over_the_size_limit(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name}: {lines} lines; split it by job"


@pytest.mark.parametrize(
    "path",
    [p for p in _sources() if "pipelines" not in p.parts],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_the_library_does_not_import_kedro(path: Path) -> None:
    """metrics/ and reporting/ run without Kedro (only the pipeline wires them to it)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        assert not any(name.split(".")[0] == "kedro" for name in names), path


#: The public names of the packages that used to be single modules.
PACKAGE_NAMES = {
    "med_unlearning.metrics.membership": [
        "as_loss", "GRANULARITIES", "MEMBERSHIP_COLUMNS", "NULL_COLUMNS", "NULL_ROLE",
        "GroupBootstrap", "MembershipAttackResult", "MembershipInputError", "attack_metrics",
        "grouped_folds", "grouped_out_of_fold_scores", "loss_features", "member_scores",
        "membership_attacks", "membership_attacks_from_params", "membership_inference_attack",
        "nonmember_set_of", "null_checks", "slice_loss_features", "threshold_scores",
        "tpr_at_fpr",
    ],
    "med_unlearning.reporting.figures": [
        "epoch_horizon_bars", "figure_to_png", "label_colours", "middle_slice", "note_figure",
        "reconstruction_examples", "retain_fraction_curves", "segmentation_overlays",
        "tradeoff_scatter",
    ],
}  # fmt: skip


@pytest.mark.parametrize("package", sorted(PACKAGE_NAMES))
def test_split_packages_keep_their_public_names(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(PACKAGE_NAMES[package]) == sorted(module.__all__)
    for name in PACKAGE_NAMES[package]:
        assert hasattr(module, name), f"{package}.{name}"


#: Where each name of the former ``metrics.comparison`` lives now (one home each).
COMPARISON_NAMES = {
    "med_unlearning.metrics.comparison": ["evaluate_study"],
    "med_unlearning.metrics.results_table": [
        "COST_COLUMNS", "REQUIRED_COLUMNS", "ResultsTableError", "summarize",
        "validate_cost_table", "validate_results_table", "validate_summary",
    ],
    "med_unlearning.metrics.methods": [
        "method_base", "method_display_order", "missing_methods", "order_methods",
    ],
    "med_unlearning.metrics.oracle": [
        "DISTANCE_COLUMNS", "GAP_COLUMNS", "cost_ratios", "distance_to_oracle", "oracle_gaps",
        "relative_to_original",
    ],
    "med_unlearning.metrics.verdicts": [
        "FAILING", "VERDICT_COLUMNS", "recorded_settings_sources", "settings_selected_on",
        "tolerance_for", "verdict_sentence", "verdicts",
    ],
    "med_unlearning.metrics.recommendation": ["recommendations"],
    "med_unlearning.reporting.formatting": [
        "SET_LABELS", "format_ci", "format_mean_std", "format_value", "metric_label",
        "set_label",
    ],
    "med_unlearning.reporting.tables": ["study_table", "markdown_table"],
}  # fmt: skip


@pytest.mark.parametrize("module_name", sorted(COMPARISON_NAMES))
def test_each_former_comparison_name_has_one_home(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in COMPARISON_NAMES[module_name]:
        assert name in module.__all__, f"{module_name}.{name}"
    homes = {
        other: importlib.import_module(other).__all__ for other in COMPARISON_NAMES
    }
    for name in COMPARISON_NAMES[module_name]:
        exported_by = [other for other, names in homes.items() if name in names]
        assert exported_by == [module_name], (name, exported_by)


def test_evaluation_nodes_only_wire() -> None:
    """The nodes module defines node functions and node factories, nothing of the library's
    (scores, tables, figures and records are built in metrics/ and reporting/)."""
    from med_unlearning.pipelines.evaluation import nodes

    tree = ast.parse(Path(nodes.__file__).read_text(encoding="utf-8"))
    defined = sorted(n.name for n in tree.body if isinstance(n, ast.FunctionDef))
    assert defined == sorted(name for name in nodes.__all__ if name != "TRAINED_MODELS")
