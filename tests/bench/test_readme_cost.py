"""The README's cost table is the bench's last result, rounded as printed."""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT

ROWS = {
    "`same-features`": ("profiles", "same-features"),
    "`replies-only`": ("profiles", "replies-only"),
    "`lite`": ("profiles", "lite"),
    "shipped default": ("profiles", "magpie-default"),
    "the reference system": ("reference",),
}


def test_the_readme_cost_table_is_the_bench_result():
    cost = json.loads((ROOT / "bench" / "results" / "cost.json").read_text())
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### What it costs: AWS and X") :]
    for label, path in ROWS.items():
        entry = cost
        for key in path:
            entry = entry[key]
        bill = entry["whole_bill"]
        row = next(line for line in section.splitlines() if line.startswith(f"| {label}"))
        figures = [float(x.replace(",", "")) for x in re.findall(r"\| ([\d,]+) ", row + " ")]
        expected = [
            bill["aws_per_million_usd"],
            bill["x_per_million_usd"],
            bill["total_per_million_usd"],
        ]
        assert [round(x) for x in expected] == figures, (label, row)
