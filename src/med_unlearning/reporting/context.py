"""What the study report holds: its data model and its fixed texts.

:class:`ReportContext` (title, protocol, the per-task :class:`TaskAnswer` and
:class:`TaskSection`, figures, rules, glossary) is what
:func:`~med_unlearning.reporting.report.build_report_context` assembles and
:func:`~med_unlearning.reporting.render.render_report` writes out; the texts every report
carries (how MAE and costs are measured, the glossary) are defined here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "COST_RULE",
    "GLOSSARY",
    "MAE_DEFINITION",
    "FigureEntry",
    "ReportContext",
    "TaskAnswer",
    "TaskSection",
]

#: How the segmentation MAE is defined (``metrics.segmentation.mae_probabilities``).
MAE_DEFINITION = (
    "MAE is the mean absolute error between the predicted class probabilities and the one-hot "
    "ground truth: for each evaluated voxel, |softmax(logits)_c − onehot(label)_c| averaged "
    "over the C classes (background included), then averaged over the voxels; voxels whose "
    "label is ignored (MRBrainS18 labels 9 and 10) are left out. It is computed per subject; "
    "tables give mean ± std over subjects. 0 is perfect; a uniform prediction over C classes "
    "scores 2(C − 1)/C²."
)

#: Terms used in the report.
GLOSSARY: dict[str, str] = {
    "original": "the model trained on all data, including the data to forget (G).",
    "oracle": (
        "the model retrained from scratch without the forget data (Ĝ): the exact answer every "
        "unlearning method is compared with."
    ),
    "BTA": "retain-anatomy test set (brain test volumes): quality that must be kept.",
    "KTA": "forget-anatomy test set (knee test volumes): unseen data of the forgotten kind.",
    "UA": (
        "forget training set (the knee slices named by the request): quality on the data that "
        "must be forgotten."
    ),
    "retain subset": "the fraction of the retain training data an unlearning method may use.",
    "reference": (
        "a second retain-only model trained like the oracle with another seed; it never saw "
        "any forget-domain item. Its per-slice losses calibrate the membership attack."
    ),
    "95 % CI": (
        "percentile-bootstrap interval of a mean over items (volumes / subjects: the sampled "
        "unit), written `mean [low, high]`; `(no CI)` when a set has a single item."
    ),
    "gap to the oracle": (
        "mean over the items both were scored on of (method − oracle), with its bootstrap "
        "interval: paired, so the items' own difficulty cancels."
    ),
    "distance to the oracle": (
        "sqrt(ΔR² + ΔF²) with ΔR/ΔF the paired gaps to the oracle on a retain / forget "
        "metric (bilevel boundary-unlearning study); 0 = indistinguishable from retraining; "
        "its interval resamples both sets' items. Biased upward: a norm of noisy gaps is > 0."
    ),
    "membership inference": (
        "an attacker scores each forget-training item (member) and each unseen item of the same "
        "kind (non-member) by its loss minus the reference model's loss on the same slice "
        "(difficulty calibration, Watson et al. 2022 / offline LiRA); AUC 0.5 = chance. A model "
        "that never saw the members must score at chance (null check); a good unlearner's AUC "
        "is equivalent to the oracle's."
    ),
    "attack granularity": (
        "the attack's items: whole volumes / subjects, or their 2-D slices (per-slice 1 − SSIM "
        "and NMSE; per axial slice cross-entropy and soft Dice loss over labelled voxels). "
        "Slices of one volume are correlated, so intervals resample whole volumes / subjects "
        "and the learned attack's folds never split a volume."
    ),
    "TPR at low FPR": (
        "the fraction of members the attack finds while flagging at most that fraction of "
        "non-members: the regime an attacker cares about."
    ),
    "uninformative": (
        "the attack 'detects' members on a model that never saw them (a null model's AUC "
        "interval excludes 0.5): its verdicts on that task cannot be believed."
    ),
    "settings selected on": (
        "how a method's hyper-parameters were chosen (tuning record); 'conf defaults (not "
        "tuned)' when nobody tuned them."
    ),
    "cost": "a method's wall time as a fraction of the oracle's retraining time.",
}

#: How costs are measured (one rule for every run).
COST_RULE = (
    "Cost = optimisation wall time of the run without validation passes (a composite "
    "strategy includes its components), divided by the oracle's retraining time measured the "
    "same way; one run each, so costs carry no interval."
)


@dataclass
class FigureEntry:
    """One figure of the report.

    Attributes:
        title: heading shown above the figure.
        filename: relative file name the Markdown links to (where the caller saves the PNG).
        image: the figure (a matplotlib Figure or PNG bytes) embedded in the HTML; ``None``
            shows "Figure not available".
        caption: optional text under the figure.
    """

    title: str
    filename: str
    image: Figure | bytes | None = None
    caption: str = ""


@dataclass
class TaskAnswer:
    """The answer the report leads with, for one task.

    Attributes:
        task: the task's name.
        lines: plain sentences (recommendation, attack check, cost), built from the verdicts.
        table: the recommended method's test evidence: criterion, gap to the oracle [CI],
            tolerance, verdict (empty without a recommendation).
    """

    task: str
    lines: list[str] = field(default_factory=list)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class TaskSection:
    """The report section of one task: display tables, verdict lines, figures, notes.

    Attributes:
        task: the task's name.
        tables: ``(title, table, caption)`` in display order (DataFrames of display values).
        verdicts: one plain sentence per method.
        figures: the task's figures.
        missing_methods: methods expected but without results.
        notes: extra notes shown at the top of the section.
    """

    task: str
    tables: list[tuple[str, pd.DataFrame, str]] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    figures: list[FigureEntry] = field(default_factory=list)
    missing_methods: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportContext:
    """Everything :func:`~med_unlearning.reporting.render.render_report` writes.

    Attributes:
        title: the report title.
        protocol: what was run (tasks, data, forget request, retain subset, seeds, models,
            epochs …), rendered as nested bullet lists in the given order.
        sections: one per task.
        figures: study-wide figures (after the task sections).
        verdict_rules: how the verdicts were decided (tolerances), one paragraph.
        mae_definition: how the segmentation MAE is computed.
        glossary: term → meaning.
        notes: notes shown under the title.
        dpi: resolution of the figures embedded in the HTML.
        answers: the report's first section, one per task.
        cost_rule: how costs are measured.
    """

    title: str
    protocol: Mapping[str, Any]
    sections: list[TaskSection] = field(default_factory=list)
    figures: list[FigureEntry] = field(default_factory=list)
    verdict_rules: str = ""
    mae_definition: str = MAE_DEFINITION
    glossary: Mapping[str, str] = field(default_factory=lambda: dict(GLOSSARY))
    notes: list[str] = field(default_factory=list)
    dpi: int = 120
    answers: list[TaskAnswer] = field(default_factory=list)
    cost_rule: str = COST_RULE

    def __repr__(self) -> str:
        tasks = [section.task for section in self.sections]
        return (
            f"ReportContext(title={self.title!r}, tasks={tasks}, "
            f"figures={sum(len(s.figures) for s in self.sections) + len(self.figures)})"
        )
