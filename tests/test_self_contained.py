"""Every reference in the repository points inside it.

The code once cited a design document that never was in the repository, by section, and
tracker issues by number; a reader cannot follow either. What a reader needs lives in docs/
(docs/ARCHITECTURE.md first), so no tracked file outside docs/ may cite an outside document or
an issue number.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Spelled in pieces so that this file does not match itself.
OUTSIDE_REFERENCES = {
    "the design document outside the repository": re.compile(r"\bDESIGN" + r"\.md\b"),
    "a section sign (a section of a document elsewhere)": re.compile("\u00a7"),
    "an issue number": re.compile(r"\bissues?\s*#?\s*\d+", re.IGNORECASE),
}


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.decode()
    paths = [ROOT / name for name in listed.split("\0") if name and not name.startswith("docs/")]
    return [p for p in paths if p.is_file() and not p.is_symlink()]


def outside_references(text: str) -> list[tuple[int, str]]:
    """(line number, what it cites) for every outside reference in `text`."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for what, pattern in OUTSIDE_REFERENCES.items():
            if pattern.search(line):
                found.append((number, what))
    return found


@pytest.mark.parametrize(
    "line",
    [
        "# Every detail-type on the bus (DESIGN" + ".md \u00a72), one metric each.",
        '"""Local sentiment (iss' + 'ue 9) on the real engine."""',
        "# added for Iss" + "ue #13",
        "    # --- egress delivery and loop guards (iss" + "ues 4) ---",
    ],
)
def test_an_outside_reference_is_found(line):
    assert outside_references(line)


def test_plain_words_are_not_outside_references():
    assert not outside_references("# chalice#2079: app-wide log retention breaks the template")
    assert not outside_references("an issue with 3 retries is handed back to the bus")


def test_no_tracked_file_outside_docs_cites_an_outside_reference():
    offenders = []
    for path in tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images, model weights
        for number, what in outside_references(text):
            offenders.append(f"{path.relative_to(ROOT)}:{number}: {what}")
    assert not offenders, "point to docs/ARCHITECTURE.md instead:\n" + "\n".join(offenders)
