"""Items, ledger, lock and discovery: the pieces resume and dispatch rely on."""

from __future__ import annotations

import asyncio

import pytest

from videophy_bench.orchestrator import discovery
from videophy_bench.orchestrator.items import RunConfig, WorkItem, derive_seed, request_id
from videophy_bench.orchestrator.ledger import (
    LEDGER_NAME,
    ConfigMismatch,
    Ledger,
    LedgerCorrupt,
    RunLock,
    RunLocked,
    StoredAnswer,
    connect,
    lock_holder,
)
from videophy_bench.orchestrator.recover import salvage
from videophy_bench.orchestrator.status import completeness, state_line


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


def _damaged_ledger(run_dir, n: int) -> list[WorkItem]:
    """A ledger of `n` judged items with 2 KiB overwritten in the middle of the file."""
    led = Ledger(run_dir)
    items = [WorkItem(f"p{k:04d}", k, "caption " * 30, "prompt " * 30, "h") for k in range(n)]
    led.add_items(items)
    for it in items:
        led.record_answers(it.request_id, [StoredAnswer("sa", 4.0, "parsed", "answer " * 60)], replica="r",
                           seconds=1.0, state="judged")
    led.close()
    path = run_dir / LEDGER_NAME
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 2048] = b"\xa5" * 2048
    path.write_bytes(bytes(data))
    return items


def test_a_damaged_ledger_is_refused_in_one_line_naming_recover(tmp_path):
    _damaged_ledger(tmp_path, 50)
    for readonly in (False, True):
        with pytest.raises(LedgerCorrupt) as err:
            connect(tmp_path, readonly=readonly)
        assert "\n" not in str(err.value) and "is corrupt (sqlite: " in str(err.value)
        assert f"videophy-bench recover {tmp_path}" in str(err.value)
    (tmp_path / LEDGER_NAME).write_bytes(b"\0" * 5000)
    with pytest.raises(LedgerCorrupt, match="file is not a database"):
        Ledger(tmp_path)


def test_salvage_reads_rows_past_the_damaged_page(tmp_path):
    items = _damaged_ledger(tmp_path, 300)
    _, rows = salvage(tmp_path / LEDGER_NAME, {it.request_id for it in items})
    assert 250 <= len(rows) < 300  # one damaged leaf lost, the rows behind it read by rowid
    assert all(r["state"] == "judged" and r["sa_raw"] == "answer " * 60 for r in rows.values())


def test_lock_holder_and_completeness(tmp_path):
    assert lock_holder(tmp_path) is None
    with RunLock(tmp_path, "a test"):
        assert "a test" in (lock_holder(tmp_path) or "")
    assert lock_holder(tmp_path) is None
    counts = {"pending": 1, "generating": 1, "generated": 2, "judged": 3, "failed": 1}
    judged = completeness(counts, judging=True)
    assert [judged[k] for k in ("n_selected", "n_done", "n_remaining", "complete")] == [8, 3, 4, False]
    assert state_line(judged, None) == "interrupted: 3 of 8 done (1 failed)"
    assert state_line(judged, "pid 1").startswith("running (pid 1): 3 of 8")
    no_judge = completeness({**counts, "pending": 0, "generating": 0}, judging=False)
    assert no_judge["complete"] and state_line(no_judge, None) == "complete: 5 of 6 done (1 failed)"
