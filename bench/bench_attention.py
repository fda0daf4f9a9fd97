"""Exact attention kernels for Wan TI2V-5B shapes: which one is fastest on this image?

Probes, on one GPU, at B=1, 24 heads, head_dim 128, bf16:
  * self-attention over N=27,280 tokens and cross-attention to 512 text tokens;
  * torch SDPA's default dispatch and each backend alone (CUDNN_ATTENTION, FLASH_ATTENTION,
    EFFICIENT_ATTENTION) via `torch.nn.attention.sdpa_kernel`, in the layout diffusers' `native` backend
    passes (B,S,H,D permuted to B,H,S,D, non-contiguous) and in contiguous B,H,S,D;
  * torch's pluggable flash implementations (`activate_flash_attention_impl("FA3"/"FA4")`) when the
    torch on the image has that API and the provider module imports;
  * `flex_attention` under torch.compile (no mask, no score_mod: plain exact attention);
  * whether `flash_attn`, `flash_attn_interface` or `flash_attn.cute` import.
Exactness: each kernel's output on a sample of query rows against an fp32 math reference
(softmax(q k^T / sqrt(d)) v computed in fp32 from the same bf16 inputs), next to the error of simply
rounding that reference to bf16.
Then the whole diffusers `WanTransformerBlock` (regionally compiled, fullgraph) and one full transformer
forward (full-size TI2V-5B, random bf16 weights, all 30 blocks compiled) for the default backend against
the fastest exact one that diffusers can select.

  python bench/bench_attention.py --out bench/results/attention_h100          # GPU (H100)
  python bench/bench_attention.py --device cpu --tiny --out /tmp/attn_tiny     # CPU dry run

Writes OUT.json and OUT.log.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import use_repo_imports

use_repo_imports()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

RESULTS: dict[str, Any] = {}
LOG: list[str] = []
OUT = Path("attention")
T0 = time.perf_counter()


def log(msg: str) -> None:
    line = f"[{time.perf_counter() - T0:7.1f}s] {msg}"
    print(line, flush=True)
    LOG.append(line)


def save() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(RESULTS, indent=2, default=str))
    OUT.with_suffix(".log").write_text("\n".join(LOG) + "\n")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench(fn: Callable[[], Any], device: str, reps: int, warm: int) -> dict[str, Any]:
    """Median wall time of fn (CUDA events on the GPU)."""
    for _ in range(warm):
        fn()
    sync(device)
    ts = []
    for _ in range(reps):
        if device.startswith("cuda"):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            ts.append(a.elapsed_time(b) / 1e3)
        else:
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return {"median_s": statistics.median(ts), "min_s": min(ts), "times_s": [round(x, 6) for x in ts]}


# -- environment ---------------------------------------------------------------------------------
def probe_env() -> dict[str, Any]:
    import torch.nn.attention as A

    env: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(),
                           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
        env["capability"] = torch.cuda.get_device_capability()
    env["torch.nn.attention"] = [n for n in dir(A) if not n.startswith("__")]
    with contextlib.suppress(Exception):
        env["list_flash_attention_impls"] = A.list_flash_attention_impls()
    with contextlib.suppress(Exception):
        env["sdpa_priority_order"] = [str(b) for b in torch._C._get_sdp_priority_order()]
    mods = {}
    for m in ("flash_attn", "flash_attn_interface", "fa3_fwd_interface", "flash_attn_3", "flash_attn.cute",
              "flash_attn.cute.interface", "sageattention", "xformers", "kernels", "diffusers",
              "transformers"):
        try:
            mod = importlib.import_module(m)
            mods[m] = f"ok {getattr(mod, '__version__', '')}".strip()
        except Exception as e:
            mods[m] = f"{type(e).__name__}: {str(e)[:160]}"
    env["modules"] = mods
    return env


# -- kernels -------------------------------------------------------------------------------------
def make_qkv(n_q: int, n_kv: int, heads: int, d: int, device: str, dtype: torch.dtype, seed: int
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, S, H, D) tensors as diffusers holds them before the `native` backend permutes them.
    Unit-RMS q/k (Wan RMS-normalizes q and k), randn v."""
    g = torch.Generator(device=device).manual_seed(seed)
    q = torch.randn((1, n_q, heads, d), generator=g, device=device, dtype=torch.float32).to(dtype)
    k = torch.randn((1, n_kv, heads, d), generator=g, device=device, dtype=torch.float32).to(dtype)
    v = torch.randn((1, n_kv, heads, d), generator=g, device=device, dtype=torch.float32).to(dtype)
    return q, k, v


