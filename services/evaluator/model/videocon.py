"""VideoCon-Physics scoring (``entailment_inference.py``): P(Yes) / (P(Yes) + P(No)) at the last prompt
position.

The official path tokenizes with ``MultiModalDataset`` (257 tokens, padded with 0), runs ``model.forward``
with an
all-ones mask (padding included; harmless because attention is causal), takes the softmax over the
vocabulary in the
model dtype at ``first pad index - 1`` and divides there, also in the model dtype (bf16 in the official run).
Every row is 257 tokens long, so batching needs no padding and changes nothing.
"""

from __future__ import annotations

import torch

from videophy_bench.evaluator.model.modeling import MplugOwlForConditionalGeneration
from videophy_bench.evaluator.model.tokenization import PromptTokenizer


def yes_no_ids(tokenizer: PromptTokenizer) -> tuple[int, int]:
    """``tokenizer.encode('Yes'/'No', add_special_tokens=False)[0]``."""
    return tokenizer.encode_text("Yes")[0], tokenizer.encode_text("No")[0]


@torch.no_grad()
def videocon_scores(
    model: MplugOwlForConditionalGeneration,
    tokenizer: PromptTokenizer,
    prompts: list[str],
    visual_tokens: list[torch.Tensor],
) -> list[float]:
    encoded = [tokenizer.encode_videocon_prompt(p) for p in prompts]
    embeds, mask = model.embed_prompts([e.input_ids for e in encoded], visual_tokens, placeholder_id=1)
    mask = torch.ones_like(mask)  # the official forward attends to the padding too
    logits = model.prompt_logits(embeds, mask)
    yes, no = yes_no_ids(tokenizer)
    scores = []
    for row, enc in enumerate(encoded):
        probs = torch.softmax(logits[row, enc.last_position], dim=-1)
        scores.append(float((probs[yes] / (probs[yes] + probs[no])).item()))
    return scores
