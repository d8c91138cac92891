"""The study report: every method's row, embedded figures, missing methods, plain verdicts."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from med_unlearning.metrics.comparison import evaluate_study
from med_unlearning.metrics.membership import membership_attacks_from_params
from med_unlearning.params.evaluation import EvaluationParams
from med_unlearning.reporting.context import (
    MAE_DEFINITION,
    FigureEntry,
    ReportContext,
    TaskSection,
)
from med_unlearning.reporting.figures import tradeoff_scatter
from med_unlearning.reporting.render import render_report
from med_unlearning.reporting.report import build_report_context
from med_unlearning.reporting.tables import markdown_table

RECON_METHODS = ("original", "oracle", "ft", "nl_ft", "ga_l1", "reference")
#: per-method quality factor (reference ~ oracle; nl_ft close to the oracle)
RECON_FACTOR = {"original": 1.0, "oracle": 0.95, "ft": 0.99, "nl_ft": 0.951, "ga_l1": 0.6,
                "reference": 0.95}  # fmt: skip
SEGMENTATION_METHODS = ("original", "oracle", "noisy_label@e50", "max_loss@e50")
PROTOCOL = {
    "tasks": ["recon", "segmentation"],
    "forget request": {"recon": "anatomy == knee", "segmentation": "subject in [070]"},
    "retain subset": "10%",
    "seed": 42,
}


def _results() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for method in RECON_METHODS:
        for set_name in ("retain_test", "forget_test", "forget_train", "retain_val",
                         "forget_val"):  # fmt: skip
            for item in range(4):
                for metric, base, higher in (("psnr", 35.0, True), ("ssim", 0.9, True),
                                             ("nmse", 0.02, False)):  # fmt: skip
                    factor = RECON_FACTOR[method] if higher else 2 - RECON_FACTOR[method]
                    rows.append({"task": "recon", "method": method, "set": set_name,
                                 "item_id": f"{set_name}{item}", "metric": metric,
                                 "value": base * factor + rng.normal(0, 0.001),
                                 "higher_is_better": higher})  # fmt: skip
    for index, method in enumerate(SEGMENTATION_METHODS):
        for set_name in ("retain", "forget", "test"):
            for item in range(3):
                for metric, base, higher in (("dice_mean", 0.8, True), ("mae", 0.05, False)):
                    rows.append({"task": "segmentation", "method": method, "set": set_name,
                                 "item_id": f"{set_name}{item}", "metric": metric,
                                 "value": base * (1 - 0.1 * index) + rng.normal(0, 0.01),
                                 "higher_is_better": higher, "epochs": 50.0})  # fmt: skip
    return pd.DataFrame(rows)


EXPECTED = {"recon": ["ft", "nl_ft", "ga_l1", "full_ft"],
            "segmentation": ["noisy_label@e50", "max_loss@e50", "fix_decoder@e50"]}  # fmt: skip


def _slices(results: pd.DataFrame, per_item: int = 3) -> pd.DataFrame:
    """Per-slice rows of the recon items: ``per_item`` slices around each item's value."""
    rng = np.random.default_rng(1)
    recon = results.loc[results["task"] == "recon"].drop(columns=["epochs"], errors="ignore")
    parts = []
    for index in range(per_item):
        part = recon.assign(slice=index)
        part["value"] = part["value"] + rng.normal(0, 0.01, len(part))
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _report_params() -> EvaluationParams:
    """Recon attacked per slice, segmentation per subject."""
    data = EvaluationParams().model_dump()
    data["tasks"]["segmentation"]["attack"]["granularity"] = "volume"
    data["membership"]["n_splits"] = 2
    return EvaluationParams.model_validate(data)


