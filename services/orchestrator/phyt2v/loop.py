"""`videophy-bench refine`: PhyT2V-style rounds on top of a finished round-0 run.

For each round r = 1..R and each (prompt, seed) whose round r-1 video exists:
  law (LLM, once per prompt) -> caption of the r-1 video (VLM, N frames) -> mismatch (LLM)
  -> refined prompt (LLM); then the run machinery generates round r (arm `phyt2v`) from the refined
  prompt and judges it against the ORIGINAL caption, in the same ledger and configuration.
Every exchange is stored (store.py) before it is used, so a rerun asks nothing twice and, through the
run's own resume, makes no video twice.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from videophy_bench.common.arguments import Parser
from videophy_bench.common.openai_chat import ChatClient, EndpointError, EndpointSettings
from videophy_bench.common.storage import Storage
from videophy_bench.generator import prompt_tokens
from videophy_bench.orchestrator import tracking
from videophy_bench.orchestrator.items import BASE_ARM, WorkItem, config_hash
from videophy_bench.orchestrator.ledger import LEDGER_NAME, RunLock, connect, rows_with_answers
from videophy_bench.orchestrator.phyt2v import templates as T
from videophy_bench.orchestrator.phyt2v.answers import (
    MAX_REFINED_WORDS,
    AnswerRefused,
    check_answer,
    check_refined,
)
from videophy_bench.orchestrator.phyt2v.frames import frame_urls
from videophy_bench.orchestrator.phyt2v.store import StepStore
from videophy_bench.orchestrator.phyt2v.tokens import PromptTokens, TokenizerError, load_prompt_tokens
from videophy_bench.orchestrator.tracking.options import TrackingOptions

log = logging.getLogger(__name__)
ARM = "phyt2v"
USAGE_ERROR = 2
# The field of each step's parsed answer that must be a usable text.
_MAIN_FIELD = {"law": "physical_law", "caption": "caption", "mismatch": "mismatch", "refine": "prompt"}


class RefineError(RuntimeError):
    """The run directory cannot be refined (no finished round 0, ...): a usage error."""


@dataclass
class Refiner:
    run_dir: Path
    storage: Storage
    store: StepStore
    llm: ChatClient
    vlm: ChatClient
    templates: T.TemplateSet = T.STRICT
    frames: int = 8
    concurrency: int = 8
    fatal: EndpointError | None = None  # a refusal (4xx): the other items stop asking

    def _ask(self, key: str, step: str, client: ChatClient, messages: list[dict[str, Any]],
             parse: Callable[[str], dict[str, Any]], prompt_id: str, seed: int | None, round_: int | None,
             video_sha: str | None = None) -> dict[str, Any]:
        """The parsed accepted answer of `key`: from the store, else asked, checked and stored (a refused
        answer is stored with its reason and raises `AnswerRefused`)."""
        cached = self.store.get(key)
        if cached is not None:
            return cached
        if self.fatal is not None:
            raise self.fatal
        try:
            ex = client.chat(messages)
        except EndpointError as exc:
            if exc.status is not None:
                self.fatal = exc
            raise
        record = dict(model=client.model, endpoint=client.url, request=ex.request, response=ex.raw,
                      answer=ex.content, source_video_sha256=video_sha, seconds=ex.seconds,
                      attempts=ex.attempts, finish_reason=ex.finish_reason)
        try:
            parsed = parse(ex.content)
            check_answer(step, ex.content, parsed[_MAIN_FIELD[step]], ex.finish_reason)
            if step == "refine":
                check_refined(parsed["prompt"])
        except AnswerRefused as exc:
            self.store.put(key, step, prompt_id, seed, round_, parsed={}, refused=str(exc), **record)
            raise
        self.store.put(key, step, prompt_id, seed, round_, parsed=parsed, **record)
        return parsed

    def law(self, prompt_id: str, caption: str) -> dict[str, Any]:
        return self._ask(f"law|{prompt_id}", "law", self.llm, self.templates.law_messages(caption),
                         T.parse_law, prompt_id, None, None)

    def refine_one(self, prev: dict[str, Any], round_: int) -> str:
        """The refined prompt of round `round_` for the (prompt, seed) of round r-1's row `prev`."""
        t = self.templates
        pid, seed, caption = prev["prompt_id"], prev["seed"], prev["caption"]
        tail = f"{pid}|{seed}|{round_}"
        done = self.store.get(f"refine|{tail}")
        if done is not None:
            return done["prompt"]
        law = self.law(pid, caption)
        cap = self.store.get(f"caption|{tail}")
        if cap is None:  # frames are decoded only when the caption must be asked
            urls = frame_urls(self.storage.resolve(prev["video_uri"]), self.frames)
            cap = self._ask(f"caption|{tail}", "caption", self.vlm,
                            t.caption_messages(law["main_object"], urls),
                            lambda text: {"caption": T.strip_reasoning(text)}, pid, seed, round_,
                            prev["sha256"])
        mis = self._ask(f"mismatch|{tail}", "mismatch", self.llm,
                        t.mismatch_messages(caption, cap["caption"]),
                        lambda text: {"mismatch": T.parse_mismatch(text)}, pid, seed, round_)
        msgs = t.refine_messages(caption, prev["gen_prompt"], mis["mismatch"], law["physical_law"],
                                 t.format_scores(prev))
        out = self._ask(f"refine|{tail}", "refine", self.llm, msgs,
                        lambda text: {"prompt": T.parse_refined(text)}, pid, seed, round_)
        return out["prompt"]

    def refine_round(self, prev_rows: list[dict[str, Any]], round_: int
                     ) -> tuple[dict[tuple[str, int], str], dict[tuple[str, int], str]]:
        """(refined prompts, failure reasons), by (prompt, seed). One item's failure (a refused answer,
        an endpoint that keeps failing, an unreadable video) is that item's; a 4xx stops everything."""
        with ThreadPoolExecutor(max(1, self.concurrency)) as pool:
            futs = {(r["prompt_id"], r["seed"]): pool.submit(self.refine_one, r, round_) for r in prev_rows}
            prompts: dict[tuple[str, int], str] = {}
            failed: dict[tuple[str, int], str] = {}
            for k, fut in futs.items():
                try:
                    prompts[k] = fut.result()
                except Exception as exc:
                    if exc is self.fatal:
                        continue
                    log.debug("round %d: %s seed %s failed", round_, *k, exc_info=True)
                    failed[k] = str(exc) if isinstance(exc, (AnswerRefused, EndpointError)) else (
                        f"{type(exc).__name__}: {exc}")
        if self.fatal is not None:
            raise self.fatal
        return prompts, failed


