"""How many text-encoder tokens a prompt takes, by the one rule the generator and the orchestrator share.

diffusers' WanPipeline cleans a prompt (`prompt_clean`: ftfy when installed, HTML unescaped twice,
whitespace runs collapsed, stripped) and tokenizes it with UMT5's tokenizer, special tokens included,
truncated to `max_sequence_length` (512 for Wan). The text encoder therefore reads
min(count, max_sequence_length) tokens and drops the rest without a word. The generator reports
`count` for every prompt it encodes (GenerateResult.prompt_tokens / prompt_truncated), and the
orchestrator's PhyT2V loop counts refined prompts the same way before spending GPU time on them.

Torch-free on purpose: the orchestrator imports it (a `transformers` tokenizer needs no torch).
"""

from __future__ import annotations

import html
import re
from typing import Any

_WHITESPACE = re.compile(r"\s+")


def clean(text: str) -> str:
    """diffusers.pipelines.wan.pipeline_wan.prompt_clean, without importing torch (a test holds the
    two equal)."""
    try:
        import ftfy
    except ImportError:  # as diffusers: ftfy only when installed
        pass
    else:
        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return _WHITESPACE.sub(" ", text).strip()


def count(tokenizer: Any, text: str) -> int:
    """Tokens of `text` as the pipeline tokenizes it, before the cap (special tokens included)."""
    return len(tokenizer(clean(text), add_special_tokens=True, verbose=False)["input_ids"])


def truncated(tokens: int, cap: int) -> bool:
    """Whether the text encoder reads only the first `cap` of `tokens` tokens."""
    return tokens > cap