@pytest.fixture(scope="module")
def rendered() -> tuple[str, str, ReportContext]:
    params = _report_params()
    results = _results()
    membership = membership_attacks_from_params(results, params, _slices(results))
    costs = pd.DataFrame({"task": ["recon", "recon", "segmentation", "segmentation"],
                          "method": ["oracle", "nl_ft", "oracle", "noisy_label@e50"],
                          "wall_time_s": [800.0, 35.0, 100.0, 25.0]})  # fmt: skip
    tables = evaluate_study(results, params, costs, membership, EXPECTED)
    pairs = {task: (spec.retain[0].as_tuple(), spec.forget[0].as_tuple())
             for task, spec in params.tasks.items()}  # fmt: skip
    figures = {
        "recon": [FigureEntry("Trade-off", "figures/tradeoff.png",
                              tradeoff_scatter(tables["summary"], pairs))],
        "segmentation": [FigureEntry("Overlays", "figures/overlays.png", None)],
        "study": [FigureEntry("Blank", "figures/blank.png", _small_figure(), caption="cap")],
    }  # fmt: skip
    context = build_report_context(
        tables, params, protocol=PROTOCOL, membership=membership, figures=figures,
        expected_methods=EXPECTED, title="Test study",
    )  # fmt: skip
    markdown, html = render_report(context)
    return markdown, html, context


def _small_figure() -> Figure:
    figure = Figure(figsize=(2, 2))
    figure.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    return figure


def _summary_rows(markdown: str, task: str) -> list[str]:
    section = markdown.split(f"## Task: {task}")[1].split("### Summary")[1].split("###")[0]
    return [line.split("|")[1].strip() for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| method")]  # fmt: skip


def test_every_method_has_a_summary_row(rendered: tuple) -> None:
    markdown, html, _ = rendered
    order = EvaluationParams().method_order
    strategies = sorted(["ft", "nl_ft", "ga_l1", "full_ft"], key=order.index)
    assert _summary_rows(markdown, "recon") == ["original", "oracle", *strategies, "reference"]
    assert set(_summary_rows(markdown, "segmentation")) == {
        *SEGMENTATION_METHODS, "fix_decoder@e50"
    }
    for method in {*RECON_METHODS, *SEGMENTATION_METHODS, "full_ft", "fix_decoder@e50"}:
        assert f"<td>{method}</td>" in html


def test_missing_methods_are_named_not_fatal(rendered: tuple) -> None:
    markdown, html, context = rendered
    sections = {section.task: section for section in context.sections}
    assert sections["recon"].missing_methods == ["full_ft"]
    assert sections["segmentation"].missing_methods == ["fix_decoder@e50"]
    assert "Missing methods: full_ft" in markdown and "Missing methods: full_ft" in html
    full_ft_row = next(line for line in markdown.splitlines() if line.startswith("| full_ft |"))
    assert set(cell.strip() for cell in full_ft_row.strip("|").split("|")[1:]) == {"missing"}


def test_html_is_self_contained_with_embedded_pngs(rendered: tuple) -> None:
    _, html, _ = rendered
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 2  # trade-off and the study-wide figure; the None one is a note
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for data in images)
    assert "Figure not available" in html
    assert "<style>" in html and "<link" not in html and "<script" not in html


def test_markdown_links_figures_by_relative_name(rendered: tuple) -> None:
    markdown, _, _ = rendered
    for name in ("figures/tradeoff.png", "figures/overlays.png", "figures/blank.png"):
        assert f"]({name})" in markdown
    assert "data:image" not in markdown


def test_report_content(rendered: tuple) -> None:
    markdown, html, _ = rendered
    for heading in ("## The answer", "## Protocol", "gap to the oracle", "Distance to the oracle",
                    "Membership inference", "### Cost", "### Verdicts", "How MAE is computed",
                    "## Glossary"):  # fmt: skip
        assert heading in markdown
    assert "- **retain subset**: 10%" in markdown
    assert "  - **recon**: anatomy == knee" in markdown
    assert MAE_DEFINITION in markdown
    for term in ("BTA", "KTA", "UA"):
        assert f"**{term}**" in markdown and f"<dt>{term}</dt>" in html
    assert "4.4%" in markdown  # nl_ft: 35 s of 800 s retraining
    verdict_line = next(line for line in markdown.splitlines() if line.startswith("- nl_ft — "))
    assert "forgot as much as the oracle" in verdict_line and "vs ±" in verdict_line
    assert "[" in verdict_line  # every gap with its interval
    assert "How costs are measured" in markdown and "without validation" in markdown
    assert "- full_ft — missing" in markdown


