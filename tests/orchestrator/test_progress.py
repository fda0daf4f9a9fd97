"""The live display (run) and `status --watch`: rendered into a rich Console without a TTY; the tests
assert what is shown (bar, percentage, elapsed, ETA with the judging tail, replica rows, log lines
above the display), never how fast."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import threading
import time
from pathlib import Path

from rich.console import Console
from run_dirs import wait_for

from videophy_bench.orchestrator.cli import main
from videophy_bench.orchestrator.items import WorkItem, derive_seed
from videophy_bench.orchestrator.ledger import Ledger, RunLock, StoredAnswer
from videophy_bench.orchestrator.progress import line, progress_info, render, run_progress, watch
from videophy_bench.orchestrator.status import eta_seconds

GEN, GEN_B, EVAL = "10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.3:50052"
REPLICAS = [
    {"kind": "generator", "address": GEN, "device": "cuda:0", "device_name": "NVIDIA H200"},
    {"kind": "evaluator", "address": EVAL, "device": "cuda:1", "device_name": "NVIDIA H200"},
]


def console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, width=160, color_system=None), buf


def _run(run_dir: Path, started: float) -> tuple[Ledger, list[WorkItem]]:
    """4 items: p0 judged (made on GEN, judged on EVAL), p1 generated, p2 generating on GEN, p3
    pending after an RPC error on GEN_B; manifest.json names the replicas and the session."""
    led = Ledger(run_dir)
    led.check_config({"run_seed": 0, "judge_model": "tiny"})
    items = [WorkItem(f"p{k}", derive_seed(0, f"p{k}", 0), "c", "c", "cfg") for k in range(4)]
    led.add_items(items)
    now = time.time()
    rid = [i.request_id for i in items]
    led.record_answers(rid[0], [StoredAnswer("sa", 4.0), StoredAnswer("pc", 4.0)], replica=EVAL, seconds=1.0,
                       state="judged", gen_replica=GEN, gen_seconds=2.0, generated_at=now - 20,
                       judge_replica=EVAL, judge_seconds=1.0, judged_at=now - 10)
    led.update(rid[1], state="generated", gen_replica=GEN, gen_seconds=4.0, generated_at=now - 5)
    led.begin_attempt(rid[2], "gen_attempts", state="generating", gen_replica=GEN)
    led.begin_attempt(rid[3], "gen_attempts", state="generating", gen_replica=GEN_B)
    led.add_error(rid[3], "generate", f"UNAVAILABLE: connection reset [{GEN_B}]", state="pending")
    (run_dir / "manifest.json").write_text(
        json.dumps({"replicas": REPLICAS, "sessions": [{"started": started, "ended": None}]})
    )
    return led, items


def test_display_shows_bar_percentage_elapsed_eta_and_one_row_per_replica(tmp_path):
    led, _ = _run(tmp_path, started=0)
    info = progress_info(led.conn, True, REPLICAS, started=time.time() - 125)
    out, buf = console()
    out.print(render(info))
    text = buf.getvalue()
    assert "25.0%" in text and "1/4 done" in text and "━" in text  # the bar
    assert "elapsed 2m0" in text and "ETA" in text
    assert "pending 1" in text and "generating 1" in text and "generated 1" in text and "judged 1" in text
    rows = {r["address"]: r for r in info["replicas"]}
    assert set(rows) == {GEN, GEN_B, EVAL}  # GEN_B: known from the ledger only
    assert rows[GEN]["current"] == "p2 #0" and rows[GEN]["seconds_per_video"] == 3.0
    assert rows[GEN_B]["errors"] == 1 and rows[GEN]["errors"] == 0 and rows[EVAL]["seconds_per_video"] == 1.0
    for r in info["replicas"]:
        row = next(t for t in text.splitlines() if r["address"] in t)
        assert r["kind"] in row and str(r["errors"]) in row and ("ago" in row or "never" in row)
    gen_row = next(t for t in text.splitlines() if GEN + " " in t)
    assert "NVIDIA H200" in gen_row and "p2 #0" in gen_row and "3.0" in gen_row


def test_eta_counts_the_judging_tail():
    counts = {"pending": 0, "generating": 0, "generated": 5, "judged": 5, "failed": 0}
    assert eta_seconds(counts, True, 100.0, 10.0) == 1800.0  # all made: 5 left to judge at 10/h
    assert eta_seconds(counts, True, 100.0, None) is None  # judging left, no rate yet: unknown, not 0
    assert eta_seconds(counts, False, None, None) == 0.0  # no judge: nothing left
    counts.update(pending=10, generated=0)
    assert eta_seconds(counts, True, 20.0, 40.0) == 1800.0  # the slower stage ends the run
    assert eta_seconds({**counts, "pending": 0}, False, None, None) == 0.0


def test_log_lines_print_above_the_display_and_handlers_come_back(tmp_path):
    led, _ = _run(tmp_path, started=time.time())
    out, buf = console()
    root = logging.getLogger()
    before = root.handlers[:]

    async def scenario() -> None:
        task = asyncio.create_task(run_progress(
            lambda: progress_info(led.conn, True, REPLICAS, time.time()), interval_s=0.05, tty=True,
            console=out))
        while "1/4 done" not in buf.getvalue():
            await asyncio.sleep(0.01)
        logging.getLogger("videophy_bench.test").warning("a replica said hello")
        while "a replica said hello" not in buf.getvalue():
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert root.handlers == before
    assert "videophy_bench.test: a replica said hello" in buf.getvalue()


def test_status_watch_follows_a_run_in_another_process(tmp_path):
    led, items = _run(tmp_path, started=time.time())
    led.close()
    lock = RunLock(tmp_path, "a run").acquire()  # the running orchestrator
    out, buf = console()
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(watch(tmp_path, interval_s=0.05, console=out)), daemon=True
    )
    thread.start()
    wait_for(lambda: "1/4 done" in buf.getvalue() and GEN_B in buf.getvalue(), 60, "first frame")
    writer = Ledger(tmp_path)
    for item in items[1:]:
        writer.record_answers(item.request_id, [StoredAnswer("sa", 5.0), StoredAnswer("pc", 5.0)],
                              replica="test", seconds=None, state="judged", judged_at=time.time())
    writer.close()
    wait_for(lambda: "4/4 done" in buf.getvalue(), 60, "the watch sees the ledger change")
    lock.release()  # the run ends
    thread.join(60)
    assert not thread.is_alive() and result["state"] == "complete"
    assert "100.0%" in buf.getvalue() and "complete" in buf.getvalue()
    assert not (tmp_path / "results.json").exists()


def test_status_watch_without_a_terminal_prints_lines_and_ends_with_the_run(tmp_path, capsys):
    led, _ = _run(tmp_path, started=time.time() - 61)
    led.close()
    assert main(["status", str(tmp_path), "--watch", "0.05"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("interrupted: 1/4 done (25.0%)") and "elapsed 1m0" in out
    assert main(["status", str(tmp_path / "nothing"), "--watch"]) == 1
    assert "no ledger.sqlite" in capsys.readouterr().err


def test_log_line_mode_has_percentage_elapsed_and_eta(tmp_path):
    led, _ = _run(tmp_path, started=0)
    text = line(progress_info(led.conn, True, [], time.time() - 3700))
    assert text.startswith("1/4 done (25.0%) |") and "elapsed 1h01m" in text and "ETA" in text
