"""The fault injector: parsing, repeatability, what each port raises, and where it applies."""

from __future__ import annotations

import pytest

from chalicelib import backend, faults
from chalicelib.bus import PublishError
from chalicelib.config import ConfigError
from chalicelib.egress.x_client import RateLimited, TransientXError
from chalicelib.events import OutgoingEvent
from chalicelib.ports import ReplyRequest


def test_rates_are_parsed_per_port():
    assert faults.parse_rates("bus=0.2, x=1,text=0") == {"bus": 0.2, "x": 1.0, "text": 0.0}


@pytest.mark.parametrize("spec", ["bus", "disk=0.1", "bus=2", "bus=-0.1", "bus=lots"])
def test_bad_specs_name_the_variable(spec):
    with pytest.raises(ConfigError, match="MAGPIE_FAULTS"):
        faults.parse_rates(spec)


def test_a_bad_seed_names_its_variable(tmp_path):
    with pytest.raises(ConfigError, match="MAGPIE_FAULTS_SEED"):
        faults.plan_from_env({"MAGPIE_FAULTS": "bus=1", "MAGPIE_FAULTS_SEED": "x"}, tmp_path)


def decisions(seed: int, keys: list[str]) -> list[bool]:
    plan = faults.FaultPlan({"blob": 0.3}, seed)
    return [plan.draw("blob", "put", key) is not None for key in keys]


def test_the_same_seed_repeats_the_same_faults_whatever_the_call_order():
    keys = [f"media/{i}.jpg" for i in range(400)]
    forward = decisions(7, keys)
    backward = list(reversed(decisions(7, list(reversed(keys)))))
    assert forward == backward
    assert decisions(8, keys) != forward
    assert 0.2 < sum(forward) / len(keys) < 0.4  # about the asked-for rate


def test_each_process_under_one_home_is_a_new_epoch(tmp_path):
    env = {"MAGPIE_FAULTS": "blob=0.5", "MAGPIE_FAULTS_SEED": "7"}
    first, second = (faults.plan_from_env(env, tmp_path) for _ in range(2))
    assert (first.epoch, second.epoch) == (0, 1)
    keys = [f"k{i}" for i in range(64)]
    draws = [[plan.draw("blob", "get", key) is None for key in keys] for plan in (first, second)]
    # A restarted process (or `magpie replay`) does not fail the very same calls again...
    assert draws[0] != draws[1]
    # ...and the same sequence of processes repeats the same faults.
    again = faults.FaultPlan({"blob": 0.5}, 7, epoch=1)
    assert [again.draw("blob", "get", key) is None for key in keys] == draws[1]
    assert faults.read_log(tmp_path) == []  # start lines are not faults


def test_a_retried_call_gets_a_fresh_draw():
    plan = faults.FaultPlan({"blob": 0.5}, 3)
    outcomes = {plan.draw("blob", "get", "same-key") is None for _ in range(50)}
    assert outcomes == {True, False}


@pytest.fixture
def faulty_env(local_env, monkeypatch):
    monkeypatch.setenv("MAGPIE_FAULTS", "bus=1,blob=1,text=1,image=1,conversation=1,x=1")
    monkeypatch.setenv("MAGPIE_FAULTS_SEED", "1")
    backend.reset()
    return local_env


def test_every_local_port_is_wrapped_and_fails(faulty_env):
    with pytest.raises(faults.InjectedFault):
        backend.blob_store().put("a/b.jpg", b"x", "image/jpeg")
    with pytest.raises(faults.InjectedFault):
        backend.text_analyser().sentiment(["hello"], "en")
    with pytest.raises(faults.InjectedFault):
        backend.image_analyser().faces("a/b.jpg")
    with pytest.raises(faults.InjectedFault):
        backend.conversation().ask("tell me a joke", session_id="1")
    logged = {(f["port"], f["op"]) for f in faults.read_log(faulty_env)}
    assert logged == {("blob", "put"), ("text", "sentiment"), ("image", "faces"),
                      ("conversation", "ask")}  # fmt: skip


def test_bus_faults_lose_the_put_or_only_its_acknowledgement(faulty_env):
    bus = backend.event_bus()
    store = backend.local_bus_store()
    outcomes = []
    for index in range(40):
        event = OutgoingEvent("magpie.test", "TEST", {"MessageId": str(index), "Kind": "MENTION"})
        before = store.last_seq()
        with pytest.raises(PublishError):
            bus.put([event])
        outcomes.append(store.last_seq() > before)
    # Both kinds happen: refused before the commit, and committed but reported as failed.
    assert set(outcomes) == {True, False}
    modes = {f["mode"] for f in faults.read_log(faulty_env) if f["port"] == "bus"}
    assert modes == {"before_put", "ack_lost"}


def test_x_faults_are_the_egress_error_classes_and_nothing_is_posted(faulty_env):
    poster = backend.poster()
    seen = set()
    for index in range(30):
        request = ReplyRequest("MENTION", f"reply {index}", "42", str(index))
        with pytest.raises((RateLimited, TransientXError)) as caught:
            poster.post(request)
        seen.add((type(caught.value).__name__, caught.value.status_code))
        if isinstance(caught.value, RateLimited):
            assert caught.value.reset_at is not None
    assert seen == {("RateLimited", 429), ("TransientXError", 503), ("TransientXError", None)}
    assert not list((faulty_env / "outbox").glob("*.json"))


def test_ports_not_listed_are_left_alone(local_env, monkeypatch):
    monkeypatch.setenv("MAGPIE_FAULTS", "x=1")
    backend.reset()
    assert not isinstance(backend.blob_store(), faults.FaultyAdapter)
    assert isinstance(backend.poster(), faults.FaultyAdapter)
    backend.blob_store().put("a.jpg", b"x", "image/jpeg")  # does not fail


def test_no_faults_without_the_variable(local_env):
    assert not isinstance(backend.event_bus(), faults.FaultyAdapter)
    assert not isinstance(backend.poster(), faults.FaultyAdapter)


def test_never_on_aws(local_env, monkeypatch):
    monkeypatch.setenv("MAGPIE_FAULTS", "bus=1")
    monkeypatch.setenv("MAGPIE_BACKEND", "aws")
    backend.reset()
    adapter = object()
    assert faults.wrap("bus", adapter) is adapter