def test_membership_table_says_what_the_items_are(rendered: tuple) -> None:
    markdown, html, _ = rendered
    heading = "### Membership inference\n"
    recon = markdown.split("## Task: recon")[1].split(heading)[1].split("###")[0]
    segmentation = markdown.split("## Task: segmentation")[1].split(heading)[1].split("###")[0]
    nl_ft = next(line for line in recon.splitlines() if line.startswith("| nl_ft "))
    assert "12 / 12 slices (4 / 4 volumes)" in nl_ft
    assert "CI: bootstrap over volumes" in nl_ft
    assert "reference" in recon  # calibration, in the caption
    noisy = next(line for line in segmentation.splitlines() if line.startswith("| noisy_label"))
    assert "| 3 / 3 subjects |" in noisy and "slices" not in noisy
    assert "**attack granularity**" in markdown and "<dt>attack granularity</dt>" in html
    assert "one item per 2-D slice, loss features from SSIM, NMSE" in markdown


def test_report_without_oracle_or_costs_still_renders() -> None:
    params = EvaluationParams.model_validate({"membership": {"n_splits": 2}})
    results = _results()
    results = results.loc[results["method"] != "oracle"]
    tables = evaluate_study(results, params, expected_methods=EXPECTED)
    markdown, html = render_report(
        build_report_context(tables, params, protocol={}, expected_methods=EXPECTED)
    )
    assert "Cost: no results for this task." in markdown
    assert "n/a" in markdown
    assert "<td>nl_ft</td>" in html


def test_render_accepts_a_plain_mapping() -> None:
    table = pd.DataFrame({"method": ["a<b", "c"], "value": ["x|y", "z"]})
    context = {
        "title": "T",
        "protocol": {"seed": 1},
        "sections": [{"task": "recon", "tables": [("Numbers", table, "")],
                      "figures": [{"title": "F", "filename": "f.png",
                                   "image": _small_figure()}]}],
    }  # fmt: skip
    markdown, html = render_report(context)
    assert "| a<b | x\\|y |" in markdown
    assert "a&lt;b" in html and "data:image/png;base64," in html


def test_markdown_table_marks_nan() -> None:
    text = markdown_table(pd.DataFrame({"m": ["a"], "v": [np.nan]}))
    assert text.splitlines() == ["| m | v |", "|---|---|", "| a | – |"]


def test_section_object_defaults() -> None:
    markdown, html = render_report(ReportContext(title="Empty", protocol={},
                                                 sections=[TaskSection(task="recon")]))  # fmt: skip
    assert "## Task: recon" in markdown and "<h2>Task: recon</h2>" in html


def _answer(markdown: str, task: str) -> str:
    return markdown.split("## The answer")[1].split("**How verdicts")[0].split(f"### {task}")[1]


def test_report_leads_with_the_answer_selected_on_validation(rendered: tuple) -> None:
    markdown, html, context = rendered
    assert markdown.index("## The answer") < markdown.index("## Protocol")
    recon = _answer(markdown, "recon").split("### segmentation")[0]
    assert "**Recommended: nl_ft** — selected on validation data only" in recon
    assert "Settings selected on: conf defaults (not tuned)" in recon
    # the answer's verdict sentence is the verdict table's, word for word
    sentence = next(line for line in context.sections[0].verdicts if line.startswith("nl_ft"))
    assert f"On the test sets: {sentence}" in recon
    assert "gap to the oracle [95 % CI]" in recon and "forget train (UA) SSIM" in recon
    assert "null check" in recon
    segmentation = _answer(markdown, "segmentation")
    assert "**No recommendation** — no recommendation: no validation data" in segmentation
    assert "<h2>The answer</h2>" in html and "Recommended: nl_ft" in html


def test_a_failed_null_check_makes_privacy_uninformative(rendered: tuple) -> None:
    markdown, _, context = rendered
    # The synthetic recon data: reference = oracle quality, so calibrated nulls sit at chance;
    # segmentation has no reference model: uncalibrated, and the report says what follows.
    segmentation = _answer(markdown, "segmentation")
    assert "calibration: none (no reference model in the results)" in segmentation
    sections = {section.task: section for section in context.sections}
    null_tables = [t for title, t, _ in sections["recon"].tables if "null check" in title]
    assert len(null_tables) == 1 and "oracle" in set(null_tables[0]["null model"])


