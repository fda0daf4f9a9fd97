"""`videophy-bench refine`: PhyT2V-style rounds against a fake OpenAI-compatible server (real HTTP on
loopback) and the real tiny generator/evaluator."""

from __future__ import annotations

import base64
import json

import pytest
from fake_openai import FakeOpenAI
from run_dirs import results, rows

from services.orchestrator.cli import main
from services.orchestrator.phyt2v import templates as T
from services.orchestrator.phyt2v.client import ChatClient, EndpointError
from services.orchestrator.phyt2v.frames import sample_indices

FAST = ["--refresh-s", "0.5", "--no-progress"]


def test_two_rounds_judged_against_original_then_rerun_asks_nothing(shared_services, capsys):
    svc, gens, ev = shared_services
    run_dir = svc.root / "runs" / "phyt2v"
    common = ["--storage-root", str(svc.root), "--generators", ",".join(g.address for g in gens),
              "--evaluators", ev.address, *FAST]
    assert main(["run", "--prompts", "sample", "--limit", "2", "--out", str(run_dir), *common]) == 0
    with FakeOpenAI() as fake:
        refine = ["refine", "--run", str(run_dir), "--rounds", "2", "--llm-endpoint", fake.url,
                  "--llm-model", "fake-llm", "--vlm-model", "fake-vlm", "--frames", "4", *common]
        assert main(refine) == 0
        led = rows(run_dir)
        assert len(led) == 6 and {r["state"] for r in led} == {"judged"}
        base = {r["prompt_id"]: r for r in led if r["round"] == 0}
        assert {r["arm"] for r in base.values()} == {"base"}
        by_round: dict[int, list[dict]] = {1: [], 2: []}
        for r in led:
            if r["round"]:
                by_round[r["round"]].append(r)
        for rs in by_round.values():
            assert len(rs) == 2 and {r["arm"] for r in rs} == {"phyt2v"}
            for r in rs:
                b = base[r["prompt_id"]]
                assert r["caption"] == b["caption"]  # judged against the original caption
                assert r["seed"] == b["seed"] and r["config_hash"] == b["config_hash"]
                assert r["gen_prompt"].startswith("refined-") and r["gen_prompt"] != r["caption"]
                assert r["sa"] is not None and r["video_uri"] != b["video_uri"]
        r1 = {r["prompt_id"]: r["gen_prompt"] for r in by_round[1]}
        r2 = {r["prompt_id"]: r["gen_prompt"] for r in by_round[2]}
        assert all(r1[p] != r2[p] for p in r1)
        # 2 laws (once per prompt), then per round and prompt: caption, mismatch, refine.
        steps = fake.steps()
        assert steps.count("law") == 2 and len(steps) == 2 + 2 * 2 * 3
        assert {s: steps.count(s) for s in ("caption", "mismatch", "refine")} == {
            "caption": 4, "mismatch": 4, "refine": 4}
        for req, step in zip(fake.requests, steps, strict=True):
            assert req["path"] == "/v1/chat/completions"
            assert req["body"]["model"] == ("fake-vlm" if step == "caption" else "fake-llm")
        for req in (q for q, step in zip(fake.requests, steps, strict=True) if step == "caption"):
            parts = req["body"]["messages"][0]["content"]
            images = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
            assert len(images) == 4
            for url in images:
                head, data = url.split(",", 1)
                assert head == "data:image/jpeg;base64" and base64.b64decode(data)[:2] == b"\xff\xd8"
            assert "a ball" in parts[-1]["text"]  # the law step's main object
        # The round-2 rewrite sees the round-1 prompt and the original caption.
        refines = [_user(q["body"]) for q, step in zip(fake.requests, steps, strict=True) if step == "refine"]
        for p, prompt in r1.items():
            text = next(t for t in refines if f"Prompt used last time: {prompt}" in t)
            assert f"Description the video must show: {base[p]['caption']}" in text and "sa=" in text
        log_lines = (run_dir / "phyt2v" / "exchanges.jsonl").read_text().splitlines()
        recs = [json.loads(x) for x in log_lines]
        assert len(recs) == 14 and all(r["answer"] and r["response"] for r in recs)
        assert "base64," not in json.dumps(recs)  # images are recorded by sha256, not inline
        res = results(run_dir)
        assert sorted((r["round"], r["arm"]) for r in res) == sorted(
            [("0", "base")] * 2 + [("1", "phyt2v")] * 2 + [("2", "phyt2v")] * 2)

        n_requests = len(fake.requests)
        mtimes = {p: p.stat().st_mtime_ns for p in (run_dir / "videos").rglob("*.mp4")}
        attempts = {r["request_id"]: r["gen_attempts"] for r in led}
        assert main(refine) == 0
        assert len(fake.requests) == n_requests  # nothing asked again
        assert {p: p.stat().st_mtime_ns for p in (run_dir / "videos").rglob("*.mp4")} == mtimes
        assert {r["request_id"]: r["gen_attempts"] for r in rows(run_dir)} == attempts

    # A third round against an endpoint that wants a key: a clear error, exit code 2, no retries.
    with FakeOpenAI(api_key="s3cret") as locked:
        capsys.readouterr()
        bad = ["refine", "--run", str(run_dir), "--rounds", "3", "--llm-endpoint", locked.url,
               "--llm-model", "fake-llm", "--llm-concurrency", "1", *common]
        assert main(bad) == 2
        err = capsys.readouterr().err
        assert "HTTP 401" in err and "--api-key-env" in err
        assert locked.statuses == [401]
    assert len(rows(run_dir)) == 6