def previous_rows(
    run_dir: Path, cfg_hash: str, round_: int, keys: set[tuple[str, int]] | None
) -> tuple[list[dict[str, Any]], int]:
    """Rows (with their answers) of round `round_` (base arm for 0, phyt2v after) with a video; and how
    many lack one."""
    conn = connect(run_dir, readonly=True)
    try:
        rows = rows_with_answers(conn, conn.execute(  # with the judges' answers, for the refine prompt
            "SELECT * FROM items WHERE round=? AND arm=? AND config_hash=? ORDER BY prompt_id, seed",
            (round_, BASE_ARM if round_ == 0 else ARM, cfg_hash),
        ))
    finally:
        conn.close()
    if keys is not None:
        rows = [r for r in rows if (r["prompt_id"], r["seed"]) in keys]
    ok = [r for r in rows if r["video_uri"] and r["sha256"] and r["state"] in ("generated", "judged")]
    return ok, len(rows) - len(ok)


def _parser() -> argparse.ArgumentParser:
    from videophy_bench.orchestrator import cli

    holder = Parser(add_help=False).add_subparsers()
    cli._add_run(holder)
    p = holder.choices["run"]
    p.prog = "videophy-bench refine"
    p.description = (
        "PhyT2V-style refinement rounds on a finished round-0 run directory. Takes the flags of `run` "
        "(same configuration and services); rerunning resumes without asking the LLM again."
    )
    for action in p._actions:
        if action.dest == "out":
            action.required = False
            action.help = argparse.SUPPRESS
        if action.dest == "prompts":
            action.default = None
            action.help = "the run's prompt set (default: RUN_DIR/prompts.csv, written by run)"
    g = p.add_argument_group("refinement")
    g.add_argument("--run", dest="run_dir", required=True, help="finished round-0 run directory")
    g.add_argument("--rounds", type=int, required=True, help="refinement rounds R (rounds 1..R)")
    # --llm-endpoint, --llm-model, the key and the timeouts are run's flags
    # (videophy_bench.common.openai_chat)
    g.add_argument("--vlm-endpoint", default=None, help="captioner base URL (default: --llm-endpoint)")
    g.add_argument("--vlm-model", default=None, help="captioner model (default: --llm-model)")
    g.add_argument("--frames", type=int, default=8, help="frames sent to the captioner (default: 8)")
    g.add_argument("--llm-max-tokens", type=int, default=1024, help="max_tokens of each answer")
    g.add_argument("--templates", choices=sorted(T.TEMPLATE_SETS), default=T.DEFAULT_TEMPLATES,
                   help="prompt templates: strict (this project's, default) or official (the structure and "
                   "worked examples of the official PhyT2V code, in this project's words); "
                   "recorded in the run")
    g.add_argument("--prompt-tokenizer", default=None,
                   help="tokenizer that counts prompt tokens as the generator does (default: the tokenizer/ "
                   "folder of the run's generator model; 'none': do not count)")
    return p


