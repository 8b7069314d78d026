"""The generated performance document keeps the section someone else writes."""

from __future__ import annotations

from bench import report


def test_the_local_sentiment_section_is_carried_over(tmp_path, monkeypatch):
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text(
        "# Performance\n\n## Cost\n\nold figures\n\n"
        "## Local sentiment\n\ne5: 0.69 macro recall.\n\n| a | b |\n|---|---|\n\n"
        "## Findings and fixes\n\nold findings\n"
    )
    monkeypatch.setattr(report, "DOC", doc)
    assert (
        report._kept_section()
        == "## Local sentiment\n\ne5: 0.69 macro recall.\n\n| a | b |\n|---|---|\n"
    )


def test_a_missing_document_gets_an_empty_local_sentiment_section(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "DOC", tmp_path / "absent.md")
    assert report._kept_section().startswith("## Local sentiment\n")
