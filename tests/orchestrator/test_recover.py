"""Exports never go stale after a crash, and a corrupt ledger is answered in one line and rebuilt
(`videophy-bench recover`) without remaking a video. Real tiny services on loopback, real MP4s."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from run_dirs import assert_exports_match_ledger, ledger_has, results, rows, wait_for

from videophy_bench.orchestrator.analysis.cli import report_main
from videophy_bench.orchestrator.cli import main
from videophy_bench.orchestrator.ledger import RunLock

FAST = ["--refresh-s", "0.5", "--no-progress"]


def run_args(storage: Path, name: str, gens: str, *extra: str) -> list[str]:
    out = storage / "runs" / name
    return ["run", "--prompts", "sample", "--storage-root", str(storage), "--out", str(out),
            "--generators", gens, *FAST, *extra]  # fmt: skip


def _first_screen(report_dir: Path) -> tuple[str, str]:
    """The top of report.html (up to the navigation) and of report.md (up to the first section)."""
    html = (report_dir / "report.html").read_text()
    md = (report_dir / "report.md").read_text()
    return html[: html.index("<nav>")], md[: md.index("\n## ")]


def test_exports_follow_the_ledger_after_a_crash(services, cli, unused_port, capsys):
    gen = services.generator(delay=0.4).wait_ready()
    run_dir = services.root / "runs" / "stale"
    args = run_args(services.root, "stale", gen.address, "--no-judge")
    assert main([*args, "--limit", "2"]) == 0
    stale = (run_dir / "results.csv").read_text(), (run_dir / "summary.json").read_text()
    crashed = cli([*args, "--limit", "8"])
    wait_for(
        lambda: ledger_has(run_dir, lambda r: r["state"] == "generated", at_least=5),
        what="the --limit 8 run made no progress",
    )
    os.killpg(crashed.proc.pid, signal.SIGKILL)
    crashed.proc.wait()
    made = {r["request_id"]: r["generated_at"] for r in rows(run_dir) if r["state"] == "generated"}
    done = len(made)
    assert len(rows(run_dir)) == 8 and 5 <= done < 8
    assert len(results(run_dir)) == 2  # what the kill left behind: stale

    # A rerun whose replicas never answer still rebuilds the exports before it gives up.
    unreachable = f"127.0.0.1:{unused_port()}"
    rerun = run_args(services.root, "stale", unreachable, "--no-judge", "--limit", "8")
    assert main([*rerun, "--startup-timeout-s", "1"]) == 1
    summary = assert_exports_match_ledger(run_dir)
    assert (summary["n_selected"], summary["n_done"], summary["complete"]) == (8, done, False)
    capsys.readouterr()

    # status rewrites stale exports (here: put back as the kill left them)
    (run_dir / "results.csv").write_text(stale[0])
    (run_dir / "summary.json").write_text(stale[1])
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert f"interrupted: {done} of 8 done" in out and "rewritten from the ledger" in out
    assert_exports_match_ledger(run_dir)

    # report, from stale files: refreshed too, and says on its first screen that the run is unfinished
    (run_dir / "results.csv").write_text(stale[0])
    assert report_main([str(run_dir), "--out", str(services.root / "report"), "--bootstrap", "0"]) == 0
    assert_exports_match_ledger(run_dir)
    for top in _first_screen(services.root / "report"):
        assert f"interrupted: {done} of 8 done" in top
    data = json.loads((services.root / "report" / "report.json").read_text())
    overview = next(b for b in data["sections"][0]["blocks"] if b.get("id") == "overview")
    assert overview["rows"][0]["n_items"] == 8
    capsys.readouterr()

    # While an orchestrator holds the run: computed in memory, the files left to it, and said so.
    (run_dir / "results.csv").write_text(stale[0])
    with RunLock(run_dir, "a test holding the run"):
        assert main(["status", str(run_dir), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["state"] == "running" and "a test holding the run" in info["holder"]
        assert "in progress" in info["exports"]
        assert report_main([str(run_dir), "--out", str(services.root / "report2"), "--bootstrap", "0"]) == 0
    assert (run_dir / "results.csv").read_text() == stale[0]
    html, md = _first_screen(services.root / "report2")
    assert f"running (pid {os.getpid()} (a test holding the run)" in html and f"{done} of 8 done" in md
    assert "numbers read live from the ledger" in md

    assert main([*args, "--limit", "8"]) == 0  # finishing the run: complete, nothing remade
    summary = assert_exports_match_ledger(run_dir)
    assert summary["complete"] and summary["n_done"] == 8
    assert {r["request_id"]: r["generated_at"] for r in rows(run_dir) if r["request_id"] in made} == made


def _corrupt_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 2048] = b"\xa5" * 2048
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


@pytest.mark.parametrize("damage", [_corrupt_middle, _truncate], ids=["overwritten", "truncated"])
def test_corrupt_ledger_is_one_line_then_recovered_without_remaking(shared_services, capsys, damage):
    svc, gens, ev = shared_services
    name = f"corrupt-{damage.__name__}"
    run_dir = svc.root / "runs" / name
    gen_list = ",".join(g.address for g in gens)
    args = run_args(svc.root, name, gen_list, "--evaluators", ev.address, "--limit", "6")
    assert main(args) == 0
    before = {r["request_id"]: r for r in rows(run_dir)}
    assert len(before) == 6 and {r["state"] for r in before.values()} == {"judged"}
    mtimes = {rid: (svc.root / r["video_uri"]).stat().st_mtime_ns for rid, r in before.items()}
    ledger = run_dir / "ledger.sqlite"
    damage(ledger)
    damaged = ledger.read_bytes()
    capsys.readouterr()

    for argv in (args, ["status", str(run_dir)]):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert "ledger.sqlite is corrupt (sqlite: " in err and f"videophy-bench recover {run_dir}" in err
    assert ledger.read_bytes() == damaged  # refusing touched nothing

    assert main(["recover", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "recovered 6 videos" in out and "skipped 0 sidecars" in out
    kept = [p for p in run_dir.iterdir() if p.name.startswith("ledger.sqlite.corrupt-")]
    assert [p.read_bytes() for p in kept if not p.name.endswith(("-wal", "-shm"))] == [damaged]
    rebuilt = {r["request_id"]: r for r in rows(run_dir)}
    assert set(rebuilt) == set(before)
    salvaged = {rid for rid, r in rebuilt.items() if r["state"] == "judged"}
    assert f"{len(salvaged)} judged, {6 - len(salvaged)} to be judged again" in out
    for rid in salvaged:  # answers read back from the damaged file are the recorded ones
        assert (rebuilt[rid]["sa"], rebuilt[rid]["pc"], rebuilt[rid]["sa_raw"]) == (
            before[rid]["sa"], before[rid]["pc"], before[rid]["sa_raw"])  # fmt: skip
    assert_exports_match_ledger(run_dir)
    assert main(["recover", str(run_dir)]) == 0  # a second recover finds an intact ledger
    assert "intact; nothing to recover" in capsys.readouterr().out

    assert main(args) == 0  # resumes: judges what lost its answers, makes nothing again
    after = {r["request_id"]: r for r in rows(run_dir)}
    assert {r["state"] for r in after.values()} == {"judged"}
    for rid, r in after.items():
        assert (r["sha256"], r["gen_attempts"]) == (before[rid]["sha256"], 1)
        assert r["generated_at"] == rebuilt[rid]["generated_at"]
        assert (svc.root / r["video_uri"]).stat().st_mtime_ns == mtimes[rid]
        assert r["judge_attempts"] == rebuilt[rid]["judge_attempts"] + (rid not in salvaged)
    assert_exports_match_ledger(run_dir)


def test_recover_skips_sidecars_without_a_valid_video_and_names_why(shared_services, capsys):
    svc, gens, _ = shared_services
    run_dir = svc.root / "runs" / "recover-skips"
    args = run_args(svc.root, "recover-skips", gens[0].address, "--limit", "4", "--no-judge")
    assert main(args) == 0
    led = rows(run_dir)
    changed, gone = (svc.root / led[0]["video_uri"]), (svc.root / led[1]["video_uri"])
    changed.write_bytes(changed.read_bytes()[:-10])
    gone.unlink()
    shutil.rmtree(run_dir / "official")
    (run_dir / "ledger.sqlite").write_bytes(b"not a database at all" * 100)
    assert main(["recover", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "recovered 2 videos" in out and "skipped 2 sidecars" in out
    assert "1 video sha256 differs from its sidecar" in out and "1 video missing or empty" in out
    assert (run_dir / "official" / "sa_pc.csv").is_file()  # exports rewritten from the new ledger
    rebuilt = {r["request_id"]: r for r in rows(run_dir)}
    assert set(rebuilt) == {led[2]["request_id"], led[3]["request_id"]}
    assert main(args) == 0  # the two lost videos are made again; the two recovered ones are not
    after = {r["request_id"]: r for r in rows(run_dir)}
    assert len(after) == 4 and {r["state"] for r in after.values()} == {"generated"}
    assert changed.stat().st_size > 0 and gone.is_file()
    for rid, r in rebuilt.items():
        assert (after[rid]["generated_at"], after[rid]["gen_attempts"]) == (r["generated_at"], 1)
    assert_exports_match_ledger(run_dir)
