"""The visual abstractor: 64 (+64 temporal) learned queries cross-attend to all video tokens.

Names match the official ``abstractor.*`` keys. Quirks kept: keys/values are ``cat(normed queries, normed
video)``,
the attention residual starts from the *normed* queries, ``norm1``/``normk``/``norm2`` use eps 1e-5 while
``ffn_ln``
uses the config eps, and the SwiGLU hidden size is rounded (see ``AbstractorConfig.mlp_hidden_size``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from videophy_bench.evaluator.model.configuration import AbstractorConfig
from videophy_bench.evaluator.model.primitives import LayerNormFp32


class AbstractorMultiHeadAttention(nn.Module):
    def __init__(self, config: AbstractorConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.encoder_hidden_size, config.hidden_size)
        self.value = nn.Linear(config.encoder_hidden_size, config.hidden_size)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.shape[:-1], self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, queries: torch.Tensor, keys_values: torch.Tensor) -> torch.Tensor:
        k = self._heads(self.key(keys_values))
        v = self._heads(self.value(keys_values))
        q = self._heads(self.query(queries))
        # The official all-ones masks add exact zeros here; they are left out.
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(*ctx.shape[:-2], self.num_heads * self.head_dim)


class AbstractorMLP(nn.Module):
    def __init__(self, config: AbstractorConfig) -> None:
        super().__init__()
        hidden = config.mlp_hidden_size
        self.w1 = nn.Linear(config.hidden_size, hidden)
        self.w2 = nn.Linear(hidden, config.hidden_size)
        self.w3 = nn.Linear(config.hidden_size, hidden)
        self.ffn_ln = LayerNormFp32(hidden, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(self.ffn_ln(F.silu(self.w1(x)) * self.w3(x)))


class AbstractorCrossOutput(nn.Module):
    def __init__(self, config: AbstractorConfig) -> None:
        super().__init__()
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm2 = LayerNormFp32(config.hidden_size)  # eps 1e-5
        self.mlp = AbstractorMLP(config)

    def forward(self, context: torch.Tensor, normed_queries: torch.Tensor) -> torch.Tensor:
        x = normed_queries + self.out_proj(context)
        return x + self.mlp(self.norm2(x))


class AbstractorCrossAttention(nn.Module):
    def __init__(self, config: AbstractorConfig) -> None:
        super().__init__()
        self.attention = AbstractorMultiHeadAttention(config)
        self.output = AbstractorCrossOutput(config)
        self.norm1 = LayerNormFp32(config.hidden_size)  # eps 1e-5
        self.normk = LayerNormFp32(config.hidden_size)  # eps 1e-5

    def forward(self, queries: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        q = self.norm1(queries)
        kv = torch.cat([q, self.normk(video)], dim=1)
        return self.output(self.attention(q, kv), q)


class AbstractorLayer(nn.Module):
    def __init__(self, config: AbstractorConfig) -> None:
        super().__init__()
        self.crossattention = AbstractorCrossAttention(config)

    def forward(self, queries: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        return self.crossattention(queries, video)


class AbstractorEncoder(nn.Module):
    def __init__(self, config: AbstractorConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList([AbstractorLayer(config) for _ in range(config.num_hidden_layers)])


class VisualAbstractor(nn.Module):
    """Video features ``[B, T, N, D_v]`` plus queries -> ``[B, num_query_tokens + 1, D_lm]`` visual tokens."""

    def __init__(self, config: AbstractorConfig, language_hidden_size: int) -> None:
        super().__init__()
        self.encoder = AbstractorEncoder(config)
        self.visual_fc = nn.Linear(config.hidden_size, language_hidden_size)
        self.temporal_visual_fc = nn.Linear(config.hidden_size, language_hidden_size)
        self.vit_eos = nn.Parameter(torch.zeros(1, 1, language_hidden_size))

    def forward(
        self, video: torch.Tensor, query_tokens: torch.Tensor, temporal_query_tokens: torch.Tensor | None
    ) -> torch.Tensor:
        b, t = video.shape[:2]
        num_queries = query_tokens.size(1)
        use_temporal = t > 1 and temporal_query_tokens is not None
        x = torch.cat([query_tokens, temporal_query_tokens], dim=1) if use_temporal else query_tokens
        video = video.reshape(b, t * video.size(2), video.size(3))
        for layer in self.encoder.layers:
            x = layer(x, video)
        out = self.visual_fc(x[:, :num_queries])
        if use_temporal:
            out = out + self.temporal_visual_fc(x[:, num_queries:])
        return torch.cat([out, self.vit_eos.repeat(b, 1, 1)], dim=1)
