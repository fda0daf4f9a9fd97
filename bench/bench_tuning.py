"""The remaining exact-class options for a TI2V-5B video on one GPU, measured before adopting any.

Three questions, each answered on full-size random-weight models (speed does not depend on the weights):

1. VAE decode (Wan2.2 VAE, latents (1, 48, 31, 44, 80) -> 121x704x1280), each variant on the same latents,
   timed and compared with the default (PSNR and max |delta| of the uint8 video, the backend's rounding):
     fp32               the default: diffusers' decode in fp32 (cuDNN convs with TF32, PyTorch's default)
     fp32+cl3d          the same math with the VAE in channels_last_3d (NDHWC) memory format
     fp32+norm-compile  torch.compile of every WanRMS_norm (normalize * scale * gamma + bias fused)
     bf16               the VAE in bf16: a lossy-class reference point, not a candidate for `lossless`
2. Overlap: 10 compiled transformer forwards and one VAE decode, one after the other vs at the same time
   (decode on a second stream in a second thread, as `--decode-overlap on` does), and the same with the
   transformer on a high-priority stream.
3. One compiled transformer forward (FA3 where it imports, shared timestep: the lossless defaults) under
   default compile vs `max-autotune-no-cudagraphs`, each with and without fused q/k/v projections.

  python bench/bench_tuning.py --out DIR                          # H100
  python bench/bench_tuning.py --model tiny --device cpu --out DIR  # CPU dry run of this code

Writes DIR/tuning.json (and prints it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from benchlib import Recorder, use_repo_imports

use_repo_imports()

import bench_generation as bg  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

REC = Recorder("tuning.json")
RESULTS, log, save = REC.results, REC.log, REC.save


def section(name: str):
    """Decorator: run, record errors instead of raising, save."""
    def wrap(fn):
        def run(*a: Any, **k: Any) -> Any:
            log(f"== {name}")
            rec = RESULTS.setdefault(name, {})
            t = time.perf_counter()
            try:
                return fn(rec, *a, **k)
            except Exception as exc:
                rec["error"] = f"{type(exc).__name__}: {exc}"
                rec["traceback"] = traceback.format_exc()[-3000:]
                log(f"!! {name}: {rec['error'][:300]}")
            finally:
                rec["section_wall_s"] = round(time.perf_counter() - t, 1)
                save()
        return run
    return wrap


def gpu_time(fn, device: str) -> tuple[Any, float]:
    bg.sync(device)
    t = time.perf_counter()
    out = fn()
    bg.sync(device)
    return out, time.perf_counter() - t


def decode_u8(vae: Any, z: torch.Tensor) -> np.ndarray:
    """The backend's decode arithmetic on already de-normalized latents: uint8 (F, H, W, 3)."""
    with torch.inference_mode():
        video = vae.decode(z.to(vae.dtype), return_dict=False)[0].float()
        u8 = torch.round((video[0] * 0.5 + 0.5).clamp(0, 1) * 255.0).to(torch.uint8)
        return u8.permute(1, 2, 3, 0).contiguous().cpu().numpy()


def compare_u8(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    d = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(d**2))
    return {"psnr_db": float("inf") if mse == 0 else round(10 * math.log10(255.0**2 / mse), 2),
            "max_abs_levels": int(np.abs(d).max()), "frac_pixels_changed": round(float((d != 0).mean()), 5)}


