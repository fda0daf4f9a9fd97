"""One transformer forward of each model family at its default generation size: eager vs `lossless`.

Issue 13: the families the generator is gaining (CogVideoX-5B, HunyuanVideo, LTX-Video,
Cosmos-1.0-Diffusion-7B-Text2World) next to Wan2.2-TI2V-5B, measured in one run on one GPU.

For each family (the order of --families):
  * the diffusers transformer, full size, built from its official config (written out below with
    the source of each) with random bf16 weights made directly on the GPU
    (`bench_generation.materialize`: speed does not depend on the weights);
  * the inputs of ONE call the official diffusers pipeline makes at its default height, width, frame
    count and text length: latents from the VAE's compression, text embeddings of the text encoder's
    width, timestep, masks and side inputs exactly as the pipeline passes them; batch 2 where the
    pipeline batches cond + uncond (CogVideoX, LTX), batch 1 where it makes separate calls (Wan,
    Cosmos) or has no classifier-free guidance (HunyuanVideo: distilled guidance);
  * `eager`: diffusers' defaults (SDPA, no compile), one warm-up call then the median of several with
    CUDA events (`bench_attention.bench`);
  * `lossless`: the project's exact acceleration. Wan: `acceleration.apply_acceleration(...,
    "lossless")` itself plus the shared timestep it pairs with (`t=shared`). The other families: the
    same two parts, applied generically where the project's functions do not apply to them as they
    are (recorded per family under `project_path`, and tried when --project-path is on):
      - regional compile: `acceleration.compile_regions` (fullgraph) of the model's `_repeated_blocks`,
        or of its `_no_split_modules` where diffusers declares no `_repeated_blocks` (CogVideoX,
        Cosmos);
      - the exact kernel `attention.resolve_kernel` picks (FA3 where it imports and passes its
        self-check, else SDPA), routed per call: every attention call through diffusers' dispatcher
        without a mask goes to that kernel, every call with a mask to SDPA (FA3 takes no mask). Calls
        that bypass the dispatcher (CogVideoX's processor calls torch SDPA directly) stay on SDPA;
  * equality: max |lossless - eager| and relative L2 on the transformer output, peak memory per mode.
Each step is saved to OUT/families.json as it finishes; steps that would run past --deadline-s are
skipped and say so.

  python bench/bench_families.py --out DIR                              # GPU (H100/H200)
  python bench/bench_families.py --tiny --device cpu --out DIR          # CPU dry run, tiny configs
  python bench/bench_families.py --tiny --device cpu --compile-cpu ...  # ... with the compile path
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchlib import Recorder, use_repo_imports

use_repo_imports()

import bench_attention as ba  # noqa: E402
import bench_generation as bg  # noqa: E402
import torch  # noqa: E402

REC = Recorder("families.json")
RESULTS, log, save = REC.results, REC.log, REC.save
# Valid prompt tokens where a family's text encoder pads to a fixed length and passes a mask: a
# VideoPhy-2 caption is 20-40 words; the padded length (what the attention sees) is the pipeline's.
PROMPT_TOKENS = 64


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    name: str
    model_class: str  # diffusers class
    repo: str  # the checkpoint whose config this is
    config: dict[str, Any]
    config_source: str
    size: tuple[int, int, int]  # (height, width, frames): the pipeline's __call__ defaults
    vae: tuple[int, int]  # (temporal, spatial) compression of the family's VAE
    text: tuple[int, int]  # (tokens, width) of the text embeddings one call gets
    batch: int  # batch of one transformer call
    calls_per_step: int  # transformer calls per denoising step at the default guidance
    steps: int  # the pipeline's default num_inference_steps
    inputs: Callable[..., dict[str, Any]]  # (tx, spec, device, lossless) -> forward kwargs
    tiny: dict[str, Any]  # config overrides for --tiny
    tiny_size: tuple[int, int, int]
    tiny_text: tuple[int, int]
    est_forward_s: float  # H100 prior for the deadline planner
    est_compile_s: float
    defaults_source: str = ""


def latent_shape(spec: FamilySpec, size: tuple[int, int, int]) -> tuple[int, int, int]:
    h, w, f = size
    vt, vs = spec.vae
    return (f - 1) // vt + 1, h // vs, w // vs


def video_tokens(cfg: dict[str, Any], latent: tuple[int, int, int]) -> int:
    """Latent tokens after the transformer's patch embedding (text tokens not counted)."""
    p = cfg["patch_size"]
    pt, ph, pw = p if isinstance(p, (tuple, list)) else (cfg.get("patch_size_t") or 1, p, p)
    return (latent[0] // pt) * (latent[1] // ph) * (latent[2] // pw)


def _randn(shape: tuple[int, ...], gen: torch.Generator, device: str, dtype: torch.dtype) -> torch.Tensor:
    return torch.randn(shape, generator=gen, device=device, dtype=torch.float32).to(dtype)


def _mask(batch: int, tokens: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    m = torch.zeros((batch, tokens), device=device, dtype=dtype)
    m[:, : min(PROMPT_TOKENS, tokens)] = 1
    return m


def _setup(tx: Any, spec: FamilySpec, device: str, tiny: bool) -> tuple[Any, ...]:
    size = spec.tiny_size if tiny else spec.size
    tokens, width = spec.tiny_text if tiny else spec.text
    gen = torch.Generator(device=device).manual_seed(11)
    return size, latent_shape(spec, size), tokens, width, tx.dtype, gen


def wan_inputs(tx: Any, spec: FamilySpec, device: str, tiny: bool, lossless: bool) -> dict[str, Any]:
    """WanPipeline (TI2V, expand_timesteps): one call per CFG branch; per-token timesteps in diffusers,
    one per sample under `lossless` (t=shared, text-to-video)."""
    size, _, tokens, width, dtype, gen = _setup(tx, spec, device, tiny)
    embeds = _randn((1, tokens, width), gen, device, dtype)
    return bg.forward_inputs(tx, size, embeds, device, vae_t=spec.vae[0], vae_s=spec.vae[1],
                             per_token_t=not lossless)


def cogvideox_inputs(tx: Any, spec: FamilySpec, device: str, tiny: bool, lossless: bool) -> dict[str, Any]:
    """CogVideoXPipeline: latents (B, F, C, H, W), cond + uncond in one batch, 226 T5 tokens (no mask),
    3D RoPE from the pipeline's own `_prepare_rotary_positional_embeddings`."""
    from diffusers import CogVideoXPipeline

    size, (fl, hl, wl), tokens, width, dtype, gen = _setup(tx, spec, device, tiny)
    b = spec.batch
    rope = CogVideoXPipeline._prepare_rotary_positional_embeddings(
        SimpleNamespace(vae_scale_factor_spatial=spec.vae[1], transformer=tx), size[0], size[1], fl,
        torch.device(device))
    return dict(hidden_states=_randn((b, fl, tx.config.in_channels, hl, wl), gen, device, dtype),
                encoder_hidden_states=_randn((b, tokens, width), gen, device, dtype),
                timestep=torch.full((b,), 999, device=device, dtype=torch.long),
                image_rotary_emb=rope, return_dict=False)


def hunyuan_inputs(tx: Any, spec: FamilySpec, device: str, tiny: bool, lossless: bool) -> dict[str, Any]:
    """HunyuanVideoPipeline at true_cfg_scale 1 (the default): one call per step, distilled guidance
    6.0 x 1000, Llama embeddings cropped to 256 tokens with their mask, CLIP pooled projection."""
    _, (fl, hl, wl), tokens, width, dtype, gen = _setup(tx, spec, device, tiny)
    return dict(hidden_states=_randn((1, tx.config.in_channels, fl, hl, wl), gen, device, dtype),
                timestep=torch.full((1,), 999.0, device=device),
                encoder_hidden_states=_randn((1, tokens, width), gen, device, dtype),
                encoder_attention_mask=_mask(1, tokens, device, dtype),
                pooled_projections=_randn((1, tx.config.pooled_projection_dim), gen, device, dtype),
                guidance=torch.full((1,), 6000.0, device=device, dtype=dtype), return_dict=False)


def ltx_inputs(tx: Any, spec: FamilySpec, device: str, tiny: bool, lossless: bool) -> dict[str, Any]:
    """LTXPipeline: packed latents (B, F*H*W, 128), cond + uncond in one batch, 128 T5 tokens with their
    mask, RoPE interpolation scale (vae_t / frame_rate 25, vae_s, vae_s)."""
    from diffusers import LTXPipeline

    _, (fl, hl, wl), tokens, width, dtype, gen = _setup(tx, spec, device, tiny)
    b = spec.batch
    latents = LTXPipeline._pack_latents(_randn((b, tx.config.in_channels, fl, hl, wl), gen, device, dtype),
                                        tx.config.patch_size, tx.config.patch_size_t)
    return dict(hidden_states=latents,
                encoder_hidden_states=_randn((b, tokens, width), gen, device, dtype),
                timestep=torch.full((b,), 1000.0, device=device),
                encoder_attention_mask=_mask(b, tokens, device, torch.bool),
                num_frames=fl, height=hl, width=wl,
                rope_interpolation_scale=(spec.vae[0] / 25, spec.vae[1], spec.vae[1]), return_dict=False)


def cosmos_inputs(tx: Any, spec: FamilySpec, device: str, tiny: bool, lossless: bool) -> dict[str, Any]:
    """CosmosTextToWorldPipeline: cond and uncond in two calls, 512 T5-11B tokens (padding zeroed, no
    mask), fps 30, an all-zero padding mask at pixel size."""
    size, (fl, hl, wl), tokens, width, dtype, gen = _setup(tx, spec, device, tiny)
    return dict(hidden_states=_randn((1, tx.config.in_channels, fl, hl, wl), gen, device, dtype),
                timestep=torch.full((1,), 1.0, device=device, dtype=dtype),
                encoder_hidden_states=_randn((1, tokens, width), gen, device, dtype), fps=30,
                padding_mask=torch.zeros((1, 1, size[0], size[1]), device=device, dtype=dtype),
                return_dict=False)


DIFFUSERS = "diffusers 0.42.1"
FAMILIES: dict[str, FamilySpec] = {s.name: s for s in (
    FamilySpec(
        "wan", "WanTransformer3DModel", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", bg.TX_5B,
        "bench_generation.TX_5B (../shared/reference/wan22-diffusers.md section 2: the official conversion)",
        size=(704, 1280, 121), vae=(4, 16), text=(512, 4096), batch=1, calls_per_step=2, steps=50,
        inputs=wan_inputs, tiny=bg.MODELS["tiny"]["tx"], tiny_size=(64, 64, 9), tiny_text=(16, 32),
        est_forward_s=1.3, est_compile_s=30,
        defaults_source="the project's wan2.2-ti2v-5b preset (1280x704, 121 frames, 50 steps, CFG 5)"),
    FamilySpec(
        "ltx", "LTXVideoTransformer3DModel", "Lightricks/LTX-Video",
        dict(in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32,
             attention_head_dim=64, cross_attention_dim=2048, num_layers=28, activation_fn="gelu-approximate",
             qk_norm="rms_norm_across_heads", norm_elementwise_affine=False, norm_eps=1e-6,
             caption_channels=4096, attention_bias=True, attention_out_bias=True),
        "Hub transformer/config.json of Lightricks/LTX-Video (diffusers 0.32.0.dev0), = the class defaults "
        "that diffusers scripts/convert_ltx_to_diffusers.py builds it with",
        size=(512, 704, 161), vae=(8, 32), text=(128, 4096), batch=2, calls_per_step=1, steps=50,
        inputs=ltx_inputs,
        tiny=dict(num_attention_heads=2, attention_head_dim=16, cross_attention_dim=32, num_layers=2,
                  caption_channels=32),
        tiny_size=(128, 128, 17), tiny_text=(16, 32), est_forward_s=0.4, est_compile_s=25,
        defaults_source=f"LTXPipeline.__call__ ({DIFFUSERS}): 512x704, 161 frames, 50 steps, guidance 3, "
                        "max_sequence_length 128; VAE 32x spatial, 8x temporal"),
    FamilySpec(
        "cogvideox", "CogVideoXTransformer3DModel", "THUDM/CogVideoX-5b",
        dict(num_attention_heads=48, attention_head_dim=64, in_channels=16, out_channels=16,
             flip_sin_to_cos=True, freq_shift=0, time_embed_dim=512, text_embed_dim=4096, num_layers=42,
             dropout=0.0, attention_bias=True, sample_width=90, sample_height=60, sample_frames=49,
             patch_size=2, temporal_compression_ratio=4, max_text_seq_length=226,
             activation_fn="gelu-approximate", timestep_activation_fn="silu", norm_elementwise_affine=True,
             norm_eps=1e-5, spatial_interpolation_scale=1.875, temporal_interpolation_scale=1.0,
             use_rotary_positional_embeddings=True, use_learned_positional_embeddings=False),
        "Hub transformer/config.json of THUDM/CogVideoX-5b = the class defaults with num_layers 42, "
        "num_attention_heads 48, use_rotary_positional_embeddings true (diffusers "
        "scripts/convert_cogvideox_to_diffusers.py: 'For 5B, it is 42 / 48 / True')",
        size=(480, 720, 49), vae=(4, 8), text=(226, 4096), batch=2, calls_per_step=1, steps=50,
        inputs=cogvideox_inputs,
        tiny=dict(num_attention_heads=2, attention_head_dim=16, num_layers=2, text_embed_dim=32,
                  time_embed_dim=8, sample_width=8, sample_height=8, sample_frames=9, max_text_seq_length=16),
        tiny_size=(64, 64, 9), tiny_text=(16, 32), est_forward_s=2.5, est_compile_s=30,
        defaults_source=f"CogVideoXPipeline.__call__ ({DIFFUSERS}): sample_height/width x 8 = 480x720, "
                        "sample_frames 49, 50 steps, guidance 6, max_sequence_length 226; VAE 8x / 4x"),
    FamilySpec(
        "cosmos", "CosmosTransformer3DModel", "nvidia/Cosmos-1.0-Diffusion-7B-Text2World",
        dict(in_channels=16, out_channels=16, num_attention_heads=32, attention_head_dim=128, num_layers=28,
             mlp_ratio=4.0, text_embed_dim=1024, adaln_lora_dim=256, max_size=(128, 240, 240),
             patch_size=(1, 2, 2), rope_scale=(2.0, 1.0, 1.0), concat_padding_mask=True,
             extra_pos_embed_type="learnable"),
        "diffusers scripts/convert_cosmos_to_diffusers.py TRANSFORMER_CONFIGS"
        "['Cosmos-1.0-Diffusion-7B-Text2World'] (the config the Hub checkpoint was converted with)",
        size=(704, 1280, 121), vae=(8, 8), text=(512, 1024), batch=1, calls_per_step=2, steps=36,
        inputs=cosmos_inputs,
        # concat_padding_mask resizes with torchvision, which the CPU machine lacks: off in the dry run
        tiny=dict(num_attention_heads=2, attention_head_dim=16, num_layers=2, text_embed_dim=32,
                  adaln_lora_dim=8, concat_padding_mask=False),
        tiny_size=(64, 64, 9), tiny_text=(16, 32), est_forward_s=5.0, est_compile_s=30,
        defaults_source=f"CosmosTextToWorldPipeline.__call__ ({DIFFUSERS}): 704x1280, 121 frames, 36 steps, "
                        "guidance 7, fps 30, max_sequence_length 512; tokenizer CV8x8x8 (8x / 8x)"),
    FamilySpec(
        "hunyuanvideo", "HunyuanVideoTransformer3DModel", "hunyuanvideo-community/HunyuanVideo",
        dict(in_channels=16, out_channels=16, num_attention_heads=24, attention_head_dim=128, num_layers=20,
             num_single_layers=40, num_refiner_layers=2, mlp_ratio=4.0, patch_size=2, patch_size_t=1,
             qk_norm="rms_norm", guidance_embeds=True, text_embed_dim=4096, pooled_projection_dim=768,
             rope_theta=256.0, rope_axes_dim=(16, 56, 56), image_condition_type=None),
        "Hub transformer/config.json of hunyuanvideo-community/HunyuanVideo (diffusers 0.32.0.dev0) = "
        "diffusers scripts/convert_hunyuan_video_to_diffusers.py "
        "TRANSFORMER_CONFIGS['HYVideo-T/2-cfgdistill']",
        size=(720, 1280, 129), vae=(4, 8), text=(256, 4096), batch=1, calls_per_step=1, steps=50,
        inputs=hunyuan_inputs,
        tiny=dict(num_attention_heads=2, attention_head_dim=16, num_layers=1, num_single_layers=1,
                  num_refiner_layers=1, text_embed_dim=32, pooled_projection_dim=16, rope_axes_dim=(4, 6, 6)),
        tiny_size=(64, 64, 9), tiny_text=(16, 32), est_forward_s=45.0, est_compile_s=60,
        defaults_source=f"HunyuanVideoPipeline.__call__ ({DIFFUSERS}): 720x1280, 129 frames, 50 steps, "
                        "true_cfg_scale 1 (guidance 6 embedded), max_sequence_length 256; VAE 8x / 4x"),
)}


# -- planning ------------------------------------------------------------------------------------
class Planner:
    """Skip a step that would end past the deadline (seconds since start), saying why."""

    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s

    def skip_reason(self, est_s: float) -> str | None:
        left = self.deadline_s - (time.perf_counter() - REC.t0)
        if est_s > left:
            return f"skipped: needs ~{est_s:.0f} s, {max(left, 0):.0f} s left before --deadline-s"
        return None


# -- attention routing ---------------------------------------------------------------------------
def attention_modules(tx: Any) -> list[Any]:
    from diffusers.models.attention import AttentionModuleMixin
    from diffusers.models.attention_processor import Attention

    return [m for m in tx.modules() if isinstance(m, (Attention, AttentionModuleMixin))]


def routing_facts(tx: Any) -> dict[str, Any]:
    """What the project's `attention.set_attention` can reach in this model: processors with a per-module
    backend, and of those the modules it would treat as cross-attention (`is_cross_attention`)."""
    mods = attention_modules(tx)
    per_module = [m for m in mods if hasattr(getattr(m, "processor", None), "_attention_backend")]
    procs = sorted({type(m.processor).__name__ for m in mods})
    return {"attention_modules": len(mods), "processors": procs,
            "with_per_module_backend": len(per_module),
            "marked_cross_attention": sum(bool(getattr(m, "is_cross_attention", False)) for m in per_module),
            "lacking_is_cross_attention_attr": sum(not hasattr(m, "is_cross_attention") for m in per_module)}


class ExactRouter:
    """An attention function for diffusers' dispatcher: `fast` (FA3) for calls without a mask, diffusers'
    SDPA (`native`) for calls with one. Both are exact; FA3 takes no mask. It records the call shapes it
    sees (at trace time under compile), so the JSON says what went where."""

    def __init__(self, fast: Callable[..., Any], fast_name: str) -> None:
        from diffusers.models import attention_dispatch as ad

        self.fast, self.fast_name = fast, fast_name
        self.native = ad._AttentionBackendRegistry._backends[ad.AttentionBackendName.NATIVE]
        self.seen: set[tuple[Any, ...]] = set()

    def __call__(self, query: Any, key: Any, value: Any, attn_mask: Any = None, dropout_p: float = 0.0,
                 is_causal: bool = False, scale: float | None = None, enable_gqa: bool = False,
                 return_lse: bool = False, _parallel_config: Any = None) -> Any:
        simple = attn_mask is None and dropout_p == 0.0 and not enable_gqa and not return_lse \
            and _parallel_config is None
        self.seen.add((self.fast_name if simple else "native", attn_mask is not None,
                       int(query.shape[1]), int(key.shape[1]), int(query.shape[2]), int(query.shape[3])))
        if simple:
            return self.fast(query=query, key=key, value=value, scale=scale, is_causal=is_causal)
        return self.native(query=query, key=key, value=value, attn_mask=attn_mask, dropout_p=dropout_p,
                           is_causal=is_causal, scale=scale, enable_gqa=enable_gqa, return_lse=return_lse,
                           _parallel_config=_parallel_config)

    def summary(self) -> list[dict[str, Any]]:
        keys = ("kernel", "masked", "q_tokens", "kv_tokens", "heads", "head_dim")
        return [dict(zip(keys, s, strict=True)) for s in sorted(self.seen, key=str)]


def route_attention(tx: Any, router: ExactRouter) -> None:
    """Send every dispatcher call of `tx` to `router`, registered under diffusers' FA3 name: processors
    with a per-module backend point at it, and it is the active backend for those without (Cosmos)."""
    from diffusers.models import attention_dispatch as ad

    name = ad.AttentionBackendName._FLASH_3
    ad._AttentionBackendRegistry.register(name, constraints=[])(router)
    for m in attention_modules(tx):
        if hasattr(getattr(m, "processor", None), "_attention_backend"):
            m.processor._attention_backend = name
    ad._AttentionBackendRegistry.set_active_backend(name)


# -- one family ----------------------------------------------------------------------------------
def build(spec: FamilySpec, device: str, tiny: bool) -> Any:
    import diffusers
    from accelerate import init_empty_weights

    cls = getattr(diffusers, spec.model_class)
    cfg = {**spec.config, **spec.tiny} if tiny else spec.config
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    with init_empty_weights(include_buffers=False):
        model = cls(**cfg)
    fp32 = list(getattr(cls, "_keep_in_fp32_modules", None) or [])
    return bg.materialize(model, device, dtype, fp32, seed=1)


def peak_gib(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def planned_reps(forward_s: float, args: argparse.Namespace) -> int:
    """Timed calls after the warm-up: about --mode-budget-s of them, at least 2 (1 for long forwards)."""
    floor = 2 if forward_s < args.long_forward_s else 1
    return max(floor, min(args.reps, int(args.mode_budget_s // max(forward_s, 1e-3))))


def shapes(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return list(v.shape)
    if isinstance(v, tuple) and v and isinstance(v[0], torch.Tensor):
        return [list(x.shape) for x in v]
    return v


def time_mode(tx: Any, inputs: dict[str, Any], device: str, args: argparse.Namespace,
              est_forward_s: float) -> tuple[dict[str, Any], torch.Tensor]:
    """First call (warm-up; the compile under `lossless`), then the median of `reps` timed calls."""
    rec: dict[str, Any] = {}
    reset_peak(device)
    with torch.inference_mode():
        t = time.perf_counter()
        out = tx(**inputs)[0]
        ba.sync(device)
        rec["first_call_s"] = round(time.perf_counter() - t, 3)
        reps = planned_reps(min(rec["first_call_s"], est_forward_s) if est_forward_s else rec["first_call_s"],
                            args)
        b = ba.bench(lambda: tx(**inputs)[0], device, reps, 0)
    rec.update(forward_s=round(b["median_s"], 4), min_s=round(b["min_s"], 4), reps=reps,
               times_s=b["times_s"], peak_mem_gib=peak_gib(device))
    return rec, out.float()


def compare(out: torch.Tensor, ref: torch.Tensor) -> dict[str, Any]:
    d = (out - ref).abs()
    return {"max_abs": float(d.max()), "ref_max_abs": float(ref.abs().max()),
            "rel_l2": bg.rel_l2(out, ref), "finite": bool(torch.isfinite(out).all()),
            "ref_finite": bool(torch.isfinite(ref).all())}


def pipe_of(tx: Any) -> Any:
    return SimpleNamespace(transformer=tx)


def apply_lossless(spec: FamilySpec, tx: Any, device: str, args: argparse.Namespace,
                   rec: dict[str, Any]) -> ExactRouter | None:
    """The project's `lossless` on a bare transformer: its own apply_acceleration for Wan, the same
    parts applied generically for the others (module docstring). Returns the router, if one was set."""
    from videophy_bench.generator import acceleration, attention

    compile_on = device.startswith("cuda") or args.compile_cpu
    if spec.name == "wan":
        rec["label"] = acceleration.apply_acceleration(pipe_of(tx), "lossless", device,
                                                       compile_blocks=compile_on) + " + t=shared (inputs)"
        return None
    kernel, note = attention.resolve_kernel(attention.requested_kernel(), device)
    if kernel == attention.FA3:
        router = ExactRouter(attention._fa3_function(), "fa3")
    elif args.tiny:  # CPU dry run: exercise the routing with SDPA standing in for the fast kernel
        from diffusers.models import attention_dispatch as ad

        router = ExactRouter(ad._AttentionBackendRegistry._backends[ad.AttentionBackendName.NATIVE],
                             "native-as-fast")
    else:
        router = None
        attention.set_attention([tx], kernel)
    if router is not None:
        route_attention(tx, router)
    if not acceleration._repeated_blocks(tx):  # no `_repeated_blocks`: its `_no_split_modules`
        tx._repeated_blocks = list(type(tx)._no_split_modules or [])
        rec["compiled_classes_from"] = "_no_split_modules"
    blocks = 0
    if compile_on:
        blocks = acceleration.compile_regions(pipe_of(tx), fullgraph=True)
    rec["label"] = (f"lossless-generic(attn={router.fast_name if router else kernel}[unmasked]/native[masked]"
                    f"{f'[{note}]' if note else ''},compile=regional:{blocks} blocks"
                    f"{'' if compile_on else ' (off)'})")
    return router


def project_path(spec: FamilySpec, tx: Any, inputs: dict[str, Any], device: str,
                 args: argparse.Namespace, eager: dict[str, Any], eager_out: torch.Tensor) -> dict[str, Any]:
    """The project's apply_acceleration(..., "lossless") exactly as the generator applies it, timed
    and compared with eager like the generic lossless row."""
    from videophy_bench.generator import acceleration

    rec: dict[str, Any] = {"compilable_blocks": len(acceleration._repeated_blocks(tx))}
    compile_on = device.startswith("cuda") or args.compile_cpu
    try:
        rec["label"] = acceleration.apply_acceleration(pipe_of(tx), "lossless", device,
                                                       compile_blocks=compile_on)
        timing, out = time_mode(tx, inputs, device, args, eager["forward_s"])
        rec.update(timing, ok=True)
        rec["speedup_vs_eager"] = round(eager["forward_s"] / rec["forward_s"], 3)
        rec["vs_eager"] = compare(out, eager_out)
    except Exception as exc:
        rec["ok"], rec["error"] = False, f"{type(exc).__name__}: {str(exc)[:500]}"
        rec["traceback"] = traceback.format_exc()[-2500:]
    return rec


def reset_model(tx: Any) -> None:
    from videophy_bench.generator import acceleration, attention

    torch._dynamo.reset()
    acceleration.uncompile(pipe_of(tx))
    tx.__dict__.pop("_repeated_blocks", None)  # the generic lossless' stand-in, not diffusers' own
    attention.reset_attention([tx])


def run_family(spec: FamilySpec, args: argparse.Namespace, plan: Planner) -> dict[str, Any]:
    device = args.device
    res: dict[str, Any] = RESULTS["families"].setdefault(spec.name, {})
    size = spec.tiny_size if args.tiny else spec.size
    fl, hl, wl = latent_shape(spec, size)
    cfg = {**spec.config, **spec.tiny} if args.tiny else spec.config
    res.update(model_class=spec.model_class, repo=spec.repo, config_source=spec.config_source,
               defaults_source=spec.defaults_source, config=cfg,
               size={"height": size[0], "width": size[1], "frames": size[2]},
               latent={"frames": fl, "height": hl, "width": wl},
               video_tokens=video_tokens(cfg, (fl, hl, wl)),
               text_tokens=(spec.tiny_text if args.tiny else spec.text)[0],
               batch=spec.batch,
               calls_per_step=spec.calls_per_step, steps=spec.steps)
    est = spec.est_forward_s
    why = plan.skip_reason(8 + 3 * est)
    if why:
        res["skipped"] = why
        return res
    t = time.perf_counter()
    tx = build(spec, device, args.tiny)
    ba.sync(device)
    res["build_s"] = round(time.perf_counter() - t, 1)
    res["params"] = bg.n_params(tx)
    if device.startswith("cuda"):
        res["weights_gib"] = round(torch.cuda.memory_allocated() / 2**30, 2)
    res["routing_facts"] = routing_facts(tx)
    log(f"{spec.name}: {res['params'] / 1e9:.2f} B params built in {res['build_s']} s; latent "
        f"{fl}x{hl}x{wl}, batch {spec.batch}")
    outs: dict[str, torch.Tensor] = {}
    try:
        # eager: diffusers' defaults
        reset_model(tx)
        inputs = spec.inputs(tx, spec, device, args.tiny, lossless=False)
        res["inputs"] = {k: shapes(v) for k, v in inputs.items()}
        res["eager"], outs["eager"] = time_mode(tx, inputs, device, args, 0.0)
        est = res["eager"]["forward_s"]
        log(f"{spec.name}: eager {est:.4f} s (first {res['eager']['first_call_s']} s, "
            f"peak {res['eager']['peak_mem_gib']} GiB)")
        save()
        # lossless
        why = plan.skip_reason(spec.est_compile_s + (1 + planned_reps(est, args)) * est)
        if why:
            res["lossless"] = {"skipped": why}
        else:
            rec: dict[str, Any] = {}
            reset_model(tx)
            router = apply_lossless(spec, tx, device, args, rec)
            inputs = spec.inputs(tx, spec, device, args.tiny, lossless=True)
            try:
                timing, outs["lossless"] = time_mode(tx, inputs, device, args, est)
                rec.update(timing)
                rec["speedup_vs_eager"] = round(res["eager"]["forward_s"] / rec["forward_s"], 3)
                rec["vs_eager"] = compare(outs["lossless"], outs["eager"])
                log(f"{spec.name}: {rec['label']} {rec['forward_s']:.4f} s ({rec['speedup_vs_eager']}x, "
                    f"first {rec['first_call_s']} s), rel L2 {rec['vs_eager']['rel_l2']:.2e}")
            except Exception as exc:
                rec["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
                rec["traceback"] = traceback.format_exc()[-2500:]
                log(f"{spec.name}: lossless failed: {rec['error'][:300]}")
            if router is not None:
                rec["attention_calls_seen"] = router.summary()
            res["lossless"] = rec
        save()
        # the project's apply_acceleration as it is (Wan: that is the lossless row above)
        if args.project_path and spec.name != "wan":
            why = plan.skip_reason(spec.est_compile_s + (1 + planned_reps(est, args)) * est)
            reset_model(tx)
            inputs = spec.inputs(tx, spec, device, args.tiny, lossless=True)
            rec = {"skipped": why} if why else project_path(spec, tx, inputs, device, args, res["eager"],
                                                            outs["eager"])
            res["project_path"] = rec
            log(f"{spec.name}: project apply_acceleration: " + (
                f"{rec['label']} {rec['forward_s']:.4f} s ({rec['speedup_vs_eager']}x), rel L2 "
                f"{rec['vs_eager']['rel_l2']:.2e}" if rec.get("ok") else str(rec.get("error", why))[:300]))
    finally:
        reset_model(tx)
        del tx, outs
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        save()
    return res


def to_meta(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.to("meta")
    if isinstance(v, tuple):
        return tuple(to_meta(x) for x in v)
    return v


def count_flops(spec: FamilySpec) -> dict[str, Any]:
    """FLOPs of one full-size forward (the lossless inputs), counted by torch's FlopCounterMode on the
    meta device: no weights, no memory, no GPU. Matrix products and attention (as two batched matrix
    products when SDPA decomposes on meta) are counted; elementwise work is not."""
    import diffusers
    from torch.utils.flop_counter import FlopCounterMode

    cfg, note = dict(spec.config), None
    if cfg.get("concat_padding_mask") and not diffusers.utils.is_torchvision_available():
        cfg["concat_padding_mask"], note = False, "padding-mask input channel not counted (no torchvision)"
    with torch.device("meta"):
        tx = getattr(diffusers, spec.model_class)(**cfg).to(torch.bfloat16)
    inputs = {k: to_meta(v) for k, v in spec.inputs(tx, spec, "cpu", False, lossless=True).items()}
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        tx(**inputs)
    by_op = {str(k): v for k, v in fc.get_flop_counts().get("Global", {}).items()}
    return {"tflop": round(fc.get_total_flops() / 1e12, 2),
            "by_op_tflop": {k: round(v / 1e12, 2) for k, v in sorted(by_op.items())}, "note": note}


def summary_table(fams: dict[str, Any]) -> str:
    """One row per (family, accelerated mode): the generic lossless and the project's own path."""
    rows = ["family | mode | batch x tokens | eager s | accelerated s | speed-up | rel L2 | max abs "
            "| peak GiB e/a | label"]
    for name, r in fams.items():
        e = r.get("eager", {})
        for mode in ("lossless", "project_path"):
            lo = r.get(mode)
            if lo is None:
                continue
            cmp = lo.get("vs_eager")
            rows.append(" | ".join(str(x) for x in (
                name, mode, f"{r.get('batch')} x {r.get('video_tokens')}",
                e.get("forward_s", r.get("skipped", r.get("error", "-"))),
                lo.get("forward_s", lo.get("skipped", str(lo.get("error", "-"))[:80])),
                lo.get("speedup_vs_eager", "-"), f"{cmp['rel_l2']:.2e}" if cmp else "-",
                f"{cmp['max_abs']:.2e}" if cmp else "-",
                f"{e.get('peak_mem_gib')}/{lo.get('peak_mem_gib')}", lo.get("label", "-"))))
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default=",".join(FAMILIES),
                    help=f"comma-separated, run in this order (known: {', '.join(FAMILIES)})")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny configs and sizes (CPU dry run of this code)")
    ap.add_argument("--compile-cpu", action="store_true", help="compile on the CPU too (slow)")
    ap.add_argument("--reps", type=int, default=5, help="most timed calls per mode")
    ap.add_argument("--mode-budget-s", type=float, default=12.0, help="timed calls per mode: about this long")
    ap.add_argument("--long-forward-s", type=float, default=20.0,
                    help="forwards longer than this are timed once after the warm-up, others at least twice")
    ap.add_argument("--deadline-s", type=float, default=1e9, help="skip steps that would end after this")
    ap.add_argument("--no-project-path", dest="project_path", action="store_false",
                    help="do not try the project's apply_acceleration as it is on the new families")
    ap.add_argument("--count-flops", action="store_true",
                    help="only count full-size FLOPs on the meta device (CPU), to OUT/flops.json")
    ap.add_argument("--out", default="bench/results/families_run")
    args = ap.parse_args()
    names = [n for n in args.families.split(",") if n]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        ap.error(f"unknown families {', '.join(unknown)} (known: {', '.join(FAMILIES)})")
    if args.count_flops:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        flops = {n: count_flops(FAMILIES[n]) for n in names}
        (out / "flops.json").write_text(json.dumps({"argv": sys.argv, "torch": torch.__version__,
                                                    "families": flops}, indent=1))
        print(json.dumps({n: f["tflop"] for n, f in flops.items()}))
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda but CUDA is not available (use --tiny --device cpu for a dry run)")
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # one "experimental feature" warning per backend switch
    REC.out = Path(args.out)
    REC.out.mkdir(parents=True, exist_ok=True)
    if not args.device.startswith("cuda"):
        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    RESULTS.update(argv=sys.argv, args=vars(args), env=ba.probe_env(), prompt_tokens=PROMPT_TOKENS,
                   families={})
    log(json.dumps({k: RESULTS["env"].get(k) for k in ("torch", "gpu", "cuda")}, default=str))
    save()
    plan = Planner(args.deadline_s)
    for name in names:
        try:
            run_family(FAMILIES[name], args, plan)
        except Exception as exc:  # one family's failure must not lose the others
            rec = RESULTS["families"].setdefault(name, {})
            rec["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
            rec["traceback"] = traceback.format_exc()[-3000:]
            log(f"!! {name}: {rec['error'][:300]}")
        save()
        with contextlib.suppress(Exception):
            ba.sync(args.device)
    RESULTS["wall_s"] = round(time.perf_counter() - REC.t0, 1)
    save()
    print(summary_table(RESULTS["families"]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
