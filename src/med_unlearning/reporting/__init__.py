"""Reporting: the study's figures and its Markdown/HTML report (no file I/O here).

- :mod:`.formatting` — labels of sets and metrics, values and intervals as text;
- :mod:`.tables` — the studies' summary layout, Markdown and HTML tables;
- :mod:`.display` — the display tables of a task's section;
- :mod:`.answer` — the answer the report leads with;
- :mod:`.context` — what a report holds (data model, fixed texts);
- :mod:`.report` — assembling a report from the comparison tables;
- :mod:`.render` — writing it out as Markdown and HTML;
- :mod:`.figures` — the figures; :mod:`.study_figures` — every figure of a study.

Import the modules by their full path (``med_unlearning.reporting.report``…) so that
importing this package stays cheap.
"""

__all__ = [
    "answer",
    "context",
    "display",
    "figures",
    "formatting",
    "render",
    "report",
    "study_figures",
    "tables",
    "templates",
]
