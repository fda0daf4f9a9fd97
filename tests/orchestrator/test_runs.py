"""End-to-end runs against real services on loopback (tiny generator and evaluator models)."""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
from pathlib import Path

import pytest
from run_dirs import ledger_has as _ledger_has
from run_dirs import results, rows
from run_dirs import wait_for as _wait

from videophy_bench.orchestrator import discovery
from videophy_bench.orchestrator.cli import main
from videophy_bench.orchestrator.ledger import RunLock
from videophy_bench.orchestrator.results_schema import RESULTS_COLUMNS

FAST = ["--refresh-s", "0.5", "--no-progress"]






def run_args(storage: Path, name: str, gens: str, *extra: str) -> list[str]:
    return [
        "run",
        "--prompts",
        "sample",
        "--storage-root",
        str(storage),
        "--out",
        str(storage / "runs" / name),
        "--generators",
        gens,
        *FAST,
        *extra,
    ]


def test_full_run_then_resume_skips_everything(shared_services, capsys):
    svc, gens, ev = shared_services
    gen_list = ",".join(g.address for g in gens)
    args = run_args(svc.root, "full", gen_list, "--evaluators", ev.address, "--limit", "5", "--seeds", "2")
    assert main(args) == 0
    run_dir = svc.root / "runs" / "full"
    led = rows(run_dir)
    assert len(led) == 10 and {r["state"] for r in led} == {"judged"}
    assert len({(r["prompt_id"], r["seed"]) for r in led}) == 10
    res = results(run_dir)
    assert list(res[0]) == list(RESULTS_COLUMNS) and len(res) == 10
    for r in res:
        assert (run_dir / r["video_path"]).is_file() and r["sa_parse"] and r["pc_parse"]
        assert r["action"] and r["is_hard"] in {"True", "False"} and r["caption"] == r["gen_prompt"]
        assert r["caption_source"] == "original" and r["video_url"] == ""  # generated here, from caption
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_items"] == 10 and "joint_hard" in summary
    man = json.loads((run_dir / "manifest.json").read_text())
    assert man["config"]["generator_model"] == "tiny" and man["config"]["judge_model"]
    assert man["prompt_set"]["sha256"] == man["config"]["prompt_set_sha256"]
    assert {r["kind"] for r in man["replicas"]} == {"generator", "evaluator"}
    with open(run_dir / "official" / "output_sa.csv", newline="") as f:
        official = list(csv.reader(f))
    assert official[0] == ["", "caption", "videopath", "score"] and len(official) == 11
    before = {r["request_id"]: (r["gen_attempts"], r["judge_attempts"]) for r in led}
    mtimes = {p: p.stat().st_mtime_ns for p in (run_dir / "videos").rglob("*.mp4")}
    assert main(args) == 0  # resume: verified, nothing made or judged again
    assert {r["request_id"]: (r["gen_attempts"], r["judge_attempts"]) for r in rows(run_dir)} == before
    assert {p: p.stat().st_mtime_ns for p in (run_dir / "videos").rglob("*.mp4")} == mtimes
    assert main(["status", str(run_dir)]) == 0
    assert "judged 10" in capsys.readouterr().out


def test_corrupt_and_missing_videos_are_made_again_on_resume(shared_services):
    svc, gens, _ = shared_services
    args = run_args(svc.root, "corrupt", gens[0].address, "--limit", "4", "--no-judge")
    assert main(args) == 0
    run_dir = svc.root / "runs" / "corrupt"
    led = rows(run_dir)
    corrupt, missing, intact = (
        svc.root / led[0]["video_uri"],
        svc.root / led[1]["video_uri"],
        svc.root / led[2]["video_uri"],
    )
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    missing.unlink()
    intact_mtime = intact.stat().st_mtime_ns
    assert main(args) == 0
    after = {r["request_id"]: r for r in rows(run_dir)}
    assert (
        after[led[0]["request_id"]]["gen_attempts"] == 2
        and "artifact invalid" in after[led[0]["request_id"]]["errors"]
    )
    assert after[led[1]["request_id"]]["gen_attempts"] == 2
    assert after[led[2]["request_id"]]["gen_attempts"] == 1 and intact.stat().st_mtime_ns == intact_mtime
    assert len(corrupt.read_bytes()) > 200 and missing.is_file()
    assert {r["state"] for r in after.values()} == {"generated"}


