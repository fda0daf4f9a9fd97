"""Tiny random-weights HunyuanVideoPipeline in the HunyuanVideo layout, built offline in seconds.

Both text encoders of the real model at toy width: a LLaMA decoder (the pipeline reads its
third-to-last hidden state under the official prompt template) with a fast word-level tokenizer that
knows the template's words, and a CLIP text model (pooled) with a byte-pair tokenizer written from
a local vocabulary; dual- and single-stream transformer blocks with guidance embedding, the 8x/4x
causal VAE, and flow-matching Euler at the Hub's shift 7.0.
"""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

from videophy_bench.generator.tiny import _COMMON_WORDS, save_pipeline, tiny_target

TEXT_DIM = 32
_LLAMA_SPECIALS = ("<|pad|>", "<unk>", "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                   "<|end_header_id|>", "<|eot_id|>")


def llama_tokenizer():
    """A word-level LlamaTokenizerFast: the template's words, common prompt words and characters."""
    import re

    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video import DEFAULT_PROMPT_TEMPLATE
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import LlamaTokenizerFast

    words = re.findall(r"\w+|[^\w\s]", re.sub(r"<\|[a-z_]+\|>", " ", DEFAULT_PROMPT_TEMPLATE["template"]))
    vocab: dict[str, int] = {}
    for w in (*_LLAMA_SPECIALS, *words, *_COMMON_WORDS, *string.printable.strip()):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(list(_LLAMA_SPECIALS))
    tok.add_tokens([AddedToken("\n\n", normalized=False)])  # a token of its own, as in LLaMA 3's vocabulary
    return LlamaTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>",
                              eos_token="<|end_of_text|>",
                              pad_token="<|pad|>", unk_token="<unk>", add_bos_token=True, add_eos_token=False)


def clip_tokenizer(work_dir: Path):
    """A CLIPTokenizer from vocab.json / merges.txt written here: characters, no merges."""
    from transformers import CLIPTokenizer

    chars = sorted(set(string.printable.strip()))
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    (work_dir / "vocab.json").write_text(json.dumps(vocab))
    (work_dir / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(work_dir / "vocab.json"), str(work_dir / "merges.txt"))


def build(preset, out_dir: str | Path | None = None, seed: int = 0) -> Path:
    import torch
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
        HunyuanVideoTransformer3DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    out, built = tiny_target(preset, out_dir)
    if built:
        return out
    torch.manual_seed(seed)
    tok = llama_tokenizer()
    text_encoder = LlamaModel(LlamaConfig(
        vocab_size=len(tok), hidden_size=TEXT_DIM, intermediate_size=48, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=1024,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )).eval()
    with tempfile.TemporaryDirectory() as work:
        tok_2 = clip_tokenizer(Path(work))
    text_encoder_2 = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok_2), hidden_size=TEXT_DIM, intermediate_size=48, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1,
        projection_dim=TEXT_DIM,
    )).eval()
    transformer = HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=2, patch_size_t=1, guidance_embeds=True,
        text_embed_dim=TEXT_DIM, pooled_projection_dim=TEXT_DIM, rope_axes_dim=(4, 6, 6),
    )
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=4, down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        norm_num_groups=4, spatial_compression_ratio=8, temporal_compression_ratio=4,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)  # the Hub's scheduler_config.json
    pipe = HunyuanVideoPipeline(text_encoder=text_encoder, tokenizer=tok, transformer=transformer, vae=vae,
                                scheduler=scheduler, text_encoder_2=text_encoder_2, tokenizer_2=tok_2)
    return save_pipeline(pipe, out, {"family": "hunyuanvideo", "seed": seed})
