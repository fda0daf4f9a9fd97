"""Generation speed benchmark: full-size Wan2.2 models with random weights, eager vs our presets.

Speed does not depend on weight values, so full-size models with random weights stand in for the
real checkpoints (nothing is downloaded). What each run measures, and what it extrapolates, is written
into the JSON next to every number; docs/performance.md has the results and the exact commands.

  python bench/bench_generation.py --model 5b --out DIR      # TI2V-5B, 1280x704x121, CFG 5 (H100)
  python bench/bench_generation.py --model a14b --out DIR    # one T2V-A14B step, 1280x720x81, both experts
  python bench/bench_generation.py --model small --out DIR   # the 5b flow on a 2-layer model (GPU smoke)
  python bench/bench_generation.py --model tiny --device cpu --out DIR   # the 5b flow on CPU (smoke)

The 5b flow: build (transformer bf16, Wan2.2 VAE fp32, full-size UMT5 bf16, all random) -> text
encode -> one transformer forward per exact attention backend (eager) -> the plain diffusers eager
pipeline (`none` preset) for --steps-eager steps, VAE decode and MP4 encode -> the compiled forward
per backend -> the `lossless` preset through the service backend (DiffusersWanBackend.generate):
warm-up, a GPU equality check against the eager run, one full video end to end (--steps-full), a
reference video (--steps-fast) -> `fbcache` and `fp8` on --steps-fast steps with PSNR against it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import use_repo_imports

use_repo_imports()

import numpy as np  # noqa: E402
import torch  # noqa: E402

PROMPT = "A red ball rolls off the edge of a wooden table and bounces twice on the tiled floor."
SEED = 1234

# Full configs: wan22-diffusers.md section 2 (official conversion script).
T5_FULL = dict(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
               relative_attention_num_buckets=32, relative_attention_max_distance=128,
               feed_forward_proj="gated-gelu", dense_act_fn="gelu_new", is_gated_act=True,
               layer_norm_epsilon=1e-6, dropout_rate=0.0, tie_word_embeddings=False, pad_token_id=0,
               eos_token_id=1, decoder_start_token_id=0)
TX_COMMON = dict(patch_size=(1, 2, 2), attention_head_dim=128, text_dim=4096, freq_dim=256,
                 cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
TX_5B = dict(TX_COMMON, num_attention_heads=24, in_channels=48, out_channels=48, ffn_dim=14336, num_layers=30)
TX_14B = dict(TX_COMMON, num_attention_heads=40, in_channels=16, out_channels=16, ffn_dim=13824,
              num_layers=40)
VAE22_MEAN = [-0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813,
              0.0891, 0.157, -0.0098, 0.0375, -0.1825, -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108,
              -0.2158, 0.2502, -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.123, -0.0313,
              -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.052, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944,
              0.3573, -0.0548, -0.1681, -0.0667]
VAE22_STD = [0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.499, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901,
             0.6885, 0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
             0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944,
             0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.06, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744]
VAE22 = dict(base_dim=160, decoder_base_dim=256, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
             attn_scales=[], temperal_downsample=[False, True, True], is_residual=True, in_channels=12,
             out_channels=12, patch_size=2, scale_factor_temporal=4, scale_factor_spatial=16,
             latents_mean=VAE22_MEAN, latents_std=VAE22_STD)
VAE22_TINY = dict(base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
                  latents_mean=[0.0] * 48, latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                  scale_factor_spatial=16, scale_factor_temporal=4, temperal_downsample=[False, True, True])

VAE21 = dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
             temperal_downsample=[False, True, True])  # Wan2.1 VAE (A14B); diffusers' default latent stats
# model -> transformer config, VAE config, UMT5 overrides, (height, width, frames)
MODELS: dict[str, dict[str, Any]] = {
    "5b": dict(tx=TX_5B, vae=VAE22, t5={}, size=(704, 1280, 121)),
    "small": dict(tx=dict(TX_COMMON, attention_head_dim=64, num_attention_heads=2, in_channels=48,
                          out_channels=48, ffn_dim=256, num_layers=2),
                  vae=VAE22, t5=dict(num_layers=1, vocab_size=32128), size=(256, 256, 17)),
    "tiny": dict(tx=dict(TX_COMMON, attention_head_dim=16, num_attention_heads=2, in_channels=48,
                         out_channels=48, ffn_dim=64, num_layers=2, text_dim=32, rope_max_seq_len=32),
                 vae=VAE22_TINY, t5=dict(num_layers=1, vocab_size=256, d_model=32, d_kv=8, d_ff=64,
                                         num_heads=4),
                 size=(64, 64, 9)),
}

RESULTS: dict[str, Any] = {}
OUT = Path(".")


# -- bookkeeping ----------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def save() -> None:
    (OUT / "results.json").write_text(json.dumps(RESULTS, indent=1, default=str))


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def mem_gib(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else 0.0


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


@contextlib.contextmanager
def phase(name: str, device: str):
    """Record a phase's wall time, peak memory and errors in RESULTS[name]; never raise."""
    rec: dict[str, Any] = RESULTS.setdefault(name, {})
    reset_peak(device)
    t0 = time.perf_counter()
    log(f"== {name}")
    try:
        yield rec
        rec["ok"] = True
    except Exception as exc:
        rec["ok"] = False
        rec["error"] = f"{type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc()[-4000:]
        log(f"!! {name} failed: {rec['error']}")
    finally:
        sync(device) if rec.get("ok") else None
        rec["phase_wall_s"] = round(time.perf_counter() - t0, 3)
        rec["peak_mem_gib"] = round(mem_gib(device), 2)
        save()


