"""The analysis workflow's time budget: its arithmetic, and the synthesized definitions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "infra"))

from magpie_stack import budget
from magpie_stack.budget import worst_case_seconds


def task(timeout: int | None = None, retry: list | None = None, **more) -> dict:
    state = {"Type": "Task", "Resource": "arn", **more}
    if timeout is not None:
        state["TimeoutSeconds"] = timeout
    if retry is not None:
        state["Retry"] = retry
    return state


def test_the_old_definition_needed_366_seconds_for_four_photos():
    """3 attempts x 60 s (+1 s and 2 s of backoff) per photo, two photos at a time."""
    image = task(60, [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}], End=True)
    definition = {
        "StartAt": "Images",
        "States": {
            "Images": {
                "Type": "Map",
                "MaxConcurrency": 2,
                "ItemProcessor": {"StartAt": "Image", "States": {"Image": image}},
                "End": True,
            }
        },
    }
    assert worst_case_seconds(definition, items=4) == 2 * (3 * 60 + 1 + 2) == 366
    assert worst_case_seconds(definition, items=1) == 183


def test_a_task_without_timeout_is_priced_as_step_functions_waits():
    definition = {"StartAt": "T", "States": {"T": task(End=True)}}
    assert worst_case_seconds(definition) >= 99_999_999


def test_refused_invocations_cost_their_backoff_not_the_timeout():
    refused = {
        "ErrorEquals": list(budget.INVOKE_REFUSALS),
        "IntervalSeconds": 2,
        "MaxAttempts": 3,
        "BackoffRate": 2,
        "MaxDelaySeconds": 5,
        "JitterStrategy": "FULL",
    }
    other = {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 1}
    state = task(30, [refused, other], End=True)
    # 2 full attempts, +2 s; 3 refusals at 1 s each after 2, 4 and (capped) 5 s.
    assert budget.task_worst_seconds(state) == 2 * 30 + 2 + (2 + 4 + 5) + 3 * 1.0


def test_the_longest_way_out_counts_catch_and_parallel_branches():
    definition = {
        "StartAt": "A",
        "States": {
            "A": task(10, [], Next="Both", Catch=[{"ErrorEquals": ["States.ALL"], "Next": "F"}]),
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "X", "States": {"X": task(5, [], End=True)}},
                    {"StartAt": "Y", "States": {"Y": task(7, [], End=True)}},
                ],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
            "F": task(20, [], Next="Fail"),
            "Fail": {"Type": "Fail"},
        },
    }
    assert worst_case_seconds(definition) == 10 + max(7, 20)


def test_the_budget_constants_leave_room_for_the_longest_path():
    """download, four photos two at a time, publish failing, then publish_failed."""
    t = budget.STEP_TIMEOUT_SECONDS
    refused = budget.REFUSED_RETRY
    refused_delays = sum(
        min(refused["interval"] * refused["backoff_rate"] ** n, refused["max_delay"])
        for n in range(refused["max_attempts"])
    )
    extra = refused_delays + refused["max_attempts"] * budget.REFUSED_INVOKE_SECONDS

    def step(name: str) -> float:
        attempts = 1 + budget.FAILED_RETRY["max_attempts"]
        return attempts * t[name] + budget.FAILED_RETRY["interval"] + extra

    rounds = -(-budget.MAX_IMAGES // budget.IMAGE_CONCURRENCY)
    longest = (
        step("download_media")
        + max(step("analyse_text"), rounds * step("analyse_image"))
        + step("publish_analysis")
        + step("publish_analysis_failed")
    )
    assert longest <= budget.EXECUTION_TIMEOUT_SECONDS


# --- the synthesized definitions ----------------------------------------------------------


def definition_of(synth) -> dict:
    from tests.infra.test_template import _definition

    return _definition(synth)


@pytest.mark.slow  # synthesizes both profiles
def test_every_ending_is_reached_inside_the_execution_limit(each_synth):
    definition = definition_of(each_synth)
    limit = definition["TimeoutSeconds"]
    assert limit == budget.EXECUTION_TIMEOUT_SECONDS
    assert worst_case_seconds(definition, items=budget.MAX_IMAGES) <= limit


@pytest.mark.slow  # synthesizes both profiles
def test_each_step_lambda_times_out_with_its_task(each_synth):
    from magpie_stack.analysis import STATE_NAMES

    from tests.infra.test_template import _states, functions

    states = _states(definition_of(each_synth))
    found = functions(each_synth.expanded)
    for name, seconds in budget.STEP_TIMEOUT_SECONDS.items():
        assert states[STATE_NAMES[name]]["TimeoutSeconds"] == seconds, name
        _, function = found[name]
        assert function["Properties"]["Timeout"] == seconds, name


@pytest.mark.parametrize("kind", ["Wait", "Choice"])
def test_states_that_could_loop_or_wait_are_refused(kind):
    definition = {"StartAt": "S", "States": {"S": {"Type": kind, "End": True}}}
    with pytest.raises(ValueError, match=kind):
        worst_case_seconds(definition)
