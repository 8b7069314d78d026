"""The generated performance document keeps every section someone else writes."""

from __future__ import annotations

from bench import report


def test_every_section_the_report_does_not_write_is_carried_over(tmp_path, monkeypatch):
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text(
        "# Performance\n\n## Cost per million messages\n\nold figures\n\n"
        "## Hostile images and memory\n\n| image | bytes |\n|---|---|\n\n"
        "## Local sentiment\n\ne5: 0.69 macro recall.\n\n| a | b |\n|---|---|\n\n"
        "## Findings and fixes\n\nold findings\n"
    )
    monkeypatch.setattr(report, "DOC", doc)
    assert report._kept_sections() == (
        "## Hostile images and memory\n\n| image | bytes |\n|---|---|\n"
        "\n"
        "## Local sentiment\n\ne5: 0.69 macro recall.\n\n| a | b |\n|---|---|\n"
    )


def test_a_missing_document_gets_an_empty_local_sentiment_section(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "DOC", tmp_path / "absent.md")
    assert report._kept_sections().startswith("## Local sentiment\n")


def test_the_rendered_document_keeps_the_hand_written_sections(tmp_path, monkeypatch):
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text("# Performance\n\n## Hostile images and memory\n\nkept text\n")
    monkeypatch.setattr(report, "DOC", doc)
    monkeypatch.setattr(report, "read_result", lambda name: None)
    rendered = report.render()
    assert "## Hostile images and memory\n\nkept text\n" in rendered
    assert rendered.index("## Hostile images") < rendered.index("## Findings and fixes")
