"""Two judge kinds in one run (AutoEval-like and VideoCon-like pools, routed by GetInfo tasks) and the
Prometheus metrics the generator autoscaler reads."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import urllib.request
from pathlib import Path

from run_dirs import results, rows

from videophy_bench.orchestrator.cli import main
from videophy_bench.orchestrator.judge_queue import partition_tasks


def run_args(storage: Path, name: str, gens: str, *extra: str) -> list[str]:
    out = str(storage / "runs" / name)
    return ["run", "--prompts", "sample", "--storage-root", str(storage), "--out", out,
            "--generators", gens, "--refresh-s", "0.5", "--no-progress", *extra]


def test_partition_prefers_one_call_per_pool():
    both = {frozenset({"sa", "pc", "rule"}), frozenset({"videocon_sa", "videocon_pc"})}
    groups = partition_tasks(frozenset({"sa", "pc", "videocon_pc"}), both)
    assert sorted(map(sorted, groups)) == [["pc", "sa"], ["videocon_pc"]]
    everything = {frozenset({"sa", "pc", "rule", "videocon_sa", "videocon_pc"})}
    assert partition_tasks(frozenset({"sa", "videocon_sa"}), everything) == [frozenset({"sa", "videocon_sa"})]
    assert partition_tasks(frozenset({"videocon_sa"}), set()) == [frozenset({"videocon_sa"})]


def _scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(videophy_[a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def test_two_judge_pools_fill_both_score_sets_and_metrics_move(pools, unused_port):
    svc, gen, autoeval, videocon = pools
    port = unused_port()
    args = run_args(
        svc.root,
        "two-judges",
        gen.address,
        "--evaluators",
        f"{autoeval.address},{videocon.address}",
        "--judge-tasks",
        "sa,pc,videocon_sa,videocon_pc",
        "--limit",
        "4",
        "--metrics-port",
        str(port),
    )
    samples: list[dict[str, float]] = []
    done = threading.Event()

    def scrape() -> None:
        while not done.is_set():
            with contextlib.suppress(OSError):
                samples.append(_scrape(port))
            time.sleep(0.1)

    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    try:
        assert main(args) == 0
    finally:
        done.set()
        scraper.join()
    run_dir = svc.root / "runs" / "two-judges"
    led = rows(run_dir)
    assert len(led) == 4 and {r["state"] for r in led} == {"judged"}
    # one call per pool per video, answers merged into one row
    assert all(r["judge_attempts"] == 2 for r in led)
    for r in results(run_dir):
        assert 0.0 < float(r["videocon_sa"]) < 1.0 and 0.0 < float(r["videocon_pc"]) < 1.0
        assert r["sa"] and r["pc"] and r["sa_parse"] and r["pc_parse"]
    config = json.loads((run_dir / "manifest.json").read_text())["config"]
    assert config["judge_model"] == "tiny-autoeval" and config["videocon_model"] == "tiny-videocon"
    assert config["judge_tasks"] == ["sa", "pc", "videocon_sa", "videocon_pc"]

    # the metrics the KEDA ScaledObject queries, scraped over HTTP during the run
    gen_pending = [s['videophy_pending_items{stage="generate"}'] for s in samples if s]
    assert gen_pending and max(gen_pending) >= 2 and min(gen_pending) < max(gen_pending)
    judged = [s['videophy_items{state="judged"}'] for s in samples if s]
    assert judged[0] < judged[-1] or max(judged) > min(judged)
    assert any(s.get('videophy_replicas{kind="evaluator"}') == 2 for s in samples)
    assert any(s.get('videophy_judge_replicas{task="videocon_sa"}') == 1 for s in samples)
    assert any(s.get("videophy_videos_per_hour", 0) > 0 for s in samples)
    assert all('videophy_pending_items{stage="evaluate"}' in s for s in samples if s)
    # a different task list is a different configuration
    assert main(run_args(svc.root, "two-judges", gen.address, "--evaluators", autoeval.address)) == 2


def test_a_task_no_evaluator_serves_is_refused_before_the_run(pools, capsys):
    svc, gen, autoeval, _ = pools
    args = run_args(
        svc.root,
        "unserved",
        gen.address,
        "--evaluators",
        autoeval.address,
        "--judge-tasks",
        "sa,pc,videocon_pc",
        "--limit",
        "1",
    )
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "videocon_pc not served by any evaluator" in err and "tiny-autoeval" in err
    assert "serves sa, pc, rule" in err
    assert not any(r["gen_attempts"] for r in rows(svc.root / "runs" / "unserved"))
    assert main([*args[:-4], "--judge-tasks", "sa,bogus"]) == 2
    assert "unknown judge task(s) bogus" in capsys.readouterr().err

