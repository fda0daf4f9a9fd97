"""The generator SERVICE on the GPU: real gRPC server and clients, serial vs pipelined (MP4/device overlap).

A full-size TI2V-5B with random weights is built in memory (bench_generation's recipe: transformer
bf16, Wan2.2 VAE fp32) and wrapped in `DiffusersWanBackend`, whose `load()` attaches the in-memory
pipeline and then does what the real load does after reading weights (scheduler, acceleration). The text
encoder is a 1-layer UMT5 stand-in (d_model 4096, so the embeddings have the real shape); prompts are
encoded once by Prepare and cached, so it is off the per-video path either way.

The backend is served through `videophy_bench.generator.cli.serve` (the production entry point: flags,
interceptors, health, drain) on 127.0.0.1:0 with the default acceleration (`lossless`: regional compile,
warm-up before ready), twice in one process on the same backend object:

  serial      --queue-depth 0 --decode-overlap off, one client: each request is sent when the previous
              result is back
  pipelined   --queue-depth 1 --decode-overlap off, two concurrent clients pulling from one list of
              videos: the MP4 encode overlaps the next item's denoising
  overlapped  --queue-depth 1 --decode-overlap auto: the VAE decode also runs beside the next item's
              denoising (on its own CUDA stream) when the warm-up measured that both fit

Both modes generate the same videos (same prompts and seeds; separate storage roots), so their sha256
must agree (if not, PSNR of the decoded MP4s is reported). Every MP4 is decoded and checked.

  python bench/bench_service_gpu.py --out DIR                              # H100: 5b, 3 videos, 10 steps
  python bench/bench_service_gpu.py --model tiny --device cpu --out DIR    # CPU dry run of this code
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from benchlib import Recorder, use_repo_imports

use_repo_imports()

# As videophy_bench.generator.cli.main does, before CUDA is initialized.
os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")

import bench_generation as bg  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

PROMPTS = [
    "A red ball rolls off the edge of a wooden table and bounces twice on the tiled floor.",
    "Water is poured from a glass pitcher into a clear cup until it overflows onto the counter.",
    "A row of dominoes topples one after another across a wooden floor.",
]
SEEDS = [1234, 5678, 91011]

# 1-layer UMT5 stand-in: real width (text_dim 4096), 32k vocabulary (the tiny tokenizer's ids fit)
MODELS: dict[str, dict[str, Any]] = {
    "5b": dict(bg.MODELS["5b"], t5=dict(num_layers=1, vocab_size=32128)),
    "a14b": dict(t5=dict(num_layers=1, vocab_size=32128)),  # T2V-A14B: bg.build_moe, the real preset
    "small": bg.MODELS["small"],
    "tiny": bg.MODELS["tiny"],
}

REC = Recorder("service_gpu.json")
RESULTS, log, save = REC.results, REC.log, REC.save


def in_memory_backend(model: str, device: str, args_cli: argparse.Namespace) -> Any:
    """DiffusersWanBackend whose load() builds the random-weight pipeline instead of reading weights."""
    from videophy_bench.generator.cli import _compile_choice
    from videophy_bench.generator.diffusers_backend import DiffusersWanBackend

    class InMemoryBackend(DiffusersWanBackend):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            self.events: list[dict[str, Any]] = []

        def load(self) -> None:
            if self.pipe is not None:  # the second server of this process: same model, already loaded
                self.events.append({"load": "reused"})
                return
            t0 = time.perf_counter()
            if model == "a14b":
                pipe = bg.build_moe(self.device, MODELS[model]["t5"])
            else:
                saved = bg.MODELS[model]
                bg.MODELS[model] = MODELS[model]  # build_ti2v reads its spec from bg.MODELS
                try:
                    pipe = bg.build_ti2v(model, self.device)
                finally:
                    bg.MODELS[model] = saved
            bg.sync(self.device)
            build_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            self.attach(pipe)  # what DiffusersWanBackend.load does after from_pretrained + .to(device)
            rec = {"load": "built", "build_s": round(build_s, 2),
                   "apply_acceleration_s": round(time.perf_counter() - t1, 2),
                   "transformer_params": bg.n_params(pipe.transformer), "vae_params": bg.n_params(pipe.vae),
                   "text_encoder_params": bg.n_params(pipe.text_encoder),
                   "transformer_dtype": str(pipe.transformer.dtype), "vae_dtype": str(pipe.vae.dtype),
                   "acceleration": self.acceleration}
            self.events.append(rec)
            log(f"load: {rec}")

        def warmup(self) -> None:
            t0 = time.perf_counter()
            super().warmup()
            bg.sync(self.device)
            self.events.append({"warmup_s": round(time.perf_counter() - t0, 2)})
            log(f"warm-up {time.perf_counter() - t0:.1f}s")

    from videophy_bench.generator.presets import PRESETS

    if model == "a14b":  # the real preset; a small size for the CPU dry run
        preset = PRESETS["wan2.2-t2v-a14b"]
        if not device.startswith("cuda"):
            preset = dataclasses.replace(preset, name="bench-a14b-cpu", height=64, width=64, num_frames=9,
                                         sizes=None)
    else:
        preset = bg.bench_preset_for(model)
    return InMemoryBackend(preset, Path("."), "random-weights", device, model_id=f"bench/random-{model}",
                           compile_blocks=_compile_choice(args_cli), acceleration=args_cli.acceleration)


# mode -> (--queue-depth, clients, --decode-overlap)
MODES: dict[str, tuple[int, int, str]] = {"serial": (0, 1, "off"), "pipelined": (1, 2, "off"),
                                          "overlapped": (1, 2, "auto")}


def cli_args(storage: Path, queue_depth: int, device: str, decode_overlap: str = "off") -> argparse.Namespace:
    from videophy_bench.generator.cli import build_parser

    return build_parser().parse_args(["--bind", "127.0.0.1:0", "--storage-root", str(storage),
                                      "--queue-depth", str(queue_depth), "--device", device,
                                      "--decode-overlap", decode_overlap,
                                      "--grace-s", "60", "--log-level", "INFO"])


async def wait_ready(target: str, timeout_s: float) -> float:
    from videophy_bench.common.channel import ClientConfig, is_ready

    t0 = time.perf_counter()
    async with ClientConfig().open(target) as ch:
        while time.perf_counter() - t0 < timeout_s:
            if await is_ready(ch):
                return time.perf_counter() - t0
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{target} not ready after {timeout_s}s")


async def one_video(stub: Any, i: int, mode: str, steps: int, t_mode: float, client: int) -> dict[str, Any]:
    import grpc

    from videophy_bench.proto.v1 import generator_pb2

    req = generator_pb2.GenerateRequest(
        request_id=f"{mode}-{i}", prompt_id=f"p{i}", prompt=PROMPTS[i % len(PROMPTS)],
        seed=SEEDS[i % len(SEEDS)],
        overrides=generator_pb2.GenerationOverrides(num_inference_steps=steps))
    rec: dict[str, Any] = {"video": i, "client": client, "seed": req.seed, "busy_retries": 0}
    while True:
        rec["t_send"] = time.perf_counter() - t_mode
        steps_t: list[float] = []
        result = None
        try:
            async for ev in stub.Generate(req):
                now = time.perf_counter() - t_mode
                kind = ev.WhichOneof("event")
                if kind == "progress" and ev.progress.phase == "denoise":
                    steps_t.append(now)
                elif kind == "result":
                    result = ev.result
                    rec["t_result"] = now
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                rec["busy_retries"] += 1
                await asyncio.sleep(0.2)
                continue
            raise
        break
    assert result is not None, "no result event"
    rec.update(
        t_first_step=steps_t[0] if steps_t else None, t_last_step=steps_t[-1] if steps_t else None,
        progress_events=len(steps_t), latency_s=rec["t_result"] - rec["t_send"],
        uri=result.artifact.uri, sha256=result.artifact.sha256, bytes=result.artifact.bytes,
        num_frames=result.num_frames, height=result.height, width=result.width, fps=result.fps,
        timings_s={k: round(v, 3) for k, v in result.timings_s.items()}, attempts=result.attempts,
        acceleration=result.params.acceleration, cached=result.cached)
    # device work of this item as seen by the client: from (first step - one step) to the result
    return rec


async def run_mode(backend: Any, mode: str, n_videos: int, steps: int, storage: Path,
                   device: str) -> dict[str, Any]:
    from videophy_bench.common.channel import ClientConfig
    from videophy_bench.common.server import ServiceHost
    from videophy_bench.generator.cli import serve
    from videophy_bench.generator.presets import WAN_NEGATIVE_PROMPT
    from videophy_bench.proto.v1 import common_pb2, generator_pb2, generator_pb2_grpc

    queue_depth, clients, overlap = MODES[mode]
    args = cli_args(storage, queue_depth, device, overlap)
    rec: dict[str, Any] = {"queue_depth": queue_depth, "clients": clients, "videos": n_videos, "steps": steps,
                           "serve_flags": ["--bind", "127.0.0.1:0", "--queue-depth", str(queue_depth),
                                           "--decode-overlap", overlap,
                                           "(acceleration lossless, warm-up on: the defaults)"],
                           "decode_overlap_fits": None}
    listening: asyncio.Future[ServiceHost] = asyncio.get_running_loop().create_future()
    t_start = time.perf_counter()
    task = asyncio.create_task(serve(args, backend, on_listening=listening.set_result))
    await asyncio.wait({listening, task}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    host = listening.result()
    target = f"127.0.0.1:{host.port}"
    try:
        rec["ready_s"] = round(await wait_ready(target, 900) + 0, 2)
        rec["decode_overlap_fits"] = backend.decode_overlap_fits
        rec["ready_s_since_serve"] = round(time.perf_counter() - t_start, 2)
        log(f"[{mode}] ready on {target} after {rec['ready_s_since_serve']}s")
        channels = [ClientConfig().open(target) for _ in range(clients)]
        stubs = [generator_pb2_grpc.GeneratorServiceStub(ch) for ch in channels]
        info = await stubs[0].GetInfo(common_pb2.GetInfoRequest())
        rec["capacity"] = info.capacity
        prep = await stubs[0].Prepare(generator_pb2.PrepareRequest(prompts=PROMPTS[:n_videos],
                                                                   negative_prompt=WAN_NEGATIVE_PROMPT))
        rec["prepare"] = {"encoded": prep.encoded, "cached": prep.cached,
                          "elapsed_s": round(prep.elapsed_s, 3)}
        todo: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n_videos):
            todo.put_nowait(i)
        videos: list[dict[str, Any]] = []
        t_mode = time.perf_counter()

        async def client(c: int) -> None:
            while True:
                try:
                    i = todo.get_nowait()
                except asyncio.QueueEmpty:
                    return
                v = await one_video(stubs[c], i, mode, steps, t_mode, c)
                log(f"[{mode}] video {i} (client {c}): sent {v['t_send']:.1f}s, first step "
                    f"{v['t_first_step']:.1f}s, result {v['t_result']:.1f}s; {v['timings_s']}")
                videos.append(v)

        await asyncio.gather(*(client(c) for c in range(clients)))
        wall = time.perf_counter() - t_mode
        for ch in channels:
            await ch.close()
    finally:
        host.grace_s = 60.0
        await host.drain()
        await asyncio.wait_for(task, 120)
    videos.sort(key=lambda v: v["t_result"])
    done = [v["t_result"] for v in videos]
    intervals = [b - a for a, b in itertools.pairwise(done)]
    rec["videos_detail"] = sorted(videos, key=lambda v: v["video"])
    rec["wall_s"] = round(wall, 3)
    rec["wall_s_per_video"] = round(wall / n_videos, 3)
    rec["completion_times_s"] = [round(x, 3) for x in done]
    rec["completion_intervals_s"] = [round(x, 3) for x in intervals]
    rec["steady_s_per_video"] = round(statistics.mean(intervals), 3) if intervals else round(wall, 3)
    rec["steady_how"] = "mean interval between consecutive results (every video after the first)"
    keys = sorted({k for v in videos for k in v["timings_s"]})
    rec["timings_s_median"] = {k: round(statistics.median(v["timings_s"][k] for v in videos), 3)
                               for k in keys}
    rec["per_step_s"] = round(statistics.median(v["timings_s"]["denoise"] / steps for v in videos), 4)
    rec["busy_retries"] = sum(v["busy_retries"] for v in videos)
    # device idle between items, from the client's view: item k+1's first step minus one step time, less
    # the end of item k's device work (its first step minus one step + its device time = total - mp4)
    by_start = sorted(videos, key=lambda v: v["t_first_step"])
    step = rec["per_step_s"]
    ends = [v["t_first_step"] - step + v["timings_s"]["total"] - v["timings_s"]["mp4_encode"]
            for v in by_start]
    rec["device_idle_between_items_s"] = [round(b["t_first_step"] - step - e, 3)
                                          for e, b in zip(ends, by_start[1:], strict=False)]
    if device.startswith("cuda"):
        rec["peak_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    log(f"[{mode}] {n_videos} videos in {wall:.1f}s: {wall / n_videos:.2f} s/video overall, steady "
        f"{rec['steady_s_per_video']} s/video; median timings {rec['timings_s_median']}")
    return rec


def check_videos(storages: dict[str, Path], modes: dict[str, dict[str, Any]], want: tuple[int, int, int, int],
                 ) -> dict[str, Any]:
    """Decode every MP4 (frames, size, fps) and compare the same video across modes (sha256, else PSNR)."""
    from videophy_bench.common.video import decode_mp4

    frames_w, h_w, w_w, fps_w = want
    out: dict[str, Any] = {"want": {"frames": frames_w, "height": h_w, "width": w_w, "fps": fps_w},
                           "videos": []}
    names = list(modes)
    n = len(modes[names[0]]["videos_detail"])
    for i in range(n):
        row: dict[str, Any] = {"video": i}
        decoded: dict[str, np.ndarray] = {}
        for m in names:
            v = modes[m]["videos_detail"][i]
            frames, meta = decode_mp4(storages[m] / v["uri"])
            row[m] = {"frames": meta.frames, "height": meta.height, "width": meta.width, "fps": meta.fps,
                      "sha256": v["sha256"][:16], "bytes": v["bytes"],
                      "ok": (meta.frames, meta.height, meta.width, round(meta.fps))
                      == (frames_w, h_w, w_w, fps_w)}
            decoded[m] = frames
        shas = {modes[m]["videos_detail"][i]["sha256"] for m in names}
        row["sha256_identical"] = len(shas) == 1
        if not row["sha256_identical"]:
            a, b = (decoded[m].astype(np.float64) for m in names[:2])
            mse = float(np.mean((a - b) ** 2))
            row["psnr_db"] = float("inf") if mse == 0 else round(10 * np.log10(255.0**2 / mse), 2)
            row["max_abs_diff_u8"] = int(np.max(np.abs(a - b)))
        out["videos"].append(row)
        del decoded
    out["all_decoded_ok"] = all(r[m]["ok"] for r in out["videos"] for m in names)
    out["all_sha256_identical"] = all(r["sha256_identical"] for r in out["videos"])
    return out


def extrapolate(modes: dict[str, dict[str, Any]], steps: int, full_steps: int) -> dict[str, Any]:
    """Steady s/video at `full_steps`: the measured figure plus the extra steps at the first mode's step
    time (the extra steps run uncontended in every mode: the overlapped decode and encode of the previous
    item share only the first seconds of the next item's denoising)."""
    first = next(iter(modes))
    step = modes[first]["per_step_s"]
    ex: dict[str, Any] = {
        "how": f"measured steady s/video + ({full_steps} - {steps}) x the {first} mode's measured per-step "
               "denoise time (service-reported denoise / steps, median over videos); everything else (VAE "
               "decode, MP4 encode, RPC, host gaps, contention during the overlap) as measured at "
               f"{steps} steps",
        "full_steps": full_steps, "per_step_s_used": step}
    for m, r in modes.items():
        ex[m] = {"steady_s_per_video": round(r["steady_s_per_video"] + (full_steps - steps) * (step or 0), 1)}
    return ex


async def main_async(args: argparse.Namespace) -> None:
    names = [m for m in args.modes.split(",") if m]
    storages = {m: Path(tempfile.mkdtemp(prefix=f"svc-{m}-")) for m in names}
    backend = in_memory_backend(args.model, args.device, cli_args(storages[names[0]], 0, args.device))
    RESULTS["backend"] = {"preset": backend.preset.name, "size": [backend.preset.height, backend.preset.width,
                                                                  backend.preset.num_frames],
                          "fps": backend.preset.fps, "steps_per_video": args.steps,
                          "text_encoder": "1-layer UMT5 stand-in (d_model 4096), random weights; "
                                          "prompts are encoded once by Prepare and cached",
                          "weights": "random (full-size transformer and VAE on 5b)"}
    modes: dict[str, dict[str, Any]] = {}
    for mode in names:
        qd, clients, overlap = MODES[mode]
        log(f"== {mode}: --queue-depth {qd} --decode-overlap {overlap}, {clients} client(s), "
            f"{args.videos} videos x {args.steps} steps")
        try:
            modes[mode] = await run_mode(backend, mode, args.videos, args.steps, storages[mode], args.device)
        except Exception as exc:
            RESULTS[mode] = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exc()[-4000:]}
            log(f"!! {mode} failed: {exc}")
            save()
            continue
        RESULTS[mode] = modes[mode]
        RESULTS["backend"]["events"] = backend.events
        save()
    if modes:
        p = backend.preset
        RESULTS["check"] = check_videos(storages, modes, (p.num_frames, p.height, p.width, p.fps))
        log(f"check: decoded ok {RESULTS['check']['all_decoded_ok']}, sha256 identical across modes "
            f"{RESULTS['check']['all_sha256_identical']}")
        full_steps = p.num_inference_steps if args.model in ("5b", "a14b") else 50
        RESULTS["extrapolated"] = extrapolate(modes, args.steps, full_steps)
        RESULTS["measured"] = {"steps": args.steps, **{f"{m}_steady_s_per_video": r["steady_s_per_video"]
                                                       for m, r in modes.items()},
                               **{f"{m}_wall_s": r["wall_s"] for m, r in modes.items()}}
    save()


def main() -> int:
    ap = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default="5b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--videos", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10, help="denoising steps per video (preset: 50)")
    ap.add_argument("--modes", default="pipelined,overlapped",
                    help=f"comma list of {', '.join(MODES)}; the same videos in each")
    ap.add_argument("--out", default="bench/results/service_gpu_run")
    args = ap.parse_args()
    REC.out = Path(args.out)
    REC.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import diffusers
    import grpc
    import transformers

    RESULTS["env"] = {"argv": sys.argv, "python": platform.python_version(), "torch": torch.__version__,
                      "diffusers": diffusers.__version__, "transformers": transformers.__version__,
                      "grpcio": grpc.__version__, "cpus": os.cpu_count(),
                      "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
                      "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    save()
    asyncio.run(main_async(args))
    RESULTS["env"]["total_wall_s"] = round(time.perf_counter() - REC.t0, 1)
    save()
    summary = {k: RESULTS[k] for k in ("measured", "extrapolated", "check") if k in RESULTS}
    print(json.dumps(summary, indent=1, default=str), flush=True)
    return 0 if "measured" in RESULTS else 1


if __name__ == "__main__":
    raise SystemExit(main())
