"""Crash points for `magpie serve` under the reliability tests; never installed anywhere.

Python imports `sitecustomize` at start-up when it is on the path: the reliability harness
puts this folder first on PYTHONPATH of the server it starts, with

  MAGPIE_TEST_CRASH_AFTER_POSTS=N  the process dies (`os._exit`, as `kill -9` leaves it) right
                                   after writing its Nth reply, before anything records it
  MAGPIE_TEST_POISON=TEXT          the process dies whenever it analyses a message whose text
                                   contains TEXT (a message that crashes it every time)
"""

from __future__ import annotations

import os
import threading

CRASHED = 137


def _crash_after_posts(limit: int) -> None:
    from chalicelib.egress import outbox

    post = outbox.DryRunOutbox.post
    lock = threading.Lock()
    posted = [0]

    def post_then_maybe_die(self, request):  # type: ignore[no-untyped-def]
        result = post(self, request)
        with lock:
            posted[0] += 1
            if posted[0] >= limit:
                os._exit(CRASHED)
        return result

    outbox.DryRunOutbox.post = post_then_maybe_die


def _poison(marker: str) -> None:
    from chalicelib.analysis import orchestrator

    analyse = orchestrator.analyse

    def analyse_or_die(message, **kwargs):  # type: ignore[no-untyped-def]
        if marker in str(message.get("Text", "")):
            os._exit(CRASHED)
        return analyse(message, **kwargs)

    orchestrator.analyse = analyse_or_die


if os.environ.get("MAGPIE_TEST_CRASH_AFTER_POSTS"):
    _crash_after_posts(int(os.environ["MAGPIE_TEST_CRASH_AFTER_POSTS"]))
if os.environ.get("MAGPIE_TEST_POISON"):
    _poison(os.environ["MAGPIE_TEST_POISON"])
