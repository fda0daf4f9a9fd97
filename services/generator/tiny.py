"""Tiny random-weights Wan pipelines, built offline in seconds, in the real checkpoint layouts.

They run the real diffusers code path (WanPipeline, UniPC, AutoencoderKLWan, UMT5) on a CPU, so
the embedded default and the tests exercise everything the full models do, only smaller.
"""

from __future__ import annotations

import json
import shutil
import string
import tempfile
from pathlib import Path

TINY_TEXT_DIM = 32
_COMMON_WORDS = ("a", "the", "person", "man", "woman", "ball", "water", "is", "of", "and", "in", "on",
                 "with", "into", "throws", "falls", "rolls", "hand", "table", "ground")


def _tokenizer():
    from transformers import T5Tokenizer

    # A Unigram vocabulary that covers any ASCII text through single characters; pad 0 / eos 1 as UMT5.
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(c, -5.0) for c in string.ascii_letters + string.digits + string.punctuation]
    vocab += [(f"▁{w}", -1.0) for w in _COMMON_WORDS]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def tiny_tokenizer():
    """The tiny pipelines' tokenizer (deterministic, built offline): the orchestrator counts prompt
    tokens with it when the run's generator is a tiny preset."""
    return _tokenizer()


def build_tiny_for(preset) -> Path:
    """The Wan family's tiny builder (videophy_bench.generator.families): the preset's layout, built once."""
    from videophy_bench.generator.diffusers_backend import default_tiny_dir

    return build_tiny_pipeline(default_tiny_dir(preset.layout), layout=preset.layout)


def build_tiny_pipeline(out_dir: str | Path, layout: str = "ti2v", seed: int = 0) -> Path:
    """Write a tiny WanPipeline in the official layout to `out_dir` (idempotent) and return it.

    layout: "ti2v" (TI2V-5B: one transformer, 48-channel Wan2.2 VAE, expand_timesteps) or
    "moe" (T2V-A14B: two experts with boundary 0.875, 16-channel Wan2.1 VAE).
    """
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    out = Path(out_dir)
    marker = out / "model_index.json"
    if marker.is_file():
        return out
    if layout not in {"ti2v", "moe"}:
        raise ValueError(f"unknown tiny layout {layout!r}")
    torch.manual_seed(seed)
    tok = _tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(tok), d_model=TINY_TEXT_DIM, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
        feed_forward_proj="gated-gelu", dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
    )).eval()
    channels = 48 if layout == "ti2v" else 16

    def transformer() -> WanTransformer3DModel:
        return WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=channels,
            out_channels=channels, text_dim=TINY_TEXT_DIM, freq_dim=256, ffn_dim=32, num_layers=2,
            cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
        )

    if layout == "ti2v":
        vae = AutoencoderKLWan(
            base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
            latents_mean=[0.0] * 48, latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
            scale_factor_spatial=16, scale_factor_temporal=4, temperal_downsample=[False, True, True],
        )
        scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                            num_train_timesteps=1000, flow_shift=5.0)
        pipe = WanPipeline(tokenizer=tok, text_encoder=text_encoder, vae=vae, scheduler=scheduler,
                           transformer=transformer(), transformer_2=None, boundary_ratio=None,
                           expand_timesteps=True)
    else:
        vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                               temperal_downsample=[False, True, True])
        # The Hub A14B scheduler ships shift 3.0; the service replaces it with the preset's 12.0.
        scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                            num_train_timesteps=1000, flow_shift=3.0)
        pipe = WanPipeline(tokenizer=tok, text_encoder=text_encoder, vae=vae, scheduler=scheduler,
                           transformer=transformer(), transformer_2=transformer(), boundary_ratio=0.875,
                           expand_timesteps=False)
    return save_pipeline(pipe, out, {"layout": layout, "seed": seed})


def tiny_target(preset, out_dir: str | Path | None) -> tuple[Path, bool]:
    """Where a family's tiny pipeline goes (default: the cache, named after the preset) and whether
    it is built there already."""
    from videophy_bench.common.cache import cache_dir

    out = Path(out_dir) if out_dir is not None else cache_dir() / preset.name
    return out, (out / "model_index.json").is_file()


def save_pipeline(pipe, out: Path, meta: dict) -> Path:
    """`pipe.save_pretrained` into `out` through a private build folder renamed into place: replicas
    starting together never see half a model. `meta` goes to videophy_tiny.json beside it."""
    marker = out / "model_index.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        pipe.save_pretrained(tmp)
        (tmp / "videophy_tiny.json").write_text(json.dumps(meta))
        try:
            tmp.rename(out)
        except OSError:
            if not marker.is_file():  # not a concurrent builder that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def t5_encoder(vocab_size: int, d_model: int = TINY_TEXT_DIM):
    """A one-layer T5 encoder over the tiny tokenizer (CogVideoX and LTX-Video read T5-XXL)."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(
        vocab_size=vocab_size, d_model=d_model, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
        feed_forward_proj="gated-gelu", dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
    )).eval()