def test_changed_configuration_and_locked_directory_are_refused(shared_services, capsys):
    svc, gens, _ = shared_services
    args = run_args(svc.root, "cfg", gens[0].address, "--limit", "1", "--no-judge")
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and "overrides" in err and "new --out" in err
    assert main([*args, "--upsampled"]) == 2
    assert "upsampled: False -> True" in capsys.readouterr().err
    assert main([*args, "--limit", "2"]) == 0  # selection is not configuration: the run is extended
    assert len(rows(svc.root / "runs" / "cfg")) == 2
    with RunLock(svc.root / "runs" / "cfg"):
        assert main(args) == 75  # retryable: the holder may be a predecessor still draining
    assert "in use by another orchestrator" in capsys.readouterr().err


def test_malformed_prompts_are_refused(shared_services, tmp_path, capsys):
    svc, gens, _ = shared_services
    bad = tmp_path / "bad.csv"
    bad.write_text("id,caption\na,A ball.\nb,\n")
    args = run_args(svc.root, "bad", gens[0].address, "--no-judge")
    args[args.index("sample")] = str(bad)
    assert main(args) == 2
    assert f"{bad}: line 3: column 'caption' is empty" in capsys.readouterr().err


def test_faster_replica_does_more_and_beats_round_robin(services):
    slow, fast = services.generator(delay=2.0), services.generator()
    for s in (slow, fast):
        s.wait_ready()
    n = 10
    assert (
        main(
            run_args(
                services.root,
                "speed",
                f"{slow.address},{fast.address}",
                "--limit",
                str(n),
                "--no-judge",
                "--seed",
                "1",
            )
        )
        == 0
    )
    led = rows(services.root / "runs" / "speed")
    by = {a: [r["gen_seconds"] for r in led if r["gen_replica"] == a] for a in (slow.address, fast.address)}
    assert len(by[slow.address]) + len(by[fast.address]) == n
    # Round-robin would hand each replica n/2 items; pulling, the slow one takes fewer. (No wall-clock
    # bound: on a busy machine a span says more about the machine than about the dispatcher.)
    assert len(by[fast.address]) > n / 2 > len(by[slow.address]) >= 1, by


def test_generator_killed_mid_item_is_redone_elsewhere(services):
    # The victim's item outlasts any test machine: it is killed inside it, however busy the machine.
    victim, other = services.generator(delay=600.0), services.generator(delay=0.2)
    for s in (victim, other):
        s.wait_ready()
    run_dir = services.root / "runs" / "kill"
    args = run_args(services.root, "kill", f"{victim.address},{other.address}", "--limit", "6", "--no-judge")
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(main(args)))
    thread.start()
    _wait(
        lambda: _ledger_has(
            run_dir, lambda r: r["state"] == "generating" and r["gen_replica"] == victim.address
        ),
        what="victim never took an item",
    )
    victim.kill()
    thread.join(120)
    assert result == [0]
    led = rows(run_dir)
    assert len(led) == 6 and {r["state"] for r in led} == {"generated"}
    redone = [r for r in led if r["gen_attempts"] >= 2]
    # The victim held its running item and, with the default --queue-depth 1, maybe one queued item;
    # its second worker may take a requeued item once more before it sees the replica is gone.
    assert 1 <= len(redone) <= 2 and all(r["gen_replica"] == other.address for r in redone)
    assert all("UNAVAILABLE" in r["errors"] or "CANCELLED" in r["errors"] for r in redone)
    videos = sorted((run_dir / "videos").rglob("*.mp4"))
    assert len(videos) == 6 and len({p.parent.name for p in videos}) == 6  # one video per item, none lost
    assert len(results(run_dir)) == 6


def test_replica_joining_mid_run_gets_work(services, monkeypatch, unused_port):
    # The first replica makes one video, then holds its next ones until the late replica has made one:
    # however slowly the late one starts, the first cannot finish the run alone.
    gate = services.root / "gate"
    first = services.generator(gate=gate).wait_ready()
    late_port = unused_port()
    late: list = []
    known = {first.address}

    def lookup(target):  # the headless Service's records: the late pod appears once it is up
        return set(known)

    monkeypatch.setattr(discovery, "_lookup", lookup)
    run_dir = services.root / "runs" / "join"

    def start_late():
        try:
            _wait(lambda: _ledger_has(run_dir, lambda r: r["state"] == "generated"), what="run did not start")
            late.append(services.generator(port=late_port).wait_ready())
            known.add(late[0].address)
            _wait(
                lambda: _ledger_has(
                    run_dir, lambda r: r["state"] == "generated" and r["gen_replica"] == late[0].address
                ),
                timeout_s=300,
                what="the late replica got no work",
            )
        finally:
            gate.touch()  # never leave the run waiting, whatever happened here

    t = threading.Thread(target=start_late)
    t.start()
    assert (
        main(
            run_args(services.root, "join", "dns:///generators.test.svc:50051", "--limit", "10", "--no-judge")
        )
        == 0
    )
    t.join()
    led = rows(run_dir)
    assert {r["state"] for r in led} == {"generated"}
    assert sum(1 for r in led if r["gen_replica"] == late[0].address) >= 1
    assert sum(1 for r in led if r["gen_replica"] == first.address) >= 1


