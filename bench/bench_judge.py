"""Judge speed benchmark: the full-size mPLUG-Owl-Video 7B judge with random weights on one GPU.

Speed does not depend on weight values, so the full-size model (LLaMA-7B 4096/11008/32 layers, ViT-L/14
1024/24 layers with temporal adapters, 6-layer abstractor 1024/16 heads, 64+64 queries) is built on the
meta device, materialised on the GPU in bf16 and filled with random numbers (nothing is downloaded). The
real LLaMA SentencePiece tokenizer is used, so the prompts have the official token counts.

Everything runs through the production path, ``MplugOwlJudge.judge_batch`` / ``judge_stream`` (CPU decode
threads -> vision -> abstractor -> one left-padded LLM batch for all SA+PC queries -> greedy decoding), and
the judge's own timings (decode_s, vision_s, generate_s) are recorded next to the wall clock.

Worst case: with random weights greedy decoding could stop at any step, so EOS is disabled (eos id -1) and
every answer runs the official maximum of 255 new tokens (``max_length=256``). Real answers ("Score: 4"
and a sentence) end far earlier, so real generation is faster than what is reported here.

  python bench/bench_judge.py --out DIR                       # full size on CUDA (H100)
  python bench/bench_judge.py --model tiny --device cpu --out DIR --batches 1,2 --stream-videos 4  # smoke

Videos come from --videos (a folder of .mp4, default .benchdata/videos, else ../shared examples) and the
tokenizer from --tokenizer-dir (default .benchdata/tokenizer, else the parity fixture in ../shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import use_repo_imports  # noqa: E402

use_repo_imports()

import torch  # noqa: E402

from videophy_bench.evaluator.judge import JudgeInfo, JudgeQuery, MplugOwlJudge  # noqa: E402
from videophy_bench.evaluator.model.configuration import MplugOwlConfig  # noqa: E402
from videophy_bench.evaluator.model.frames import PixelNormalizer  # noqa: E402
from videophy_bench.evaluator.model.language import LEGACY_ATTENTION  # noqa: E402
from videophy_bench.evaluator.model.modeling import (  # noqa: E402
    OFFICIAL_MAX_NEW_TOKENS,
    MplugOwlForConditionalGeneration,
)
from videophy_bench.evaluator.model.templates import build_prompt  # noqa: E402
from videophy_bench.evaluator.model.tokenization import PromptTokenizer  # noqa: E402
from videophy_bench.evaluator.prefetch import prepare_video  # noqa: E402

SHARED = ROOT.parent / "shared"
CAPTION = "A jetski moves quickly through a narrow channel between two rocky outcrops."
GENERATED_VIDEO_S = 100.0  # what one video takes to generate (the figure)


def full_config() -> MplugOwlConfig:
    """mPLUG-Owl-Video 7B: the class defaults are the official full-size values (reference doc)."""
    return MplugOwlConfig()


def small_config() -> MplugOwlConfig:
    from videophy_bench.evaluator.tiny import tiny_config

    return tiny_config(32000)  # LLaMA vocabulary, so the real tokenizer's ids fit


def build_random_model(config: MplugOwlConfig, device: str, dtype: torch.dtype, attention: str,
                       seed: int = 0) -> MplugOwlForConditionalGeneration:
    """Meta-device build, then materialise on ``device`` and fill with fan-in scaled normals."""
    with torch.device("meta"):
        model = MplugOwlForConditionalGeneration(config, attention=attention).to(dtype)
    model = model.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "bias":
                p.zero_()
            elif p.dim() == 1:  # norm weights
                p.fill_(1.0)
            elif p.dim() >= 2 and leaf == "weight":
                p.normal_(0.0, p[0].numel() ** -0.5, generator=gen)
            else:  # query tokens, cls, positions, vit_eos
                p.normal_(0.0, 0.02, generator=gen)
    return model.eval()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def count_params(model: torch.nn.Module) -> dict[str, int]:
    parts = {"vision_model": model.vision_model, "abstractor": model.abstractor,
             "language_model": model.language_model}
    out = {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}
    out["total"] = sum(p.numel() for p in model.parameters())
    return out


def find_dir(given: str | None, *candidates: Path) -> Path:
    for c in ([Path(given)] if given else list(candidates)):
        if c.exists():
            return c
    raise SystemExit(f"none of {[given] if given else [str(c) for c in candidates]} exists")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["full", "tiny"], default="full")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    ap.add_argument("--attention", default=LEGACY_ATTENTION + ",sdpa",
                    help="comma list; the first is the production default (mplug_owl_legacy)")
    ap.add_argument("--batches", default="1,4,8", help="videos per judge_batch forward")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--stream-videos", type=int, default=8, help="videos through judge_stream per batch")
    ap.add_argument("--max-new-tokens", type=int, default=OFFICIAL_MAX_NEW_TOKENS)
    ap.add_argument("--keep-eos", action="store_true", help="do not force the 255-token worst case")
    ap.add_argument("--decode-workers", type=int, default=4)
    ap.add_argument("--videos", default=None)
    ap.add_argument("--tokenizer-dir", default=None)
    ap.add_argument("--budget-s", type=float, default=330.0, help="skip remaining sections after this")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    videos_dir = find_dir(args.videos, ROOT / ".benchdata" / "videos",
                          SHARED / "data" / "videophy2" / "examples")
    tok_dir = find_dir(args.tokenizer_dir, ROOT / ".benchdata" / "tokenizer",
                       SHARED / "fixtures" / "autoeval_parity_a")
    videos = sorted(str(p) for p in videos_dir.glob("*.mp4"))[:8]
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    attentions = [a.strip() for a in args.attention.split(",") if a.strip()]
    batches = [int(b) for b in args.batches.split(",")]
    torch.backends.cuda.matmul.allow_tf32 = True

    report: dict[str, Any] = {
        "what": "mPLUG-Owl-Video judge speed, random weights, production judge_batch/judge_stream path",
        "model": args.model, "dtype": args.dtype, "device": args.device,
        "queries_per_video": ["sa", "pc"],
        "max_new_tokens": args.max_new_tokens,
        "eos_disabled": not args.keep_eos,
        "note": ("EOS disabled: every SA and PC answer runs the full max_new_tokens (worst case); real "
                 "answers stop after a few dozen tokens" if not args.keep_eos
                 else "EOS kept (random weights)"),
        "videos": [Path(v).name for v in videos],
        "host": {"python": platform.python_version(), "torch": torch.__version__,
                 "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
                 "cpu_count": os.cpu_count()},
        "sections": {},
    }
    try:
        import transformers

        report["host"]["transformers"] = transformers.__version__
    except Exception:  # pragma: no cover
        pass

    def save() -> None:
        (out_dir / "judge_bench.json").write_text(json.dumps(report, indent=2))

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    # -- CPU decode alone (decord 224x224 + 32 frames + CLIP normalisation), per video ---------------------
    normalizer = PixelNormalizer.from_dir(tok_dir)
    decode = []
    for v in videos:
        prepare_video(v, normalizer)  # page cache warm
        times = [prepare_video(v, normalizer).decode_seconds for _ in range(3)]
        decode.append({"video": Path(v).name, "decode_s": statistics.median(times)})
    report["sections"]["decode_cpu"] = {"per_video": decode,
                                        "median_s": statistics.median(d["decode_s"] for d in decode)}
    log(f"decode: {report['sections']['decode_cpu']}")
    save()

    # -- build ---------------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    config = full_config() if args.model == "full" else small_config()
    model = build_random_model(config, args.device, dtype, attentions[0])
    sync(args.device)
    report["build_s"] = time.perf_counter() - t0
    report["params"] = count_params(model)
    log(f"built {report['params']} in {report['build_s']:.1f}s")
    if not args.keep_eos:
        model.language_model.config.eos_token_id = -1  # no token id is -1: every row runs max_new_tokens
    tokenizer = PromptTokenizer.from_dir(tok_dir)
    report["prompt_tokens"] = {
        t: len(tokenizer.encode_generate_prompt(build_prompt(t, CAPTION))) for t in ("sa", "pc")
    }
    info = JudgeInfo(f"bench-{args.model}", "random", "random", ("sa", "pc", "rule"), args.dtype, args.device)
    judge = MplugOwlJudge(model, tokenizer, normalizer, info, max_new_tokens=args.max_new_tokens,
                          decode_workers=args.decode_workers)
    queries = [JudgeQuery("sa", CAPTION), JudgeQuery("pc")]

    def items(n: int) -> list[tuple[str, list[JudgeQuery]]]:
        return [(videos[i % len(videos)], queries) for i in range(n)]

    for attention in attentions:
        if time.perf_counter() - t_start > args.budget_s:
            log(f"budget spent: skipping attention={attention}")
            break
        model.language_model.config._attn_implementation = attention
        section: dict[str, Any] = {"batch": {}, "stream": {}}
        report["sections"][f"attention={attention}"] = section
        try:
            t0 = time.perf_counter()
            warm = judge.judge_batch(items(1))
            sync(args.device)
            section["warmup_s"] = time.perf_counter() - t0
            section["answer_chars"] = [len(a.raw_text) for a in warm[0].answers]
            log(f"[{attention}] warm-up {section['warmup_s']:.2f}s")
            for b in batches:
                if time.perf_counter() - t_start > args.budget_s:
                    break
                if args.device.startswith("cuda"):
                    torch.cuda.reset_peak_memory_stats()
                runs = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    outcomes = judge.judge_batch(items(b))
                    sync(args.device)
                    wall = time.perf_counter() - t0
                    runs.append({"wall_s": wall, **outcomes[0].timings})
                wall = statistics.median(r["wall_s"] for r in runs)
                row = {
                    "runs": runs,
                    "wall_s": wall,
                    "s_per_video": wall / b,
                    "videos_per_s": b / wall,
                    "vision_s": statistics.median(r["vision_s"] for r in runs),
                    "generate_s": statistics.median(r["generate_s"] for r in runs),
                    "decode_s": statistics.median(r["decode_s"] for r in runs),
                    "llm_rows": 2 * b,
                }
                if args.device.startswith("cuda"):
                    row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
                section["batch"][str(b)] = row
                log(f"[{attention}] batch {b}: {row['s_per_video']:.2f} s/video, {row['videos_per_s']:.3f} "
                    f"videos/s (decode {row['decode_s']:.2f} vision {row['vision_s']:.2f} "
                    f"generate {row['generate_s']:.2f})")
                save()
            # Steady state: judge_stream decodes batch n+1 on CPU threads while the GPU runs batch n.
            for b in [b for b in batches if b > 1]:
                if time.perf_counter() - t_start > args.budget_s:
                    break
                n = max(b, args.stream_videos // b * b)
                t0 = time.perf_counter()
                done = list(judge.judge_stream(items(n), batch_size=b))
                sync(args.device)
                wall = time.perf_counter() - t0
                assert all(not isinstance(r, Exception) for _, r in done)
                section["stream"][str(b)] = {"videos": n, "wall_s": wall, "s_per_video": wall / n,
                                             "videos_per_s": n / wall}
                log(f"[{attention}] stream batch {b}: {n} videos in {wall:.1f}s = {wall / n:.2f} s/video")
                save()
        except Exception as exc:  # keep what was measured
            section["error"] = f"{type(exc).__name__}: {exc}"
            section["traceback"] = traceback.format_exc()
            log(section["error"])
            save()

    best = None
    for name, section in report["sections"].items():
        for kind in ("batch", "stream"):
            for b, row in section.get(kind, {}).items() if isinstance(section, dict) else []:
                if best is None or row["s_per_video"] < best["s_per_video"]:
                    best = {"section": name, "kind": kind, "batch": int(b), **row}
    if best is not None:
        report["best"] = {k: best[k] for k in ("section", "kind", "batch", "s_per_video", "videos_per_s")}
        report["vs_generation"] = {"generation_s_per_video": GENERATED_VIDEO_S,
                                   "judge_fraction": best["s_per_video"] / GENERATED_VIDEO_S}
    report["total_s"] = time.perf_counter() - t_start
    save()
    judge.close()
    log(f"done: best {report.get('best')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
