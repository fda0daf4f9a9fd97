"""Items, ledger, lock and discovery: the pieces resume and dispatch rely on."""

from __future__ import annotations

import asyncio

import pytest

from services.orchestrator import discovery
from services.orchestrator.items import RunConfig, WorkItem, derive_seed, request_id
from services.orchestrator.ledger import ConfigMismatch, Ledger, RunLock, RunLocked


def test_request_ids_and_seeds_are_deterministic_and_distinct():
    a = request_id("vp2-0001", 7, 0, "base", "abc")
    assert a == request_id("vp2-0001", 7, 0, "base", "abc")
    other_round = request_id("vp2-0001", 7, 1, "base", "abc")
    other_config = request_id("vp2-0001", 7, 0, "base", "abd")
    assert len({a, other_round, other_config}) == 3
    assert a.isalnum() and len(a) == 21
    seeds = {derive_seed(0, "vp2-0001", k) for k in range(3)}
    assert len(seeds) == 3 and all(0 <= s < 2**63 for s in seeds)
    assert derive_seed(1, "vp2-0001", 0) != derive_seed(0, "vp2-0001", 0)


def test_config_hash_changes_with_any_setting():
    base = RunConfig("tiny", "m", "r")
    assert base.hash == RunConfig("tiny", "m", "r").hash
    assert base.hash != RunConfig("tiny", "m", "r", upsampled=True).hash
    assert base.hash != RunConfig("tiny", "m", "r", overrides={"num_inference_steps": 2}).hash


def test_second_lock_is_refused_and_released_on_close(tmp_path):
    with RunLock(tmp_path), pytest.raises(RunLocked, match="in use by another orchestrator"):
        RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire().release()


def test_ledger_refuses_a_different_config_naming_the_keys(tmp_path):
    led = Ledger(tmp_path)
    led.check_config({"a": 1, "b": "x"})
    led.check_config({"a": 1, "b": "x"})
    led.check_config({"a": 1}, keys=["a"])
    with pytest.raises(ConfigMismatch) as err:
        led.check_config({"a": 2, "b": "x"})
    assert "a: 1 -> 2" in str(err.value) and "b:" not in str(err.value)


def test_items_are_unique_and_attempts_accumulate(tmp_path):
    led = Ledger(tmp_path)
    item = WorkItem("p1", 5, "cap", "cap", "h")
    assert led.add_items([item, item]) == 1
    assert led.add_items([item]) == 0
    led.begin_attempt(item.request_id, "gen_attempts", state="generating")
    led.begin_attempt(item.request_id, "gen_attempts", state="generating")
    led.add_error(item.request_id, "generate", "UNAVAILABLE: gone", state="pending")
    row = led.get(item.request_id)
    assert row["gen_attempts"] == 2 and row["state"] == "pending" and "UNAVAILABLE" in row["error"]
    assert led.counts()["pending"] == 1


def test_targets_parse_and_dns_resolves_every_address():
    targets = discovery.parse_targets("10.0.0.1:5, dns:///localhost:50051,[::1]:7")
    assert [(t.host, t.port, t.dns) for t in targets] == [
        ("10.0.0.1", 5, False),
        ("localhost", 50051, True),
        ("::1", 7, False),
    ]
    addrs = asyncio.run(discovery.resolve(targets))
    assert {"10.0.0.1:5", "[::1]:7", "127.0.0.1:50051"} <= addrs
    for bad in ("nohost", "dns:///x", "h:0", "h:port"):
        with pytest.raises(ValueError):
            discovery.parse_targets(bad)
    assert asyncio.run(discovery.resolve(discovery.parse_targets("dns:///no-such-host.invalid:1"))) == set()
