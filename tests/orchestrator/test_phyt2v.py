"""`videophy-bench refine`: PhyT2V-style rounds against a fake OpenAI-compatible server (real HTTP on
loopback) and the real tiny generator/evaluator."""

from __future__ import annotations

import base64
import json

import pytest
from fake_openai import FakeOpenAI
from run_dirs import results, rows

from videophy_bench.common.openai_chat import ChatClient, EndpointError
from videophy_bench.orchestrator.cli import main
from videophy_bench.orchestrator.phyt2v import templates as T
from videophy_bench.orchestrator.phyt2v.frames import sample_indices

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
        ex = client.chat(T.STRICT.law_messages("A ball falls."))
        assert fake.statuses == [500, 429, 503, 200] and ex.attempts == 4
        assert T.parse_law(ex.content)["main_object"] == "a ball"
        fake.fail_next = [500] * 3
        with pytest.raises(EndpointError, match="gave up after 3 attempts"):
            ChatClient(fake.url, "m", backoff_s=0.01, max_attempts=3).chat(T.STRICT.law_messages("x"))


def test_401_is_not_retried_and_the_key_is_sent(monkeypatch):
    with FakeOpenAI(api_key="s3cret") as fake:
        with pytest.raises(EndpointError, match="HTTP 401") as info:
            ChatClient(fake.url, "m", backoff_s=0.01).chat(T.STRICT.law_messages("x"))
        assert info.value.status == 401 and fake.statuses == [401]
        ChatClient(fake.url + "/chat/completions", "m", api_key="s3cret").chat(T.STRICT.law_messages("x"))
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


BAD_ANSWERS = {  # answer, finish_reason -> the start of the stored reason
    "unclosed": ("<think>The ball should fall, so the prompt", "stop", "refine: unclosed reasoning block"),
    "refusal": ("I'm sorry, but I can't help with that.", "stop", "refine: a refusal"),
    "empty": ("<think>nothing to add</think>  ", "stop", "refine: empty answer"),
    "long": (" ".join(["word"] * 400), "stop", "refine: 400 words; at most 200"),
    "length": ("A ball falls and bou", "length", "refine: finish_reason=length"),
    "chars": ("x" * 8_001, "stop", "refine: refined prompt has 8001 characters; the limit is 8000"),
}


def test_bad_answers_are_refused_and_stored_with_their_reason(tmp_path):
    from videophy_bench.orchestrator.phyt2v.answers import AnswerRefused
    from videophy_bench.orchestrator.phyt2v.loop import Refiner
    from videophy_bench.orchestrator.phyt2v.store import StepStore

    store = StepStore(tmp_path)
    with FakeOpenAI() as fake:
        client = ChatClient(fake.url, "fake-llm", backoff_s=0.01)
        refiner = Refiner(tmp_path, None, store, client, client)  # type: ignore[arg-type]
        for name, (content, finish, reason) in BAD_ANSWERS.items():
            msgs = T.STRICT.refine_messages(f"caption {name}", "prev", "none", "gravity", "not judged")
            fake.special[("refine", f"caption {name}")] = (content, finish)
            with pytest.raises(AnswerRefused, match=reason.replace("(", r"\(")):
                refiner._ask(f"refine|{name}|1|1", "refine", client, msgs,
                             lambda t: {"prompt": T.parse_refined(t)}, name, 1, 1)
            assert store.get(f"refine|{name}|1|1") is None  # refused: not done, asked again on a rerun
        ok = T.STRICT.refine_messages("caption fine", "prev", "none", "gravity", "not judged")
        got = refiner._ask("refine|fine|1|1", "refine", client, ok, lambda t: {"prompt": T.parse_refined(t)},
                           "fine", 1, 1)
        assert got["prompt"].startswith("refined-")
    recs = {r["prompt_id"]: r for r in (dict(x) for x in store.conn.execute("SELECT * FROM phyt2v_steps"))}
    store.close()
    for name, (content, finish, reason) in BAD_ANSWERS.items():
        rec = recs[name]
        assert rec["status"] == "refused" and rec["reason"].startswith(reason)
        assert rec["key"] == f"refine|{name}|1|1|refused|1" and rec["answer"] == content
        assert rec["finish_reason"] == finish
        assert json.loads(rec["response"])["choices"][0]["finish_reason"] == finish
    assert recs["fine"]["status"] == "ok" and recs["fine"]["finish_reason"] == "stop"