def reference_rows(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """fp32 math attention for the query rows `rows`; inputs (B,S,H,D) bf16; returns (rows, H, D) fp32."""
    qf = q[0, rows].float().transpose(0, 1)  # H, R, D
    kf, vf = k[0].float().transpose(0, 1), v[0].float().transpose(0, 1)  # H, S, D
    s = torch.matmul(qf, kf.transpose(1, 2)) / math.sqrt(q.shape[-1])
    p = torch.softmax(s, dim=-1)
    return torch.matmul(p, vf).transpose(0, 1)  # R, H, D


def sdpa_bhsd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              contiguous: bool) -> Callable[[], torch.Tensor]:
    qp, kp, vp = (x.permute(0, 2, 1, 3) for x in (q, k, v))
    if contiguous:
        qp, kp, vp = (x.contiguous() for x in (qp, kp, vp))
    return lambda: F.scaled_dot_product_attention(qp, kp, vp)


def kernel_candidates(q, k, v, device: str,
                      tiny: bool) -> dict[str, Callable[[], Callable[[], torch.Tensor]]]:
    """name -> factory returning a zero-arg callable that returns the output in (B,H,S,D)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def with_backend(backend, contiguous):
        def make():
            f = sdpa_bhsd(q, k, v, contiguous)

            def run():
                with sdpa_kernel([backend]):
                    return f()
            return run
        return make

    cands: dict[str, Any] = {
        "sdpa_default[native layout]": lambda: sdpa_bhsd(q, k, v, False),
        "sdpa_default[contiguous BHSD]": lambda: sdpa_bhsd(q, k, v, True),
    }
    for name in ("CUDNN_ATTENTION", "FLASH_ATTENTION", "EFFICIENT_ATTENTION"):
        be = getattr(SDPBackend, name)
        cands[f"{name}[native layout]"] = with_backend(be, False)
        cands[f"{name}[contiguous BHSD]"] = with_backend(be, True)

    def flex():
        from torch.nn.attention.flex_attention import flex_attention

        fa = flex_attention if (tiny and not device.startswith("cuda")) else torch.compile(flex_attention,
                                                                                            dynamic=False)
        qp, kp, vp = (x.permute(0, 2, 1, 3).contiguous() for x in (q, k, v))
        return lambda: fa(qp, kp, vp)
    cands["flex_attention[compiled]"] = flex

    def fa3():
        from videophy_bench.generator import attention

        reason = attention.fa3_unusable_reason(device)
        if reason:
            raise RuntimeError(reason)
        return lambda: attention.fa3_attention(q, k, v).permute(0, 2, 1, 3)  # takes (B,S,H,D) as is
    cands["fa3[native layout]"] = fa3
    return cands


def fa_impl_candidates(q, k, v) -> dict[str, Any]:
    """torch's pluggable flash impls (FA3/FA4), each activated around the FLASH_ATTENTION backend."""
    import torch.nn.attention as A

    out: dict[str, Any] = {}
    if not hasattr(A, "activate_flash_attention_impl"):
        return out
    from torch.nn.attention import SDPBackend, sdpa_kernel

    for impl in ("FA3", "FA4"):
        def make(impl=impl):
            A.activate_flash_attention_impl(impl)  # raises when the provider module is missing
            f = sdpa_bhsd(q, k, v, False)

            def run():
                with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                    return f()
            return run
        out[f"FLASH_ATTENTION+{impl}[native layout]"] = make
    return out