def refine_main(argv: list[str]) -> int:
    from videophy_bench.orchestrator import cli
    from videophy_bench.orchestrator.ledger import ConfigMismatch, RunLocked
    from videophy_bench.orchestrator.local import LocalServiceError
    from videophy_bench.orchestrator.prompts import PromptSetError
    from videophy_bench.orchestrator.replicas import NoReplicas
    from videophy_bench.orchestrator.runner import UsageError

    args = _parser().parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_dir = Path(args.run_dir)
    args.out = str(run_dir)
    if args.prompts is None:
        args.prompts = str(run_dir / "prompts.csv")
    if args.rounds < 1 or args.frames < 1 or args.seeds < 1:
        print("videophy-bench refine: --rounds, --frames and --seeds must be >= 1", file=sys.stderr)
        return USAGE_ERROR
    try:
        if not (args.llm_endpoint and args.llm_model):
            raise ValueError("--llm-endpoint and --llm-model are required")
        llm_settings = EndpointSettings.from_cli_args(args)
        vlm_settings = EndpointSettings.from_cli_args(args, args.vlm_endpoint, args.vlm_model)
    except ValueError as exc:
        print(f"videophy-bench refine: {exc}", file=sys.stderr)
        return USAGE_ERROR
    if not (run_dir / LEDGER_NAME).is_file():
        print(f"videophy-bench refine: {run_dir} is not a run directory (no {LEDGER_NAME})", file=sys.stderr)
        return USAGE_ERROR
    try:
        opts = cli._run_options(args, ["refine", *argv])
        tracking.check(opts.tracking)  # before any LLM call or round
    except ValueError as exc:  # TrackingUnavailable too
        print(f"videophy-bench refine: {exc}", file=sys.stderr)
        return USAGE_ERROR
    llm = ChatClient.from_settings(llm_settings, max_tokens=args.llm_max_tokens)
    vlm = ChatClient.from_settings(vlm_settings, max_tokens=args.llm_max_tokens)
    try:
        return refine(opts, llm, vlm, args.rounds, args.frames, args.llm_concurrency, args.templates,
                      args.prompt_tokenizer)
    except EndpointError as exc:
        print(f"videophy-bench refine: LLM/VLM endpoint: {exc}", file=sys.stderr)
        return USAGE_ERROR if exc.status in (400, 401, 403, 404) else 1
    except (RefineError, UsageError, ConfigMismatch, PromptSetError, RunLocked) as exc:
        print(f"videophy-bench refine: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except (NoReplicas, LocalServiceError) as exc:
        print(f"videophy-bench refine: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # Interrupted (a signal during a round's run) carries its code
        print("videophy-bench refine: interrupted; rerun the same command to resume", file=sys.stderr)
        return getattr(exc, "code", 130)


def _selected_keys(opts: Any) -> set[tuple[str, int]] | None:
    if not (opts.ids or opts.limit is not None or opts.hard_only):
        return None
    from videophy_bench.orchestrator.prompts import load_prompt_set
    from videophy_bench.orchestrator.runner import selected_keys

    ps = load_prompt_set(opts.prompts, revision=opts.prompt_revision, cache_dir=opts.cache_dir)
    return {(p.prompt_id, seed) for p, seed in selected_keys(opts, ps)}


def record_config(run_dir: Path, settings: dict[str, Any]) -> None:
    """Store the refinement's settings (template set, models, tokenizer, ...) as ledger meta `phyt2v`
    and RUN_DIR/phyt2v/config.json; a run directory keeps one template set (finished steps are cached)."""
    from videophy_bench.orchestrator.export import write_atomic
    from videophy_bench.orchestrator.ledger import Ledger

    ledger = Ledger(run_dir)
    try:
        old = ledger.get_meta("phyt2v") or {}
        if old.get("templates") and old["templates"] != settings["templates"]:
            raise RefineError(
                f"{run_dir} was refined with --templates {old['templates']}; its cached answers would mix "
                f"with --templates {settings['templates']}: use a copy of round 0 in a new directory"
            )
        ledger.set_meta("phyt2v", settings)
    finally:
        ledger.close()
    write_atomic(run_dir / "phyt2v" / "config.json", json.dumps(settings, indent=2, sort_keys=True) + "\n")


def _record_prompts(store: StepStore, tokens: PromptTokens, round_: int,
                    prompts: dict[tuple[str, int], str], failed: dict[tuple[str, int], str]) -> int:
    """Record each prompt's token count (a truncation is logged) and each failure; returns truncations."""
    truncated = 0
    for (pid, seed), text in sorted(prompts.items()):
        n = tokens.count(text)
        store.set_prompt(pid, seed, round_, status="ok", gen_prompt=text, tokens=n, max_tokens=tokens.cap)
        if n is not None and prompt_tokens.truncated(n, tokens.cap):
            truncated += 1
            log.warning("round %d: prompt %s seed %s has %d tokens; the generator reads only the first %d",
                        round_, pid, seed, n, tokens.cap)
    for (pid, seed), reason in sorted(failed.items()):
        store.set_prompt(pid, seed, round_, status="failed", gen_prompt=None, reason=reason)
        log.warning("round %d: prompt %s seed %s not refined: %s", round_, pid, seed, reason)
    return truncated


def refine(opts: Any, llm: ChatClient, vlm: ChatClient, rounds: int, frames: int = 8, concurrency: int = 8,
           templates: str = T.DEFAULT_TEMPLATES, prompt_tokenizer: str | None = None) -> int:
    """Rounds 1..`rounds` on the run directory `opts.out`; returns the exit code of the last run.

    An item whose refinement fails in round r (its reason in `phyt2v_prompts` and prompts.csv) gets no
    round-r video, and so is not refined in later rounds either (recorded as failed there too).
    """
    from videophy_bench.orchestrator.ledger import Ledger
    from videophy_bench.orchestrator.runner import run_sync

    run_dir = Path(opts.out)
    ledger = Ledger(run_dir)
    try:
        config = ledger.get_meta("config")
    finally:
        ledger.close()
    if not config:
        raise RefineError(f"{run_dir}: no recorded configuration; finish `videophy-bench run` first")
    cfg_hash = config_hash(config)
    template_set = T.TEMPLATE_SETS[templates]
    try:
        tokens = load_prompt_tokens(config, prompt_tokenizer)
    except TokenizerError as exc:
        raise RefineError(str(exc)) from None
    keys = _selected_keys(opts)
    prev0, _ = previous_rows(run_dir, cfg_hash, 0, keys)
    if not prev0:
        raise RefineError(f"{run_dir}: no round-0 videos (config {cfg_hash}) to refine")
    record_config(run_dir, {
        "templates": template_set.name, "llm_model": llm.model, "llm_endpoint": llm.url,
        "vlm_model": vlm.model, "vlm_endpoint": vlm.url, "frames": frames, "max_tokens": llm.max_tokens,
        "temperature": llm.temperature, "max_refined_words": MAX_REFINED_WORDS, **tokens.describe(),
    })
    storage = Storage(opts.storage_root or run_dir)
    store = StepStore(run_dir)
    refiner = Refiner(run_dir, storage, store, llm, vlm, template_set, frames, concurrency)
    _record_prompts(store, tokens, 0, {(r["prompt_id"], r["seed"]): r["gen_prompt"] for r in prev0}, {})
    base_keys = {(r["prompt_id"], r["seed"]) for r in prev0}
    code = 0
    try:
        for r in range(1, rounds + 1):
            prev, missing = previous_rows(run_dir, cfg_hash, r - 1, keys)
            if missing:
                log.warning("round %d: %d items of round %d have no video; not refined", r, missing, r - 1)
            with RunLock(run_dir):  # no run may change the ledger while we read videos from it
                before = store.count()
                prompts, failed = refiner.refine_round(prev, r)
                done_ok = {(p["prompt_id"], p["seed"]) for p in store.prompts(r) if p["status"] == "ok"}
                for k in sorted(base_keys - {(p["prompt_id"], p["seed"]) for p in prev} - done_ok):
                    failed[k] = f"no round-{r - 1} video to refine from"
                truncated = _record_prompts(store, tokens, r, prompts, failed)
                store.dump(run_dir / "phyt2v" / "exchanges.jsonl")
                store.dump_prompts(run_dir / "phyt2v" / "prompts.csv")
            over = f", {truncated} over {tokens.cap} tokens (truncated by the generator)" if truncated else ""
            print(f"refine round {r}: {len(prompts)} refined, {len(failed)} failed{over}; "
                  f"{store.count() - before} new LLM/VLM exchanges; see {run_dir / 'phyt2v' / 'prompts.csv'}")
            if not prompts:
                log.warning("round %d: nothing to generate", r)
                break

            def items_fn(ps: Any, h: str, prev=prev, prompts=prompts, r=r) -> list[WorkItem]:
                if h != cfg_hash:
                    raise RefineError(f"configuration {h} differs from the round-0 run's {cfg_hash}")
                return [
                    WorkItem(prompt_id=p["prompt_id"], seed=p["seed"], caption=p["caption"],
                             gen_prompt=prompts[(p["prompt_id"], p["seed"])], config_hash=h, round=r,
                             arm=ARM, rule=p["rule_text"])
                    for p in prev if (p["prompt_id"], p["seed"]) in prompts
                ]

            # Tracked once, when the last round ends (below), not after every round's run.
            code = run_sync(replace(opts, items_fn=items_fn, tracking=TrackingOptions()))
            if code:
                return code
    finally:
        store.close()
    tracking.log_run(run_dir, opts.tracking)
    return code
