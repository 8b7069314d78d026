"""The README describes the demo, the alerts and the commands as they are."""

from __future__ import annotations

import re
from pathlib import Path

from magpie.cli import build_parser
from magpie.demo import next_steps

from chalicelib.alerts import ALERT_MIN_NEGATIVE_SCORE
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def paragraph(starting: str) -> str:
    """The README paragraph that begins with `starting`."""
    start = README.index("\n" + starting) + 1
    end = README.find("\n\n", start)
    return README[start : end if end >= 0 else None]


def test_walk_through_ends_with_the_demos_real_last_line() -> None:
    claimed = re.search(r"make demo +# ends with: (.+)", README)
    assert claimed is not None
    home = Path("/somewhere/.magpie/demo")
    last = next_steps(home)[-1].replace("/somewhere", "...")
    assert claimed.group(1).strip() == last


def test_alerts_paragraph_states_the_negative_threshold() -> None:
    alerts = paragraph("Alerts: ")
    assert f"Negative score of at least {ALERT_MIN_NEGATIVE_SCORE}" in " ".join(alerts.split())


def test_command_table_lists_every_replay_window_option() -> None:
    """The table's `magpie replay --from` row names each option a window replay takes."""
    row = next(line for line in README.splitlines() if line.startswith("| `magpie replay --from"))
    replay = build_parser()._subparsers._group_actions[0].choices["replay"]  # type: ignore[union-attr]
    # --dead-letters has its own row; the "with --aws: ..." options are the AWS replay's.
    elsewhere = {"--help", "--dead-letters", "--name"}
    options = {
        flag
        for action in replay._actions
        if not str(action.help).startswith("with --aws")
        for flag in action.option_strings
        if flag.startswith("--") and flag not in elsewhere
    }
    missing = sorted(flag for flag in options if flag not in row)
    assert missing == [], row
