"""Token counts of generated prompts with the generator's own tokenizer, on the orchestrator side.

Wan encodes prompts with UMT5 and cuts them at `max_sequence_length` (512) tokens; here every prompt
of every round is counted before any GPU time is spent on it, by the rule the generator itself reports
with (`videophy_bench.generator.prompt_tokens.count`: the pipeline's cleaning, special tokens included), and
a prompt over the cap is logged and recorded as truncated. The tokenizer is the `tokenizer/` folder of
the run's generator model (`generator_model_id` in the run's configuration: a local diffusers folder,
or a Hub repo id, from the Hugging Face cache first), the tiny presets' own offline tokenizer for the
tiny models, or `--prompt-tokenizer PATH_OR_REPO` (e.g. google/umt5-xxl), or `none` to skip counting
(recorded as unknown).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videophy_bench.generator import prompt_tokens

DEFAULT_MAX_TOKENS = 512  # the Wan presets' max_sequence_length


class TokenizerError(RuntimeError):
    """The tokenizer cannot be loaded: a usage error (before any request is made)."""


@dataclass
class PromptTokens:
    source: str | None  # what was loaded (path or repo id, with subfolder); None: not counted
    cap: int
    _tok: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, text: str) -> int | None:
        if self._tok is None:
            return None
        with self._lock:  # tokenizers are not guaranteed thread-safe
            return prompt_tokens.count(self._tok, text)

    def describe(self) -> dict[str, Any]:
        return {"tokenizer": self.source, "max_sequence_length": self.cap}


def load_prompt_tokens(config: dict[str, Any], override: str | None) -> PromptTokens:
    from videophy_bench.generator.families import load_object
    from videophy_bench.generator.presets import PRESETS

    preset = PRESETS.get(config.get("generator_model") or "")
    default_cap = preset.max_sequence_length if preset is not None else DEFAULT_MAX_TOKENS
    cap = int((config.get("overrides") or {}).get("max_sequence_length") or default_cap)
    if override == "none":
        return PromptTokens(None, cap)
    if override is None and preset is not None and preset.model_id == "":  # tiny: its family's tokenizer
        tokenizer = load_object(preset.family_spec.tiny_tokenizer)()
        return PromptTokens(f"tiny ({preset.name}, built offline)", cap, tokenizer)
    source = override or config.get("generator_model_id") or ""
    if not source:
        raise TokenizerError("the run records no generator model; pass --prompt-tokenizer PATH or none")
    from transformers import AutoTokenizer

    candidates = []
    path = Path(source)
    if path.is_dir():
        sub_dir = path / "tokenizer"
        candidates = [(sub_dir, None), (path, None)] if sub_dir.is_dir() else [(path, None)]
    else:
        candidates = [(source, "tokenizer"), (source, None)] if override is None else [(source, None)]
    last: Exception | None = None
    for local_only in (True, False):  # the local cache first: no network round trips when it is there
        for where, sub in candidates:
            try:
                kwargs = {"subfolder": sub} if sub else {}
                tok = AutoTokenizer.from_pretrained(str(where), local_files_only=local_only, **kwargs)
            except Exception as exc:
                last = exc
                continue
            return PromptTokens(f"{where}" + (f"/{sub}" if sub else ""), cap, tok)
    first = str(last).splitlines()[0] if last else ""
    raise TokenizerError(
        f"cannot load the generator's tokenizer from {source}: {first}; pass --prompt-tokenizer with a "
        "local copy (the model's tokenizer/ folder or google/umt5-xxl), or --prompt-tokenizer none"
    )
