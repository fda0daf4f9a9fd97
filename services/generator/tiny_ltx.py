"""Tiny random-weights LTXPipeline in the LTX-Video layout, built offline in seconds.

The real compression of the LTX VAE (4x4 patches and three spatio-temporal downsamplings: 32x
spatial, 8x temporal, hence the 8k+1 frames and multiples of 32), patch size 1 in the transformer,
the Hub's dynamically shifted flow-matching Euler scheduler config, and a T5 text encoder over the
Wan tiny tokenizer (videophy_bench.generator.tiny), all at toy width.
"""

from __future__ import annotations

from pathlib import Path

from videophy_bench.generator.tiny import (
    TINY_TEXT_DIM,
    save_pipeline,
    t5_encoder,
    tiny_target,
    tiny_tokenizer,
)


def build(preset, out_dir: str | Path | None = None, seed: int = 0) -> Path:
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    out, built = tiny_target(preset, out_dir)
    if built:
        return out
    torch.manual_seed(seed)
    tok = tiny_tokenizer()
    heads, head_dim = 2, 24
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=heads,
        attention_head_dim=head_dim, cross_attention_dim=heads * head_dim, num_layers=2,
        caption_channels=TINY_TEXT_DIM,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False), patch_size=4, patch_size_t=1,
        encoder_causal=True, decoder_causal=False,
    )
    # Lightricks/LTX-Video scheduler/scheduler_config.json
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05,
        base_image_seq_len=1024, max_image_seq_len=4096, shift_terminal=0.1,
    )
    pipe = LTXPipeline(scheduler=scheduler, vae=vae, text_encoder=t5_encoder(len(tok)), tokenizer=tok,
                       transformer=transformer)
    return save_pipeline(pipe, out, {"family": "ltx", "seed": seed})
