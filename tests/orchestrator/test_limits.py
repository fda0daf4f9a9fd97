"""A request a service refuses as too large fails its item at once, with the service's reason in the
ledger, and is never retried; an unexpected fault (INTERNAL) is retried, but only `--max-attempts`
times (real tiny generator and evaluator on loopback)."""

from __future__ import annotations

import csv
from pathlib import Path

from run_dirs import rows

from videophy_bench.orchestrator.cli import main

# Within every character limit (the prompt loader accepts it, the generator makes its video), but four
# byte-fallback tokens per character: far over the judge's 2048-token context.
OVER_CONTEXT = "\U0001f600" * 1000


def _run(services, prompts: Path, name: str, gen, ev, *extra: str) -> Path:
    run_dir = services.root / "runs" / name
    args = ["run", "--prompts", str(prompts), "--storage-root", str(services.root), "--out", str(run_dir),
            "--generators", gen.address, "--evaluators", ev.address, "--refresh-s", "0.5", "--no-progress",
            *extra]
    assert main(args) == 0  # every item settled: judged, or failed with its reason
    return run_dir


def _prompts(tmp_path: Path, *captions: str) -> Path:
    path = tmp_path / "prompts.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["caption"], *([c] for c in captions)])
    return path


def test_a_caption_over_the_judges_context_fails_at_once_with_its_reason(services, tmp_path: Path) -> None:
    gen, ev = services.generator(), services.evaluator()
    for svc in (gen, ev):
        svc.wait_ready()
    run_dir = _run(services, _prompts(tmp_path, "A ball rolls down a ramp.", OVER_CONTEXT), "limits", gen, ev)
    by_caption = {r["caption"]: r for r in rows(run_dir)}
    ok, refused = by_caption["A ball rolls down a ramp."], by_caption[OVER_CONTEXT]
    assert ok["state"] == "judged"
    assert refused["state"] == "failed"
    assert "INVALID_ARGUMENT" in refused["error"] and "context is 2048 tokens" in refused["error"]
    assert (refused["gen_attempts"], refused["judge_attempts"]) == (1, 1)  # refused once, never retried


def test_an_internal_fault_is_retried_only_max_attempts_times(services, tmp_path: Path) -> None:
    gen, ev = services.generator(), services.evaluator(fail_on="FAULT")
    for svc in (gen, ev):
        svc.wait_ready()
    prompts = _prompts(tmp_path, "A ball rolls down a ramp.", "A FAULT in the judge.")
    run_dir = _run(services, prompts, "internal", gen, ev, "--max-attempts", "3")
    by_caption = {r["caption"]: r for r in rows(run_dir)}
    ok, faulty = by_caption["A ball rolls down a ramp."], by_caption["A FAULT in the judge."]
    assert ok["state"] == "judged" and ok["judge_attempts"] == 1
    assert faulty["state"] == "failed" and faulty["gen_attempts"] == 1 and faulty["judge_attempts"] == 3
    assert "INTERNAL" in faulty["error"] and "injected judge fault" in faulty["error"]
    assert "after 3 attempts" in faulty["error"]