def run_kernels(args: argparse.Namespace, device: str) -> dict[str, Any]:
    H, D = args.heads, args.head_dim
    res: dict[str, Any] = {}
    for kind, n_kv in (("self", args.tokens), ("cross", args.text_tokens)):
        q, k, v = make_qkv(args.tokens, n_kv, H, D, device, torch.bfloat16, seed=5 if kind == "self" else 6)
        flops = 4.0 * args.tokens * n_kv * D * H
        g = torch.Generator(device="cpu").manual_seed(0)
        rows = torch.cat([torch.arange(min(256, args.tokens)),
                          torch.randint(0, args.tokens, (args.check_rows,), generator=g)]).unique().to(device)
        ref = reference_rows(q, k, v, rows)
        bf16_floor = (ref.to(torch.bfloat16).float() - ref).abs().max().item()
        res[kind] = {"shape": {"B": 1, "heads": H, "head_dim": D, "q_tokens": args.tokens, "kv_tokens": n_kv},
                     "flop": flops, "checked_rows": int(rows.numel()),
                     "bf16_rounding_of_fp32_ref_max_abs": bf16_floor, "kernels": {}}
        log(f"{kind}: q {args.tokens}, kv {n_kv}; bf16 rounding floor {bf16_floor:.3e}")
        cands = kernel_candidates(q, k, v, device, args.tiny)
        if kind == "self":
            cands.update(fa_impl_candidates(q, k, v))
        for name, make in cands.items():
            rec: dict[str, Any] = {}
            try:
                t = time.perf_counter()
                fn = make()
                out = fn()
                sync(device)
                rec["first_call_s"] = round(time.perf_counter() - t, 3)
                o = out.permute(0, 2, 1, 3)[0, rows].float()  # R, H, D
                rec["max_abs_vs_fp32"] = (o - ref).abs().max().item()
                rec["mean_abs_vs_fp32"] = (o - ref).abs().mean().item()
                del out, o
                b = bench(fn, device, args.reps, args.warm)
                rec.update(ms=round(b["median_s"] * 1e3, 3), min_ms=round(b["min_s"] * 1e3, 3),
                           tflops=round(flops / b["median_s"] / 1e12, 1), times_s=b["times_s"])
                log(f"  {name:40s} {rec['ms']:9.3f} ms  {rec['tflops']:6.1f} TF/s  "
                    f"max|d| {rec['max_abs_vs_fp32']:.2e}")
            except Exception as e:
                rec["error"] = f"{type(e).__name__}: {str(e)[:300]}"
                log(f"  {name:40s} unavailable: {rec['error'][:160]}")
            finally:
                if "+FA" in name:
                    with contextlib.suppress(Exception):
                        import torch.nn.attention as A
                        A.restore_flash_attention_impl(_raise_warn=False)
            res[kind]["kernels"][name] = rec
            save()
        del q, k, v, ref
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return res


# -- diffusers block and full forward --------------------------------------------------------------
# kernel name prefix -> diffusers attention backend that selects it
DIFFUSERS_BACKEND = {"sdpa_default": "native", "CUDNN_ATTENTION": "_native_cudnn",
                     "FLASH_ATTENTION": "_native_flash", "EFFICIENT_ATTENTION": "_native_efficient",
                     "flex_attention": "flex", "fa3": "fa3"}


def pick_backends(kern: dict[str, Any]) -> list[str]:
    """'native' plus the diffusers backend of the fastest exact self-attention kernel (native layout or
    flex), plus _native_cudnn for reference."""
    best, best_ms = "native", math.inf
    for name, rec in kern["self"]["kernels"].items():
        if "ms" not in rec or "+FA" in name or ("contiguous" in name and not name.startswith("flex")):
            continue
        be = DIFFUSERS_BACKEND.get(name.split("[")[0])
        if be and rec["ms"] < best_ms:
            best, best_ms = be, rec["ms"]
    out = ["native"]
    for be in (best, "_native_cudnn"):
        if be not in out:
            out.append(be)
    return out


def build_tx(args: argparse.Namespace, device: str) -> Any:
    from bench.bench_generation import MODELS, build_transformer

    cfg = MODELS["tiny" if args.tiny else "5b"]["tx"]
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return build_transformer(cfg, device, dtype, seed=1)


def tx_inputs(tx: Any, args: argparse.Namespace, device: str) -> dict[str, Any]:
    from bench.bench_generation import MODELS, forward_inputs

    size = MODELS["tiny" if args.tiny else "5b"]["size"]
    g = torch.Generator(device=device).manual_seed(4)
    embeds = torch.randn((1, args.text_tokens, tx.config.text_dim), generator=g, device=device)
    return forward_inputs(tx, size, embeds, device, vae_t=4, vae_s=16, per_token_t=True)