def test_tuning_record_is_shown_per_method() -> None:
    data = _report_params().model_dump()
    data["tuning_record"] = {"nl_ft": "Optuna TPE, 20 trials, objective oracle distance, "
                                      "sets retain_val+forget_val"}  # fmt: skip
    params = EvaluationParams.model_validate(data)
    results = _results()
    tables = evaluate_study(results, params, expected_methods=EXPECTED)
    markdown, _ = render_report(
        build_report_context(tables, params, protocol={}, expected_methods=EXPECTED)
    )
    assert "Settings selected on: Optuna TPE, 20 trials" in markdown
    glance = markdown.split("### Verdicts at a glance")[1].split("###")[0]
    assert "settings selected on" in glance and "conf defaults (not tuned)" in glance


def test_membership_tables_survive_the_catalogs_csv_round_trip(tmp_path) -> None:
    import yaml

    params = _report_params()
    results = _results()
    membership = membership_attacks_from_params(results, params, _slices(results))
    catalog = yaml.safe_load(open("conf/base/catalog_evaluation.yml"))
    load_args = catalog["evaluation.membership"]["load_args"]
    path = tmp_path / "membership.csv"
    membership.to_csv(path, index=False)
    reread = pd.read_csv(path, **load_args)
    # "null model" roles and "n/a" verdicts stay words (pandas reads bare "null"/"n/a" as NaN)
    pd.testing.assert_series_equal(reread["role"], membership["role"])
    pd.testing.assert_series_equal(reread["private"], membership["private"])
    tables = evaluate_study(results, params, expected_methods=EXPECTED)
    context = build_report_context(tables, params, protocol={}, membership=reread)
    assert "null check" in " ".join(context.answers[0].lines)


def test_the_answer_says_whether_the_attack_can_detect_the_originals_members() -> None:
    from med_unlearning.reporting.answer import power_sentence

    def table(low: float, high: float) -> pd.DataFrame:
        return pd.DataFrame([{"task": "recon", "method": "original", "auc": (low + high) / 2,
                              "auc_ci_low": low, "auc_ci_high": high}])  # fmt: skip

    powerful = power_sentence(table(0.7, 0.95), "recon", "original")
    powerless = power_sentence(table(0.3, 0.7), "recon", "original")
    assert powerful is not None and "are detected" in powerful
    assert powerless is not None and "cannot show forgetting" in powerless
    assert power_sentence(table(0.7, 0.95), "segmentation", "original") is None
    assert power_sentence(None, "recon", "original") is None


def _memorisation_report(results: pd.DataFrame) -> str:
    from med_unlearning.metrics.memorisation import forget_label_changes, generalisation_gaps

    params = EvaluationParams.model_validate({"membership": {"n_splits": 2}})
    tables = evaluate_study(results, params, expected_methods=EXPECTED)
    memorisation = {
        "gaps": generalisation_gaps(results, n_resamples=200),
        "labels": forget_label_changes(results, n_resamples=200),
    }
    markdown, _ = render_report(build_report_context(
        tables, params, protocol={}, expected_methods=EXPECTED, memorisation=memorisation,
    ))  # fmt: skip
    return markdown


def test_report_warns_when_a_request_has_nothing_to_forget() -> None:
    """_results(): the original is as good on its forget and training subjects as on unseen
    ones (no gap), so the report warns, in the answer and in the segmentation section."""
    markdown = _memorisation_report(_results())
    section = markdown.split("## Task: segmentation", 1)[1]
    assert "Generalisation gaps (Dice)" in section
    assert "Warning: The original shows no generalisation gap" in section
    assert "Warning: The original does not measurably segment its forget subject(s)" in section
    assert "Warning: The original shows no generalisation gap" in _answer(markdown, "segmentation")
    assert "Task: recon" in markdown and "Warning" not in markdown.split("## Task: recon")[1].split(
        "## Task: segmentation")[0]


def test_report_shows_gaps_and_per_label_change_without_warning_when_memorised() -> None:
    results = _results()
    seg = results["task"] == "segmentation"
    memorised = seg & results["set"].isin(["retain", "forget"]) & (results["method"] == "original")
    results.loc[memorised, "value"] += 0.2
    forget_dice = seg & (results["set"] == "forget") & (results["metric"] == "dice_mean")
    lesions = results[forget_dice].assign(metric="dice_wm_lesions")
    markdown = _memorisation_report(pd.concat([results, lesions], ignore_index=True))
    section = markdown.split("## Task: segmentation", 1)[1]
    assert "Warning" not in section
    assert "| original | trained − unseen |" in section
    assert "Per-label Dice change on the forget subjects" in section
    assert "| to forget (original − oracle) |" in section
