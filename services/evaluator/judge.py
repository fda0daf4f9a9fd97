"""Backend-neutral judge API (what the gRPC servicer calls) and its mPLUG-Owl implementation.

Contract of a ``Judge``:
- ``judge(video_path, queries)`` decodes the video once, runs the vision tower and abstractor once, and
  answers every query of that video; answers come back in query order.
- ``judge_batch(items)`` does the same for several videos: one vision pass over all of them, one left-padded
  LLM batch for all generative queries (4.28.1 position ids and masks, so each answer equals its
  batch-of-one answer up to float rounding), one forward for all VideoCon queries (always 257 tokens).
  A judge may put a ``JudgeError`` in an item's place instead of its outcome: a failure of that item
  alone (the VLM judge: its endpoint kept failing); the servicer answers that caller with it.
- Bad input raises a ``JudgeInputError`` subclass before any model work (``judge_batch`` sets
  ``item_index`` on it): characters and NUL first (``videophy_bench.common.limits``), then the tokenized
  prompt against the language model's context (``max_position_embeddings``). The official AutoEval code
  never truncates a prompt (``max_length=256`` bounds the generated tokens only), so a prompt that fits
  is scored exactly as sent and one that does not is refused; VideoCon prompts are truncated to 257
  tokens as the official ``MultiModalDataset`` does, so they always fit.
- Scores: sa/pc 1-5 and rule 0/1/2 as the official parser returns them (0 when unparseable, flagged),
  ``None`` where the official parser would crash (``parser_error``); VideoCon tasks give
  P(Yes)/(P(Yes)+P(No)) in [0, 1].
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from videophy_bench.common import judge_tasks
from videophy_bench.common.limits import MAX_JUDGE_TEXT_CHARS, check_text
from videophy_bench.evaluator.catalog import LOCAL, TINY, JudgeSpec, judge_spec
from videophy_bench.evaluator.errors import (
    EmptyTextError,
    JudgeError,
    JudgeInputError,
    UnknownTaskError,
    UnsupportedPromptError,
    UnsupportedTaskError,
)
from videophy_bench.evaluator.model.frames import NUM_FRAMES, PixelNormalizer
from videophy_bench.evaluator.model.language import LEGACY_ATTENTION
from videophy_bench.evaluator.model.loading import load_model, resolve_checkpoint
from videophy_bench.evaluator.model.modeling import OFFICIAL_MAX_NEW_TOKENS, MplugOwlForConditionalGeneration
from videophy_bench.evaluator.model.parsing import ParseStatus, parse_answer
from videophy_bench.evaluator.model.templates import build_prompt
from videophy_bench.evaluator.model.tokenization import IMAGE_TOKEN, PromptTokenizer
from videophy_bench.evaluator.model.videocon import videocon_scores
from videophy_bench.evaluator.prefetch import FramePrefetcher, PreparedVideo

DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32}


@dataclass(frozen=True)
class JudgeQuery:
    task: str  # 'sa' | 'pc' | 'rule' | 'videocon_sa' | 'videocon_pc'
    text: str = ""  # caption (sa, videocon_sa) or rule (rule); ignored for pc / videocon_pc


@dataclass(frozen=True)
class JudgeAnswer:
    task: str
    score: float | None
    raw_text: str  # decoded generation ("" for VideoCon tasks)
    parse_status: str  # a ParseStatus value
    parse_rule: str = ""  # which parser branch fired, e.g. "substring:four"


@dataclass(frozen=True)
class JudgeOutcome:
    answers: list[JudgeAnswer]
    frame_indices: list[int]
    total_frames: int
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class JudgeInfo:
    name: str  # preset: 'tiny', 'videophy_2_auto', 'videocon_physics' or 'local'
    model_id: str
    revision: str
    tasks: tuple[str, ...]
    dtype: str
    device: str


class Judge(Protocol):
    info: JudgeInfo
    # False for a judge whose work is waiting on a remote endpoint (bounded by its own timeouts and
    # retries): the device watchdog then does not watch it, so a slow endpoint is a per-video error,
    # not a failed liveness probe. Judges without the attribute do device work.
    device_work: bool

    def validate(self, queries: Sequence[JudgeQuery]) -> None: ...

    def judge(self, video_path: str, queries: list[JudgeQuery]) -> JudgeOutcome: ...

    def judge_batch(self, items: list[tuple[str, list[JudgeQuery]]]) -> list[JudgeOutcome | JudgeError]: ...


def check_queries(queries: Sequence[JudgeQuery], info: JudgeInfo) -> None:
    """The checks every judge makes before any work: known tasks it serves, and each task's text
    (caption or rule) present, within `MAX_JUDGE_TEXT_CHARS`, without NUL or an image placeholder (the
    official code crashes on one; every judge refuses it, so judges are compared on the same items)."""
    if not queries:
        raise JudgeInputError("no queries given")
    for q in queries:
        if q.task not in judge_tasks.task_names():
            raise UnknownTaskError(
                f"unknown task {q.task!r}; expected one of {', '.join(judge_tasks.task_names())}")
        if q.task not in info.tasks:
            raise UnsupportedTaskError(f"task {q.task!r} is not supported by {info.model_id}")
        what = judge_tasks.task(q.task).text_field
        if what:
            if not isinstance(q.text, str) or not q.text.strip():
                raise EmptyTextError(f"empty {what} for task {q.task!r}")
            reason = check_text(f"the {what} for task {q.task!r}", q.text, MAX_JUDGE_TEXT_CHARS)
            if reason:
                raise UnsupportedPromptError(reason)
            if IMAGE_TOKEN in q.text:
                raise UnsupportedPromptError(f"text for task {q.task!r} contains {IMAGE_TOKEN!r}")


class MplugOwlJudge:
    """The official AutoEval / VideoCon-Physics judge on our model code."""

    def __init__(
        self,
        model: MplugOwlForConditionalGeneration,
        tokenizer: PromptTokenizer,
        normalizer: PixelNormalizer,
        info: JudgeInfo,
        max_new_tokens: int = OFFICIAL_MAX_NEW_TOKENS,
        decode_workers: int = 2,
        num_frames: int = NUM_FRAMES,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.normalizer = normalizer
        self.info = info
        self.max_new_tokens = max_new_tokens
        self._prefetcher = FramePrefetcher(normalizer, decode_workers, num_frames)

    # ---- validation ---------------------------------------------------------------------------------------
    @property
    def context_tokens(self) -> int:
        """Positions the language model was trained for (2048 for the LLaMA-7B judges)."""
        return int(self.model.language_model.config.max_position_embeddings)

    def validate(self, queries: Sequence[JudgeQuery]) -> None:
        """Refuse what cannot be scored, cheapest checks first; no model work, no video decoding."""
        check_queries(queries, self.info)
        for q in queries:  # tokenizing is bounded by the character limit above
            spec = judge_tasks.task(q.task)
            if spec.generative and spec.needs_text:
                n = len(self.tokenizer.encode_generate_prompt(build_prompt(q.task, q.text)))
                if n > self.context_tokens:
                    raise UnsupportedPromptError(
                        f"the {q.task!r} prompt with this {spec.text_field} is {n} tokens; the judge's "
                        f"context is {self.context_tokens} tokens (max_position_embeddings)")

    # ---- public API -------------------------------------------------------------------------------------
    def judge(self, video_path: str, queries: list[JudgeQuery]) -> JudgeOutcome:
        return self.judge_batch([(video_path, queries)])[0]

    def judge_batch(self, items: list[tuple[str, list[JudgeQuery]]]) -> list[JudgeOutcome]:
        for index, (_, queries) in enumerate(items):
            try:
                self.validate(queries)
            except JudgeInputError as exc:
                exc.item_index = index  # type: ignore[attr-defined]
                raise
        futures = [self._prefetcher.submit(os.fspath(path)) for path, _ in items]
        videos: list[PreparedVideo] = []
        for index, fut in enumerate(futures):
            try:
                videos.append(fut.result())
            except JudgeInputError as exc:
                exc.item_index = index  # type: ignore[attr-defined]
                raise
        return self._run(videos, [q for _, q in items])

    def judge_stream(
        self,
        items: Iterable[tuple[str, list[JudgeQuery]]],
        batch_size: int = 1,
    ) -> Iterator[tuple[tuple[str, list[JudgeQuery]], JudgeOutcome | JudgeInputError]]:
        """Judge many items, decoding the next batch while the current one runs; bad items yield their
        error."""
        pending = list(items)
        batches = [pending[i : i + batch_size] for i in range(0, len(pending), max(1, batch_size))]
        futures = [[self._prefetcher.submit(os.fspath(p)) for p, _ in b] for b in batches[:1]]
        for n, batch in enumerate(batches):
            if n + 1 < len(batches):
                futures.append([self._prefetcher.submit(os.fspath(p)) for p, _ in batches[n + 1]])
            ok: list[tuple[int, PreparedVideo]] = []
            results: dict[int, JudgeOutcome | JudgeInputError] = {}
            for i, ((_, queries), fut) in enumerate(zip(batch, futures[n], strict=True)):
                try:
                    self.validate(queries)
                    ok.append((i, fut.result()))
                except JudgeInputError as exc:
                    results[i] = exc
            if ok:
                outcomes = self._run([v for _, v in ok], [batch[i][1] for i, _ in ok])
                results.update({i: o for (i, _), o in zip(ok, outcomes, strict=True)})
            for i, item in enumerate(batch):
                yield item, results[i]

    def close(self) -> None:
        self._prefetcher.close()

    # ---- internals ----------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _run(self, videos: list[PreparedVideo], queries: list[list[JudgeQuery]]) -> list[JudgeOutcome]:
        timings = {"decode_s": max(v.decode_seconds for v in videos)}
        t0 = time.perf_counter()
        pixels = torch.stack([v.pixels for v in videos])
        visual = self.model.encode_video(pixels)
        _sync(self.model.device)
        timings["vision_s"] = time.perf_counter() - t0
        answers: dict[tuple[int, int], JudgeAnswer] = {}

        gen = _select(queries, generative=True)  # AutoEval: generated answers, parsed
        if gen:
            t0 = time.perf_counter()
            ids = [self.tokenizer.encode_generate_prompt(build_prompt(q.task, q.text)) for _, _, q in gen]
            embeds, mask = self.model.embed_prompts(ids, [visual[vi] for vi, _, _ in gen], placeholder_id=0)
            result = self.model.greedy_generate(embeds, mask, self.max_new_tokens)
            for (vi, qi, q), tokens in zip(gen, result.tokens, strict=True):
                text = self.tokenizer.decode(tokens)
                parsed = parse_answer(text)
                score = float(parsed.score) if parsed.score is not None else None
                answers[(vi, qi)] = JudgeAnswer(q.task, score, text, parsed.status.value, parsed.rule)
            timings["generate_s"] = time.perf_counter() - t0

        vc = _select(queries, generative=False)  # VideoCon-Physics: P(yes)
        if vc:
            t0 = time.perf_counter()
            prompts = [build_prompt(q.task, q.text) for _, _, q in vc]
            scores = videocon_scores(self.model, self.tokenizer, prompts, [visual[vi] for vi, _, _ in vc])
            for (vi, qi, q), s in zip(vc, scores, strict=True):
                answers[(vi, qi)] = JudgeAnswer(q.task, s, "", ParseStatus.PROBABILITY.value, "p_yes_ratio")
            timings["videocon_s"] = time.perf_counter() - t0

        return [
            JudgeOutcome(
                [answers[(vi, qi)] for qi in range(len(qs))], v.frame_indices, v.total_frames, dict(timings)
            )
            for vi, (v, qs) in enumerate(zip(videos, queries, strict=True))
        ]


def _select(queries: list[list[JudgeQuery]], *, generative: bool) -> list[tuple[int, int, JudgeQuery]]:
    """(video index, query index, query) of every query whose task is (not) generative."""
    return [(vi, qi, q) for vi, qs in enumerate(queries) for qi, q in enumerate(qs)
            if judge_tasks.task(q.task).generative == generative]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_judge(name_or_path: str | Path = "tiny", device: str = "cpu", dtype: str | torch.dtype = "bfloat16",
               **options) -> Judge:
    """A judge by registry name (`videophy_bench.evaluator.catalog`), a Hub repo id or a local directory (the
    mPLUG-Owl code); its factory is imported only now."""
    name = str(name_or_path)
    spec = judge_spec(name) or LOCAL
    return spec.load_factory()(spec, name, device=device, dtype=dtype, **options)


def load_mplug_judge(
    spec: JudgeSpec,
    source: str,
    *,
    device: str = "cpu",
    dtype: str | torch.dtype = "bfloat16",
    revision: str | None = None,
    lora_checkpoint: str | Path | None = None,
    attention: str = LEGACY_ATTENTION,
    max_new_tokens: int = OFFICIAL_MAX_NEW_TOKENS,
    num_frames: int = NUM_FRAMES,
) -> MplugOwlJudge:
    """The factory of the mPLUG-Owl judges: ``tiny`` (built offline), a registered Hub model
    (``videophy_2_auto``, ``videocon_physics``), or ``source`` as a Hub repo id / local directory."""
    torch_dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    if spec.name == TINY:
        from videophy_bench.evaluator.tiny import build_tiny_judge, default_tiny_dir

        directory, model_id = build_tiny_judge(default_tiny_dir()), TINY
    else:
        model_id = spec.model_id or source
        directory = resolve_checkpoint(model_id, revision)
    model = load_model(
        directory, dtype=torch_dtype, device=device, attention=attention, lora_checkpoint=lora_checkpoint
    )
    info = JudgeInfo(
        name=spec.name,
        model_id=model_id,
        revision=revision or _snapshot_revision(directory),
        tasks=tuple(spec.tasks),
        dtype=str(torch_dtype).removeprefix("torch."),
        device=str(device),
    )
    return MplugOwlJudge(
        model,
        PromptTokenizer.from_dir(directory),
        PixelNormalizer.from_dir(directory),
        info,
        max_new_tokens=max_new_tokens,
        num_frames=num_frames,
    )


def _snapshot_revision(directory: Path) -> str:
    # Hub snapshots live in .../snapshots/<commit>/; local directories have no revision.
    return directory.name if directory.parent.name == "snapshots" else "local"


__all__ = [
    "Judge",
    "JudgeAnswer",
    "JudgeInfo",
    "JudgeOutcome",
    "JudgeQuery",
    "MplugOwlJudge",
    "check_queries",
    "load_judge",
    "load_mplug_judge",
]
