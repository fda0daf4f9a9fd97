"""``MplugOwlForConditionalGeneration``: vision tower + abstractor + LLaMA, with the official state-dict
names.

Inference only. The entry points split the official ``generate`` so that one vision pass serves every query
of a
video, and so that several prompts can share one LLM batch (left padding, 4.28.1 position ids and masks).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import DynamicCache

from videophy_bench.evaluator.model.abstractor import VisualAbstractor
from videophy_bench.evaluator.model.configuration import MplugOwlConfig
from videophy_bench.evaluator.model.language import (
    LEGACY_ATTENTION,
    build_language_model,
    legacy_attention_mask,
    position_ids_from_mask,
)
from videophy_bench.evaluator.model.tokenization import NUM_MEDIA_POSITIONS
from videophy_bench.evaluator.model.vision import VisionModel

# ``max_length=256`` of the official call counts the dummy BOS that transformers 4.28.1 puts in front of the
# generated ids when only ``inputs_embeds`` are given, so at most 255 tokens are generated.
OFFICIAL_MAX_NEW_TOKENS = 255


@dataclass
class GenerationResult:
    tokens: list[list[int]]  # new tokens per row, EOS included when produced
    first_logits: torch.Tensor  # float32 [B, V]: logits at the last prompt position


class MplugOwlForConditionalGeneration(nn.Module):
    def __init__(self, config: MplugOwlConfig, attention: str = LEGACY_ATTENTION) -> None:
        super().__init__()
        self.config = config
        d_abs = config.abstractor.hidden_size
        self.vision_model = VisionModel(config.vision)
        self.query_tokens = nn.Parameter(torch.zeros(1, config.num_query_tokens, d_abs))
        self.temporal_query_tokens = nn.Parameter(torch.zeros(1, config.num_query_tokens, d_abs))
        llama_config = config.llama_config()
        self.abstractor = VisualAbstractor(config.abstractor, llama_config.hidden_size)
        self.language_model = build_language_model(llama_config, attention)

    @property
    def dtype(self) -> torch.dtype:
        return self.query_tokens.dtype

    @property
    def device(self) -> torch.device:
        return self.query_tokens.device

    # ---- vision -------------------------------------------------------------------------------------------
    def vision_features(self, video_pixel_values: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` -> ``[B, T, 257, D_v]`` (the vision tower output)."""
        return self.vision_model(video_pixel_values.to(device=self.device, dtype=self.dtype))

    def encode_video(self, video_pixel_values: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` -> ``[B, 65, D_lm]`` visual tokens that replace the 65 placeholders."""
        features = self.vision_features(video_pixel_values)
        b = features.size(0)
        return self.abstractor(
            features, self.query_tokens.expand(b, -1, -1), self.temporal_query_tokens.expand(b, -1, -1)
        )

    # ---- embedding ----------------------------------------------------------------------------------------
    def embed_prompts(
        self,
        input_ids: list[list[int]],
        visual_tokens: list[torch.Tensor],
        placeholder_id: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed token ids and splice each prompt's visual tokens over its placeholder runs.

        Rows are left-padded to a common length (embedding of ``placeholder_id``, mask 0). Like the official
        ``get_media_indices``, a run starts where a negative id follows a different id, and 65 positions
        from each
        run start are overwritten. ``placeholder_id`` is what negative ids embed as first (0 in
        ``generate``, 1 in
        ``forward``; both are overwritten anyway).
        """
        length = max(len(ids) for ids in input_ids)
        rows, masks = [], []
        embed = self.language_model.get_input_embeddings()
        for ids, visual in zip(input_ids, visual_tokens, strict=True):
            pad = length - len(ids)
            ids_t = torch.tensor(
                [placeholder_id] * pad + [i if i >= 0 else placeholder_id for i in ids],
                dtype=torch.long,
                device=self.device,
            )
            row = embed(ids_t)
            for start in _media_run_starts(ids):
                row[pad + start : pad + start + NUM_MEDIA_POSITIONS] = visual.to(row.dtype)
            rows.append(row)
            masks.append(torch.tensor([0] * pad + [1] * len(ids), dtype=torch.long, device=self.device))
        return torch.stack(rows), torch.stack(masks)

    # ---- language model -----------------------------------------------------------------------------------
    @torch.no_grad()
    def greedy_generate(
        self,
        inputs_embeds: torch.Tensor,
        mask_2d: torch.Tensor,
        max_new_tokens: int = OFFICIAL_MAX_NEW_TOKENS,
    ) -> GenerationResult:
        """Greedy decoding as ``language_model.generate(inputs_embeds=..., do_sample=False)`` in 4.28.1."""
        lm = self.language_model
        eos_id = int(lm.config.eos_token_id)
        pad_id = int(lm.config.pad_token_id or 0)
        bsz, length, _ = inputs_embeds.shape
        cache = DynamicCache(config=lm.config)
        out = lm(
            inputs_embeds=inputs_embeds,
            attention_mask=legacy_attention_mask(mask_2d, length, inputs_embeds.dtype),
            position_ids=position_ids_from_mask(mask_2d),
            past_key_values=cache,
            use_cache=True,
        )
        logits = out.logits[:, -1, :]
        first_logits = logits.float().clone()
        finished = torch.zeros(bsz, dtype=torch.bool, device=inputs_embeds.device)
        tokens: list[list[int]] = [[] for _ in range(bsz)]
        for step in range(max_new_tokens):
            next_tokens = torch.argmax(logits, dim=-1)
            next_tokens = torch.where(finished, torch.full_like(next_tokens, pad_id), next_tokens)
            for row, tok in enumerate(next_tokens.tolist()):
                if not finished[row]:
                    tokens[row].append(tok)
            finished = finished | (next_tokens == eos_id)
            if bool(finished.all()) or step == max_new_tokens - 1:
                break
            mask_2d = torch.cat([mask_2d, mask_2d.new_ones(bsz, 1)], dim=1)
            out = lm(
                input_ids=next_tokens[:, None],
                attention_mask=legacy_attention_mask(mask_2d, 1, inputs_embeds.dtype),
                position_ids=position_ids_from_mask(mask_2d)[:, -1:],
                past_key_values=cache,
                use_cache=True,
            )
            logits = out.logits[:, -1, :]
        return GenerationResult(tokens, first_logits)

    @torch.no_grad()
    def prompt_logits(self, inputs_embeds: torch.Tensor, mask_2d: torch.Tensor) -> torch.Tensor:
        """Full-sequence logits ``[B, L, V]`` in the model dtype (the official ``forward`` path)."""
        length = inputs_embeds.size(1)
        out = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=legacy_attention_mask(mask_2d, length, inputs_embeds.dtype),
            position_ids=position_ids_from_mask(mask_2d),
            use_cache=False,
        )
        return out.logits


def _media_run_starts(ids: list[int]) -> list[int]:
    return [i for i, v in enumerate(ids) if v < 0 and (i == 0 or ids[i - 1] != v)]
