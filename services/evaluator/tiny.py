"""A tiny random-weights judge in the official checkpoint layout, built fully offline in about a second.

It runs the real code path (frames, tokenization, vision, abstractor, LLaMA, parsing) on CPU, e.g. as the
embedded
default of a local run. The tokenizer is a small SentencePiece BPE model (byte fallback, LLaMA special ids
unk=0/bos=1/eos=2) trained on the prompt templates; the weights follow the fixture recipe (fan-in scaled
normals,
1 + 0.1·N norm weights, EOS logit row scaled so generations end early), saved in bfloat16 in two shards.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import sentencepiece as spm
import torch

from videophy_bench.common.cache import cache_dir
from videophy_bench.evaluator.model.configuration import (
    LLAMA_7B_DEFAULTS,
    AbstractorConfig,
    MplugOwlConfig,
    VisionConfig,
)
from videophy_bench.evaluator.model.frames import CLIP_MEAN, CLIP_STD, FRAME_SIZE
from videophy_bench.evaluator.model.language import LEGACY_ATTENTION
from videophy_bench.evaluator.model.modeling import MplugOwlForConditionalGeneration
from videophy_bench.evaluator.model.templates import (
    PROMPT_PHYSICS,
    PROMPT_RULE,
    PROMPT_SA,
    PROMPT_VIDEOCON_PC,
    PROMPT_VIDEOCON_SA,
)

TINY_VERSION = "1"
_MARKER = "tiny_judge.json"
_CORPUS_EXTRA = (
    "Yes No yes no zero one two three four five 0 1 2 3 4 5 6 7 8 9 10",
    "A ball bounces on the floor and rolls away. Water is poured into a glass.",
    "The video shows a person throwing a stone into a lake; ripples spread outward.",
)
TOKENIZER_CONFIG = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "model_max_length": 1e30,
    "tokenizer_class": "LlamaTokenizer",
    "unk_token": "<unk>",
    "pad_token": "<unk>",
}
PREPROCESSOR_CONFIG = {"resolution": FRAME_SIZE, "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD)}
GENERATION_CONFIG = {
    "bos_token_id": 1,
    "do_sample": True,
    "eos_token_id": 2,
    "max_length": 512,
    "pad_token_id": 0,
    "top_k": 3,
    "unk_token_id": 0,
}


def default_tiny_dir() -> Path:
    return cache_dir() / f"tiny-judge-v{TINY_VERSION}"


def build_tiny_tokenizer() -> bytes:
    """Serialized SentencePiece model: BPE, byte fallback, digits split, no normalisation (LLaMA style)."""
    lines = [
        p.replace("{caption}", "A cat jumps").replace("{rule}", "Objects fall down")
        for p in (PROMPT_SA, PROMPT_PHYSICS, PROMPT_RULE, PROMPT_VIDEOCON_SA, PROMPT_VIDEOCON_PC)
    ]
    lines = [ln for p in lines for ln in p.split("\n") if ln] + list(_CORPUS_EXTRA)
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 4),
        model_writer=out,
        model_type="bpe",
        vocab_size=600,
        hard_vocab_limit=False,
        byte_fallback=True,
        split_digits=True,
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        num_threads=1,
        minloglevel=2,
    )
    return out.getvalue()


def tiny_config(vocab_size: int) -> MplugOwlConfig:
    text = {
        **LLAMA_7B_DEFAULTS,
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
    }
    return MplugOwlConfig(
        vision=VisionConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4
        ),
        abstractor=AbstractorConfig(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=128,
            encoder_hidden_size=64,
        ),
        text=text,
    )


def _init_weights(model: MplugOwlForConditionalGeneration, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            leaf = name.rsplit(".", 1)[-1]
            is_norm = any(
                k in name for k in ("layernorm", "norm1", "normk", "norm2", "ffn_ln", ".ln.", "norm.")
            )
            if leaf == "bias":
                p.copy_(0.1 * noise)
            elif is_norm and p.dim() == 1:
                p.copy_(1 + 0.1 * noise)
            elif p.dim() >= 2 and leaf == "weight":
                fan_in = p[0].numel()
                p.copy_(noise * fan_in**-0.5)
            else:
                p.copy_(noise)
        model.language_model.lm_head.weight[2] *= 3.0  # EOS: make generations end early


def build_tiny_judge(directory: str | Path, seed: int = 0) -> Path:
    """Write (once) a tiny checkpoint directory in the official layout and return its path."""
    directory = Path(directory)
    marker = directory / _MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("seed") == seed:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        stage = Path(tmp)
        sp_bytes = build_tiny_tokenizer()
        (stage / "tokenizer.model").write_bytes(sp_bytes)
        vocab = spm.SentencePieceProcessor(model_proto=sp_bytes).get_piece_size()
        config = tiny_config(vocab)
        torch.manual_seed(seed)
        model = MplugOwlForConditionalGeneration(config, attention=LEGACY_ATTENTION)
        _init_weights(model, seed + 1000)
        state = {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
        names = list(state)
        shards = {
            "pytorch_model-00001-of-00002.bin": names[:-1],
            "pytorch_model-00002-of-00002.bin": names[-1:],
        }
        weight_map = {}
        for shard, keys in shards.items():
            torch.save({k: state[k] for k in keys}, stage / shard)
            weight_map.update({k: shard for k in keys})
        total = sum(t.numel() * t.element_size() for t in state.values())
        (stage / "pytorch_model.bin.index.json").write_text(
            json.dumps(
                {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2
            )
        )
        (stage / "config.json").write_text(json.dumps(config.to_official_dict(), indent=2))
        (stage / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG))
        (stage / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG))
        (stage / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG, indent=2))
        for f in stage.iterdir():
            os.replace(f, directory / f.name)
    marker.write_text(json.dumps({"version": TINY_VERSION, "seed": seed}))
    return directory