def timed(fn, device: str) -> tuple[Any, float]:
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t0


# -- building full-size models with random weights -------------------------------------------------
def _init_param(name: str, t: torch.Tensor, gen: torch.Generator) -> None:
    leaf = name.rsplit(".", 1)[-1]
    if t.ndim >= 2:
        if "shared" in name or "embed_tokens" in name:
            t.normal_(0.0, 1.0, generator=gen)
        elif "scale_shift_table" in name:
            t.normal_(0.0, 1.0 / math.sqrt(t.shape[-1]), generator=gen)
        else:  # nn.Linear / conv default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            bound = 1.0 / math.sqrt(t[0].numel())
            t.uniform_(-bound, bound, generator=gen)
    elif "norm" in name or leaf in {"weight", "gamma"}:
        t.fill_(1.0)
    else:
        t.uniform_(-0.02, 0.02, generator=gen)


def materialize(model: torch.nn.Module, device: str, dtype: torch.dtype, fp32_modules: list[str],
                seed: int = 0) -> torch.nn.Module:
    """Params created on meta (accelerate init_empty_weights) become random tensors on `device`;
    modules named in fp32_modules (diffusers' _keep_in_fp32_modules rule) stay fp32."""
    gen = torch.Generator(device=device).manual_seed(seed)
    for mname, module in model.named_modules():
        for pname, p in list(module._parameters.items()):
            if p is None:
                continue
            full = f"{mname}.{pname}" if mname else pname
            keep32 = any(k in full.split(".") for k in fp32_modules)
            t = torch.empty(p.shape, dtype=torch.float32 if keep32 else dtype, device=device)
            with torch.no_grad():
                _init_param(full, t, gen)
            module._parameters[pname] = torch.nn.Parameter(t, requires_grad=False)
    model.to(device)  # buffers were built for real on the CPU
    return model.eval()


def build_transformer(cfg: dict[str, Any], device: str, dtype: torch.dtype, seed: int) -> Any:
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel

    with init_empty_weights(include_buffers=False):
        model = WanTransformer3DModel(**cfg)
    return materialize(model, device, dtype, list(WanTransformer3DModel._keep_in_fp32_modules or []), seed)


def build_text_encoder(overrides: dict[str, Any], device: str, dtype: torch.dtype) -> Any:
    from accelerate import init_empty_weights
    from transformers import UMT5Config, UMT5EncoderModel

    with init_empty_weights(include_buffers=False):
        model = UMT5EncoderModel(UMT5Config(**{**T5_FULL, **overrides}))
    model = materialize(model, device, dtype, [], seed=7)
    with contextlib.suppress(Exception):
        model.encoder.embed_tokens = model.shared  # the tie init_empty_weights breaks
    return model


def build_vae(cfg: dict[str, Any], device: str) -> Any:
    from diffusers import AutoencoderKLWan

    torch.manual_seed(3)
    with torch.device(device):
        vae = AutoencoderKLWan(**cfg)
    return vae.to(device=device, dtype=torch.float32).eval()


