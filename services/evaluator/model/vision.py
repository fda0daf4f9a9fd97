"""The mPLUG-Owl-Video vision tower: a ViT with a temporal adapter in every layer.

Module and parameter names match the official state dict (``vision_model.*``). The op order mirrors the
official
code so that float32 results agree to rounding; the quirks (per-head interleaved qkv, eps 1e-5 in
``temporal.ln``,
the CLS token doubled by the temporal residual) are kept on purpose: the checkpoint was trained with them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from videophy_bench.evaluator.model.configuration import VisionConfig
from videophy_bench.evaluator.model.primitives import LayerNormFp32, quick_gelu


class VisionEmbeddings(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.patch_embed = nn.Conv2d(
            3, d, kernel_size=config.patch_size, stride=config.patch_size, bias=False
        )
        self.position_embedding = nn.Parameter(torch.zeros(1, config.num_positions, d))
        self.pre_layernorm = LayerNormFp32(d, eps=config.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[B, C, T, H, W]`` -> ``[B, T, 1 + patches, D]``."""
        b, c, t, h, w = pixels.shape
        frames = pixels.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        patches = self.patch_embed(frames).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(b * t, 1, -1).to(patches.dtype)
        x = torch.cat([cls, patches], dim=1)
        x = x + self.position_embedding[:, : x.size(1)].to(patches.dtype)
        x = self.pre_layernorm(x)
        return x.reshape(b, t, x.size(1), x.size(2))


class TemporalAdapter(nn.Module):
    """Bottleneck 3D conv over time on the patch tokens; the CLS token is passed through unchanged.

    The caller adds the output to its input, so the CLS token is doubled in every layer (official quirk).
    """

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        d = config.hidden_size
        bottleneck = d // 2
        self.grid = config.grid
        self.ln = LayerNormFp32(d)  # torch default eps 1e-5, not the config's 1e-6
        self.down_proj = nn.Conv3d(d, bottleneck, kernel_size=1)
        self.conv = nn.Conv3d(
            bottleneck, bottleneck, kernel_size=(3, 1, 1), padding=(1, 0, 0), groups=bottleneck
        )
        self.up_proj = nn.Conv3d(bottleneck, d, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _, d = x.shape
        cls, patches = x[:, :, 0:1], x[:, :, 1:]
        y = self.ln(patches)
        # b t (h w) c -> b c t h w, as a permuted view like the official einops call.
        y = y.reshape(b, t, self.grid, self.grid, d).permute(0, 4, 1, 2, 3)
        y = self.down_proj(y)
        y = self._depthwise_time_conv(y)
        y = quick_gelu(y)
        y = self.up_proj(y)
        y = y.permute(0, 2, 3, 4, 1).reshape(b, t, self.grid * self.grid, d)
        return torch.cat([cls, y], dim=2)

    def _depthwise_time_conv(self, y: torch.Tensor) -> torch.Tensor:
        # The official code runs this conv on CPU in the model dtype (bf16 depthwise conv3d was missing on
        # GPU).
        # CPU bf16 conv3d equals a float32 conv rounded once to bf16, so computing it in float32 on the
        # tensor's own
        # device reproduces it without the device round trip.
        if y.dtype == torch.float32:
            return self.conv(y)
        out = F.conv3d(
            y.float(),
            self.conv.weight.float(),
            self.conv.bias.float(),
            padding=self.conv.padding,
            groups=self.conv.groups,
        )
        return out.to(y.dtype)


class VisionAttention(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = d // self.num_heads
        self.scale = self.head_dim**-0.5
        self.query_key_value = nn.Linear(d, 3 * d)
        self.dense = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, s, d = x.shape
        # qkv is interleaved per head: (heads, 3, head_dim), not [q|k|v] blocks.
        qkv = self.query_key_value(x).reshape(n, s, self.num_heads, 3, self.head_dim).permute(3, 0, 2, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3)
        return self.dense(ctx.reshape(n, s, d))


class VisionMLP(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(quick_gelu(self.fc1(x)))


class VisionEncoderLayer(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.temporal = TemporalAdapter(config)
        self.self_attn = VisionAttention(config)
        self.input_layernorm = LayerNormFp32(d, eps=config.layer_norm_eps)
        self.mlp = VisionMLP(config)
        self.post_attention_layernorm = LayerNormFp32(d, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, s, d = x.shape
        if t > 1:
            x = x + self.temporal(x)
        x = x.reshape(b * t, s, d)
        x = x + self.self_attn(self.input_layernorm(x))
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x.reshape(b, t, s, d)


class VisionEncoder(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList([VisionEncoderLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class VisionModel(nn.Module):
    """``[B, 3, T, 224, 224]`` pixels -> ``[B, T, 257, D]`` (after ``post_layernorm``)."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.embeddings = VisionEmbeddings(config)
        self.encoder = VisionEncoder(config)
        self.post_layernorm = LayerNormFp32(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.post_layernorm(self.encoder(self.embeddings(pixels)))