def _user(body: dict) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def test_retries_5xx_and_429_then_succeeds():
    with FakeOpenAI() as fake:
        fake.fail_next = [500, 429, 503]
        client = ChatClient(fake.url, "m", backoff_s=0.01, max_attempts=5)
        ex = client.chat(T.law_messages("A ball falls."))
        assert fake.statuses == [500, 429, 503, 200] and ex.attempts == 4
        assert T.parse_law(ex.content)["main_object"] == "a ball"
        fake.fail_next = [500] * 3
        with pytest.raises(EndpointError, match="gave up after 3 attempts"):
            ChatClient(fake.url, "m", backoff_s=0.01, max_attempts=3).chat(T.law_messages("x"))


def test_401_is_not_retried_and_the_key_is_sent(monkeypatch):
    with FakeOpenAI(api_key="s3cret") as fake:
        with pytest.raises(EndpointError, match="HTTP 401") as info:
            ChatClient(fake.url, "m", backoff_s=0.01).chat(T.law_messages("x"))
        assert info.value.status == 401 and fake.statuses == [401]
        ChatClient(fake.url + "/chat/completions", "m", api_key="s3cret").chat(T.law_messages("x"))
        assert fake.statuses == [401, 200]
        assert fake.requests[-1]["headers"]["Authorization"] == "Bearer s3cret"


def test_refine_cli_usage_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    base = ["refine", "--run", str(tmp_path), "--rounds", "1", "--llm-endpoint", "http://127.0.0.1:9/v1",
            "--llm-model", "m", "--local"]
    assert main(base) == 2 and "not a run directory" in capsys.readouterr().err
    assert main([*base, "--api-key-env", "NO_SUCH_KEY"]) == 2
    assert "NO_SUCH_KEY is not set" in capsys.readouterr().err


def test_parsers():
    assert T.parse_refined('<think>hm</think>Enhanced prompt:  "A  ball\nfalls."') == "A ball falls."
    assert T.parse_law("no json here")["parsed"] == "text"
    law = T.parse_law('x {"a": 1} then {"main_object": "cup", "physical_law": "liquid pours"}')
    assert law["main_object"] == "cup" and law["parsed"] == "json"
    assert T.parse_mismatch("Mismatch: none really") == "none really"
    assert sample_indices(49, 4) == [0, 16, 32, 48] and sample_indices(3, 8) == [0, 1, 2]
