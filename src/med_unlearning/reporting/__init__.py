"""Reporting: the study's figures and its Markdown/HTML report (no file I/O here).

Import the modules by their full path (``med_unlearning.reporting.figures``,
``med_unlearning.reporting.report``) so that importing this package stays cheap.
"""

__all__ = ["figures", "report", "templates"]