def build_ti2v(model: str, device: str) -> Any:
    from diffusers import UniPCMultistepScheduler, WanPipeline

    from videophy_bench.generator.tiny import _tokenizer

    spec = MODELS[model]
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tx = build_transformer(spec["tx"], device, dtype, seed=1)
    vae = build_vae(spec["vae"], device)
    te = build_text_encoder(spec["t5"], device, dtype)
    sched = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                    num_train_timesteps=1000, flow_shift=5.0)
    pipe = WanPipeline(tokenizer=_tokenizer(), text_encoder=te, vae=vae, scheduler=sched, transformer=tx,
                       transformer_2=None, boundary_ratio=None, expand_timesteps=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_moe(device: str, t5_overrides: dict[str, Any]) -> Any:
    """T2V-A14B at full size: two 14B experts (bf16), Wan2.1 VAE (fp32), UMT5 with `t5_overrides`.
    On the CPU the experts are 2-layer stand-ins (a dry run of the code, not of the size)."""
    from diffusers import UniPCMultistepScheduler, WanPipeline

    from videophy_bench.generator.tiny import _tokenizer

    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    cfg = TX_14B if cuda else dict(TX_14B, num_layers=2, num_attention_heads=2, attention_head_dim=16,
                                   ffn_dim=64)
    experts = [build_transformer(cfg, device, dtype, seed=s) for s in (1, 2)]
    sched = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                    num_train_timesteps=1000, flow_shift=12.0)
    pipe = WanPipeline(tokenizer=_tokenizer(), text_encoder=build_text_encoder(t5_overrides, device, dtype),
                       vae=build_vae(VAE21, device), scheduler=sched, transformer=experts[0],
                       transformer_2=experts[1], boundary_ratio=0.875, expand_timesteps=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def n_params(m: Any) -> int:
    return sum(p.numel() for p in m.parameters())


# -- measurement helpers ---------------------------------------------------------------------------
class ForwardClock:
    """CUDA events at every transformer call (no host sync): per-forward GPU times, read afterwards."""

    def __init__(self, modules: list[Any], device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.marks: list[Any] = []
        self.handles = [m.register_forward_pre_hook(self._pre) for m in modules]
        self.handles += [m.register_forward_hook(self._post) for m in modules]

    def _event(self) -> Any:
        if self.cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def _pre(self, *_: Any) -> None:
        self.marks.append(("start", self._event()))

    def _post(self, *_: Any) -> None:
        self.marks.append(("end", self._event()))

    def close(self) -> list[float]:
        for h in self.handles:
            h.remove()
        sync("cuda" if self.cuda else "cpu")
        times = []
        for (k0, a), (k1, b) in zip(self.marks[::2], self.marks[1::2], strict=False):
            if k0 == "start" and k1 == "end":
                times.append(a.elapsed_time(b) / 1e3 if self.cuda else b - a)
        return times


class DecodeTap:
    """Wrap vae.decode: keep its input latents, time it with events."""

    def __init__(self, vae: Any, device: str) -> None:
        self.vae, self.device, self.orig = vae, device, vae.decode
        self.latents: torch.Tensor | None = None
        self.seconds = 0.0

        def decode(z: torch.Tensor, *a: Any, **k: Any) -> Any:
            self.latents = z.detach().float().cpu()
            sync(device)
            t0 = time.perf_counter()
            out = self.orig(z, *a, **k)
            sync(device)
            self.seconds = time.perf_counter() - t0
            return out

        vae.decode = decode

    def close(self) -> None:
        with contextlib.suppress(AttributeError):
            del self.vae.decode


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    from videophy_bench.common.video import to_uint8

    x, y = to_uint8(a).astype(np.float64), to_uint8(b).astype(np.float64)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float().flatten(), b.float().flatten()
    return float((a - b).norm() / b.norm().clamp(min=1e-30))


def unit(frames: np.ndarray) -> np.ndarray:
    """Frames as float32 in [0, 1]: the backend returns uint8, the plain pipeline floats."""
    return frames.astype(np.float32) / 255.0 if frames.dtype == np.uint8 else frames.astype(np.float32)


def compare(rec: dict[str, Any], frames: np.ndarray, ref_frames: np.ndarray, lat: Any, ref_lat: Any) -> None:
    rec["psnr_db"] = round(psnr(frames, ref_frames), 2)
    diff = np.abs(unit(frames) - unit(ref_frames))
    rec["max_abs_diff_frames"] = float(np.max(diff))
    if lat is not None and ref_lat is not None:
        rec["latent_rel_l2"] = rel_l2(lat, ref_lat)


def frame_stats(frames: np.ndarray) -> dict[str, float]:
    frames = unit(frames)
    return {"mean": float(frames.mean()), "std": float(frames.std()),
            "finite": bool(np.isfinite(frames).all()),
            "frac_clipped": float(((frames <= 0.0) | (frames >= 1.0)).mean())}


def mp4_time(frames: np.ndarray, fps: int) -> tuple[float, int]:
    from videophy_bench.common.video import DEFAULT_QUALITY, encode_mp4

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "v.mp4"
        t0 = time.perf_counter()
        encode_mp4(frames, path, fps=fps, quality=DEFAULT_QUALITY)
        return time.perf_counter() - t0, path.stat().st_size


def forward_inputs(tx: Any, size: tuple[int, int, int], embeds: torch.Tensor, device: str, vae_t: int,
                   vae_s: int, per_token_t: bool) -> dict[str, Any]:
    h, w, f = size
    c = tx.config.in_channels
    fl, hl, wl = (f - 1) // vae_t + 1, h // vae_s, w // vae_s
    dtype = tx.dtype  # diffusers: the compute dtype, skipping _keep_in_fp32_modules
    g = torch.Generator(device=device).manual_seed(11)
    x = torch.randn((1, c, fl, hl, wl), generator=g, device=device, dtype=torch.float32).to(dtype)
    seq = fl * (hl // 2) * (wl // 2)
    t = torch.full((1, seq), 999.0, device=device) if per_token_t else torch.full((1,), 999.0, device=device)
    return dict(hidden_states=x, timestep=t, encoder_hidden_states=embeds.to(dtype), return_dict=False)


def time_forward(tx: Any, inputs: dict[str, Any], device: str, reps: int, warm: int = 1) -> dict[str, Any]:
    out = None
    first = []
    with torch.inference_mode():
        for _ in range(warm):
            out, s = timed(lambda: tx(**inputs)[0], device)
            first.append(s)
        ts = []
        for _ in range(reps):
            out, s = timed(lambda: tx(**inputs)[0], device)
            ts.append(s)
    return {"first_call_s": [round(x, 3) for x in first], "times_s": [round(x, 4) for x in ts],
            "median_s": round(statistics.median(ts), 4), "out": out}


# -- the TI2V-5B flow --------------------------------------------------------------------------------
def bench_preset_for(model: str) -> Any:
    from videophy_bench.generator.presets import PRESETS

    h, w, f = MODELS[model]["size"]
    base = PRESETS["wan2.2-ti2v-5b"]
    if model == "5b":
        return base
    return dataclasses.replace(base, name=f"bench-{model}", height=h, width=w, num_frames=f, sizes=None)


def attach_backend(pipe: Any, preset: Any, device: str, acceleration: str) -> Any:
    """A DiffusersWanBackend over an already built pipeline (the service's generate path, no load)."""
    from videophy_bench.generator.diffusers_backend import DiffusersWanBackend

    b = DiffusersWanBackend(preset, Path("."), "random-weights", device, model_id="bench/random",
                            acceleration=acceleration)
    b.attach(pipe)  # build_ti2v's scheduler already has the preset's flow shift (5.0)
    return b


def run_generate(b: Any, steps: int, device: str) -> dict[str, Any]:
    """backend.generate at `steps` steps + MP4 encode; per-forward GPU times through events."""
    from videophy_bench.generator.backend import GenerationJob
    from videophy_bench.generator.presets import resolve

    params = resolve(b.preset, seed=SEED, num_inference_steps=steps)
    clock = ForwardClock([b.pipe.transformer], device)
    tap = DecodeTap(b.pipe.vae, device)
    try:
        out, wall = timed(lambda: b.generate(GenerationJob(PROMPT, params), lambda *_: None, lambda: False),
                          device)
    finally:
        fw = clock.close()
        tap.close()
    mp4_s, mp4_bytes = mp4_time(out.frames, params.fps)
    rec = {"steps": steps, "generate_wall_s": round(wall, 3), "timings_s": {k: round(v, 3)
           for k, v in out.timings_s.items()}, "vae_decode_s_events": round(tap.seconds, 3),
           "mp4_encode_s": round(mp4_s, 3), "mp4_bytes": mp4_bytes, "forwards": len(fw),
           "forward_s_median": round(statistics.median(fw), 4) if fw else None,
           "forward_s_first": round(fw[0], 4) if fw else None,
           "frames": frame_stats(out.frames), "acceleration": b.acceleration}
    if fw:
        rec["step_overhead_s"] = round((out.timings_s["denoise"] - sum(fw)) / steps, 4)
    rec["end_to_end_s"] = round(wall + mp4_s, 3)
    return {"rec": rec, "frames": out.frames, "latents": tap.latents}


def run_eager_pipe(pipe: Any, preset: Any, embeds: tuple[torch.Tensor, torch.Tensor], steps: int, device: str,
                   output_type: str = "np") -> dict[str, Any]:
    h, w, f = preset.height, preset.width, preset.num_frames
    clock = ForwardClock([pipe.transformer], device)
    tap = DecodeTap(pipe.vae, device)
    gen = torch.Generator(device=device).manual_seed(SEED)
    try:
        with torch.inference_mode():
            out, wall = timed(lambda: pipe(prompt_embeds=embeds[0], negative_prompt_embeds=embeds[1],
                                           height=h,
                                           width=w, num_frames=f, num_inference_steps=steps,
                                           guidance_scale=preset.guidance_scale, generator=gen,
                                           output_type=output_type, max_sequence_length=512), device)
    finally:
        fw = clock.close()
        tap.close()
    frames = out.frames[0] if output_type == "np" else None
    rec = {"steps": steps, "pipeline_wall_s": round(wall, 3), "forwards": len(fw),
           "forward_s_median": round(statistics.median(fw), 4) if fw else None,
           "denoise_s_sum_forwards": round(sum(fw), 3), "vae_decode_s": round(tap.seconds, 3)}
    if frames is not None:
        rec["frames"] = frame_stats(frames)
        rec["denoise_s_wall_est"] = round(wall - tap.seconds, 3)
    return {"rec": rec, "frames": frames, "latents": tap.latents}


def flow_ti2v(args: argparse.Namespace) -> None:
    from videophy_bench.generator import acceleration as acc
    from videophy_bench.generator import attention
    from videophy_bench.generator.presets import WAN_NEGATIVE_PROMPT

    device, model = args.device, args.model
    cuda = device.startswith("cuda")
    preset = bench_preset_for(model)
    size = (preset.height, preset.width, preset.num_frames)
    state: dict[str, Any] = {}

    with phase("build", device) as rec:
        t0 = time.perf_counter()
        pipe = build_ti2v(model, device)
        sync(device)
        rec.update(build_s=round(time.perf_counter() - t0, 2), transformer_params=n_params(pipe.transformer),
                   vae_params=n_params(pipe.vae), text_encoder_params=n_params(pipe.text_encoder),
                   size=size, note="random weights; transformer/UMT5 bf16 (fp32 on CPU), VAE fp32")
        state["pipe"] = pipe
    if "pipe" not in state:
        return

    with phase("text_encode", device) as rec:
        ts = []
        with torch.inference_mode():
            for _ in range(4):
                (pe, ne), s = timed(lambda: pipe.encode_prompt(
                    prompt=PROMPT, negative_prompt=WAN_NEGATIVE_PROMPT, do_classifier_free_guidance=True,
                    num_videos_per_prompt=1, max_sequence_length=512, device=device), device)
                ts.append(s)
        rec.update(times_s=[round(x, 4) for x in ts], median_s=round(statistics.median(ts[1:]), 4),
                   embeds_finite=bool(torch.isfinite(pe).all() and torch.isfinite(ne).all()),
                   note="prompt + negative prompt, 512 tokens each, full-size UMT5-XXL encoder (random)")
        if not rec["embeds_finite"]:  # random UMT5 overflowed: stand-in embeddings for the rest
            pe, ne = (torch.randn_like(pe) * 0.1, torch.randn_like(ne) * 0.1)
            rec["replaced_embeds"] = True
        state["embeds"] = (pe, ne)
    if "embeds" not in state:
        return
    embeds = state["embeds"]
    vae_s = pipe.vae_scale_factor_spatial
    vae_t = pipe.vae_scale_factor_temporal
    inputs = forward_inputs(pipe.transformer, size, embeds[0], device, vae_t, vae_s, per_token_t=True)

    fa3_ok = cuda and attention.fa3_unusable_reason(device) is None
    backends = ["native", "_native_cudnn", "_native_flash"] if cuda else ["native"]
    backends += ["fa3"] if fa3_ok else []
    with phase("attention_eager", device) as rec:
        for be in backends:
            attention.set_attention([pipe.transformer], be)
            r = time_forward(pipe.transformer, inputs, device, reps=args.reps)
            out = r.pop("out")
            if be == "native":
                state["ref_forward"] = out.float().cpu()
            else:
                r["rel_l2_vs_native"] = rel_l2(out.float().cpu(), state["ref_forward"])
            rec[be] = r
        attention.set_attention([pipe.transformer], "native")

    with phase("eager_pipeline", device) as rec:
        # the plain diffusers eager pipeline: preset `none` (native attention, no compile)
        rec["acceleration"] = acc.apply_acceleration(pipe, "none", device)
        run_eager_pipe(pipe, preset, embeds, 1, device, output_type="latent")  # warm-up
        r = run_eager_pipe(pipe, preset, embeds, args.steps_eager, device)
        rec.update(r["rec"])
        mp4_s, mp4_bytes = mp4_time(r["frames"], preset.fps)
        rec.update(mp4_encode_s=round(mp4_s, 3), mp4_bytes=mp4_bytes)
        state["eager"] = r
    if cuda:
        with phase("compile_sweep", device) as rec:
            # regional compile x attention kernel x timestep per token (diffusers' TI2V path) or shared
            shared = forward_inputs(pipe.transformer, size, embeds[0], device, vae_t, vae_s,
                                    per_token_t=False)
            for be in ["native", *(["fa3"] if fa3_ok else [])]:
                for t_mode, inp in (("per_token", inputs), ("shared", shared)):
                    torch._dynamo.reset()
                    acc.uncompile(pipe)
                    attention.set_attention([pipe.transformer], be)
                    acc.compile_regions(pipe, fullgraph=True)
                    r = time_forward(pipe.transformer, inp, device, reps=args.reps)
                    r["rel_l2_vs_eager_native"] = rel_l2(r.pop("out").float().cpu(), state["ref_forward"])
                    rec[f"{be}/t={t_mode}"] = r
                    save()
            acc.uncompile(pipe)
            torch._dynamo.reset()
            attention.set_attention([pipe.transformer], "native")

    with phase("lossless", device) as rec:
        torch._dynamo.reset()
        t0 = time.perf_counter()
        b = attach_backend(pipe, preset, device, "lossless")
        rec["apply_s"] = round(time.perf_counter() - t0, 3)
        rec["acceleration"] = b.acceleration
        _, rec["warmup_s"] = timed(b.warmup, device)
        (new, _cached), rec["prepare_s"] = timed(lambda: b.prepare([PROMPT], WAN_NEGATIVE_PROMPT), device)
        rec["prepare_encoded"] = new
        state["backend"] = b
        # GPU equality check against the eager pipeline, same seed and embeddings
        chk = run_generate(b, args.steps_eager, device)
        rec["check_vs_eager"] = {"steps": args.steps_eager, **chk["rec"]}
        compare(rec["check_vs_eager"], chk["frames"], state["eager"]["frames"], chk["latents"],
                state["eager"]["latents"])
        del chk
        # one full video, end to end, through the service backend
        full = run_generate(b, args.steps_full, device)
        rec["full_video"] = full["rec"]
        rec["full_video"]["measured"] = args.steps_full == preset.num_inference_steps
        del full
        ref = run_generate(b, args.steps_fast, device)
        rec["fast_reference"] = ref["rec"]
        state["ref"] = ref

    runs = [(f"fbcache@{t:g}", "fbcache", t) for t in args.fbcache_thresholds if "fbcache" in args.presets]
    runs += [("fp8", "fp8", None)] if "fp8" in args.presets else []  # last: quantizes in place
    for label, name, threshold in runs:
        if "ref" not in state:
            continue
        with phase(label, device) as rec:
            b = state["backend"]
            torch._dynamo.reset()
            acc.disable_cache(pipe)
            if threshold is not None:
                acc.FBCACHE_THRESHOLD = threshold
            b.acceleration = acc.apply_acceleration(pipe, name, device)
            rec["acceleration"] = b.acceleration
            skips = _count_fbcache(pipe) if name == "fbcache" else None
            with torch.inference_mode():
                _, rec["warm_s"] = timed(lambda: run_eager_pipe(pipe, preset, embeds, 2, device, "latent"),
                                        device)
            if skips is not None:
                skips.clear()
            r = run_generate(b, args.steps_fast, device)
            rec.update(r["rec"])
            if skips is not None:
                rec["fbcache_decisions"] = {"full": skips.count(True), "skipped": skips.count(False)}
            compare(rec, r["frames"], state["ref"]["frames"], r["latents"], state["ref"]["latents"])
            ref_rec = RESULTS["lossless"]["fast_reference"]
            rec["speedup_denoise_vs_lossless"] = round(ref_rec["timings_s"]["denoise"]
                                                       / r["rec"]["timings_s"]["denoise"], 3)
            del r
        acc.disable_cache(pipe)

    summarize_ti2v(preset.num_inference_steps)

    if cuda and args.vae_cudnn_benchmark and "eager" in state:
        with phase("vae_cudnn_benchmark", device) as rec:
            lat = state["eager"]["latents"].to(device)
            lat = lat.to(pipe.vae.dtype)
            torch.backends.cudnn.benchmark = True
            with torch.inference_mode():
                ts = [timed(lambda: pipe.vae.decode(lat, return_dict=False)[0], device)[1] for _ in range(2)]
            torch.backends.cudnn.benchmark = False
            rec.update(times_s=[round(x, 3) for x in ts], note="raw decode of the eager run's latents "
                       "(no latents_mean/std de-normalization: same cost); first includes autotuning")


def summarize_ti2v(steps: int) -> None:
    """Eager per-video time at full steps from its measured parts; lossless as measured."""
    ea, lo = RESULTS.get("eager_pipeline", {}), RESULTS.get("lossless", {})
    te = RESULTS.get("text_encode", {})
    full = lo.get("full_video")
    if not (ea.get("ok") and lo.get("ok") and full):
        return
    loop = full.get("step_overhead_s", 0.0)  # per-step host gaps of the same UniPC loop, measured
    post = full["timings_s"]["vae_decode"] - full["vae_decode_s_events"]  # postprocess to numpy
    eager = (te.get("median_s", 0.0) + steps * (2 * ea["forward_s_median"] + loop) + ea["vae_decode_s"] + post
             + ea["mp4_encode_s"])
    RESULTS["summary"] = {
        "eager_end_to_end_s_extrapolated": round(eager, 1),
        "eager_how": "text encode + steps x (2 x median eager forward + measured loop gap) + eager VAE "
                     "decode + "
                     "postprocess + MP4 encode, each measured in this run",
        "lossless_end_to_end_s": full["end_to_end_s"],
        "lossless_measured_steps": full["steps"],
        "speedup": round(eager / full["end_to_end_s"], 3),
    }
    save()


def _count_fbcache(pipe: Any) -> list[bool] | None:
    """Record the FirstBlockCache head hook's compute/skip decisions (True = all blocks computed)."""
    from diffusers.hooks import HookRegistry

    decisions: list[bool] = []
    try:
        head = pipe.transformer.blocks[0]
        registry = HookRegistry.check_if_exists_or_initialize(head)
        hook = next(h for h in registry.hooks.values() if type(h).__name__ == "FBCHeadBlockHook")
        orig = hook._should_compute_remaining_blocks

        def wrapped(*a: Any, **k: Any) -> bool:
            r = orig(*a, **k)
            decisions.append(bool(r))
            return r

        hook._should_compute_remaining_blocks = wrapped
    except Exception as exc:
        log(f"fbcache decision counter unavailable: {exc}")
    return decisions


# -- the T2V-A14B step ---------------------------------------------------------------------------------
def flow_a14b(args: argparse.Namespace) -> None:
    from videophy_bench.generator import acceleration as acc

    device = args.device
    cuda = device.startswith("cuda")
    # full size on the GPU; a 2-layer stand-in at 64x64x9 on the CPU (smoke test of this code only)
    cfg = TX_14B if cuda else dict(TX_14B, num_layers=2, num_attention_heads=2, attention_head_dim=16,
                                   ffn_dim=64)
    size = (720, 1280, 81) if cuda else (64, 64, 9)
    dtype = torch.bfloat16 if cuda else torch.float32
    state: dict[str, Any] = {}
    with phase("a14b_build", device) as rec:
        t0 = time.perf_counter()
        t1 = build_transformer(cfg, device, dtype, seed=1)
        t2 = build_transformer(cfg, device, dtype, seed=2)
        sync(device)
        rec.update(build_s=round(time.perf_counter() - t0, 2), params_each=n_params(t1),
                   mem_allocated_gib=round(torch.cuda.memory_allocated() / 2**30, 2) if cuda else 0.0)
        state.update(t1=t1, t2=t2)
    if "t1" not in state:
        return

    class P:  # the pipeline-shaped holder acceleration.py works on
        transformer = state["t1"]
        transformer_2 = state["t2"]
        text_encoder = None

    pipe = P()
    g = torch.Generator(device=device).manual_seed(5)
    embeds = [torch.randn((1, 512, 4096), generator=g, device=device).to(dtype) * 0.1 for _ in range(2)]
    inputs = forward_inputs(state["t1"], size, embeds[0], device, 4, 8, per_token_t=False)
    inputs_u = dict(inputs, encoder_hidden_states=embeds[1])
    hs = inputs["hidden_states"].shape
    rec_tokens = hs[2] * hs[3] * hs[4] // 4

    with phase("a14b_eager", device) as rec:
        rec["tokens"] = rec_tokens
        r = time_forward(state["t1"], inputs, device, reps=2)
        state["ref"] = r.pop("out").float().cpu()
        rec["native"] = r
        rec["step_s_cfg"] = round(2 * r["median_s"], 3)

    with phase("a14b_lossless", device) as rec:
        torch._dynamo.reset()
        rec["acceleration"] = acc.apply_acceleration(pipe, "lossless", device)
        with torch.inference_mode():
            _, rec["first_call_s"] = timed(lambda: state["t1"](**inputs), device)
            out, s_c = timed(lambda: state["t1"](**inputs)[0], device)
            _, s_u = timed(lambda: state["t1"](**inputs_u)[0], device)
            rec["expert1_step_s"] = round(s_c + s_u, 3)
            rec["rel_l2_vs_eager"] = rel_l2(out.float().cpu(), state["ref"])
            _, rec["expert2_first_call_s"] = timed(lambda: state["t2"](**inputs), device)
            _, s2c = timed(lambda: state["t2"](**inputs)[0], device)
            _, s2u = timed(lambda: state["t2"](**inputs_u)[0], device)
            rec["expert2_step_s"] = round(s2c + s2u, 3)
        rec["step_s_cfg"] = round(min(rec["expert1_step_s"], rec["expert2_step_s"]), 3)

    with phase("a14b_vae_decode_resident", device) as rec:
        torch.manual_seed(3)
        vae = build_vae(VAE21, device)
        z = torch.randn((1, 16, (size[2] - 1) // 4 + 1, size[0] // 8, size[1] // 8), device=device)
        rec["note"] = "Wan2.1 VAE fp32, (1,16,21,90,160) latents, both bf16 experts resident on the GPU"
        if cuda:
            torch.cuda.empty_cache()
            reset_peak(device)
        try:
            with torch.inference_mode():
                _, rec["first_s"] = timed(lambda: vae.decode(z, return_dict=False)[0], device)
                video, rec["decode_s"] = timed(lambda: vae.decode(z, return_dict=False)[0], device)
            rec["mode"] = "plain"
        except torch.OutOfMemoryError as exc:
            rec["plain_decode_error"] = str(exc)[:300]
            video = None
            torch.cuda.empty_cache()
            vae.enable_tiling()
            with torch.inference_mode():
                video, rec["decode_s"] = timed(lambda: vae.decode(z, return_dict=False)[0], device)
            rec["mode"] = "tiled (plain decode ran out of memory with both experts resident)"
        frames = ((video[0].permute(1, 2, 3, 0).float().clamp(-1, 1) + 1) / 2).cpu().numpy()
        rec["mp4_encode_s"], rec["mp4_bytes"] = mp4_time(frames, 16)
        rec["mp4_encode_s"] = round(rec["mp4_encode_s"], 3)

    lo, ea = RESULTS.get("a14b_lossless", {}), RESULTS.get("a14b_eager", {})
    if lo.get("ok") and ea.get("ok"):
        vae = RESULTS.get("a14b_vae_decode_resident", {})
        extra = vae.get("decode_s", 7.6) + vae.get("mp4_encode_s", 3.0)
        RESULTS["a14b_extrapolated"] = {
            "eager_video_s": round(40 * ea["step_s_cfg"] + extra, 1),
            "lossless_video_s": round(40 * lo["step_s_cfg"] + extra, 1),
            "how": "40 steps x measured one-step (cond + uncond forward) time + measured VAE decode + MP4 "
                   "encode; text encoding (cached up front) and scheduler time not included",
        }
        save()


# -- main ----------------------------------------------------------------------------------------------
def main() -> int:
    global OUT
    ap = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["5b", "a14b", "small", "tiny"], default="5b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default="bench/results/run")
    ap.add_argument("--steps-eager", type=int, default=3, help="steps of the timed eager pipeline run")
    ap.add_argument("--steps-full", type=int, default=50, help="steps of the end-to-end lossless video")
    ap.add_argument("--steps-fast", type=int, default=10, help="steps of the lossless/fbcache/fp8 comparison")
    ap.add_argument("--reps", type=int, default=2, help="timed repetitions of single forwards")
    ap.add_argument("--presets", default="fbcache,fp8", help="fast presets to run (comma list)")
    ap.add_argument("--fbcache-thresholds", default="0.05,0.3", help="FirstBlockCache thresholds to run")
    ap.add_argument("--vae-cudnn-benchmark", action="store_true")
    args = ap.parse_args()
    args.presets = [p for p in args.presets.split(",") if p]
    args.fbcache_thresholds = [float(t) for t in args.fbcache_thresholds.split(",") if t]
    OUT = Path(args.out)
    OUT.mkdir(parents=True, exist_ok=True)
    import diffusers
    import transformers

    RESULTS["env"] = {"argv": sys.argv, "python": platform.python_version(), "torch": torch.__version__,
                      "diffusers": diffusers.__version__, "transformers": transformers.__version__,
                      "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
                      "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if args.device.startswith("cuda"):
        RESULTS["env"]["sdp"] = {"cudnn": torch.backends.cuda.cudnn_sdp_enabled(),
                                 "flash": torch.backends.cuda.flash_sdp_enabled()}
    save()
    t0 = time.perf_counter()
    if args.model == "a14b":
        flow_a14b(args)
    else:
        flow_ti2v(args)
    RESULTS["env"]["total_wall_s"] = round(time.perf_counter() - t0, 1)
    save()
    summary = {k: {kk: vv for kk, vv in v.items() if kk != "traceback"} if isinstance(v, dict) else v
               for k, v in RESULTS.items()}
    print(json.dumps(summary, indent=1, default=str)[-9000:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
