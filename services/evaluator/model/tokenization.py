"""Prompt tokenization exactly as the official judges do it, on top of the raw SentencePiece model.

The official code uses the slow ``LlamaTokenizer`` of transformers 4.28.1 (no ``legacy`` handling). With
``add_special_tokens=False`` that is: split the text at the literal special tokens ``<s>``, ``</s>``,
``<unk>``
(no whitespace stripping), encode every other non-empty piece with SentencePiece (each piece gets its own
dummy-prefix ``▁``), and map the special strings to their ids. Decoding with ``skip_special_tokens=True``
drops the
special ids and joins the rest with SentencePiece; no clean-up of spaces (the 4.28.1 Llama default).

Two prompt layouts exist:
- AutoEval ``generate`` path (``processing_mplug_owl._tokenize_prompt``): BOS, then the prompt split only at
  media
  tokens; ``<|video|>`` -> 65 x ``-2`` (``<image>`` -> 65 x ``-1``).
- VideoCon-Physics path (``xgpt3_dataset.MultiModalDataset``): also split at ``'AI: '`` and ``'\\nHuman:
  '``, EOS
  after any answer text, padded with ``pad`` (0) to ``max_length + 1`` = 257.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm

VIDEO_TOKEN = "<|video|>"
IMAGE_TOKEN = "<image>"
VIDEO_PLACEHOLDER = -2
IMAGE_PLACEHOLDER = -1
NUM_MEDIA_POSITIONS = 65
VIDEOCON_MAX_LENGTH = 256

_MEDIA_SPLIT = re.compile(f"({re.escape(IMAGE_TOKEN)}|{re.escape(VIDEO_TOKEN)})")
_VIDEOCON_SPLIT = re.compile(
    "(" + "|".join(re.escape(s) for s in (IMAGE_TOKEN, VIDEO_TOKEN, "AI: ", "\nHuman: ")) + ")"
)
_MEDIA_IDS = {IMAGE_TOKEN: IMAGE_PLACEHOLDER, VIDEO_TOKEN: VIDEO_PLACEHOLDER}


@dataclass(frozen=True)
class VideoconInput:
    input_ids: list[int]  # padded to max_length + 1
    last_position: int  # index whose logits score the prompt (first pad index - 1)


class PromptTokenizer:
    def __init__(self, model_file: str | Path, tokenizer_config: dict | None = None) -> None:
        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
        cfg = tokenizer_config or {}
        self.bos_token = _token_name(cfg.get("bos_token"), "<s>")
        self.eos_token = _token_name(cfg.get("eos_token"), "</s>")
        self.unk_token = _token_name(cfg.get("unk_token"), "<unk>")
        pad = _token_name(cfg.get("pad_token"), None)
        self.bos_id = self.sp.piece_to_id(self.bos_token)
        self.eos_id = self.sp.piece_to_id(self.eos_token)
        self.unk_id = self.sp.piece_to_id(self.unk_token)
        self.pad_id = self.sp.piece_to_id(pad) if pad is not None else self.unk_id
        specials = sorted({self.bos_token, self.eos_token, self.unk_token} | ({pad} if pad else set()))
        self._special_split = re.compile("(" + "|".join(re.escape(s) for s in specials) + ")")
        self._special_ids = {self.bos_id, self.eos_id, self.unk_id, self.pad_id}

    @classmethod
    def from_dir(cls, directory: str | Path) -> PromptTokenizer:
        directory = Path(directory)
        cfg_path = directory / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
        return cls(directory / "tokenizer.model", cfg)

    def encode_text(self, text: str) -> list[int]:
        """``LlamaTokenizer(text, add_special_tokens=False)['input_ids']`` of transformers 4.28.1."""
        ids: list[int] = []
        for piece in self._special_split.split(text):
            if not piece:
                continue
            if self._special_split.fullmatch(piece):
                ids.append(self.sp.piece_to_id(piece))
            else:
                ids.extend(self.sp.encode(piece))
        return ids

    def decode(self, ids: list[int]) -> str:
        """``tokenizer.decode(ids, skip_special_tokens=True)`` of transformers 4.28.1 (Llama, no clean-up)."""
        pieces = [self.sp.id_to_piece(i) for i in ids if i not in self._special_ids]
        return self.sp.decode_pieces(pieces) if pieces else ""

    def encode_generate_prompt(self, prompt: str) -> list[int]:
        """BOS + text chunks split at media tokens; each media token becomes 65 placeholders."""
        ids = [self.bos_id]
        for chunk in _MEDIA_SPLIT.split(prompt):
            if not chunk:
                continue
            if chunk in _MEDIA_IDS:
                ids.extend([_MEDIA_IDS[chunk]] * NUM_MEDIA_POSITIONS)
            else:
                ids.extend(self.encode_text(chunk))
        return ids

    def encode_videocon_prompt(self, prompt: str, max_length: int = VIDEOCON_MAX_LENGTH) -> VideoconInput:
        """``MultiModalDataset._extract_text_token_from_conversation`` (media branch) plus ``get_entail``'s
        index."""
        chunks = [c for c in _VIDEOCON_SPLIT.split(prompt) if c]
        ids: list[int] = []
        length = 0
        for idx, chunk in enumerate(chunks):
            if length >= max_length + 1:
                break
            if idx == 0:
                ids = [self.bos_id, *self.encode_text(chunk)]  # bos_token_id > 0 in the official check
                length = len(ids)
            elif chunk in _MEDIA_IDS:
                if length + NUM_MEDIA_POSITIONS > max_length + 1:
                    break
                ids += [_MEDIA_IDS[chunk]] * NUM_MEDIA_POSITIONS
                length += NUM_MEDIA_POSITIONS
            elif chunks[idx - 1] == "AI: ":
                cur = self.encode_text(chunk)
                if length + len(cur) >= max_length:
                    cur = cur[: max_length - length]
                cur += [self.eos_id]
                length += len(cur)
                ids += cur
            else:
                cur = self.encode_text(chunk)
                if length + len(cur) >= max_length + 1:
                    cur = cur[: max_length + 1 - length]
                length += len(cur)
                ids += cur
        if length < max_length + 1:
            ids = ids + [self.pad_id] * (max_length + 1 - length)
        # get_entail: the position before the first pad; the last index if there is none.
        try:
            last = ids.index(self.pad_id) - 1
        except ValueError:
            last = len(ids) - 1
        return VideoconInput(ids, last)


def _token_name(value: object, default: str | None) -> str | None:
    if value is None:
        return default
    if isinstance(value, dict):  # serialized AddedToken
        return str(value.get("content", default))
    return str(value)