def test_orchestrator_killed_and_rerun_makes_no_finished_item_again(services, cli):
    gen = services.generator(delay=0.4).wait_ready()
    args = run_args(services.root, "crash", gen.address, "--limit", "8", "--no-judge")
    run_dir = services.root / "runs" / "crash"
    crashed = cli(args)
    # _ledger_has tolerates the moment the file exists but its schema is not written yet.
    _wait(
        lambda: _ledger_has(run_dir, lambda r: r["state"] == "generated", at_least=3),
        what="no progress before kill",
    )
    os.killpg(crashed.proc.pid, signal.SIGKILL)
    crashed.proc.wait()
    done = {r["request_id"]: r for r in rows(run_dir) if r["state"] == "generated"}
    mtimes = {rid: (services.root / r["video_uri"]).stat().st_mtime_ns for rid, r in done.items()}
    assert 3 <= len(done) < 8
    assert main(args) == 0  # the dead process's lock is gone with it
    after = {r["request_id"]: r for r in rows(run_dir)}
    assert len(after) == 8 and {r["state"] for r in after.values()} == {"generated"}
    for rid, r in done.items():
        assert after[rid]["gen_attempts"] == r["gen_attempts"] == 1
        assert (services.root / r["video_uri"]).stat().st_mtime_ns == mtimes[rid]


@pytest.mark.slow
def test_local_mode_runs_and_stops_its_services(tmp_path, port_is_ready):
    run_dir = tmp_path / "quick"
    assert (
        main(
            [
                "run",
                "--local",
                "--model",
                "tiny",
                "--prompts",
                "sample",
                "--limit",
                "2",
                "--out",
                str(run_dir),
                "--no-progress",
                "--judge-tasks",
                "sa,pc,videocon_sa,videocon_pc",  # the tiny judge serves all five tasks
            ]
        )
        == 0
    )
    led = rows(run_dir)
    assert len(led) == 2 and {r["state"] for r in led} == {"judged"}
    for r in results(run_dir):
        assert 0.0 < float(r["videocon_sa"]) < 1.0 and 0.0 < float(r["videocon_pc"]) < 1.0
        assert r["sa_parse"] and r["pc_parse"]
    assert all(r["judge_attempts"] == 1 for r in led)  # one evaluator serves all: one call per video
    for port_file in (run_dir / "logs").glob("*.port"):
        assert not port_is_ready(f"127.0.0.1:{port_file.read_text().strip()}")


def test_joining_generator_is_sent_every_prompt_up_front(services, caplog):
    """Prepare encodes the run's prompts when a generator joins, before its workers take any item
    (the dispatcher awaits it first): the log says all 3 were newly encoded then, and the replica
    has them (and the negative prompt) cached afterwards."""
    import asyncio
    import re

    from videophy_bench.common.channel import ClientConfig
    from videophy_bench.orchestrator.clients import GeneratorClient

    gen = services.generator().wait_ready()
    args = run_args(services.root, "prep", gen.address, "--limit", "3", "--no-judge")
    with caplog.at_level("INFO", logger="videophy_bench.orchestrator.dispatch"):
        assert main(args) == 0
    prepared = [m for m in caplog.messages if re.search(r": 3 prompts prepared \((\d+) newly encoded\)", m)]
    assert prepared and int(re.search(r"\((\d+) newly", prepared[0]).group(1)) >= 3, caplog.messages
    led = rows(services.root / "runs" / "prep")
    assert {r["state"] for r in led} == {"generated"}
    captions = [r["gen_prompt"] for r in led]

    async def ask() -> tuple[int, int]:
        client = GeneratorClient(gen.address, ClientConfig())
        try:
            resp = await client.prepare(captions, None, 30)
        finally:
            await client.close()
        return resp.encoded, resp.cached

    assert asyncio.run(ask()) == (0, 4)  # the 3 prompts and the negative prompt were already encoded
