"""The code and conf cite documents inside the repository only (issue 15): a reader of a
docstring must be able to open what it cites."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Citations of a study section, e.g. ``docs/studies.md §2``.
STUDY_SECTION = re.compile(r"docs/studies\.md §(\d)")


def _sources() -> list[Path]:
    files = [*(ROOT / "src" / "med_unlearning").rglob("*.py"), *(ROOT / "conf").rglob("*.yml")]
    return [path for path in files if "egg-info" not in str(path)]


def test_no_citation_of_a_document_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _sources()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "DESIGN.md" in line or "../shared" in line
    ]
    assert offenders == []


def test_every_cited_study_section_exists() -> None:
    studies = (ROOT / "docs" / "studies.md").read_text()
    sections = set(re.findall(r"^## §(\d)", studies, flags=re.MULTILINE))
    cited = {match for path in _sources() for match in STUDY_SECTION.findall(path.read_text())}
    assert cited, "the strategies cite their study"
    assert cited <= sections, f"cited sections {sorted(cited - sections)} are not in docs/studies.md"
