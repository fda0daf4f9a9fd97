"""Every result reports its prompt's text-encoder tokens and whether the 512-token cap cut it, counted by
the one rule (videophy_bench.generator.prompt_tokens) that the orchestrator's PhyT2V loop counts with too;
checked against the tiny pipeline's own tokenizer called exactly as WanPipeline calls it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from diffusers.pipelines.wan.pipeline_wan import prompt_clean
from generator_harness import generate, request, running_generator, tiny_backend

from videophy_bench.generator import prompt_tokens
from videophy_bench.generator.presets import PRESETS
from videophy_bench.orchestrator.phyt2v.tokens import load_prompt_tokens

CAP = PRESETS["tiny"].max_sequence_length
SHORT = "a ball rolls on the table"
# Words outside the tiny vocabulary cost one token per character; `&amp;amp;` and the whitespace runs
# are cleaned by the pipeline before tokenizing (to `&` and single spaces), so a count that skipped the
# cleaning would be off.
LONG = " ".join(["xylophone &amp;amp;  quokka\n"] * 30)


def pipeline_reads(pipe, text: str) -> tuple[int, int]:
    """(tokens before the cap, tokens the text encoder reads): WanPipeline._get_t5_prompt_embeds's own
    tokenizer call, and the same without truncation."""
    cleaned = prompt_clean(text)
    inputs = pipe.tokenizer([cleaned], padding="max_length", max_length=CAP, truncation=True,
                            add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
    full = pipe.tokenizer(cleaned, add_special_tokens=True, verbose=False)["input_ids"]
    return len(full), int(inputs.attention_mask.sum())


@pytest.mark.parametrize("text", ["  a&amp;b \n\t c  ", "Ã©tÃ© &lt;b&gt;", LONG, SHORT, ""])
def test_cleaning_is_the_pipelines(text: str) -> None:
    assert prompt_tokens.clean(text) == prompt_clean(text)


def test_counts_and_truncation_reported_logged_and_cached(tmp_path: Path, caplog) -> None:
    backend = tiny_backend("tiny")
    caplog.set_level(logging.WARNING, logger="videophy_bench.generator.engine")

    async def main() -> None:
        async with running_generator(backend, tmp_path) as run, run.channel() as ch:
            _, short = await generate(ch, request("short", prompt=SHORT))
            _, long = await generate(ch, request("long", prompt_id="p-long", prompt=LONG))
            _, again = await generate(ch, request("long", prompt_id="p-long", prompt=LONG))
            return short, long, again

    short, long, again = asyncio.run(main())
    full, read = pipeline_reads(backend.pipe, SHORT)
    assert short.HasField("prompt_tokens") and short.prompt_tokens == full == read
    assert short.HasField("prompt_truncated") and not short.prompt_truncated
    neg_full, _ = pipeline_reads(backend.pipe, short.params.negative_prompt)
    assert short.negative_prompt_tokens == neg_full and not short.negative_prompt_truncated

    full, read = pipeline_reads(backend.pipe, LONG)
    assert full > CAP and read == CAP and short.params.max_sequence_length == CAP
    assert long.prompt_tokens == full and long.prompt_truncated
    assert full < len(backend.pipe.tokenizer(LONG, verbose=False)["input_ids"])  # the cleaning counts
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "videophy_bench.generator.engine" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "p-long" in warnings[0] and f"{full} tokens" in warnings[0] and f"first {CAP}" in warnings[0]

    # The idempotency sidecar carries the counts: the cached answer is the same result.
    assert again.cached and not long.cached
    assert (again.prompt_tokens, again.prompt_truncated) == (full, True)
    assert again.negative_prompt_tokens == long.negative_prompt_tokens

    # The orchestrator's PhyT2V count for a tiny run agrees with what the generator reported.
    orchestrator = load_prompt_tokens({"generator_model": "tiny"}, None)
    assert orchestrator.cap == CAP
    assert (orchestrator.count(SHORT), orchestrator.count(LONG)) == (short.prompt_tokens, long.prompt_tokens)