def latents_for(model: str, device: str) -> torch.Tensor:
    h, w, f = bg.MODELS[model]["size"]
    g = torch.Generator(device=device).manual_seed(5)
    return torch.randn((1, 48, (f - 1) // 4 + 1, h // 16, w // 16), generator=g, device=device)


@section("vae")
def vae_variants(rec: dict[str, Any], model: str, device: str, reps: int) -> None:
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm

    z = latents_for(model, device)
    ref = None

    def run(name: str, vae: Any) -> None:
        nonlocal ref
        r: dict[str, Any] = {}
        frames, r["first_s"] = gpu_time(lambda: decode_u8(vae, z), device)
        ts = [gpu_time(lambda: decode_u8(vae, z), device)[1] for _ in range(reps)]
        r["times_s"] = [round(t, 3) for t in ts]
        r["median_s"] = round(statistics.median(ts), 3)
        if ref is None:
            ref = frames
        else:
            r.update(compare_u8(frames, ref))
        rec[name] = r
        shown = {k: v for k, v in r.items() if k != "times_s"}
        log(f"  {name:18s} {r['median_s']:7.3f} s  {json.dumps(shown)}")
        save()

    vae = bg.build_vae(bg.MODELS[model]["vae"], device)
    run("fp32", vae)
    convs = [m for m in vae.decoder.modules() if isinstance(m, torch.nn.Conv3d)]
    for m in convs:
        m.weight.data = m.weight.data.to(memory_format=torch.channels_last_3d)
    run("fp32+cl3d", vae)
    for m in convs:
        m.weight.data = m.weight.data.contiguous()
    norms = [m for m in vae.decoder.modules() if isinstance(m, WanRMS_norm)]
    for m in norms:
        m.compile(dynamic=False)
    rec["compiled_norms"] = len(norms)
    run("fp32+norm-compile", vae)
    for m in norms:
        m._compiled_call_impl = None
    run("bf16", vae.to(torch.bfloat16))
    del vae


def build_tx(model: str, device: str) -> Any:
    from videophy_bench.generator import acceleration as acc
    from videophy_bench.generator import attention

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tx = bg.build_transformer(bg.MODELS[model]["tx"], device, dtype, seed=1)
    kernel, _ = attention.resolve_kernel("auto", device)
    attention.set_attention([tx], kernel)
    RESULTS["attention_kernel"] = kernel
    pipe = type("P", (), {"transformer": tx})()
    return tx, pipe, acc


def tx_inputs(tx: Any, model: str, device: str) -> dict[str, Any]:
    g = torch.Generator(device=device).manual_seed(4)
    embeds = torch.randn((1, 512, tx.config.text_dim), generator=g, device=device)
    size = bg.MODELS[model]["size"]
    return bg.forward_inputs(tx, size, embeds, device, vae_t=4, vae_s=16, per_token_t=False)


@section("overlap")
def overlap(rec: dict[str, Any], model: str, device: str, n_forwards: int) -> None:
    """Sequential vs concurrent denoise-forwards and decode (the service's --decode-overlap)."""
    tx, pipe, acc = build_tx(model, device)
    acc.compile_regions(pipe, fullgraph=True)
    inputs = tx_inputs(tx, model, device)
    vae = bg.build_vae(bg.MODELS[model]["vae"], device)
    z = latents_for(model, device)
    cuda = device.startswith("cuda")

    def forwards(stream: Any = None) -> float:
        ctx = torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()
        t = time.perf_counter()
        with torch.inference_mode(), ctx:
            for _ in range(n_forwards):
                tx(**inputs)
        bg.sync(device)
        return time.perf_counter() - t

    def decode(stream: Any = None) -> float:
        t = time.perf_counter()
        if stream is not None:
            with torch.cuda.stream(stream):
                decode_u8(vae, z)
        else:
            decode_u8(vae, z)
        return time.perf_counter() - t

    with torch.inference_mode():
        tx(**inputs)  # compile
    decode()  # warm
    rec["forwards"] = n_forwards
    rec["forwards_alone_s"] = round(forwards(), 3)
    rec["decode_alone_s"] = round(decode(), 3)
    rec["sequential_s"] = round(rec["forwards_alone_s"] + rec["decode_alone_s"], 3)
    if not cuda:
        return
    lo = torch.cuda.Stream()
    least, greatest = torch.cuda.Stream.priority_range() if hasattr(torch.cuda.Stream, "priority_range") \
        else (0, -1)
    rec["priority_range"] = [least, greatest]
    high = torch.cuda.Stream(priority=-1)
    for label, fw_stream in (("same_priority", None), ("denoise_high_priority", high)):
        out: dict[str, float] = {}
        t = time.perf_counter()

        def side(out: dict[str, float] = out) -> None:
            out["decode_s"] = decode(lo)
        th = threading.Thread(target=side)
        th.start()
        out["forwards_s"] = forwards(fw_stream)
        th.join()
        bg.sync(device)
        out["both_s"] = time.perf_counter() - t
        rec[label] = {k: round(v, 3) for k, v in out.items()}
        rec[label]["saved_vs_sequential_s"] = round(rec["sequential_s"] - out["both_s"], 3)
        log(f"  {label}: {rec[label]}")


@section("forward")
def forward_variants(rec: dict[str, Any], model: str, device: str, reps: int, modes: list[str]) -> None:
    from diffusers.models.transformers.transformer_wan import WanAttention

    tx, pipe, acc = build_tx(model, device)
    inputs = tx_inputs(tx, model, device)
    ref = None
    for fused in (False, True):
        if fused:
            for m in tx.modules():
                if isinstance(m, WanAttention):
                    m.fuse_projections()
        for mode in modes:
            name = f"{mode}{'+fused-qkv' if fused else ''}"
            torch._dynamo.reset()
            acc.uncompile(pipe)
            for block in acc._repeated_blocks(tx):
                block.compile(fullgraph=True, **({} if mode == "default" else {"mode": mode}))
            r: dict[str, Any] = {}
            with torch.inference_mode():
                out, r["first_call_s"] = gpu_time(lambda: tx(**inputs)[0], device)
                ts = [gpu_time(lambda: tx(**inputs)[0], device)[1] for _ in range(reps)]
            r["median_s"] = round(statistics.median(ts), 4)
            r["times_s"] = [round(t, 4) for t in ts]
            if ref is None:
                ref = out.float()
            else:
                r["rel_l2_vs_first"] = float((out.float() - ref).norm() / ref.norm())
            rec[name] = r
            log(f"  {name:40s} {r['median_s']:.4f} s (first {r['first_call_s']:.1f} s)")
            save()


def main() -> int:
    ap = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["5b", "small", "tiny"], default="5b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--forwards", type=int, default=10, help="transformer forwards in the overlap test")
    ap.add_argument("--sections", default="vae,overlap,forward")
    ap.add_argument("--compile-modes", default="default,max-autotune-no-cudagraphs")
    ap.add_argument("--out", default="bench/results/tuning_run")
    args = ap.parse_args()
    REC.out = Path(args.out)
    REC.out.mkdir(parents=True, exist_ok=True)
    RESULTS["env"] = {"argv": sys.argv, "torch": torch.__version__,
                      "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"}
    sections = args.sections.split(",")
    if "vae" in sections:
        vae_variants(args.model, args.device, args.reps)
    if "overlap" in sections:
        overlap(args.model, args.device, args.forwards)
    if "forward" in sections:
        forward_variants(args.model, args.device, args.reps, args.compile_modes.split(","))
    RESULTS["wall_s"] = round(time.perf_counter() - REC.t0, 1)
    save()
    print(json.dumps({k: v for k, v in RESULTS.items() if k != "env"}, indent=1, default=str)[:6000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
