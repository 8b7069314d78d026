"""`make chaos`: every chaos and crash test (tests/reliability/) under many seeds.

    python -m bench.chaos [--runs 20] [--first-seed 1] [--workers 2]

`make test` runs tests/reliability/ once, under fixed seeds, so that a failure repeats. This
runs the same tests again and again, each run under its own MAGPIE_CHAOS_SEED (the fault plan,
the messages and the kill moments all follow from it), and collects every ledger report the
tests checked. The table it prints (and bench/results/chaos.json) counts, per run, the
messages checked, those lost, those answered twice and those with two analysis endings; any
failed test is named with its seed, so it can be run again alone:

    MAGPIE_CHAOS_SEED=<seed> .venv/bin/pytest tests/reliability/<file>::<test>

It is not part of `make test`: a run takes 2.5 to 5 minutes on two cores, 20 runs about an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from bench.environment import machine, write_result

ROOT = Path(__file__).resolve().parent.parent
# The ledger's violation kinds, as the table's columns name them.
LOST = ("lost", "acknowledged_not_received", "analysis_failed_unanswered")
ANSWERED_TWICE = ("duplicate_reply",)
TWO_ENDINGS = ("multiple_analysis_endings",)


def run_once(seed: int, workers: int) -> dict[str, Any]:
    """tests/reliability/ under one seed: its failures and what its ledgers found."""
    with tempfile.TemporaryDirectory(prefix="magpie-chaos-") as scratch:
        reports = Path(scratch) / "reports"
        reports.mkdir()
        junit = Path(scratch) / "junit.xml"
        env = {
            **os.environ,
            "MAGPIE_CHAOS_SEED": str(seed),
            "MAGPIE_CHAOS_REPORTS": str(reports),
        }
        started = time.monotonic()
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += ["-n", str(workers), f"--junitxml={junit}", "tests/reliability"]
        finished = subprocess.run(  # noqa: S603 (our interpreter, fixed arguments)
            command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        seconds = time.monotonic() - started
        ledgers = [json.loads(p.read_text()) for p in sorted(reports.glob("*.json"))]
        tests, failed = junit_outcome(junit) if junit.exists() else (0, ["(no junit report)"])
    if finished.returncode not in (0, 1):
        failed.append(f"pytest exited {finished.returncode}: {finished.stdout[-500:]}")
    run = summarise(seed, seconds, tests, failed, ledgers)
    if failed:  # pytest's own account of each failure, to find its cause from the results
        run["output"] = finished.stdout[-20000:]
    return run


def junit_outcome(junit: Path) -> tuple[int, list[str]]:
    """How many tests ran, and the ids of those that failed or errored."""
    cases = ET.parse(junit).getroot().iter("testcase")  # noqa: S314 (pytest's own file)
    tests, failed = 0, []
    for case in cases:
        tests += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname')}::{case.get('name')}")
    return tests, failed


def summarise(
    seed: int, seconds: float, tests: int, failed: list[str], ledgers: list[dict[str, Any]]
) -> dict[str, Any]:
    violations: Counter[str] = Counter()
    for report in ledgers:
        violations.update(report["violation_counts"])
    return {
        "seed": seed,
        "seconds": round(seconds),
        "tests": tests,
        "failed": failed,
        "ledgers": len(ledgers),
        "messages": sum(report["messages"] for report in ledgers),
        "lost": sum(violations[k] for k in LOST),
        "answered_twice": sum(violations[k] for k in ANSWERED_TWICE),
        "two_endings": sum(violations[k] for k in TWO_ENDINGS),
        "violations": dict(violations),
    }


def table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| seed | tests | failed | messages checked | lost | answered twice | two endings | min |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run['seed']} | {run['tests']} | {len(run['failed'])} | {run['messages']} "
            f"| {run['lost']} | {run['answered_twice']} | {run['two_endings']} "
            f"| {run['seconds'] / 60:.1f} |"
        )
    total = {k: sum(r[k] for r in runs) for k in ("messages", "lost", "answered_twice")}
    lines.append(
        f"| **all {len(runs)}** | | {sum(len(r['failed']) for r in runs)} | {total['messages']} "
        f"| {total['lost']} | {total['answered_twice']} | {sum(r['two_endings'] for r in runs)} "
        f"| {sum(r['seconds'] for r in runs) / 60:.0f} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="pytest -n")
    args = parser.parse_args(argv)
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.runs):
        run = run_once(seed, args.workers)
        runs.append(run)
        failed = "; ".join(run["failed"]) or "none failed"
        print(f"seed {seed}: {run['tests']} tests, {failed}, {run['seconds']} s", flush=True)
        write_result("chaos", {"machine": machine(), "runs": runs})  # after each: runs are long
    print(table(runs))
    if any(r["failed"] or r["lost"] or r["answered_twice"] or r["two_endings"] for r in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