def capture_block_inputs(tx: Any, inputs: dict[str, Any]) -> tuple[tuple, dict]:
    box: dict[str, Any] = {}

    def hook(_m, a, kw):
        box["a"], box["kw"] = a, kw
        raise StopIteration  # stop the forward after the first block's inputs are in hand

    h = tx.blocks[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.inference_mode(), contextlib.suppress(StopIteration):
            tx(**inputs)
    finally:
        h.remove()
    return box["a"], box["kw"]


def run_model(args: argparse.Namespace, device: str, backends: list[str]) -> dict[str, Any]:
    from videophy_bench.generator import attention
    from videophy_bench.generator.acceleration import compile_regions, uncompile

    res: dict[str, Any] = {"backends": backends, "block": {}, "forward": {}}
    t = time.perf_counter()
    tx = build_tx(args, device)
    res["build_s"] = round(time.perf_counter() - t, 1)
    inputs = tx_inputs(tx, args, device)
    log(f"transformer built in {res['build_s']} s; tokens "
        f"{inputs['timestep'].shape[-1]}; backends {backends}")
    pipe = type("P", (), {"transformer": tx})()
    compile_ok = device.startswith("cuda") or args.compile_cpu
    a, kw = capture_block_inputs(tx, inputs)
    block = tx.blocks[0]
    outs: dict[str, torch.Tensor] = {}
    for be in backends:
        rec: dict[str, Any] = {}
        try:
            torch._dynamo.reset()
            uncompile(pipe)
            attention.set_attention([tx], be)
            if compile_ok:
                compile_regions(pipe, fullgraph=True)
            with torch.inference_mode():
                t = time.perf_counter()
                block(*a, **kw)
                sync(device)
                rec["block_first_call_s"] = round(time.perf_counter() - t, 2)
                b = bench(lambda: block(*a, **kw), device, args.reps, args.warm)
            rec.update(block_ms=round(b["median_s"] * 1e3, 3), block_times_s=b["times_s"])
            log(f"block   {be:18s} {rec['block_ms']:8.3f} ms (first call {rec['block_first_call_s']} s)")
            save()
            with torch.inference_mode():
                t = time.perf_counter()
                out = tx(**inputs)[0]
                sync(device)
                rec["forward_first_call_s"] = round(time.perf_counter() - t, 2)
                b = bench(lambda: tx(**inputs)[0], device, args.forward_reps, 0)
            rec.update(forward_s=round(b["median_s"], 4), forward_times_s=b["times_s"])
            outs[be] = out.float()
            log(f"forward {be:18s} {rec['forward_s']:8.4f} s (first call {rec['forward_first_call_s']} s)")
        except Exception as e:
            rec["error"] = f"{type(e).__name__}: {str(e)[:400]}"
            rec["traceback"] = traceback.format_exc()[-2000:]
            log(f"{be}: failed: {rec['error'][:200]}")
        res["forward"][be] = rec
        save()
    if "native" in outs:
        for be, o in outs.items():
            ref = outs["native"]
            res["forward"][be]["rel_l2_vs_native_compiled"] = ((o - ref).norm() / ref.norm()).item()
    attention.set_attention([tx], "native")
    uncompile(pipe)
    return res


def main() -> int:
    global OUT
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench/results/attention_h100")
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="tiny shapes and the tiny model (CPU dry run)")
    p.add_argument("--compile-cpu", action="store_true")
    p.add_argument("--skip-model", action="store_true")
    p.add_argument("--a14b-shape", action="store_true", help="also time the kernels at the A14B shape")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--warm", type=int, default=3)
    p.add_argument("--forward-reps", type=int, default=4)
    p.add_argument("--check-rows", type=int, default=768)
    args = p.parse_args()
    OUT = Path(args.out)
    if args.tiny:
        args.tokens, args.text_tokens, args.heads, args.head_dim = 9 * 2 * 2, 16, 2, 16
        args.check_rows = 8
    else:
        args.tokens, args.text_tokens, args.heads, args.head_dim = 31 * 22 * 40, 512, 24, 128
    device = args.device
    RESULTS["args"] = vars(args)
    RESULTS["env"] = probe_env()
    log(json.dumps(RESULTS["env"], default=str))
    save()
    RESULTS["kernels"] = run_kernels(args, device)
    save()
    if args.a14b_shape and not args.tiny:  # one A14B expert: 21x45x80 tokens, 40 heads
        a14b = argparse.Namespace(**{**vars(args), "tokens": 21 * 45 * 80, "heads": 40, "reps": 5, "warm": 2,
                                     "check_rows": 256})
        RESULTS["kernels_a14b"] = run_kernels(a14b, device)
        save()
    if not args.skip_model:
        backends = pick_backends(RESULTS["kernels"])
        RESULTS["model"] = run_model(args, device, backends)
    RESULTS["wall_s"] = round(time.perf_counter() - T0, 1)
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
