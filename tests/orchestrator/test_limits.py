"""A request a service refuses as too large fails its item at once, with the service's reason in the
ledger, and is never retried (real tiny generator and evaluator on loopback)."""

from __future__ import annotations

import csv
from pathlib import Path

from run_dirs import rows

from services.orchestrator.cli import main

# Within every character limit (the prompt loader accepts it, the generator makes its video), but four
# byte-fallback tokens per character: far over the judge's 2048-token context.
OVER_CONTEXT = "\U0001f600" * 1000


def test_a_caption_over_the_judges_context_fails_at_once_with_its_reason(services, tmp_path: Path) -> None:
    gen, ev = services.generator(), services.evaluator()
    for svc in (gen, ev):
        svc.wait_ready()
    prompts = tmp_path / "prompts.csv"
    with open(prompts, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["caption"], ["A ball rolls down a ramp."], [OVER_CONTEXT]])
    run_dir = services.root / "runs" / "limits"
    args = ["run", "--prompts", str(prompts), "--storage-root", str(services.root), "--out", str(run_dir),
            "--generators", gen.address, "--evaluators", ev.address, "--refresh-s", "0.5", "--no-progress"]
    assert main(args) == 0  # every item settled: one judged, one failed with its reason
    by_caption = {r["caption"]: r for r in rows(run_dir)}
    ok, refused = by_caption["A ball rolls down a ramp."], by_caption[OVER_CONTEXT]
    assert ok["state"] == "judged"
    assert refused["state"] == "failed"
    assert "INVALID_ARGUMENT" in refused["error"] and "context is 2048 tokens" in refused["error"]
    assert (refused["gen_attempts"], refused["judge_attempts"]) == (1, 1)  # refused once, never retried
