"""The LLaMA language model (transformers' ``LlamaForCausalLM``) made to compute like transformers 4.28.1.

The official judge ran under transformers 4.28.1. Three details of that version are reproduced here:
- RoPE: cos/sin tables built once in float32 over all ``max_position_embeddings`` positions from
  ``1 / base^(2i/d)`` (never from the bf16 ``inv_freq`` stored in the checkpoint), gathered by position id
  and cast
  to the activation dtype.
- Attention (``"mplug_owl_legacy"``): ``q @ k^T / sqrt(d)``, additive mask, clamp at ``finfo.min``, softmax in
  float32, cast back, ``@ v``.
- Masks: a 4D additive mask built like 4.28.1 (causal ``finfo.min`` plus padding), passed in explicitly.
``attention="sdpa"`` swaps in torch SDPA for speed (same math, different rounding).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface, LlamaConfig, LlamaForCausalLM

LEGACY_ATTENTION = "mplug_owl_legacy"


def _legacy_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: object,
) -> tuple[torch.Tensor, None]:
    weights = torch.matmul(query, key.transpose(2, 3)) / math.sqrt(query.size(-1))
    if attention_mask is not None:
        weights = weights + attention_mask
        weights = torch.max(weights, torch.tensor(torch.finfo(weights.dtype).min, device=weights.device))
    weights = F.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(weights, value)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(LEGACY_ATTENTION, _legacy_attention)


class LegacyRotaryEmbedding(nn.Module):
    """Drop-in for ``LlamaRotaryEmbedding`` returning the 4.28.1 cached cos/sin values."""

    def __init__(self, head_dim: int, max_positions: int, base: float) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.max_positions = max_positions
        self.base = base
        self._tables: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def _build(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Always on CPU in float32 (where 4.28.1 built them at construction), then moved.
        inv_freq = 1.0 / (self.base ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))
        t = torch.arange(length, dtype=inv_freq.dtype)
        freqs = torch.einsum("i,j->ij", t, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        needed = int(position_ids.max().item()) + 1
        tables = self._tables.get(x.device)
        if tables is None or tables[0].size(0) < needed:
            cos, sin = self._build(max(self.max_positions, needed))
            tables = (cos.to(x.device), sin.to(x.device))
            self._tables[x.device] = tables
        cos, sin = tables
        return cos[position_ids].to(x.dtype), sin[position_ids].to(x.dtype)


def build_language_model(config: LlamaConfig, attention: str = LEGACY_ATTENTION) -> LlamaForCausalLM:
    """An uninitialised-weights LLaMA (build it under ``torch.device('meta')`` for big models)."""
    config._attn_implementation = attention
    model = LlamaForCausalLM(config)
    head_dim = config.hidden_size // config.num_attention_heads
    base = float(config.rope_parameters["rope_theta"])
    model.model.rotary_emb = LegacyRotaryEmbedding(head_dim, config.max_position_embeddings, base)
    return model


def legacy_attention_mask(mask_2d: torch.Tensor, query_length: int, dtype: torch.dtype) -> torch.Tensor:
    """4.28.1 ``_prepare_decoder_attention_mask``: ``[B, K]`` 1/0 keep-mask -> ``[B, 1, Q, K]`` additive mask.

    The queries are the last ``query_length`` of the ``K`` key positions. Values are clamped at ``finfo.min``
    (4.28.1 clamps after adding; the result is identical and SDPA never sees ``-inf``).
    """
    bsz, key_length = mask_2d.shape
    past = key_length - query_length
    min_value = torch.finfo(dtype).min
    device = mask_2d.device
    combined = torch.zeros(bsz, 1, query_length, key_length, dtype=dtype, device=device)
    if query_length > 1:
        q_pos = torch.arange(query_length, device=device)[:, None] + past
        k_pos = torch.arange(key_length, device=device)[None, :]
        causal = torch.zeros(query_length, key_length, dtype=dtype, device=device)
        causal.masked_fill_(k_pos > q_pos, min_value)
        combined = combined + causal
    padding = (1.0 - mask_2d.to(dtype))[:, None, None, :].expand(bsz, 1, query_length, key_length)
    padding = padding.masked_fill(padding.to(torch.bool), min_value)
    combined = combined + padding
    return combined.clamp(min=min_value)


def position_ids_from_mask(mask_2d: torch.Tensor) -> torch.Tensor:
    """4.28.1 ``prepare_inputs_for_generation``: cumsum - 1, padded positions set to 1."""
    pos = mask_2d.long().cumsum(-1) - 1
    return pos.masked_fill(mask_2d == 0, 1)
