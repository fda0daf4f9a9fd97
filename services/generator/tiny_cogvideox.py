"""Tiny random-weights CogVideoXPipeline in the CogVideoX-5B layout, built offline in seconds.

The 5B's architecture choices at toy width: rotary positional embeddings (no learned ones), no
temporal patching (CogVideoX 1.0), a 4x temporal / 8x spatial VAE and the Hub's v-prediction DDIM
scheduler config (zero-SNR, trailing); the preset swaps in DPM as the official code does. T5 text
encoder over the Wan tiny tokenizer (videophy_bench.generator.tiny).
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
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    out, built = tiny_target(preset, out_dir)
    if built:
        return out
    torch.manual_seed(seed)
    tok = tiny_tokenizer()
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=8,
        text_embed_dim=TINY_TEXT_DIM, num_layers=2, sample_width=6, sample_height=4, sample_frames=9,
        patch_size=2, temporal_compression_ratio=4, max_text_seq_length=preset.max_sequence_length,
        use_rotary_positional_embeddings=True, use_learned_positional_embeddings=False,
    )
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4,
    )
    scheduler = CogVideoXDDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
        prediction_type="v_prediction", rescale_betas_zero_snr=True, set_alpha_to_one=True,
        snr_shift_scale=1.0, timestep_spacing="trailing",
    )
    pipe = CogVideoXPipeline(tokenizer=tok, text_encoder=t5_encoder(len(tok)), vae=vae,
                             transformer=transformer, scheduler=scheduler)
    return save_pipeline(pipe, out, {"family": "cogvideox", "seed": seed})
