"""AWS's event-ruler conformance cases, run against the local bus's pattern matcher.

The cases (tests/fixtures/event-ruler/, with their source and licence) were recorded from
event-ruler, the library EventBridge matches with: each is a rule (one or more patterns,
OR-ed), an event, and whether event-ruler matched it. A case is named `<file>#<index>`.

Where EventBridge's documentation and event-ruler part, Magpie follows the documentation:
event-ruler at this commit compares any IEEE-754 double (its ComparableNumber), while the
EventBridge user guide limits numeric matching to -5e9..5e9 with six decimal places, and
tests/bus/test_pattern.py pins that. No case here compares a number outside that range, so
none is exempted: DOCUMENTED_OVER_EVENT_RULER is empty, and
`test_no_case_leaves_the_documented_numeric_range` says so should the data be refreshed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from functools import cache
from typing import Any

import pytest

from chalicelib.bus.pattern import matches
from tests.conftest import ROOT

CASES_DIR = ROOT / "tests" / "fixtures" / "event-ruler"
FILES = {"test-suite": "test-suite-cases.json", "correctness": "correctness-cases.json"}
NUMBER_LIMIT = 5e9  # EventBridge's documented numeric range, inclusive
# Case id -> why Magpie answers otherwise, following EventBridge's documentation.
DOCUMENTED_OVER_EVENT_RULER: dict[str, str] = {}


@cache
def cases() -> dict[str, dict[str, Any]]:
    found = {}
    for prefix, name in FILES.items():
        for index, case in enumerate(json.loads((CASES_DIR / name).read_text())):
            found[f"{prefix}#{index}"] = case
    return found


def groups() -> dict[str, list[str]]:
    """Case ids by the event-ruler test method that recorded them (correctness: one group)."""
    found: dict[str, list[str]] = defaultdict(list)
    for case_id, case in cases().items():
        found[case.get("test", "correctness-cases.json")].append(case_id)
    return dict(found)


def patterns(case: dict[str, Any]) -> list[dict[str, Any]]:
    return case["patterns"] if "patterns" in case else [case["pattern"]]


def test_every_case_was_read():
    assert len(cases()) == 3708 + 51


@pytest.mark.parametrize("group", sorted(groups()))
def test_event_ruler_cases(group):
    wrong = []
    for case_id in groups()[group]:
        case = cases()[case_id]
        expected = case["expected"]
        if case_id in DOCUMENTED_OVER_EVENT_RULER:
            expected = not expected
        got = any(matches(pattern, case["event"]) for pattern in patterns(case))
        if got != expected:
            wrong.append(f"{case_id}: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)


def _numbers(value: Any) -> list[int | float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return []


def _compares_numbers(case: dict[str, Any]) -> bool:
    rule = patterns(case)
    return bool(_numbers(rule)) or '"numeric"' in json.dumps(rule)


def test_no_case_leaves_the_documented_numeric_range():
    """Were one added, it would belong in DOCUMENTED_OVER_EVENT_RULER with its reason.
    (Two cases carry finer coordinates in their events, but no pattern compares them.)"""
    outside = [
        case_id
        for case_id, case in cases().items()
        if _compares_numbers(case)
        for n in _numbers(patterns(case)) + _numbers(case["event"])
        if abs(n) > NUMBER_LIMIT or round(n, 6) != n
    ]
    assert sorted(set(outside)) == sorted(DOCUMENTED_OVER_EVENT_RULER)