def test_failing_items_are_recorded_and_the_round_goes_on(shared_services, capsys):
    svc, gens, ev = shared_services
    run_dir = svc.root / "runs" / "phyt2v-fail"
    common = ["--storage-root", str(svc.root), "--generators", ",".join(g.address for g in gens),
              "--evaluators", ev.address, *FAST]
    assert main(["run", "--prompts", "sample", "--limit", "3", "--out", str(run_dir), *common]) == 0
    base = {r["prompt_id"]: r for r in rows(run_dir)}
    by_word = {w: next(p for p, r in base.items() if w in r["caption"])
               for w in ("basketball", "water", "javelin")}
    with FakeOpenAI() as fake:
        # basketball: the rewrite is a refusal; water: the captioner answers nothing; javelin: fine.
        fake.special[("refine", "basketball")] = ("I'm sorry, I cannot rewrite this prompt.", "stop")
        law = '{"main_object": "a glass of water", "physical_law": "it spills"}'
        fake.special[("law", "water")] = (law, "stop")
        fake.special[("caption", "a glass of water")] = ("", "stop")
        refine = ["refine", "--run", str(run_dir), "--rounds", "2", "--llm-endpoint", fake.url,
                  "--llm-model", "fake-llm", "--frames", "2", "--templates", "official", *common]
        assert main(refine) == 0
        out = capsys.readouterr().out
        assert "refine round 1: 1 refined, 2 failed" in out and "refine round 2: 1 refined, 2 failed" in out
        led = rows(run_dir)
        assert sorted((r["round"], r["prompt_id"]) for r in led if r["round"]) == [
            (1, by_word["javelin"]), (2, by_word["javelin"])]
        prompts = {(p["round"], p["prompt_id"]): p for p in _csv(run_dir / "phyt2v" / "prompts.csv")}
        assert len(prompts) == 9
        assert prompts[(1, by_word["basketball"])]["status"] == "failed"
        assert prompts[(1, by_word["basketball"])]["reason"].startswith("refine: a refusal")
        assert prompts[(1, by_word["water"])]["reason"] == "caption: empty answer"
        assert prompts[(2, by_word["water"])]["reason"] == "no round-1 video to refine from"
        for key in [(0, p) for p in base] + [(1, by_word["javelin"]), (2, by_word["javelin"])]:
            p = prompts[key]  # every generated prompt: its tokens with the generator's tokenizer
            assert p["status"] == "ok" and int(p["tokens"]) > len(p["gen_prompt"].split())
            assert p["max_tokens"] == "512" and p["truncated"] == "0"
        config = json.loads((run_dir / "phyt2v" / "config.json").read_text())
        assert config["templates"] == "official" and config["max_sequence_length"] == 512
        assert config["tokenizer"].startswith("tiny")
        # The official structure: worked examples and the previous round's prompt as the one to enhance.
        refines = [_user(q["body"]) for q, s in zip(fake.requests, fake.steps(), strict=True)
                   if s == "refine"]
        r1 = next(r["gen_prompt"] for r in led if r["round"] == 1)
        assert all("### Worked example" in t for t in refines)
        assert any(t.endswith(f"User prompt: {r1}") for t in refines)

        # A rerun asks the failed steps again (refused answers are kept, not reused); now they pass.
        fake.special.clear()
        assert main(refine) == 0
        assert "refine round 2: 3 refined, 0 failed" in capsys.readouterr().out
        assert len([r for r in rows(run_dir) if r["round"]]) == 6
        steps = [json.loads(x) for x in (run_dir / "phyt2v" / "exchanges.jsonl").read_text().splitlines()]
        refused = [s for s in steps if s["status"] == "refused"]
        assert sorted(s["reason"].split(":")[0] for s in refused) == ["caption", "refine"]
        # Another template set on the same directory: one clear line, nothing asked.
        n = len(fake.requests)
        assert main([*refine[:-len(common) - 2], "--templates", "strict", *common]) == 2
        assert "was refined with --templates official" in capsys.readouterr().err
        assert len(fake.requests) == n


def _csv(path):
    import csv

    with open(path, newline="") as f:
        return [{**r, "round": int(r["round"])} for r in csv.DictReader(f)]
