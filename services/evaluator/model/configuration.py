"""Configuration of the mPLUG-Owl-Video judge, read from the official ``config.json``.

The official ``MplugOwlConfig`` (transformers 4.28.1) nests ``vision_config``, ``visual_abstractor_config``
and
``text_config``; it also copies text attributes onto the top level. Only the nested blocks are authoritative
here.
Defaults are the class defaults of the official code (ViT-L/14 vision, 6-layer abstractor, LLaMA-7B).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import LlamaConfig

# The official LLaMA-7B text config (mPLUG-Owl-7B); used when a config.json lacks a text_config block.
LLAMA_7B_DEFAULTS: dict[str, Any] = {
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "rope_theta": 10000.0,
}


@dataclass(frozen=True)
class VisionConfig:
    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    image_size: int = 224
    patch_size: int = 14
    layer_norm_eps: float = 1e-6
    hidden_act: str = "quick_gelu"

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_positions(self) -> int:
        return self.grid**2 + 1  # patches + CLS


@dataclass(frozen=True)
class AbstractorConfig:
    hidden_size: int = 1024
    num_hidden_layers: int = 6
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    encoder_hidden_size: int = 1024
    layer_norm_eps: float = 1e-6

    @property
    def mlp_hidden_size(self) -> int:
        # Official quirk: any size other than 2816 becomes 2/3 of it rounded up to a multiple of 256.
        size = self.intermediate_size
        if size != 2816:
            size = int(2 * size / 3)
            size = 256 * ((size + 255) // 256)
        return size


@dataclass(frozen=True)
class MplugOwlConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    abstractor: AbstractorConfig = field(default_factory=AbstractorConfig)
    text: dict[str, Any] = field(default_factory=lambda: dict(LLAMA_7B_DEFAULTS))
    num_query_tokens: int = 64

    def llama_config(self) -> LlamaConfig:
        t = {**LLAMA_7B_DEFAULTS, **self.text}
        heads = int(t["num_attention_heads"])
        return LlamaConfig(
            vocab_size=int(t["vocab_size"]),
            hidden_size=int(t["hidden_size"]),
            intermediate_size=int(t["intermediate_size"]),
            num_hidden_layers=int(t["num_hidden_layers"]),
            num_attention_heads=heads,
            num_key_value_heads=int(t.get("num_key_value_heads") or heads),
            max_position_embeddings=int(t["max_position_embeddings"]),
            rms_norm_eps=float(t["rms_norm_eps"]),
            hidden_act=str(t["hidden_act"]),
            pad_token_id=t["pad_token_id"],
            bos_token_id=t["bos_token_id"],
            eos_token_id=t["eos_token_id"],
            tie_word_embeddings=False,
            attention_bias=False,
            mlp_bias=False,
            rope_theta=float(t["rope_theta"]),
        )

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MplugOwlConfig:
        vision = _pick(VisionConfig, raw.get("vision_config") or {})
        abstractor = _pick(AbstractorConfig, raw.get("visual_abstractor_config") or {})
        text = dict(LLAMA_7B_DEFAULTS)
        text_raw = raw.get("text_config")
        if text_raw:
            text.update(
                {k: v for k, v in text_raw.items() if k in LLAMA_7B_DEFAULTS or k == "num_key_value_heads"}
            )
        return cls(
            vision=vision,
            abstractor=abstractor,
            text=text,
            num_query_tokens=int(raw.get("num_query_tokens", 64)),
        )

    @classmethod
    def from_json_file(cls, path: str | Path) -> MplugOwlConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_official_dict(self) -> dict[str, Any]:
        """A config.json body in the official layout (nested blocks plus the top-level text copies)."""
        vision = {**self.vision.__dict__, "model_type": "mplug_owl_vision_model", "num_channels": 3}
        abstractor = {**self.abstractor.__dict__, "model_type": "mplug_owl_visual_abstract"}
        text = {**self.text, "model_type": "llama"}
        top = {
            k: self.text[k]
            for k in (
                "vocab_size",
                "hidden_size",
                "intermediate_size",
                "num_hidden_layers",
                "num_attention_heads",
                "max_position_embeddings",
                "rms_norm_eps",
            )
        }
        return {
            "architectures": ["MplugOwlForConditionalGeneration"],
            "model_type": "mplug-owl",
            "num_query_tokens": self.num_query_tokens,
            "torch_dtype": "bfloat16",
            "use_decoder_only_language_model": True,
            "vision_config": vision,
            "visual_abstractor_config": abstractor,
            "text_config": text,
            **top,
        }


def _pick(cls: type, raw: dict[str, Any]) -> Any:
    names = set(cls.__dataclass_fields__)
    return cls(**{k: v for k, v in raw.items() if k in names})
